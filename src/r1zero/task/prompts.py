"""Prompts: the tutorial's Chinese template and mini-r1's English one.

The prompt is the model's chat template applied to a user turn plus a pre-filled
assistant turn that is continued (``continue_final_message=True``), so the completion
starts inside ``<think>``. Tokenizers without a chat template get a plain-text fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PromptTemplate:
    user: str
    """Instruction with ``{numbers}`` and ``{target}`` placeholders."""
    assistant_prefix: str
    """Start of the assistant turn; the model continues it."""


TEMPLATES: dict[str, PromptTemplate] = {
    "zh": PromptTemplate(
        user="使用给定的数字 {numbers}，创建一个等于 {target} 的方程。你可以使用基本算术运算（+、-、*、/）一次或多次，但每个数字只能使用一次。在 <think> </think> 标签中展示你的思考过程，并在 <answer> </answer> 标签中返回最终方程，例如 <answer> (1 + 2) / 3 </answer>。在 <think> 标签中逐步思考。",
        assistant_prefix="让我们逐步解决这个问题。\n<think>",
    ),
    "en": PromptTemplate(
        user="Using the numbers {numbers}, create an equation that equals {target}. You can use basic arithmetic operations (+, -, *, /) one or multiple times but each number can only be used once. Show your work in <think> </think> tags. And return the final equation in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>. Think step by step inside <think> tags.",
        assistant_prefix="Let me solve this step by step.\n<think>",
    ),
    "short": PromptTemplate(
        user="Using the numbers {numbers}, create an equation that equals {target}.",
        assistant_prefix="<think>",
    ),
}
"""``short`` is the embedded tiny model's: the task in one sentence, so that a 2-layer model
pretrained for two minutes spends its few steps on the reasoning, not on reading."""


def get_template(
    name: str, *, user: str | None = None, assistant_prefix: str | None = None
) -> PromptTemplate:
    """Look up ``zh`` / ``en``, with optional custom user text or assistant prefix overriding it."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown prompt_template {name!r}; choose one of {sorted(TEMPLATES)}")
    base = TEMPLATES[name]
    return PromptTemplate(
        user or base.user,
        assistant_prefix if assistant_prefix is not None else base.assistant_prefix,
    )


def messages(template: PromptTemplate, nums: list[int], target: int) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": template.user.format(numbers=list(nums), target=target)},
        {"role": "assistant", "content": template.assistant_prefix},
    ]


def render(tokenizer: Any, template: PromptTemplate, nums: list[int], target: int) -> str:
    """The prompt text exactly as the model sees it (chat template, assistant turn continued)."""
    msgs = messages(template, nums, target)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(msgs, tokenize=False, continue_final_message=True)
    return f"User: {msgs[0]['content']}\nAssistant: {msgs[1]['content']}"
