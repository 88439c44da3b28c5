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


def nanstd(x: torch.Tensor, dim: int | None = None, keepdim: bool = False) -> torch.Tensor:
    """Unbiased std over the non-NaN entries (TRL's ``nanstd``): NaN where fewer than two."""
    if dim is None:
        x, dim = x.reshape(-1), 0
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    count = (~torch.isnan(x)).sum(dim=dim, keepdim=keepdim)
    var = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=keepdim) * count / (count - 1)
    return var.sqrt()


def _no_nan(adv: torch.Tensor) -> torch.Tensor:
    """A NaN reward (every reward function abstained) carries no signal: advantage 0, as TRL."""
    return torch.nan_to_num(adv, nan=0.0).reshape(-1)


@register("grpo")
def grpo_advantages(
    rewards: torch.Tensor, num_generations: int, *, scale_rewards: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """A_i = (r_i - mean(r_group)) / (std + eps), GRPO (Shao et al. 2024, DeepSeekMath).

    ``scale_rewards`` (TRL's names): ``group`` divides by the group's std, ``batch`` by the
    std of all rewards (Hu et al., REINFORCE++), ``none`` not at all (= dr_grpo). Std is
    unbiased, as in TRL. NaN rewards are left out of the means and stds (nanmean/nanstd)
    and get advantage 0, so an unscorable completion neither moves its group's baseline
    nor the policy (TRL >= 0.16).
    """
    r = _groups(rewards, num_generations)
    adv = r - torch.nanmean(r, dim=1, keepdim=True)  # (P, G)
    if scale_rewards == "group":
        adv = adv / (nanstd(r, dim=1, keepdim=True) + eps)
    elif scale_rewards == "batch":
        adv = adv / (nanstd(rewards) + eps)
    elif scale_rewards != "none":
        raise ValueError(f"scale_rewards must be group, batch or none, got {scale_rewards!r}")
    return _no_nan(adv)


@register("dr_grpo")
def dr_grpo_advantages(rewards: torch.Tensor, num_generations: int, **_: object) -> torch.Tensor:
    """A_i = r_i - mean(r_group): no std division, which biases towards easy/hard groups
    (Liu et al. 2025, "Understanding R1-Zero-Like Training", Dr. GRPO). NaN as in grpo."""
    r = _groups(rewards, num_generations)
    return _no_nan(r - torch.nanmean(r, dim=1, keepdim=True))


@register("rloo")
def rloo_advantages(rewards: torch.Tensor, num_generations: int, **_: object) -> torch.Tensor:
    """A_i = r_i - mean_{j != i} r_j = G/(G-1) (r_i - mean): leave-one-out baseline
    (Ahmadian et al. 2024, "Back to Basics: REINFORCE Style Optimization"). NaN rewards
    are left out of every baseline (the mean over the group's other scored completions)
    and get advantage 0; so does a completion that is its group's only scored one."""
    r = _groups(rewards, num_generations)
    scored = (~torch.isnan(r)).sum(dim=1, keepdim=True)
    baseline = (torch.nansum(r, dim=1, keepdim=True) - r) / (scored - 1)
    return _no_nan(r - baseline)


def _scored_range(rewards: torch.Tensor, num_generations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per group, the largest and smallest scored (non-NaN) reward; -inf / inf if none."""
    r = _groups(rewards, num_generations)
    high = r.nan_to_num(nan=-torch.inf).max(dim=1).values
    return high, r.nan_to_num(nan=torch.inf).min(dim=1).values


def informative_groups(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """(P,) bool: at least two different scored rewards, the only groups whose advantages are
    not all 0 (DAPO's dynamic sampling keeps these; NaN rewards do not count)."""
    high, low = _scored_range(rewards, num_generations)
    return high > low


def zero_std_fraction(rewards: torch.Tensor, num_generations: int) -> float:
    """Fraction of groups whose scored (non-NaN) rewards are all equal: they carry no GRPO
    signal. A group with no scored reward does not count (TRL: its std is NaN, not 0)."""
    high, low = _scored_range(rewards, num_generations)
    return (high == low).float().mean().item()
