"""Level 2 of the TRL differential test: real models, both libraries' own log-prob kernels.

Old and reference log-probs at the initial weights, then (off-policy) every weight moved as
after some updates, then loss and every weight's gradient over the micro-batches. Both sides
keep log-probs in float32, so these agree to float32 rounding (level 1 in trl_parity.py
checks the loss math itself in float64).
"""

from __future__ import annotations

import torch

from r1zero.rollout import RolloutBatch
from r1zero.train.update import (
    LogprobModel,
    MicroBatch,
    accumulate_gradients,
    frozen_logprobs,
    loss_mask,
    reference_logprobs,
    sequence_logprobs,
)
from trl_parity import (
    MAX_C,
    TEMPERATURE,
    Case,
    Harness,
    N,
    _micro_inputs,
    micro_slices,
    r1zero_config,
    rel_diff,
    trl_experience,
)


def perturb(model: torch.nn.Module, seed: int = 1, scale: float = 0.3) -> None:
    """Move every weight by scale x its std (seeded by name): the policy after some updates."""
    with torch.no_grad():
        for i, (_, p) in enumerate(sorted(model.named_parameters())):
            g = torch.Generator().manual_seed(seed * 1000 + i)
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale * (p.std() + 1e-3))


def trl_end_to_end(h: Harness, case: Case) -> dict:
    """Old/ref log-probs at the initial weights, then loss and weight gradients after a move."""
    out = trl_experience(h, case)
    t = h.trainer
    if case.off_policy:
        perturb(t.model)
    t.model.zero_grad(set_to_none=True)
    total = 0.0
    for sl in micro_slices(case):
        loss = t.compute_loss(t.model, _micro_inputs(out, sl))
        loss.backward()
        total += loss.item()
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
    with torch.no_grad():
        live, ent, _ = t._get_per_token_logps_and_entropies(
            t.model, ids, mask, MAX_C, compute_entropy=True
        )
    grads = {n: p.grad.detach().clone() for n, p in t.model.named_parameters()}
    return {"out": out, "loss": total, "grads": grads, "live": live, "entropy": ent}


def r1zero_end_to_end(h: Harness, case: Case, batch: RolloutBatch, advantages) -> dict:
    cfg = r1zero_config(case)
    model = h.model
    model.load_state_dict(h.initial)
    micro = N // case.grad_accum
    old = frozen_logprobs(model, batch, cfg, micro) if case.off_policy else None
    ref = reference_logprobs(model, h.ref_model, batch, cfg, micro) if case.beta > 0 else None
    if case.off_policy:
        perturb(model)
    model.zero_grad(set_to_none=True)
    scorer = LogprobModel(model, TEMPERATURE, cfg.logprob_chunk_size)
    metrics = accumulate_gradients(
        scorer,
        batch,
        advantages,
        cfg,
        micro_size=micro,
        old_logprobs=old,
        ref_logprobs=ref,
        num_items_in_batch=int(loss_mask(batch, cfg).sum()),
    )
    live, ent = live_logprobs(model, batch, TEMPERATURE)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return {
        "loss": metrics["loss"],
        "grads": grads,
        "old": old,
        "ref": ref,
        "live": live,
        "entropy": ent,
        "metrics": metrics,
    }


def live_logprobs(model: torch.nn.Module, batch: RolloutBatch, temperature: float):
    """r1zero's log-probs and entropies of the whole batch in the generation layout."""
    mb = MicroBatch(
        batch.prompt_ids,
        batch.prompt_mask,
        batch.completion_ids,
        batch.completion_mask,
        torch.arange(N),
    )
    return sequence_logprobs(model, mb, temperature=temperature, chunk_size=1024, with_entropy=True)


def grad_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(rel_diff(a[k], b[k]) for k in b)
