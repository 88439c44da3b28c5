"""Rollout -> rewards -> advantages: one step's experience, before any gradient.

``make_experience`` turns prompt rows into sampled completions, scores them with the
task's ``reward_funcs``, and attaches group advantages (and old/ref logprobs where the
loss needs them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from r1zero.algos import ADVANTAGES
from r1zero.algos.shaping import overlong_penalty
from r1zero.config import ConfigError, GRPOConfig
from r1zero.rollout import RolloutBatch, RolloutEngine, SamplingParams
from r1zero.task.prompts import PromptTemplate, render
from r1zero.task.rewards import combine


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


@dataclass
class Experience:
    rows: list[dict]  # (N,) one dataset row per completion, groups contiguous
    prompts: list[str]  # (N,)
    completions: list[str]  # (N,)
    batch: RolloutBatch
    rewards_per_func: dict[str, torch.Tensor]  # name -> (N,)
    rewards: torch.Tensor  # (N,) weighted sum (+ overlong shaping)
    advantages: torch.Tensor  # (N,)
    old_logprobs: torch.Tensor | None = None  # (N, C), when num_iterations > 1
    ref_logprobs: torch.Tensor | None = None  # (N, C), when beta > 0
    timings: dict[str, float] = field(default_factory=dict)


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


def score(
    reward_funcs: list[tuple[str, Callable]], completions: list[str], rows: list[dict]
) -> dict[str, torch.Tensor]:
    """Each reward function with TRL's signature: (completions, **dataset_columns).

    None (a function abstaining on a completion, TRL's convention) becomes NaN; a wrong
    number of rewards or a non-number is a one-line error naming the function (a
    ConfigError: the fix is in reward_funcs)."""
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return {
        name: _as_rewards(name, fn(completions, **columns), len(completions))
        for name, fn in reward_funcs
    }


def _as_rewards(name: str, values: Any, n: int) -> torch.Tensor:
    """(n,) float32 rewards from what a reward function returned; None -> NaN."""
    try:
        out = [math.nan if v is None else float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(
            f"reward function {name!r} must return a list of numbers or None, got {str(values)[:80]}"
        ) from None
    if len(out) != n:
        raise ConfigError(
            f"reward function {name!r} returned {len(out)} rewards for {n} completions"
        )
    return torch.tensor(out, dtype=torch.float32)


def make_experience(
    policy: Policy,
    rows: list[dict],
    cfg: GRPOConfig,
    reward_funcs: list[tuple[str, Callable]],
) -> Experience:
    t0 = time.perf_counter()
    rep_rows, prompts, batch, completions = rollout(policy, rows, cfg)
    t1 = time.perf_counter()
    per_func = score(reward_funcs, completions, rep_rows)
    rewards = torch.tensor(
        combine({k: v.tolist() for k, v in per_func.items()}, cfg.reward_weights)
    )
    if cfg.overlong_buffer_len > 0:
        rewards = rewards + overlong_penalty(
            batch.completion_lengths.cpu(),
            cfg.max_completion_length,
            cfg.overlong_buffer_len,
            cfg.overlong_penalty_factor,
        )
    advantages = ADVANTAGES[cfg.advantage_estimator](
        rewards, cfg.num_generations, scale_rewards=cfg.scale_rewards
    )
    t2 = time.perf_counter()
    return Experience(
        rep_rows,
        prompts,
        completions,
        batch,
        per_func,
        rewards,
        advantages,
        timings={"time/rollout": t1 - t0, "time/rewards": t2 - t1},
    )


def keep_groups(exp: Experience, keep: torch.Tensor, num_generations: int) -> Experience:
    """Sub-select whole groups (``keep``: (P,) bool), for DAPO's dynamic sampling."""
    idx = keep.repeat_interleave(num_generations).nonzero().squeeze(-1)
    il = idx.tolist()
    b = exp.batch
    dev = b.prompt_ids.device
    di = idx.to(dev)
    batch = RolloutBatch(
        b.prompt_ids[di],
        b.prompt_mask[di],
        b.completion_ids[di],
        b.completion_mask[di],
        b.truncated[di],
    )
    return Experience(
        [exp.rows[i] for i in il],
        [exp.prompts[i] for i in il],
        [exp.completions[i] for i in il],
        batch,
        {k: v[idx] for k, v in exp.rewards_per_func.items()},
        exp.rewards[idx],
        exp.advantages[idx],
        timings=dict(exp.timings),
    )


def concat(a: Experience, b: Experience, pad_token_id: int) -> Experience:
    """Join two experiences (prompt and completion widths padded to match)."""

    def pad(x: torch.Tensor, width: int, left: bool, value: int) -> torch.Tensor:
        extra = width - x.shape[1]
        if extra <= 0:
            return x
        fill = x.new_full((x.shape[0], extra), value)
        return torch.cat([fill, x] if left else [x, fill], 1)

    P = max(a.batch.prompt_ids.shape[1], b.batch.prompt_ids.shape[1])
    C = max(a.batch.completion_ids.shape[1], b.batch.completion_ids.shape[1])
    parts = [
        (
            pad(e.batch.prompt_ids, P, True, pad_token_id),
            pad(e.batch.prompt_mask, P, True, 0),
            pad(e.batch.completion_ids, C, False, pad_token_id),
            pad(e.batch.completion_mask, C, False, 0),
        )
        for e in (a, b)
    ]
    batch = RolloutBatch(
        *(torch.cat([parts[0][i], parts[1][i]]) for i in range(4)),
        torch.cat([a.batch.truncated, b.batch.truncated]),
    )
    timings = {k: a.timings.get(k, 0) + b.timings.get(k, 0) for k in a.timings | b.timings}
    return Experience(
        a.rows + b.rows,
        a.prompts + b.prompts,
        a.completions + b.completions,
        batch,
        {k: torch.cat([a.rewards_per_func[k], b.rewards_per_func[k]]) for k in a.rewards_per_func},
        torch.cat([a.rewards, b.rewards]),
        torch.cat([a.advantages, b.advantages]),
        timings=timings,
    )
