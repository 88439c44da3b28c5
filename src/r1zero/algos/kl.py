"""KL penalty against the reference policy."""

from __future__ import annotations

import torch


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || pi_ref): exp(q - p) - (q - p) - 1 with p = log pi,
    q = log pi_ref; unbiased, always >= 0 (Schulman 2020, "Approximating KL divergence";
    used by GRPO). Shapes: (B, T) -> (B, T)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1
