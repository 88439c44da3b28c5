"""Per-token log-probabilities of chosen tokens, computed in chunks.

A 151,936-token vocabulary makes the full [B, T, V] float32 logits of a long batch
tens of GB. We run the model's backbone to hidden states, keep only the positions
that predict completion tokens, and apply the LM head chunk by chunk under
activation checkpointing: at most ``chunk_size x V`` logits exist at any time, in
the forward and in the backward pass.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint


def _chunk_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    logits = torch.nn.functional.linear(hidden, weight, bias).float() / temperature  # (n, V)
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


@torch.no_grad()
def _chunk_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, temperature: float
) -> torch.Tensor:
    logp = torch.log_softmax(
        torch.nn.functional.linear(hidden, weight, bias).float() / temperature, dim=-1
    )
    return -(logp.exp() * logp).sum(-1)


def selective_logprobs(
    hidden: torch.Tensor,
    lm_head: torch.nn.Module,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(targets) for the positions where ``mask`` is 1.

    hidden: (B, T, H) states whose position t predicts ``targets[:, t]``; targets, mask: (B, T).
    Returns logprobs (B, T) (0 where masked) and, if asked, entropies (B, T) without grad.
    Logits are divided by ``temperature`` so that they match the sampling distribution (as TRL).
    """
    B, T = targets.shape
    sel = mask.bool()
    h = hidden[sel]  # (N, H) only real completion positions: padding-free
    tgt = targets[sel]  # (N,)
    weight, bias = lm_head.weight, getattr(lm_head, "bias", None)
    pieces, ents = [], []
    for s in range(0, h.shape[0], chunk_size):
        hc, tc = h[s : s + chunk_size], tgt[s : s + chunk_size]
        if torch.is_grad_enabled() and hc.requires_grad:
            pieces.append(
                checkpoint(_chunk_logprobs, hc, weight, bias, tc, temperature, use_reentrant=False)
            )
        else:
            pieces.append(_chunk_logprobs(hc, weight, bias, tc, temperature))
        if with_entropy:
            ents.append(_chunk_entropy(hc.detach(), weight, bias, temperature))
    flat = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
    out = hidden.new_zeros(B, T, dtype=torch.float32).masked_scatter(sel, flat)
    if not pieces and torch.is_grad_enabled() and hidden.requires_grad:
        # Nothing to score (every completion masked, e.g. all truncated with
        # mask_truncated_completions): stay on the graph with a zero gradient, so that
        # backward, and DDP's gradient sync on every rank, still run.
        one = _chunk_logprobs(
            hidden.reshape(-1, hidden.shape[-1])[:1],
            weight,
            bias,
            targets.reshape(-1)[:1],
            temperature,
        )
        out = out + 0.0 * one.sum()
    ent = None
    if with_entropy:
        flat_e = torch.cat(ents) if ents else hidden.new_zeros(0, dtype=torch.float32)
        ent = hidden.new_zeros(B, T, dtype=torch.float32).masked_scatter(sel, flat_e)
    return out, ent
