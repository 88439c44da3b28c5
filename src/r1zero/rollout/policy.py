"""The policy and its rollout: prompt rows in, sampled completions (tokens and text) out.

``rollout`` renders each row with the task's prompt template, left-pads the prompts,
samples ``num_generations`` completions per prompt with the policy's engine (groups
contiguous) and decodes them; training (train/experience.py) and evaluation
(evaluate.py) both call it, so the two sample from the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from r1zero.config import GRPOConfig
from r1zero.rollout.base import RolloutBatch, RolloutEngine, SamplingParams
from r1zero.task.prompts import PromptTemplate, render


@dataclass
class Policy:
    """The model being trained and what it needs to sample and score."""

    model: torch.nn.Module
    tokenizer: Any
    template: PromptTemplate
    engine: RolloutEngine
    device: torch.device
    eos_token_ids: tuple[int, ...]
    ref_model: torch.nn.Module | None = None


def tokenize_prompts(
    policy: Policy, rows: list[dict], max_prompt_length: int | None
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Render and left-pad prompts; keep the last ``max_prompt_length`` tokens (left truncation)."""
    texts = [render(policy.tokenizer, policy.template, r["nums"], r["target"]) for r in rows]
    enc = policy.tokenizer(texts, add_special_tokens=False)["input_ids"]
    if max_prompt_length:
        enc = [ids[-max_prompt_length:] for ids in enc]
    P = max(len(ids) for ids in enc)
    pad = policy.tokenizer.pad_token_id
    ids = torch.full((len(enc), P), pad, dtype=torch.long)
    mask = torch.zeros((len(enc), P), dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, P - len(e) :] = torch.tensor(e)
        mask[i, P - len(e) :] = 1
    return texts, ids.to(policy.device), mask.to(policy.device)


def decode_completions(tokenizer: Any, batch: RolloutBatch) -> list[str]:
    """Text the model wrote, without the stopping EOS token."""
    out = []
    for ids, n, trunc in zip(
        batch.completion_ids.tolist(),
        batch.completion_lengths.tolist(),
        batch.truncated.tolist(),
        strict=True,
    ):
        out.append(tokenizer.decode(ids[: n if trunc else n - 1], skip_special_tokens=False))
    return out


def sampling_params(cfg: GRPOConfig, policy: Policy, *, greedy: bool = False) -> SamplingParams:
    return SamplingParams(
        max_new_tokens=cfg.max_completion_length,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=cfg.top_k or 0,
        do_sample=not greedy,
        repetition_penalty=cfg.repetition_penalty,
        eos_token_ids=policy.eos_token_ids,
        pad_token_id=policy.tokenizer.pad_token_id,
    )


def rollout(
    policy: Policy, rows: list[dict], cfg: GRPOConfig, *, greedy: bool = False, n: int | None = None
) -> tuple[list[dict], list[str], RolloutBatch, list[str]]:
    """Sample ``n`` (default num_generations) completions per prompt row, groups contiguous."""
    n = n or cfg.num_generations
    texts, ids, mask = tokenize_prompts(policy, rows, cfg.max_prompt_length)
    ids, mask = ids.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)  # (N, P)
    batch = policy.engine.generate(
        policy.model, ids, mask, sampling_params(cfg, policy, greedy=greedy)
    )
    rep_rows = [r for r in rows for _ in range(n)]
    rep_texts = [t for t in texts for _ in range(n)]
    return rep_rows, rep_texts, batch, decode_completions(policy.tokenizer, batch)
