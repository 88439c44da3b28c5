"""Advantage estimators for group-sampled completions.

All take ``rewards`` of shape (N,) ordered group by group (N = prompts x G, the G
completions of a prompt contiguous) and return advantages of shape (N,).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

AdvantageFn = Callable[..., torch.Tensor]
ADVANTAGES: dict[str, AdvantageFn] = {}


def register(name: str) -> Callable[[AdvantageFn], AdvantageFn]:
    def deco(fn: AdvantageFn) -> AdvantageFn:
        ADVANTAGES[name] = fn
        return fn

    return deco


def _groups(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    if rewards.numel() % num_generations:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {num_generations}")
    return rewards.view(-1, num_generations)  # (P, G)


@register("grpo")
def grpo_advantages(
    rewards: torch.Tensor, num_generations: int, *, scale_rewards: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """A_i = (r_i - mean(r_group)) / (std + eps), GRPO (Shao et al. 2024, DeepSeekMath).

    ``scale_rewards`` (TRL's names): ``group`` divides by the group's std, ``batch`` by the
    std of all rewards (Hu et al., REINFORCE++), ``none`` not at all (= dr_grpo). Std is
    unbiased, as in TRL.
    """
    r = _groups(rewards, num_generations)
    adv = r - r.mean(dim=1, keepdim=True)  # (P, G)
    if scale_rewards == "group":
        adv = adv / (r.std(dim=1, keepdim=True) + eps)
    elif scale_rewards == "batch":
        adv = adv / (rewards.std() + eps)
    elif scale_rewards != "none":
        raise ValueError(f"scale_rewards must be group, batch or none, got {scale_rewards!r}")
    return adv.reshape(-1)


@register("dr_grpo")
def dr_grpo_advantages(rewards: torch.Tensor, num_generations: int, **_: object) -> torch.Tensor:
    """A_i = r_i - mean(r_group): no std division, which biases towards easy/hard groups
    (Liu et al. 2025, "Understanding R1-Zero-Like Training", Dr. GRPO)."""
    r = _groups(rewards, num_generations)
    return (r - r.mean(dim=1, keepdim=True)).reshape(-1)


@register("rloo")
def rloo_advantages(rewards: torch.Tensor, num_generations: int, **_: object) -> torch.Tensor:
    """A_i = r_i - mean_{j != i} r_j = G/(G-1) (r_i - mean): leave-one-out baseline
    (Ahmadian et al. 2024, "Back to Basics: REINFORCE Style Optimization")."""
    r = _groups(rewards, num_generations)
    g = num_generations
    baseline = (r.sum(dim=1, keepdim=True) - r) / (g - 1)
    return (r - baseline).reshape(-1)


def zero_std_fraction(rewards: torch.Tensor, num_generations: int) -> float:
    """Fraction of groups whose rewards are all equal: they carry no GRPO signal."""
    r = _groups(rewards, num_generations)
    return (r.max(dim=1).values == r.min(dim=1).values).float().mean().item()
