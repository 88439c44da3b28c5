"""A task: its reward functions and the metrics it reads off their rewards.

The trainer scores completions with ``task.reward_funcs`` and logs
``task.metrics_of(rewards_per_func)`` without knowing any reward's name, so another
task (a different puzzle, math with a verifier) brings its own rewards and metrics
and the trainer does not change (nanochat's tasks; verl's trainer, by contrast,
branches on names around its own registry).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from r1zero.task.rewards import load_reward_funcs

RewardFunc = Callable[..., list]
Metric = Callable[[dict[str, torch.Tensor]], float | None]
"""Per-function rewards (name -> (N,)) -> one number, or None when it does not apply."""


@dataclass(frozen=True)
class Task:
    name: str
    reward_funcs: list[tuple[str, RewardFunc]]
    metrics: dict[str, Metric] = field(default_factory=dict)

    def metrics_of(self, rewards_per_func: dict[str, torch.Tensor]) -> dict[str, float]:
        """The task's metrics of one batch; a metric whose reward the run omits is left out."""
        out = {}
        for name, metric in self.metrics.items():
            value = metric(rewards_per_func)
            if value is not None:
                out[name] = float(value)
        return out


def solved_rate(reward: str) -> Metric:
    """Share of completions earning the whole of ``reward`` (>= 1; NaN, abstained, counts
    as not earned); None when the run does not use that reward."""

    def rate(rewards_per_func: dict[str, torch.Tensor]) -> float | None:
        r = rewards_per_func.get(reward)
        return None if r is None else (r >= 1).float().mean().item()

    return rate


COUNTDOWN_METRICS: dict[str, Metric] = {
    "accuracy": solved_rate("equation"),  # the answer's equation reaches the target
    "format_rate": solved_rate("format"),  # <think>...</think>\n<answer>...</answer>
}
"""The names the report, the live display and docs read: keep them."""


def countdown(reward_funcs: list[str]) -> Task:
    """Countdown with the configured ``reward_funcs`` (builtin names, "pkg.mod:fn" or
    "file.py:fn"; ValueError in one line for one that is not found)."""
    return Task("countdown", load_reward_funcs(reward_funcs), COUNTDOWN_METRICS)
