"""Token-budget and packed forward passes give the same loss and gradients as fixed slices.

The reference below is the update as it was before token budgets existed: consecutive
micro-batches of ``micro_size`` sequences in the generation layout, each aggregated by its
``loss_type`` with ``grad_accum`` micro-batches (and dapo multiplied by the world size).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from helpers import random_qwen2
from r1zero.algos import LOSS_AGGREGATIONS, policy_loss
from r1zero.config import GRPOConfig
from r1zero.rollout import RolloutBatch
from r1zero.train.batching import even_out, plan_chunks, token_budget_groups
from r1zero.train.update import (
    LogprobModel,
    MicroBatch,
    accumulate_gradients,
    frozen_logprobs,
    loss_mask,
    sequence_logprobs,
)

V, MAX_C = 64, 200
PROMPT_LENS = [3, 9, 5, 1, 7, 4, 8, 2, 6, 9, 3, 5]
COMPLETION_LENS = [1, 200, 17, 200, 64, 2, 133, 9, 200, 45, 1, 99]  # 200: truncated
LAYOUTS = {
    "dynamic": {"use_dynamic_bsz": True, "ppo_max_token_len_per_gpu": 420},
    "packed": {"padding_free": True, "ppo_max_token_len_per_gpu": 420},
    "one_pass": {"use_dynamic_bsz": True, "ppo_max_token_len_per_gpu": 10**6},
    "tiny_budget": {"use_dynamic_bsz": True, "ppo_max_token_len_per_gpu": 1},
}


@pytest.fixture(scope="module")
def model():
    return random_qwen2(vocab=V, hidden=32, intermediate=64, layers=2, max_positions=256)


def ragged_batch() -> RolloutBatch:
    """12 sequences: prompts of 1-9 tokens left-padded, completions of 1-200 right-padded."""
    g = torch.Generator().manual_seed(3)
    N, P = len(PROMPT_LENS), max(PROMPT_LENS)
    prompt_ids = torch.zeros(N, P, dtype=torch.long)
    prompt_mask = torch.zeros(N, P, dtype=torch.long)
    completion_ids = torch.zeros(N, MAX_C, dtype=torch.long)
    completion_mask = torch.zeros(N, MAX_C, dtype=torch.long)
    for i, (p, c) in enumerate(zip(PROMPT_LENS, COMPLETION_LENS, strict=True)):
        prompt_ids[i, P - p :] = torch.randint(1, V, (p,), generator=g)
        prompt_mask[i, P - p :] = 1
        completion_ids[i, :c] = torch.randint(1, V, (c,), generator=g)
        completion_mask[i, :c] = 1
    truncated = torch.tensor(COMPLETION_LENS) == MAX_C
    return RolloutBatch(prompt_ids, prompt_mask, completion_ids, completion_mask, truncated)


def cfg_for(loss_type: str, **over) -> GRPOConfig:
    return GRPOConfig(
        loss_type=loss_type,
        num_generations=4,
        max_completion_length=MAX_C,
        beta=0.04,
        epsilon_high=0.28,
        **over,
    )


def reference_update(model, batch, adv, cfg, micro_size, old, ref, world=1):
    """The update before token budgets: fixed micro-batches, per-micro-batch aggregation."""
    mask = loss_mask(batch, cfg)
    num_items = int(mask.sum()) * world
    N = batch.prompt_ids.shape[0]
    n_micro = -(-N // micro_size)
    total = 0.0
    for s in range(0, N, micro_size):
        sl = slice(s, s + micro_size)
        c1 = int(batch.completion_mask[sl].sum(-1).max())
        idx = torch.arange(s, min(s + micro_size, N))
        mb = MicroBatch(
            batch.prompt_ids[sl],
            batch.prompt_mask[sl],
            batch.completion_ids[sl, :c1],
            mask[sl, :c1],
            idx,
        )
        lp, _ = sequence_logprobs(model, mb, temperature=cfg.temperature, chunk_size=64)
        loss, _ = policy_loss(
            logprobs=lp,
            old_logprobs=old[idx, :c1],
            advantages=adv[idx],
            completion_mask=mb.completion_mask,
            loss_type=cfg.loss_type,
            epsilon=cfg.epsilon,
            epsilon_high=cfg.epsilon_high,
            beta=cfg.beta,
            ref_logprobs=ref[idx, :c1],
            grad_accum=n_micro,
            max_completion_length=cfg.max_completion_length,
            num_items_in_batch=num_items,
        )
        scale = world if cfg.loss_type == "dapo" else 1
        (loss * scale).backward()
        total += loss.item() * scale
    return total


def grads(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return out


def frozen_inputs(model, batch):
    """Old and reference log-probs a little off the policy's, so that ratios and KL move."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        lp = frozen_logprobs(model, batch, cfg_for("grpo"), 4)
    old = lp + 0.05 * torch.randn(lp.shape, generator=g) * batch.completion_mask
    ref = lp + 0.1 * torch.randn(lp.shape, generator=g) * batch.completion_mask
    adv = torch.randn(batch.prompt_ids.shape[0], generator=g)
    return old, ref, adv


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("loss_type", sorted(LOSS_AGGREGATIONS))
@pytest.mark.parametrize("mask_truncated", [False, True])
def test_same_loss_and_gradients_as_fixed_micro_batches(model, layout, loss_type, mask_truncated):
    if layout in ("one_pass", "tiny_budget") and mask_truncated:
        pytest.skip("the budget extremes run once, on the plain mask")
    batch = ragged_batch()
    old, ref, adv = frozen_inputs(model, batch)
    base = cfg_for(loss_type, mask_truncated_completions=mask_truncated)
    want = reference_update(model, batch, adv, base, 4, old, ref)  # 3 micro-batches of 4
    want_grads = grads(model)

    cfg = cfg_for(loss_type, mask_truncated_completions=mask_truncated, **LAYOUTS[layout])
    scorer = LogprobModel(model, cfg.temperature, 64)
    num_items = int(loss_mask(batch, cfg).sum())
    metrics = accumulate_gradients(
        scorer, batch, adv, cfg, micro_size=4, old_logprobs=old, ref_logprobs=ref,
        num_items_in_batch=num_items,
    )  # fmt: skip
    got_grads = grads(model)
    assert metrics["loss"] == pytest.approx(want, rel=1e-5, abs=1e-7)
    assert any(g.abs().sum() > 0 for g in want_grads.values())
    for n, g in want_grads.items():
        torch.testing.assert_close(got_grads[n], g, rtol=1e-4, atol=1e-7, msg=n)


