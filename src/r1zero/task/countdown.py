"""Countdown problems: a seeded generator and a brute-force solver.

A problem is 3-4 small numbers and a target reachable with + - * / using each
number exactly once, as in TinyZero's generator and `Jiayi-Pan/Countdown-Tasks-3to4`.
Every generated row is proven solvable by :func:`solve`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

OPS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class Problem:
    nums: tuple[int, ...]
    target: int

    def row(self) -> dict:
        return {"nums": list(self.nums), "target": self.target}


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b != 0 else None


@lru_cache(maxsize=200_000)
def _solve(items: tuple[tuple[Fraction, str], ...], target: Fraction) -> str | None:
    if len(items) == 1:
        return items[0][1] if items[0][0] == target else None
    n = len(items)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            (a, ea), (b, eb) = items[i], items[j]
            rest = [items[k] for k in range(n) if k not in (i, j)]
            for op in OPS:
                if op in "+*" and i > j:  # commutative: each unordered pair once
                    continue
                v = _apply(op, a, b)
                if v is None:
                    continue
                expr = f"({ea} {op} {eb})" if len(rest) else f"{ea} {op} {eb}"
                found = _solve(tuple(sorted([*rest, (v, expr)])), target)
                if found is not None:
                    return found
    return None


def solve(nums: list[int] | tuple[int, ...], target: int) -> str | None:
    """Return an equation using every number exactly once that equals ``target``, or None."""
    items = tuple(sorted((Fraction(x), str(x)) for x in nums))
    return _solve(items, Fraction(target))


def _random_expression(
    rng: random.Random, nums: list[int], ops: tuple[str, ...] = OPS
) -> Fraction | None:
    """Combine all numbers with random ``ops`` in a random tree; None on division by zero."""
    vals = [Fraction(x) for x in nums]
    while len(vals) > 1:
        i, j = rng.sample(range(len(vals)), 2)
        a, b = vals[i], vals[j]
        v = _apply(rng.choice(ops), a, b)
        if v is None:
            return None
        vals = [vals[k] for k in range(len(vals)) if k not in (i, j)] + [v]
    return vals[0]


def generate(
    n: int,
    *,
    seed: int,
    min_nums: int = 3,
    max_nums: int = 4,
    min_number: int = 1,
    max_number: int = 100,
    max_target: int = 100,
    ops: str = "+-*/",
) -> Iterator[Problem]:
    """Yield ``n`` seeded, solvable problems (TinyZero-style: numbers 1-100, targets 1-100).

    ``ops`` limits the operations that make the target (the embedded demo uses ``"+-"``);
    any answer with all four still scores."""
    if not ops or set(ops) - set(OPS):
        raise ValueError(f"ops must be a non-empty subset of '+-*/', got {ops!r}")
    rng = random.Random(seed)
    tree_ops = tuple(o for o in OPS if o in ops)
    made = 0
    while made < n:
        k = rng.randint(min_nums, max_nums)
        nums = [rng.randint(min_number, max_number) for _ in range(k)]
        v = _random_expression(rng, nums, tree_ops)
        if v is None or v.denominator != 1 or not 1 <= v <= max_target:
            continue
        target = int(v)
        if solve(nums, target) is None:  # cannot happen for exact trees; proof, not hope
            continue
        made += 1
        yield Problem(tuple(nums), target)
