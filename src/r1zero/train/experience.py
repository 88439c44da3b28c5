"""Rollout -> rewards -> advantages: one step's experience, before any gradient.

``make_experience`` turns prompt rows into sampled completions, scores them with the
task's ``reward_funcs``, and attaches group advantages (and old/ref logprobs where the
loss needs them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from r1zero.algos import ADVANTAGES
from r1zero.algos.shaping import overlong_penalty
from r1zero.config import GRPOConfig
from r1zero.rollout import RolloutBatch
from r1zero.rollout.policy import Policy, rollout
from r1zero.task.rewards import combine, score


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
        rows=rep_rows,
        prompts=prompts,
        completions=completions,
        batch=batch,
        rewards_per_func=per_func,
        rewards=rewards,
        advantages=advantages,
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
        prompt_ids=b.prompt_ids[di],
        prompt_mask=b.prompt_mask[di],
        completion_ids=b.completion_ids[di],
        completion_mask=b.completion_mask[di],
        truncated=b.truncated[di],
    )
    return Experience(
        rows=[exp.rows[i] for i in il],
        prompts=[exp.prompts[i] for i in il],
        completions=[exp.completions[i] for i in il],
        batch=batch,
        rewards_per_func={k: v[idx] for k, v in exp.rewards_per_func.items()},
        rewards=exp.rewards[idx],
        advantages=exp.advantages[idx],
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
        rows=a.rows + b.rows,
        prompts=a.prompts + b.prompts,
        completions=a.completions + b.completions,
        batch=batch,
        rewards_per_func={
            k: torch.cat([a.rewards_per_func[k], b.rewards_per_func[k]]) for k in a.rewards_per_func
        },
        rewards=torch.cat([a.rewards, b.rewards]),
        advantages=torch.cat([a.advantages, b.advantages]),
        timings=timings,
    )
