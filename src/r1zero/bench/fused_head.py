"""A candidate LM-head log-prob kernel, timed against ``selective_logprobs`` by ``--sections head``.

Same result as :func:`r1zero.algos.selective_logprobs` (chunks of ``chunk_size`` tokens, logits
recomputed in backward), but one autograd function per chunk instead of activation
checkpointing: the forward keeps only the log-sum-exp (n,), the backward writes the logits'
gradient (onehot - softmax) / T in place, and the entropy comes from the same logits as the
log-prob instead of a second head product. Fewer passes over the (n, V) float32 logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _logits(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, temperature: float
):
    x = F.linear(hidden, weight, bias)
    x = x.to(torch.promote_types(x.dtype, torch.float32))  # (n, V), at least float32
    return x.div_(temperature) if temperature != 1.0 else x


class HeadLogprobs(torch.autograd.Function):
    """(n, H) hidden, (V, H) weight, (n,) targets -> (n,) log pi(target), (n,) entropy or None."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, temperature: float, with_entropy: bool):
        logits = _logits(hidden, weight, bias, temperature)
        lse = torch.logsumexp(logits, -1)  # (n,)
        logp = logits.gather(-1, targets[:, None]).squeeze(-1) - lse
        ent = None
        if with_entropy:  # H = lse - sum_v p_v z_v
            ent = lse - (torch.softmax(logits, -1) * logits).sum(-1)
            ctx.mark_non_differentiable(ent)
        ctx.save_for_backward(hidden, weight, bias, targets, lse)
        ctx.temperature = temperature
        return logp, ent

    @staticmethod
    def backward(ctx, grad_logp, grad_ent):
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        T = ctx.temperature
        g = _logits(hidden, weight, bias, T).sub_(lse[:, None]).exp_()  # softmax (n, V)
        g.mul_(-grad_logp[:, None]).scatter_add_(-1, targets[:, None], grad_logp[:, None])
        if T != 1.0:
            g.div_(T)
        g = g.to(hidden.dtype)
        gh = g @ weight if ctx.needs_input_grad[0] else None
        gw = g.t() @ hidden if ctx.needs_input_grad[1] else None
        gb = g.sum(0) if bias is not None and ctx.needs_input_grad[2] else None
        return gh, gw, gb, None, None, None


def fused_selective_logprobs(
    hidden: torch.Tensor,
    lm_head: torch.nn.Module,
    targets: torch.Tensor,
    mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    chunk_size: int = 1024,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Drop-in for ``selective_logprobs``: (B, T) logprobs and, if asked, entropies."""
    B, T = targets.shape
    sel = mask.bool()
    h, tgt = hidden[sel], targets[sel]  # (N, H), (N,)
    weight, bias = lm_head.weight, getattr(lm_head, "bias", None)
    pieces, ents = [], []
    for s in range(0, h.shape[0], chunk_size):
        lp, ent = HeadLogprobs.apply(
            h[s : s + chunk_size], weight, bias, tgt[s : s + chunk_size], temperature, with_entropy
        )
        pieces.append(lp)
        ents.append(ent)
    out = hidden.new_zeros(B, T, dtype=torch.float32).masked_scatter(sel, torch.cat(pieces).float())
    if not with_entropy:
        return out, None
    return out, hidden.new_zeros(B, T, dtype=torch.float32).masked_scatter(
        sel, torch.cat(ents).float()
    )
