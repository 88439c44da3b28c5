"""Chunked log-probabilities equal the naive full-logits computation, values and gradients."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen2ForCausalLM

from helpers import random_qwen2
from r1zero.algos import selective_logprobs
from r1zero.train.update import MicroBatch, sequence_logprobs

B, T, H, V = 3, 7, 16, 50
TEMPERATURE = 0.7


def naive(hidden, weight, bias, targets, mask, temperature):
    logits = hidden @ weight.T
    if bias is not None:
        logits = logits + bias
    logp = torch.log_softmax(logits.float() / temperature, -1)  # (B, T, V)
    lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * mask
    ent = -(logp.exp() * logp).sum(-1) * mask
    return lp, ent


def inputs(bias: bool):
    torch.manual_seed(0)
    hidden = torch.randn(B, T, H, requires_grad=True)
    head = torch.nn.Linear(H, V, bias=bias)
    targets = torch.randint(0, V, (B, T))
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 5:] = 0  # a short row
    mask[2, :] = 0  # an empty row
    mask[2, 0] = 1
    return hidden, head, targets, mask


@pytest.mark.parametrize("chunk_size", [1, 3, 1024])
@pytest.mark.parametrize("bias", [False, True])
def test_selective_logprobs_equals_naive(chunk_size, bias):
    hidden, head, targets, mask = inputs(bias)
    lp, ent = selective_logprobs(
        hidden,
        head,
        targets,
        mask,
        temperature=TEMPERATURE,
        chunk_size=chunk_size,
        with_entropy=True,
    )
    ref_lp, ref_ent = naive(hidden, head.weight, head.bias, targets, mask, TEMPERATURE)
    torch.testing.assert_close(lp, ref_lp)
    torch.testing.assert_close(ent, ref_ent)
    assert (lp[mask == 0] == 0).all() and (ent[mask == 0] == 0).all()
    assert not ent.requires_grad

    # gradients through the checkpointed chunks equal the naive ones
    w = torch.randn(B, T)
    (lp * w).sum().backward()
    got = [hidden.grad.clone(), head.weight.grad.clone()]
    got += [head.bias.grad.clone()] if bias else []
    for t in [hidden, *head.parameters()]:
        t.grad = None
    ref_lp, _ = naive(hidden, head.weight, head.bias, targets, mask, TEMPERATURE)
    (ref_lp * w).sum().backward()
    want = [hidden.grad, head.weight.grad] + ([head.bias.grad] if bias else [])
    for g, r in zip(got, want, strict=True):
        torch.testing.assert_close(g, r)


def test_selective_logprobs_no_grad_and_empty():
    hidden, head, targets, mask = inputs(False)
    with torch.no_grad():
        lp, ent = selective_logprobs(hidden, head, targets, mask, chunk_size=2)
    ref_lp, _ = naive(hidden.detach(), head.weight.detach(), None, targets, mask, 1.0)
    torch.testing.assert_close(lp, ref_lp)
    assert ent is None
    lp, ent = selective_logprobs(hidden, head, targets, torch.zeros_like(mask), with_entropy=True)
    assert lp.shape == (B, T) and (lp == 0).all() and (ent == 0).all()
    # nothing to score (e.g. every completion truncated and masked): still on the graph, so
    # that backward runs (on every rank under DDP), with a zero gradient
    lp.sum().backward()
    assert hidden.grad is not None and (hidden.grad == 0).all()
    assert (head.weight.grad == 0).all()


# ---------------------------------------------------------------- through a real model

PAD = 0


@pytest.fixture(scope="module")
def qwen() -> Qwen2ForCausalLM:
    return random_qwen2(
        vocab=64, hidden=32, intermediate=64, layers=2, max_positions=128, tie_word_embeddings=True
    ).eval()


def padded_batch() -> tuple[MicroBatch, list[tuple[list[int], list[int]]]]:
    """Prompts of lengths 4, 2, 3 left-padded; completions of lengths 3, 5, 1 right-padded."""
    g = torch.Generator().manual_seed(1)
    seqs = [
        (torch.randint(1, 64, (p,), generator=g).tolist(), torch.randint(1, 64, (c,), generator=g).tolist())
        for p, c in [(4, 3), (2, 5), (3, 1)]
    ]  # fmt: skip
    P, C = 4, 5
    prompt_ids = torch.full((3, P), PAD)
    prompt_mask = torch.zeros(3, P, dtype=torch.long)
    completion_ids = torch.full((3, C), PAD)
    completion_mask = torch.zeros(3, C, dtype=torch.long)
    for i, (p, c) in enumerate(seqs):
        prompt_ids[i, P - len(p) :] = torch.tensor(p)
        prompt_mask[i, P - len(p) :] = 1
        completion_ids[i, : len(c)] = torch.tensor(c)
        completion_mask[i, : len(c)] = 1
    mb = MicroBatch(prompt_ids, prompt_mask, completion_ids, completion_mask, torch.arange(3))
    return mb, seqs


def test_sequence_logprobs_equals_naive(qwen):
    mb, seqs = padded_batch()
    lp, ent = sequence_logprobs(qwen, mb, temperature=TEMPERATURE, chunk_size=2, with_entropy=True)
    # naive: full logits of the padded batch, positions P-1 .. P+C-2 predict the completion
    input_ids = torch.cat([mb.prompt_ids, mb.completion_ids], 1)
    attn = torch.cat([mb.prompt_mask, mb.completion_mask], 1)
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = qwen(input_ids=input_ids, attention_mask=attn, position_ids=position_ids).logits
    P = mb.prompt_ids.shape[1]
    logp = torch.log_softmax(logits[:, P - 1 : -1].float() / TEMPERATURE, -1)
    ref = logp.gather(-1, mb.completion_ids.unsqueeze(-1)).squeeze(-1) * mb.completion_mask
    torch.testing.assert_close(lp.detach(), ref, atol=1e-5, rtol=1e-5)
    ref_ent = -(logp.exp() * logp).sum(-1) * mb.completion_mask
    torch.testing.assert_close(ent, ref_ent, atol=1e-5, rtol=1e-5)

    # and padding changes nothing: each row alone, unpadded, gives the same logprobs
    for i, (p, c) in enumerate(seqs):
        ids = torch.tensor([p + c])
        with torch.no_grad():
            alone = torch.log_softmax(qwen(input_ids=ids).logits[0].float() / TEMPERATURE, -1)
        want = alone[len(p) - 1 : -1].gather(-1, torch.tensor(c).unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(lp[i, : len(c)].detach(), want, atol=1e-5, rtol=1e-5)


def test_sequence_logprobs_gradient(qwen):
    mb, _ = padded_batch()
    lp, _ = sequence_logprobs(qwen, mb, temperature=1.0, chunk_size=3)
    lp.sum().backward()
    got = {n: p.grad.clone() for n, p in qwen.named_parameters()}
    qwen.zero_grad(set_to_none=True)
    input_ids = torch.cat([mb.prompt_ids, mb.completion_ids], 1)
    attn = torch.cat([mb.prompt_mask, mb.completion_mask], 1)
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    logits = qwen(input_ids=input_ids, attention_mask=attn, position_ids=position_ids).logits
    P = mb.prompt_ids.shape[1]
    logp = torch.log_softmax(logits[:, P - 1 : -1].float(), -1)
    ref = logp.gather(-1, mb.completion_ids.unsqueeze(-1)).squeeze(-1) * mb.completion_mask
    ref.sum().backward()
    for n, p in qwen.named_parameters():
        torch.testing.assert_close(got[n], p.grad, atol=1e-5, rtol=1e-4, msg=n)
    qwen.zero_grad(set_to_none=True)
