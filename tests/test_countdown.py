"""The generator and solver, checked by the independent evaluator in r1zero.task.arith."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from r1zero.task import countdown
from r1zero.task.arith import evaluate, numbers_used


def test_generate_is_seeded():
    a = list(countdown.generate(50, seed=3))
    assert a == list(countdown.generate(50, seed=3))
    assert a != list(countdown.generate(50, seed=4))


def test_generate_respects_ranges():
    for p in countdown.generate(200, seed=0):
        assert 3 <= len(p.nums) <= 4
        assert all(1 <= x <= 100 for x in p.nums)
        assert 1 <= p.target <= 100
        assert p.row() == {"nums": list(p.nums), "target": p.target}


def check(nums, target, expr):
    assert Counter(numbers_used(expr)) == Counter(nums)
    assert evaluate(expr) == target


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(2, 4))
def test_generated_problems_are_solvable(seed, k):
    for p in countdown.generate(3, seed=seed, min_nums=k, max_nums=k):
        assert len(p.nums) == k
        check(p.nums, p.target, countdown.solve(p.nums, p.target))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=2, max_size=4), st.integers(-50, 200))
def test_solve_results_are_verified(nums, target):
    expr = countdown.solve(nums, target)
    if expr is not None:
        check(nums, target, expr)


def test_solve_finds_nothing_when_impossible():
    assert countdown.solve([1, 1], 100) is None
    assert countdown.solve([2, 3, 5], 10_000) is None
