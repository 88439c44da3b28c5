"""The clipped policy-gradient loss and its aggregations (TRL's ``loss_type`` names).

Objective (GRPO, Shao et al. 2024): maximise
  E_t[ min(rho_t A, clip(rho_t, 1 - eps_low, 1 + eps_high) A) ] - beta KL_k3(pi || pi_ref)
with rho_t = pi(o_t) / pi_old(o_t). The aggregation over tokens is where the variants differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class LossAggregation:
    """A ``loss_type``: the weight of every token in the optimizer step's loss.

    Every aggregation is a weighted sum of the per-token losses, loss = sum_t w_t l_t, so it
    is defined by its weights: ``token_weights(mask, **ctx)`` gives the (b, T) weights of one
    micro-step's tokens (0 where ``mask`` is 0), with ``ctx`` the step's ``grad_accum``,
    ``max_completion_length`` and ``num_items_in_batch``. Weights, not a scalar, because the
    trainer may compute the step in other chunks than its micro-steps (token-budget
    micro-batches, packed rows): it fixes each token's weight from its micro-step first,
    and the chunks' weighted sums add up to the same loss and gradients.

    ``global_normaliser``: the weights already divide by a count over every rank (dapo:
    the tokens of all ranks). DDP averages gradients over ranks, so such a loss is
    multiplied by the world size (:meth:`rank_scale`) to stay a sum over the global batch;
    a per-rank normaliser (grpo, bnpo, dr_grpo) is completed by DDP's average itself.
    """

    token_weights: Callable[..., torch.Tensor]
    global_normaliser: bool = False

    def __call__(self, per_token: torch.Tensor, mask: torch.Tensor, **ctx: Any) -> torch.Tensor:
        """The loss of one micro-step: (b, T) per-token losses -> scalar."""
        return (per_token * self.token_weights(mask, **ctx)).sum()

    def rank_scale(self, world: int) -> int:
        return world if self.global_normaliser else 1


LOSS_AGGREGATIONS: dict[str, LossAggregation] = {}
Weights = Callable[..., torch.Tensor]


def register(name: str, *, global_normaliser: bool = False) -> Callable[[Weights], Weights]:
    def deco(fn: Weights) -> Weights:
        LOSS_AGGREGATIONS[name] = LossAggregation(fn, global_normaliser)
        return fn

    return deco


@register("grpo")
def grpo_weights(mask: torch.Tensor, *, grad_accum: int, **_: object) -> torch.Tensor:
    """Mean over each sequence's tokens, then over the micro-step's sequences (original
    GRPO): w = 1 / (|o_i| b grad_accum). Long completions get less weight per token, the
    length bias Dr. GRPO points out."""
    return mask / mask.sum(-1, keepdim=True).clamp(min=1) / (mask.shape[0] * grad_accum)


@register("bnpo")
def bnpo_weights(mask: torch.Tensor, *, grad_accum: int, **_: object) -> torch.Tensor:
    """Mean over all tokens of the micro-step (TRL's bnpo): w = 1 / (tokens grad_accum).
    The normaliser is the micro-step's (per_device_train_batch_size prompts), whatever
    chunks the computation runs in."""
    return mask / (mask.sum().clamp(min=1) * grad_accum)


@register("dr_grpo")
def dr_grpo_weights(
    mask: torch.Tensor, *, grad_accum: int, max_completion_length: int, **_: object
) -> torch.Tensor:
    """Sum over tokens divided by a constant b x max_completion_length: no length bias
    (Liu et al. 2025, Dr. GRPO)."""
    return mask / (mask.shape[0] * max_completion_length * grad_accum)


@register("dapo", global_normaliser=True)
def dapo_weights(mask: torch.Tensor, *, num_items_in_batch: int, **_: object) -> torch.Tensor:
    """Sum over tokens divided by the completion tokens of the whole optimizer step (all
    micro-steps, all ranks): every token weighs the same (Yu et al. 2025, DAPO token-level
    loss)."""
    return mask / max(num_items_in_batch, 1)


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
    token_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one micro-batch (already divided for gradient accumulation) and its metrics.

    GRPO's objective (Shao et al. 2024, arXiv:2402.03300, eq. 3), per completion token t:
        rho_t = exp(logprobs_t - old_logprobs_t)
        l_t = -min(rho_t A, clip(rho_t, 1 - epsilon, 1 + epsilon_high) A) + beta KL_t
        KL_t = exp(ref - logp) - (ref - logp) - 1   (k3, Schulman 2020)
    and loss = sum_t w_t l_t, w the ``LOSS_AGGREGATIONS[loss_type]`` weights over
    ``completion_mask`` (grpo, bnpo, dr_grpo, dapo: see each), or ``token_weights``.

    Shapes: logprobs, old_logprobs, ref_logprobs, completion_mask, token_weights: (b, T),
    b sequences of this micro-batch, T completion tokens; advantages: (b,). Returns the
    scalar loss and metrics ``clip_ratio`` (share of masked tokens the clip bound) and,
    when beta > 0, ``kl`` (masked mean of KL_t).

    ``use_bias_correction_kl`` weights the k3 term by pi/pi_old (TRL 1.16's default; the
    tutorial's TRL 0.14 used plain k3, r1zero's default).
    ``token_weights`` (b, T): these tokens' weights in the step
    (``LOSS_AGGREGATIONS[loss_type].token_weights`` over their micro-steps), when the rows
    are a chunk other than one micro-step; the loss is then their weighted sum."""
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
    if token_weights is None:
        loss = LOSS_AGGREGATIONS[loss_type](
            per_token,
            mask,
            grad_accum=grad_accum,
            max_completion_length=max_completion_length,
            num_items_in_batch=num_items_in_batch,
        )
    else:  # these tokens' weights in the step (a chunk other than one micro-step)
        loss = (per_token * token_weights).sum()
    metrics["clip_ratio"] = (
        (is_clipped.to(mask.dtype) * mask).sum() / mask.sum().clamp(min=1)
    ).item()
    return loss, metrics
