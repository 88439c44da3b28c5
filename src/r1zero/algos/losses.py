"""The clipped policy-gradient loss and its aggregations (TRL's ``loss_type`` names).

Objective (GRPO, Shao et al. 2024): maximise
  E_t[ min(rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A) ] - beta KL_k3(pi || pi_ref)
with rho_t = pi(o_t) / pi_old(o_t). The aggregation over tokens is where the variants differ.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from r1zero.algos.kl import kl_k3, kl_k3_bias_corrected


def clipped_surrogate(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    epsilon_low: float,
    epsilon_high: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token loss -min(rho A, clip(rho) A) and where clipping bound it.

    logprobs, old_logprobs: (B, T); advantages: (B,). Returns (B, T) loss, (B, T) bool.
    Asymmetric bounds are DAPO's clip-higher (Yu et al. 2025).
    """
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    adv = advantages.unsqueeze(-1)  # (B, 1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high) * adv
    is_clipped = ((ratio < 1 - epsilon_low) & (adv < 0)) | ((ratio > 1 + epsilon_high) & (adv > 0))
    return -torch.min(unclipped, clipped), is_clipped


Aggregation = Callable[..., torch.Tensor]
LOSS_AGGREGATIONS: dict[str, Aggregation] = {}


def register(name: str) -> Callable[[Aggregation], Aggregation]:
    def deco(fn: Aggregation) -> Aggregation:
        LOSS_AGGREGATIONS[name] = fn
        return fn

    return deco


@register("grpo")
def agg_grpo(
    per_token: torch.Tensor, mask: torch.Tensor, *, grad_accum: int, **_: object
) -> torch.Tensor:
    """Mean over each sequence's tokens, then over sequences (original GRPO); long
    completions get less weight per token, the length bias Dr. GRPO points out."""
    per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_seq.mean() / grad_accum


@register("bnpo")
def agg_bnpo(
    per_token: torch.Tensor, mask: torch.Tensor, *, grad_accum: int, **_: object
) -> torch.Tensor:
    """Mean over all tokens of the micro-batch (TRL's bnpo)."""
    return (per_token * mask).sum() / mask.sum().clamp(min=1) / grad_accum


@register("dr_grpo")
def agg_dr_grpo(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    *,
    grad_accum: int,
    max_completion_length: int,
    **_: object,
) -> torch.Tensor:
    """Sum over tokens divided by a constant B x max_completion_length: no length bias
    (Liu et al. 2025, Dr. GRPO)."""
    return (per_token * mask).sum() / (mask.shape[0] * max_completion_length) / grad_accum


@register("dapo")
def agg_dapo(
    per_token: torch.Tensor, mask: torch.Tensor, *, num_items_in_batch: int, **_: object
) -> torch.Tensor:
    """Sum over tokens divided by the completion tokens of the whole optimizer step
    (all micro-batches): every token weighs the same (Yu et al. 2025, DAPO token-level loss)."""
    return (per_token * mask).sum() / max(num_items_in_batch, 1)


def policy_loss(
    *,
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    loss_type: str,
    epsilon: float,
    epsilon_high: float | None,
    beta: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
    grad_accum: int = 1,
    max_completion_length: int = 1,
    num_items_in_batch: int = 1,
    use_bias_correction_kl: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one micro-batch (already divided for gradient accumulation) and its metrics.

    ``use_bias_correction_kl`` weights the k3 term by pi/pi_old (TRL 1.16's default; the
    tutorial's TRL 0.14 used plain k3, r1zero's default)."""
    mask = completion_mask.to(logprobs.dtype)
    per_token, is_clipped = clipped_surrogate(
        logprobs,
        old_logprobs,
        advantages,
        epsilon,
        epsilon if epsilon_high is None else epsilon_high,
    )
    metrics: dict[str, float] = {}
    if beta > 0:
        if ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs")
        if use_bias_correction_kl:
            kl = kl_k3_bias_corrected(logprobs, ref_logprobs, old_logprobs)
        else:
            kl = kl_k3(logprobs, ref_logprobs)
        per_token = per_token + beta * kl
        metrics["kl"] = ((kl * mask).sum() / mask.sum().clamp(min=1)).item()
    loss = LOSS_AGGREGATIONS[loss_type](
        per_token,
        mask,
        grad_accum=grad_accum,
        max_completion_length=max_completion_length,
        num_items_in_batch=num_items_in_batch,
    )
    metrics["clip_ratio"] = (
        (is_clipped.to(mask.dtype) * mask).sum() / mask.sum().clamp(min=1)
    ).item()
    return loss, metrics
