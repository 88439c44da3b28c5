"""Reward shaping applied on top of the task's rewards."""

from __future__ import annotations

import torch


def overlong_penalty(
    lengths: torch.Tensor, max_len: int, buffer_len: int, factor: float
) -> torch.Tensor:
    """DAPO's soft overlong punishment (Yu et al. 2025): 0 up to max_len - buffer_len, then
    falling linearly to -factor at max_len. lengths: (N,) -> (N,)."""
    over = (lengths.float() - (max_len - buffer_len)).clamp(min=0) / buffer_len
    return -factor * over.clamp(max=1.0)
