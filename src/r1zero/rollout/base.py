"""The rollout interface: prompts in, sampled completions and their masks out.

Every engine (HF ``generate``, the fast static-cache engine) takes the same
:class:`SamplingParams` and returns the same :class:`RolloutBatch`, so the trainer
never knows which one ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 disables top-k."""
    do_sample: bool = True
    eos_token_ids: tuple[int, ...] = ()
    pad_token_id: int = 0
    ignore_eos: bool = False
    """Force every completion to ``max_new_tokens`` (benchmarks)."""
    repetition_penalty: float = 1.0
    """TRL's key; 1.0 (none) samples softmax(logits / temperature), the distribution the
    loss scores. Only the ``hf`` engines apply other values."""


@dataclass
class RolloutBatch:
    prompt_ids: torch.Tensor  # (B, P) left-padded
    prompt_mask: torch.Tensor  # (B, P) 1 on real prompt tokens
    completion_ids: torch.Tensor  # (B, C) right-padded with pad_token_id
    completion_mask: torch.Tensor  # (B, C) 1 up to and including the first EOS
    truncated: torch.Tensor  # (B,) bool: no EOS within max_new_tokens

    @property
    def completion_lengths(self) -> torch.Tensor:  # (B,)
        return self.completion_mask.sum(-1)


class RolloutEngine(Protocol):
    """Generates completions with the training model's own weights (no copy, no reload)."""

    def generate(
        self,
        model: torch.nn.Module,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        params: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> RolloutBatch: ...


def completion_mask_from_ids(
    completion_ids: torch.Tensor, eos_token_ids: tuple[int, ...], ignore_eos: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask up to and including the first EOS; also return which rows never hit EOS.

    (B, C) ids -> (B, C) int mask, (B,) bool truncated.
    """
    B, C = completion_ids.shape
    if ignore_eos or not eos_token_ids:
        return torch.ones_like(completion_ids), torch.ones(
            B, dtype=torch.bool, device=completion_ids.device
        )
    is_eos = torch.isin(completion_ids, torch.tensor(eos_token_ids, device=completion_ids.device))
    has_eos = is_eos.any(-1)
    first = torch.where(
        has_eos, is_eos.int().argmax(-1), torch.full_like(has_eos, C, dtype=torch.long)
    )
    idx = torch.arange(C, device=completion_ids.device).expand(B, C)
    mask = (idx <= first.unsqueeze(-1)).long()
    return mask, ~has_eos
