"""KL penalty against the reference policy."""

from __future__ import annotations

import torch


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || pi_ref): exp(q - p) - (q - p) - 1 with p = log pi,
    q = log pi_ref; unbiased, always >= 0 (Schulman 2020, "Approximating KL divergence";
    used by GRPO). Shapes: (B, T) -> (B, T)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1


def kl_k3_bias_corrected(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, old_logprobs: torch.Tensor
) -> torch.Tensor:
    """k3 times the importance ratio pi/pi_old (TRL >= 1.x ``use_bias_correction_kl``).

    The completions were sampled from pi_old, so k3 averaged over them estimates
    KL(pi_old || pi_ref); weighting each token by rho = pi/pi_old makes it an estimate of
    KL(pi || pi_ref) again. rho is differentiable: even on-policy (rho = 1 in value) the
    gradient gains k3 * grad log pi, so the gradient differs from plain k3's.
    Shapes: (B, T) -> (B, T)."""
    return kl_k3(logprobs, ref_logprobs) * torch.exp(logprobs - old_logprobs)
