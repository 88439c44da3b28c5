"""Synthetic reasoning traces from a noisy Countdown solver: the tiny model's prior.

The demo's problems are 3 numbers and a target made with ``+`` and ``-``, so every answer is
a sign pattern: ``a+b-c``, ``b+c-a``... The solver restates the problem, then works in one of
two habits, chosen by coin flip and *not* by the problem:

- *careful* (30%): check the 7 sign patterns in a fixed order, one line each, computing the
  value and then its difference to the target; stop at the first difference of 0 and answer
  with that pattern. Always right.
- *guess* (70%): write down one pattern at random, compute it, answer it whatever it gives.
  Right by luck (~1 in 5).

On top, 10% of traces break the answer format (no newline between the blocks, no
``</think>``, no answer tags).

Greedy decoding follows the likelier habit, guessing, and a freshly built model scores ~25%
greedy. Sampling checks carefully a third of the time and those samples are right, which
gives GRPO its signal: RL, not the pretraining, moves the model to the long careful habit.
That is the R1-Zero story in miniature: accuracy and response length rise together.

Every step is laid out for a 2-layer model: numbers up to 99 are single tokens (see
:mod:`r1zero.tiny.tokenizer`), each operation takes two operands that sit a fixed distance
back, and "is it the target?" is a subtraction whose result is 0, not a comparison across
the trace. A careful completion (the text after the prompt's ``<think>``)::

    <think>
    6,8,6 → 8
    6+8=14 14+6=20 20-8=12 no
    6+8=14 14-6=8 8-8=0 yes
    </think>
    <answer> 6 + 8 - 6 </answer><|im_end|>
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from r1zero.tiny.tokenizer import IM_END

SIGNS: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1),
    (1, 1, -1),
    (1, -1, 1),
    (-1, 1, 1),
    (1, -1, -1),
    (-1, 1, -1),
    (-1, -1, 1),
)
"""The careful solver's order: no minus, one, then two (the all-minus pattern is never > 0)."""


@dataclass(frozen=True)
class TraceMix:
    """How noisy the solver is."""

    p_careful: float = 0.3
    """Share of traces that check every pattern until one hits (the rest guess once)."""
    p_broken: float = 0.1
    """Share of traces whose ending breaks the answer format."""


def terms(nums: list[int] | tuple[int, ...], signs: tuple[int, int, int]) -> list[int]:
    """Signed terms in writing order: the added numbers first (problem order), then the
    subtracted ones, so an expression never starts with a minus."""
    return [n * s for n, s in zip(nums, signs, strict=True) if s > 0] + [
        n * s for n, s in zip(nums, signs, strict=True) if s < 0
    ]


def expression(nums: list[int] | tuple[int, ...], signs: tuple[int, int, int], sep="") -> str:
    """``"6+8-6"`` (or ``"6 + 8 - 6"`` with ``sep=" "``): the pattern as an equation."""
    first, *rest = terms(nums, signs)
    return str(first) + "".join(f"{sep}{'+' if t > 0 else '-'}{sep}{abs(t)}" for t in rest)


def check_line(nums: list[int] | tuple[int, ...], signs: tuple[int, int, int], target: int) -> str:
    """``"6+8=14 14-6=8 8-8=0"``: two steps of the pattern, then its difference to the target."""
    a, b, c = terms(nums, signs)
    v1, v2 = a + b, a + b + c
    sb, sc = "+" if b > 0 else "-", "+" if c > 0 else "-"
    return f"{a}{sb}{abs(b)}={v1} {v1}{sc}{abs(c)}={v2} {v2}-{target}={v2 - target}"


def _ending(rng: random.Random, answer: str, broken: bool) -> str:
    if not broken:
        return f"\n</think>\n<answer> {answer} </answer>"
    return rng.choice(
        [
            f"\n</think><answer> {answer} </answer>",  # no newline between the blocks
            f"\n<answer> {answer} </answer>",  # never closed the thought
            f"\n</think>\n{answer}",  # no answer tags
        ]
    )


def trace(
    nums: list[int] | tuple[int, ...], target: int, rng: random.Random, mix: TraceMix = TraceMix()
) -> str:
    """One completion for a 3-number problem, ending with ``<|im_end|>``; reproducible from
    ``rng``. A careful trace that finds nothing (a target ``+``/``-`` cannot make) answers
    with its last pattern."""
    nums = tuple(nums)
    lines = ["\n" + ",".join(map(str, nums)) + f" → {target}"]
    if rng.random() < mix.p_careful:
        for signs in SIGNS:
            hit = sum(n * s for n, s in zip(nums, signs, strict=True)) == target
            lines.append(check_line(nums, signs, target) + (" yes" if hit else " no"))
            if hit:
                break
    else:
        signs = rng.choice(SIGNS)
        lines.append("guess " + check_line(nums, signs, target))
    answer = expression(nums, signs, " ")
    return "\n".join(lines) + _ending(rng, answer, rng.random() < mix.p_broken) + IM_END
