"""The tiny model's tokenizer: a small byte-level BPE with Qwen's special tokens.

Trained on the rendered prompts of both templates and on the solver's traces, with
exactly Qwen2's normalizer and pre-tokenizer: ``AutoTokenizer`` loads every ``qwen2``
folder as ``Qwen2Tokenizer``, which rebuilds those two from code, so anything else would be
silently replaced at load time. Qwen's split regex isolates every digit; on top, the
numbers 10-99 are added tokens, so every number of the demo is one token and an addition is
one lookup, not a carry across digits (a 2-layer model learns the former in minutes). Any
other text still encodes, byte by byte.

Like Qwen3, ``<think>``/``</think>``/``<answer>``/``</answer>`` are single added tokens that
are *not* special: ``decode(..., skip_special_tokens=True)`` keeps them, as the rewards
need. ``<|im_end|>`` ends a turn (eos) and ``<|endoftext|>`` pads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, models, trainers
from transformers import PreTrainedTokenizerFast
from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)
TAG_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")
NUMBER_TOKENS = tuple(str(i) for i in range(10, 100))
"""Whole-number tokens (longest match first: ``"123"`` encodes as ``"12"``, ``"3"``)."""

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""Qwen2.5's ChatML layout without its default system message (it would only lengthen
every prompt of a model that never saw another one)."""

_ADDED = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS + TAG_TOKENS))


def chat_text(messages: list[dict[str, str]], *, continue_final_message: bool = True) -> str:
    """What :data:`CHAT_TEMPLATE` renders, without needing a tokenizer (for the BPE corpus)."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    if continue_final_message:
        text = text[: text.rindex(messages[-1]["content"]) + len(messages[-1]["content"])]
    return text


def train_tokenizer(corpus: Iterable[str], *, vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Byte-level BPE over ``corpus``, as a ``Qwen2Tokenizer``; the added tokens (special,
    tags, :data:`NUMBER_TOKENS`) get the ids after the learned vocabulary.

    ``vocab_size`` bounds the 256 byte symbols plus the merges (the corpus may run out of
    merges first). Deterministic: the same corpus gives the same vocabulary and merges.
    """
    # Train with the very normalizer and pre-tokenizer Qwen2Tokenizer will load with.
    qwen = Qwen2Tokenizer(vocab={"!": 0}, merges=[]).backend_tokenizer
    tok = Tokenizer(models.BPE())
    tok.normalizer, tok.pre_tokenizer = qwen.normalizer, qwen.pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=sorted(_byte_alphabet()),
        show_progress=False,
    )
    # The trainer would merge across tag text, which encoding never sees: cut it out first
    # (digits are isolated by the pre-tokenizer, so the number tokens need no such care).
    pieces = (p for text in corpus for p in _ADDED.split(text) if p)
    tok.train_from_iterator(pieces, trainer)
    bpe = json.loads(tok.to_str())["model"]
    wrapped = Qwen2Tokenizer(
        vocab=bpe["vocab"],
        merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in bpe["merges"]],
        unk_token=None,
        eos_token=IM_END,
        pad_token=PAD,
        extra_special_tokens=[IM_START],
        chat_template=CHAT_TEMPLATE,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )
    added = TAG_TOKENS + NUMBER_TOKENS
    wrapped.add_tokens([AddedToken(t, special=False, normalized=False) for t in added])
    return wrapped


def _byte_alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.ByteLevel.alphabet()