def test_the_reference_would_see_a_different_split(model):
    """The check above can fail: bnpo over other micro-steps gives another loss."""
    batch = ragged_batch()
    old, ref, adv = frozen_inputs(model, batch)
    cfg = cfg_for("bnpo")
    a = reference_update(model, batch, adv, cfg, 4, old, ref)
    b = reference_update(model, batch, adv, cfg, 6, old, ref)
    model.zero_grad(set_to_none=True)
    assert abs(a - b) > 1e-4


@pytest.mark.parametrize("layout", ["dynamic", "packed"])
def test_frozen_logprobs_equal_fixed(model, layout):
    batch = ragged_batch()
    want = frozen_logprobs(model, batch, cfg_for("dapo"), 4)
    got = frozen_logprobs(model, batch, cfg_for("dapo", **LAYOUTS[layout]), 4)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (got[batch.completion_mask == 0] == 0).all()


def test_passes_respect_the_budget_and_cover_each_row_once():
    batch = ragged_batch()
    mask = batch.completion_mask
    lengths = (batch.prompt_mask.sum(-1) + mask.sum(-1)).tolist()
    for packed in (False, True):
        chunks = plan_chunks(batch, mask, micro_size=4, max_tokens=420, packed=packed)
        rows = sorted(r for ch in chunks for r in ch.rows.tolist())
        assert rows == list(range(len(lengths)))
        for ch in chunks:
            assert ch.tokens <= 420 or len(ch.rows) == 1
            assert (ch.input_ids.shape[0] == 1) == packed
        padded = sum(ch.tokens for ch in chunks)
        if packed:
            assert padded == sum(lengths)
        else:  # lengths sorted into alike groups: well below 12 rows x the longest
            assert padded < 0.8 * 12 * max(lengths)


def test_masked_rows_are_left_out_and_ranks_even_out():
    batch = ragged_batch()
    mask = loss_mask(batch, cfg_for("dapo", mask_truncated_completions=True))
    chunks = plan_chunks(batch, mask, micro_size=4, max_tokens=10**6, packed=False)
    assert len(chunks) == 1 and not set(chunks[0].rows.tolist()) & {1, 3, 8}
    more = even_out(batch, mask, chunks, 12, packed=False)  # 9 rows, 12 passes: 3 empty
    assert len(more) == 12
    assert sum(int(ch.completion_mask.sum()) for ch in more) == int(mask.sum())
    assert sorted(r for ch in more[:9] for r in ch.rows.tolist()) == sorted(
        set(range(12)) - {1, 3, 8}
    )
    nothing = plan_chunks(batch, torch.zeros_like(mask), micro_size=4, max_tokens=99, packed=True)
    assert len(nothing) == 1 and nothing[0].completion_mask.sum() == 0  # backward still runs


@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=40),
    budget=st.integers(1, 2000),
    packed=st.booleans(),
)
def test_token_budget_groups(lengths, budget, packed):
    groups = token_budget_groups(lengths, budget, packed=packed)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        cost = sum(lengths[i] for i in g) if packed else len(g) * max(lengths[i] for i in g)
        assert cost <= budget or len(g) == 1
    if not packed:  # longest first, alike lengths together
        assert [lengths[i] for g in groups for i in g] == sorted(lengths, reverse=True)
    else:  # first fit: no later group would have fitted in an earlier one
        costs = [sum(lengths[i] for i in g) for g in groups]
        for k, g in enumerate(groups):
            assert all(costs[j] + lengths[g[0]] > budget for j in range(k))


def test_token_budget_keys_are_checked():
    from r1zero.config import ConfigError, from_dict

    for key in ("ppo_max_token_len_per_gpu", "log_prob_max_token_len_per_gpu"):
        with pytest.raises(ConfigError, match=f"{key} must be at least 1"):
            from_dict({key: 0})


def test_a_batch_not_padded_as_generated_is_refused():
    batch = ragged_batch()
    batch.prompt_mask[0, -1] = 0  # a hole at the end of a prompt
    with pytest.raises(ValueError, match="left-padded prompts and right-padded completions"):
        plan_chunks(batch, batch.completion_mask, micro_size=4, max_tokens=420, packed=False)
