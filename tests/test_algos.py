"""GRPO math against numbers computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from r1zero.algos import (
    ADVANTAGES,
    LOSS_AGGREGATIONS,
    clipped_surrogate,
    kl_k3,
    policy_loss,
    zero_std_fraction,
)
from r1zero.algos.shaping import overlong_penalty

EPS = 1e-4  # grpo_advantages' default std epsilon

# Two groups of G=4: one with signal, one where every completion scored the same.
REWARDS = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0])


def close(actual: torch.Tensor, expected: list[float], tol: float = 1e-6) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), atol=tol, rtol=0)


# ---------------------------------------------------------------- advantages


def test_registry_names():
    assert set(ADVANTAGES) == {"grpo", "dr_grpo", "rloo"}
    assert set(LOSS_AGGREGATIONS) == {"grpo", "bnpo", "dr_grpo", "dapo"}


def test_grpo_group_scale():
    # group 1: mean 0.25; deviations 0.75, -0.25, -0.25, -0.25
    #   unbiased var = (0.5625 + 3 * 0.0625) / 3 = 0.75 / 3 = 0.25 -> std 0.5
    #   A = [0.75, -0.25, -0.25, -0.25] / (0.5 + 1e-4)
    # group 2: all 2 -> deviations 0, std 0 -> A = 0 / (0 + 1e-4) = 0 (no NaN)
    adv = ADVANTAGES["grpo"](REWARDS, 4, scale_rewards="group")
    d = 0.5 + EPS
    close(adv, [0.75 / d, -0.25 / d, -0.25 / d, -0.25 / d, 0, 0, 0, 0])
    assert torch.isfinite(adv).all()


def test_grpo_batch_scale():
    # mean of all 8 = (1 + 4 * 2) / 8 = 1.125
    # squared deviations: (1 - 1.125)^2 = 0.015625, 3 * 1.125^2 = 3.796875, 4 * 0.875^2 = 3.0625
    #   sum 6.875, unbiased var = 6.875 / 7 = 55/56 -> std = sqrt(55/56) = 0.991031
    # numerators stay the group deviations: [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]
    adv = ADVANTAGES["grpo"](REWARDS, 4, scale_rewards="batch")
    d = math.sqrt(55 / 56) + EPS
    close(adv, [0.75 / d, -0.25 / d, -0.25 / d, -0.25 / d, 0, 0, 0, 0])


def test_grpo_no_scale_equals_dr_grpo():
    # r - group mean, nothing else: [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]
    expected = [0.75, -0.25, -0.25, -0.25, 0, 0, 0, 0]
    close(ADVANTAGES["grpo"](REWARDS, 4, scale_rewards="none"), expected)
    close(ADVANTAGES["dr_grpo"](REWARDS, 4, scale_rewards="group"), expected)  # ignores it


def test_rloo():
    # A_i = r_i - mean of the other three
    #   r0 = 1: others 0, 0, 0 -> 1 - 0 = 1
    #   r1 = 0: others 1, 0, 0 -> 0 - 1/3 = -1/3 (same for r2, r3)
    #   = G/(G-1) (r - mean) = 4/3 * 0.75 = 1 and 4/3 * -0.25 = -1/3
    # group 2: 2 - 2 = 0
    adv = ADVANTAGES["rloo"](REWARDS, 4)
    close(adv, [1, -1 / 3, -1 / 3, -1 / 3, 0, 0, 0, 0])


def test_two_completions_per_group():
    # G=2, [3, 1]: mean 2, unbiased std = sqrt((1 + 1) / 1) = sqrt(2)
    r = torch.tensor([3.0, 1.0])
    close(ADVANTAGES["grpo"](r, 2), [1 / (math.sqrt(2) + EPS), -1 / (math.sqrt(2) + EPS)])
    # rloo: 3 - 1 = 2, 1 - 3 = -2
    close(ADVANTAGES["rloo"](r, 2), [2, -2])


def test_advantage_errors():
    with pytest.raises(ValueError, match="do not split into groups of 3"):
        ADVANTAGES["grpo"](REWARDS, 3)
    with pytest.raises(ValueError, match="scale_rewards must be group, batch or none"):
        ADVANTAGES["grpo"](REWARDS, 4, scale_rewards="token")


def test_zero_std_fraction():
    assert zero_std_fraction(REWARDS, 4) == 0.5  # group 2 is flat
    # G=2: [1, 1] flat, [0, 1] not, [0, 0] flat -> 2/3
    assert zero_std_fraction(torch.tensor([1.0, 1, 0, 1, 0, 0]), 2) == pytest.approx(2 / 3)
    assert zero_std_fraction(torch.tensor([0.0, 1, 2, 3]), 2) == 0.0


@given(st.data())
def test_advantages_sum_to_zero_per_group(data):
    g = data.draw(st.integers(2, 6), label="num_generations")
    n = g * data.draw(st.integers(1, 3), label="groups")
    floats = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
    r = torch.tensor(data.draw(st.lists(floats, min_size=n, max_size=n)), dtype=torch.float64)
    for name in ADVANTAGES:
        adv = ADVANTAGES[name](r, g).view(-1, g)
        assert torch.allclose(adv.sum(1), torch.zeros_like(adv[:, 0]), atol=1e-6), name


# ---------------------------------------------------------------- KL


def test_kl_k3_hand_value():
    # p = log 0.5, q = log 0.25: q - p = log 0.5 = -ln 2
    #   exp(q - p) - (q - p) - 1 = 0.5 + ln 2 - 1 = 0.193147
    p = torch.tensor([[math.log(0.5)]])
    q = torch.tensor([[math.log(0.25)]])
    close(kl_k3(p, q), [[0.5 + math.log(2) - 1]])
    # swapped: q - p = ln 2 -> 2 - ln 2 - 1 = 0.306853 (k3 is not symmetric)
    close(kl_k3(q, p), [[2 - math.log(2) - 1]])


finite = st.floats(-30, 0, allow_nan=False, allow_infinity=False)


@given(finite, finite)
def test_kl_k3_nonnegative_and_zero_iff_equal(p, q):
    kp, kq = torch.tensor([p], dtype=torch.float64), torch.tensor([q], dtype=torch.float64)
    k = kl_k3(kp, kq).item()
    assert k >= 0
    assert kl_k3(kp, kp).item() == 0.0
    if abs(p - q) > 1e-3:  # exp(d) - d - 1 ~ d^2 / 2 > 0 well above rounding
        assert k > 0


# ---------------------------------------------------------------- clipped surrogate


def test_clipped_surrogate_four_cases():
    # eps = 0.2 both sides: clip range [0.8, 1.2]. One token per row, A per row.
    ratio = torch.tensor([[1.5], [0.5], [1.5], [0.5]])
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0])
    old = torch.zeros(4, 1)
    loss, clipped = clipped_surrogate(ratio.log(), old, adv, 0.2, 0.2)
    # row 0: rho 1.5, A +1: min(1.5, 1.2) = 1.2 -> loss -1.2, clipped
    # row 1: rho 0.5, A -1: min(-0.5, -0.8) = -0.8 -> loss 0.8, clipped
    # row 2: rho 1.5, A -1: min(-1.5, -1.2) = -1.5 -> loss 1.5, not clipped (no cap on a bad move)
    # row 3: rho 0.5, A +1: min(0.5, 0.8) = 0.5 -> loss -0.5, not clipped
    close(loss, [[-1.2], [0.8], [1.5], [-0.5]], tol=1e-6)
    assert clipped.squeeze(-1).tolist() == [True, True, False, False]


def test_clipped_surrogate_gradient_zero_where_clipped():
    ratio = torch.tensor([[1.5], [0.5], [1.5], [0.5]])
    lp = ratio.log().requires_grad_()
    loss, _ = clipped_surrogate(lp, torch.zeros(4, 1), torch.tensor([1.0, -1, -1, 1]), 0.2, 0.2)
    loss.sum().backward()
    # d(-rho A)/d log pi = -rho A where unclipped: row 2: -1.5 * -1 = 1.5, row 3: -0.5 * 1 = -0.5
    close(lp.grad, [[0.0], [0.0], [1.5], [-0.5]])


def test_clipped_surrogate_clip_higher():
    # eps_low 0.2, eps_high 0.28: clip range [0.8, 1.28] (DAPO clip-higher)
    ratio = torch.tensor([[1.25, 1.3, 0.75]])
    adv = torch.tensor([1.0])
    loss, clipped = clipped_surrogate(ratio.log(), torch.zeros(1, 3), adv, 0.2, 0.28)
    # 1.25 < 1.28 -> -1.25 unclipped; 1.3 -> capped at 1.28; 0.75 with A > 0 -> -0.75 (only
    # the upper bound matters for A > 0)
    close(loss, [[-1.25, -1.28, -0.75]])
    assert clipped.tolist() == [[False, True, False]]
    # the same tokens with symmetric eps 0.2: 1.25 is now clipped to 1.2
    loss, clipped = clipped_surrogate(ratio.log(), torch.zeros(1, 3), adv, 0.2, 0.2)
    close(loss, [[-1.2, -1.2, -0.75]])
    # A < 0 uses the lower bound 1 - eps_low = 0.8: 0.75 -> -0.8 * -1 = 0.8, clipped
    loss, clipped = clipped_surrogate(ratio.log(), torch.zeros(1, 3), -adv, 0.2, 0.28)
    close(loss, [[1.25, 1.3, 0.8]])
    assert clipped.tolist() == [[False, False, True]]


# ---------------------------------------------------------------- loss aggregations

PER_TOKEN = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
# masked tokens: 1, 2 (row 0) and 4 (row 1): sum 7 over 3 tokens


def agg(name: str, **kw) -> float:
    kw = {"grad_accum": 1, "max_completion_length": 4, "num_items_in_batch": 10} | kw
    return LOSS_AGGREGATIONS[name](PER_TOKEN, MASK, **kw).item()


def test_agg_grpo():
    # per sequence: (1 + 2) / 2 = 1.5 and 4 / 1 = 4; mean (1.5 + 4) / 2 = 2.75
    assert agg("grpo") == pytest.approx(2.75)
    assert agg("grpo", grad_accum=2) == pytest.approx(1.375)


def test_agg_bnpo():
    # tokens of the micro-batch: 7 / 3
    assert agg("bnpo") == pytest.approx(7 / 3)
    assert agg("bnpo", grad_accum=2) == pytest.approx(7 / 6)


def test_agg_dr_grpo():
    # constant normaliser B x max_completion_length = 2 x 4 = 8: 7 / 8
    assert agg("dr_grpo") == pytest.approx(0.875)
    assert agg("dr_grpo", max_completion_length=7) == pytest.approx(0.5)  # 7 / 14
    assert agg("dr_grpo", grad_accum=2) == pytest.approx(0.4375)


def test_agg_dapo():
    # tokens of the whole optimizer step (num_items_in_batch = 10): 7 / 10; grad_accum is
    # already in num_items_in_batch, so it does not divide again
    assert agg("dapo") == pytest.approx(0.7)
    assert agg("dapo", grad_accum=2) == pytest.approx(0.7)
    assert agg("dapo", num_items_in_batch=0) == pytest.approx(7.0)  # guarded: no division by 0


def test_agg_empty_mask_is_zero_not_nan():
    zero = torch.zeros_like(MASK)
    for name, fn in LOSS_AGGREGATIONS.items():
        v = fn(PER_TOKEN, zero, grad_accum=1, max_completion_length=4, num_items_in_batch=0)
        assert v.item() == 0.0, name


# ---------------------------------------------------------------- policy_loss


def test_policy_loss_with_kl():
    # ratio 1 (logprobs == old): surrogate per token = -A; A = [1, -1]
    # ref: pi = 0.5, pi_ref = 0.25 -> k3 = c = 0.5 + ln 2 - 1 on every token
    # beta 0.1, bnpo over the 3 masked tokens:
    #   row 0: 2 x (-1 + 0.1 c); row 1: 1 x (1 + 0.1 c) -> (-1 + 0.3 c) / 3 = -1/3 + 0.1 c
    c = 0.5 + math.log(2) - 1
    lp = torch.full((2, 3), math.log(0.5))
    loss, metrics = policy_loss(
        logprobs=lp,
        old_logprobs=lp.clone(),
        advantages=torch.tensor([1.0, -1.0]),
        completion_mask=MASK.long(),
        loss_type="bnpo",
        epsilon=0.2,
        epsilon_high=None,
        beta=0.1,
        ref_logprobs=torch.full((2, 3), math.log(0.25)),
    )
    assert loss.item() == pytest.approx(-1 / 3 + 0.1 * c, abs=1e-6)
    assert metrics["kl"] == pytest.approx(c, abs=1e-6)
    assert metrics["clip_ratio"] == 0.0


def test_policy_loss_without_kl_and_errors():
    lp = torch.zeros(2, 3)
    kw = dict(
        logprobs=lp,
        old_logprobs=lp,
        advantages=torch.tensor([1.0, -1.0]),
        completion_mask=MASK,
        loss_type="grpo",
        epsilon=0.2,
        epsilon_high=0.28,
    )
    # grpo: row 0 mean -1, row 1 mean +1 -> 0
    loss, metrics = policy_loss(**kw)
    assert loss.item() == pytest.approx(0.0)
    assert "kl" not in metrics
    with pytest.raises(ValueError, match="beta > 0 needs ref_logprobs"):
        policy_loss(**kw, beta=0.1)


def test_policy_loss_clip_ratio():
    # row 0: rho 1.5, A +1 -> both its masked tokens clipped; row 1: rho 1.5, A -1 -> not
    # clip_ratio = 2 clipped / 3 masked tokens
    lp = torch.full((2, 3), math.log(1.5))
    _, metrics = policy_loss(
        logprobs=lp,
        old_logprobs=torch.zeros(2, 3),
        advantages=torch.tensor([1.0, -1.0]),
        completion_mask=MASK,
        loss_type="bnpo",
        epsilon=0.2,
        epsilon_high=None,
    )
    assert metrics["clip_ratio"] == pytest.approx(2 / 3)


def test_grpo_loss_gradient_is_policy_gradient():
    """At ratio 1 the grpo loss's gradient is -(1/B) sum_i A_i / |o_i| sum_t grad log pi(o_it)."""
    torch.manual_seed(0)
    B, T, H, V = 2, 3, 4, 5
    W = torch.randn(V, H, requires_grad=True)
    x = torch.randn(B, T, H)
    tokens = torch.randint(0, V, (B, T))
    adv = torch.tensor([0.7, -1.3])

    def logprobs() -> torch.Tensor:  # (B, T)
        return torch.log_softmax(x @ W.T, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

    lp = logprobs()
    loss, _ = policy_loss(
        logprobs=lp,
        old_logprobs=lp.detach(),
        advantages=adv,
        completion_mask=MASK,
        loss_type="grpo",
        epsilon=0.2,
        epsilon_high=None,
    )
    (grad,) = torch.autograd.grad(loss, W)
    # d loss / d lp_it = -A_i * rho_it / |o_i| / B with rho = 1 on masked tokens:
    #   row 0: -0.7 / 2 / 2 = -0.175 on tokens 0, 1; row 1: 1.3 / 1 / 2 = 0.65 on token 0
    coeff = torch.tensor([[-0.175, -0.175, 0.0], [0.65, 0.0, 0.0]])
    (expected,) = torch.autograd.grad((coeff * logprobs()).sum(), W)
    torch.testing.assert_close(grad, expected)
    lp2 = lp.detach().requires_grad_()
    loss2, _ = policy_loss(
        logprobs=lp2,
        old_logprobs=lp2.detach(),
        advantages=adv,
        completion_mask=MASK,
        loss_type="grpo",
        epsilon=0.2,
        epsilon_high=None,
    )
    loss2.backward()
    torch.testing.assert_close(lp2.grad, coeff)


# ---------------------------------------------------------------- overlong shaping


def test_overlong_penalty():
    # max_len 10, buffer 4: free up to 6 tokens, then -(len - 6) / 4 down to -1 at 10
    #   5 -> 0, 6 -> 0, 7 -> -0.25, 8 -> -0.5, 10 -> -1, 12 -> capped at -1
    lengths = torch.tensor([5, 6, 7, 8, 10, 12])
    close(overlong_penalty(lengths, 10, 4, 1.0), [0, 0, -0.25, -0.5, -1, -1])
    close(overlong_penalty(lengths, 10, 4, 2.0), [0, 0, -0.5, -1, -2, -2])


# ---------------------------------------------------------------- NaN rewards (TRL: abstaining)

NAN = float("nan")


def _reference_advantage(name: str, valid: list[float], i: int, scale_by: float | None) -> float:
    """The estimator on the group's scored rewards only, written out plainly."""
    r = torch.tensor(valid, dtype=torch.float64)
    if name == "rloo":
        return float(r[i] - (r.sum() - r[i]) / (len(valid) - 1)) if len(valid) > 1 else 0.0
    adv = float(r[i] - r.mean())
    if name == "grpo" and scale_by is not None:
        adv = adv / (scale_by + EPS)
    elif name == "grpo":  # one scored reward: std NaN -> advantage 0 (TRL)
        adv = adv / (float(r.std()) + EPS) if len(valid) > 1 else 0.0
    return adv


@given(st.data())
def test_nan_rewards_are_left_out_of_group_statistics(data):
    """Each estimator on a group with NaN rewards equals the same estimator on the group's
    scored rewards alone, and a NaN reward's advantage is 0 (TRL's nanmean/nanstd,
    nan_to_num). Before the fix a NaN poisoned its whole group (every advantage NaN)."""
    g = data.draw(st.integers(2, 6), label="num_generations")
    n = g * data.draw(st.integers(1, 3), label="groups")
    value = st.one_of(st.just(NAN), st.integers(-4, 4).map(float))
    rewards = data.draw(st.lists(value, min_size=n, max_size=n), label="rewards")
    r = torch.tensor(rewards, dtype=torch.float64)
    for name in ADVANTAGES:
        adv = ADVANTAGES[name](r, g)
        assert torch.isfinite(adv).all(), name
        for start in range(0, n, g):
            group = rewards[start : start + g]
            valid = [x for x in group if not math.isnan(x)]
            k = 0
            for j, x in enumerate(group):
                if math.isnan(x):
                    assert adv[start + j] == 0.0, name
                    continue
                ref = _reference_advantage(name, valid, k, None)
                assert float(adv[start + j]) == pytest.approx(ref, rel=1e-9, abs=1e-9), name
                k += 1


def test_nan_rewards_batch_scale_uses_std_of_scored_rewards():
    r = torch.tensor([1.0, 0.0, NAN, 1.0, 0.0, 0.0, 3.0, NAN], dtype=torch.float64)
    scored = r[~r.isnan()]
    adv = ADVANTAGES["grpo"](r, 4, scale_rewards="batch")
    expected = (torch.tensor([1.0, 0.0, 1.0]) - 2 / 3) / (scored.std() + EPS)
    torch.testing.assert_close(adv[[0, 1, 3]], expected.double())
    assert adv[2] == 0 and adv[7] == 0


def test_one_unscorable_completion_does_not_move_its_group():
    """Issue 20's case: scored as 0, an abstaining completion got a spurious advantage and
    moved the others; as NaN it gets 0 and the others equal those of the group without it."""
    with_nan = ADVANTAGES["grpo"](torch.tensor([1.0, 0.0, 1.0, NAN]), 4)
    without = ADVANTAGES["grpo"](torch.tensor([1.0, 0.0, 1.0]), 3)
    torch.testing.assert_close(with_nan[:3], without)
    assert with_nan[3] == 0.0


def test_all_nan_group_gets_zero_advantages_and_is_not_flat():
    r = torch.tensor([NAN, NAN, 1.0, 1.0])
    for name in ADVANTAGES:
        assert ADVANTAGES[name](r, 2).tolist() == [0.0, 0.0, 0.0, 0.0], name
    assert zero_std_fraction(r, 2) == 0.5  # only the scored flat group counts
    assert zero_std_fraction(torch.tensor([1.0, NAN, 0.0, 1.0]), 2) == 0.5


def test_combine_marks_rows_where_every_function_abstained_nan():
    from r1zero.task.rewards import combine

    out = combine({"a": [1.0, None, NAN], "b": [NAN, 2.0, None]}, [0.5, 2.0])
    assert out[:2] == [0.5, 4.0] and math.isnan(out[2])
    assert combine({"a": [0.0]}) == [0.0]


def test_score_maps_none_to_nan_and_refuses_non_numbers():
    """None was a TypeError in score() before; now NaN. Wrong lengths and non-numbers are
    one-line ConfigErrors naming the function."""
    from r1zero.config import ConfigError
    from r1zero.task.rewards import score

    rows = [{"nums": [1, 2], "target": 3}] * 3

    def abstains(completions, **kw):
        return [1.0, None, 0.0]

    out = score([("abstains", abstains)], ["a", "b", "c"], rows)
    assert out["abstains"][0] == 1.0 and math.isnan(out["abstains"][1])
    with pytest.raises(ConfigError, match="'short' returned 1 rewards for 3 completions"):
        score([("short", lambda completions, **kw: [1.0])], ["a", "b", "c"], rows)
    with pytest.raises(ConfigError, match="'text' must return a list of numbers or None"):
        score([("text", lambda completions, **kw: ["x"] * 3)], ["a", "b", "c"], rows)


# ---------------------------------------------------------------- bias-corrected KL


def test_bias_corrected_kl_value_and_gradient():
    """k3 x pi/pi_old: off-policy its value is k3 x ratio; on-policy (ratio 1) the value is
    plain k3 but the gradient gains k3 d(log pi): d/dp [k3(p) e^(p - p_old)] at p = p_old
    = (1 - e^(q - p)) + k3."""
    from r1zero.algos.kl import kl_k3_bias_corrected

    q = torch.tensor([[math.log(0.25)]], dtype=torch.float64)
    old = torch.tensor([[math.log(0.4)]], dtype=torch.float64)
    p = torch.tensor([[math.log(0.5)]], dtype=torch.float64, requires_grad=True)
    c = 0.5 + math.log(2) - 1  # k3 at pi = 0.5, pi_ref = 0.25
    value = kl_k3_bias_corrected(p, q, old)
    assert value.item() == pytest.approx(c * 0.5 / 0.4, rel=1e-12)
    on = kl_k3_bias_corrected(p, q, p.detach())
    assert on.item() == pytest.approx(c, rel=1e-12)
    (grad_on,) = torch.autograd.grad(on.sum(), p)
    (grad_plain,) = torch.autograd.grad(kl_k3(p, q).sum(), p)
    assert grad_plain.item() == pytest.approx(1 - 0.5, rel=1e-12)  # 1 - e^(q - p)
    assert grad_on.item() == pytest.approx(1 - 0.5 + c, rel=1e-12)


def test_policy_loss_bias_correction_flag():
    lp = torch.full((2, 3), math.log(0.5), dtype=torch.float64)
    kw = dict(
        logprobs=lp,
        old_logprobs=torch.full((2, 3), math.log(0.4), dtype=torch.float64),
        advantages=torch.zeros(2, dtype=torch.float64),
        completion_mask=MASK.long(),
        loss_type="bnpo",
        epsilon=0.2,
        epsilon_high=None,
        beta=1.0,
        ref_logprobs=torch.full((2, 3), math.log(0.25), dtype=torch.float64),
    )
    c = 0.5 + math.log(2) - 1
    plain, m_plain = policy_loss(**kw)
    corrected, m_corr = policy_loss(**kw, use_bias_correction_kl=True)
    assert plain.item() == pytest.approx(c) and m_plain["kl"] == pytest.approx(c)
    assert corrected.item() == pytest.approx(c * 1.25) and m_corr["kl"] == pytest.approx(c * 1.25)


def test_nan_rewards_log_as_null_and_step_means_skip_them():
    """metrics.jsonl and completions/*.jsonl.gz are JSON, which has no NaN: an abstaining
    reward is written null, and the step's reward means are over the scored completions."""
    import json

    from r1zero.config import GRPOConfig
    from r1zero.rollout import RolloutBatch
    from r1zero.task.tasks import Task
    from r1zero.train.experience import Experience
    from r1zero.train.logs import completion_records, significant
    from r1zero.train.step import step_metrics

    rewards = torch.tensor([1.0, NAN, 0.0, 1.0])
    ids = torch.ones(4, 3, dtype=torch.long)
    batch = RolloutBatch(ids, ids, ids, ids, torch.zeros(4, dtype=torch.bool))
    exp = Experience(
        rows=[{"nums": [1, 2], "target": 3}] * 4,
        prompts=["p"] * 4,
        completions=["c"] * 4,
        batch=batch,
        rewards_per_func={"mine": rewards},
        rewards=rewards,
        advantages=ADVANTAGES["grpo"](rewards, 4),
    )
    records = completion_records(0, exp, num_generations=4)
    text = "\n".join(json.dumps(r, allow_nan=False) for r in records)  # raises on NaN
    assert json.loads(text.splitlines()[1])["reward"] is None
    m = step_metrics(exp, GRPOConfig(num_generations=4, reward_funcs=["mine"]), Task("t", []))
    assert m["reward"] == pytest.approx(2 / 3) and m["rewards/mine"] == pytest.approx(2 / 3)
    assert m["reward_std"] == pytest.approx(torch.tensor([1.0, 0.0, 1.0]).std().item())
    json.dumps({k: significant(v) for k, v in m.items()}, allow_nan=False)


def test_dynamic_sampling_keeps_groups_with_two_different_scored_rewards():
    """A group whose scored rewards are equal, or that has none, has all advantages 0:
    DAPO's dynamic sampling drops it. Before, torch.max propagated NaN and kept both."""
    from r1zero.algos.advantages import informative_groups

    r = torch.tensor([1.0, NAN, 1.0, 1.0, NAN, NAN, NAN, NAN, 0.0, NAN, 1.0, 1.0])
    assert informative_groups(r, 4).tolist() == [False, False, True]
    for name in ADVANTAGES:
        adv = ADVANTAGES[name](r, 4).view(3, 4)
        assert (adv[:2] == 0).all() and (adv[2] != 0).any(), name
