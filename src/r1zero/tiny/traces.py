"""Synthetic reasoning traces from a noisy Countdown solver: the tiny model's prior.

The solver searches a fixed enumeration of 3-number expressions ("a op b = c, then c op d")
starting at a random place. Two habits are mixed:

- *persistent*: keep trying until an attempt hits the target, answer with it (correct);
- *quitter*: give up after a miss or two and answer with the last (wrong) attempt.

On top, some traces break the answer format (no newline after ``</think>``, no
``</think>``, no answer tags, text after ``</answer>``), mostly after giving up.

So the model *can* find answers (it saw how: keep searching until the value equals the
target) but does not prefer to: after a miss its likeliest next move is to stop, and
greedy decoding stops. Sampling still often keeps going and hits, which gives GRPO its
signal; RL then only has to flip the stop-or-continue decision and clean up the format.
That is the R1-Zero story in miniature: RL elicits and sharpens what sampling reveals.

Layout of a completion (the text after the prompt's ``<think>``), one line per first
step, written without spaces (Qwen's pre-tokenizer makes a space before a digit a token
of its own)::

    <think>
    4+7=11: 11+2=13, 11-2=9, 11*2=22
    </think>
    <answer> (4+7)*2 </answer><|im_end|>
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import combinations

from r1zero.tiny.tokenizer import IM_END

OPS = ("+", "-", "*")
"""No division: with 3 numbers from a small range almost every target is reachable
without it, and exact-division checks would be one more thing a tiny model must learn."""


@dataclass(frozen=True)
class Attempt:
    first: str
    """``"4+7=11"``: the first step, shared by a group of attempts."""
    second: str
    """``"11*2=22"``"""
    answer: str
    """``"(4+7)*2"``: the attempt as an equation over the given numbers."""
    value: int


@dataclass(frozen=True)
class TraceMix:
    """How noisy the solver is. The defaults give ~30% correct traces and ~35% broken ones."""

    p_persistent: float = 0.3
    """Share of traces that search until they hit the target."""
    max_misses: int = 8
    """A persistent trace misses at most this many times before its hit."""
    quit_after: tuple[float, ...] = (0.7, 0.2, 0.1)
    """A quitter stops after 1, 2, 3... misses with these probabilities."""
    p_broken_quit: float = 0.5
    """Chance that a quitter's ending breaks the format."""
    p_broken_hit: float = 0.1
    """Chance that a correct trace's ending breaks the format."""


def _step(x: int, op: str, y: int) -> tuple[str, int, bool]:
    """``"x op y"``, its value, and whether the operands were swapped to keep it >= 0."""
    swap = op == "-" and y > x
    if swap:
        x, y = y, x
    value = x + y if op == "+" else x - y if op == "-" else x * y
    return f"{x}{op}{y}", value, swap


def attempts(nums: list[int] | tuple[int, ...]) -> list[Attempt]:
    """The solver's fixed enumeration: pair (prompt order), then first op, then second op."""
    out = []
    for i, j in combinations(range(len(nums)), 2):
        (k,) = (k for k in range(len(nums)) if k not in (i, j))
        for op1 in OPS:
            e1, c, _ = _step(nums[i], op1, nums[j])
            for op2 in OPS:
                e2, value, swap = _step(c, op2, nums[k])
                answer = f"{nums[k]}{op2}({e1})" if swap else f"({e1}){op2}{nums[k]}"
                out.append(Attempt(f"{e1}={c}", f"{e2}={value}", answer, value))
    return out


def _search(rng: random.Random, cands: list[Attempt], target: int, mix: TraceMix) -> list[Attempt]:
    """The attempts one trace shows; it ends at the first hit or where the solver quits."""
    n = len(cands)
    hits = [i for i, a in enumerate(cands) if a.value == target]
    if hits and rng.random() < mix.p_persistent:
        start = rng.choice(hits) - rng.randint(0, mix.max_misses)
        budget = n
    else:
        start = rng.randrange(n)
        budget = rng.choices(range(1, len(mix.quit_after) + 1), weights=mix.quit_after)[0]
    shown, misses = [], 0
    for t in range(n):
        a = cands[(start + t) % n]
        shown.append(a)
        if a.value == target:
            break
        misses += 1
        if misses == budget:
            break
    return shown


def _think(shown: list[Attempt]) -> str:
    parts, prev = [], None
    for a in shown:
        if a.first != prev:
            parts.append("\n" + a.first + ": ")
        else:
            parts.append(", ")
        parts.append(a.second)
        prev = a.first
    return "".join(parts)


def _ending(rng: random.Random, answer: str, target: int, broken: bool) -> str:
    if not broken:
        return f"\n</think>\n<answer> {answer} </answer>"
    return rng.choice(
        [
            f"\n</think><answer> {answer} </answer>",  # no newline between the blocks
            f"\n<answer> {answer} </answer>",  # never closed the thought
            f"\n</think>\n{answer}",  # no answer tags
            f"\n</think>\n<answer> {answer} </answer>={target}",  # text after the answer
        ]
    )


def trace(
    nums: list[int] | tuple[int, ...], target: int, rng: random.Random, mix: TraceMix = TraceMix()
) -> str:
    """One completion for the problem, ending with ``<|im_end|>``; reproducible from ``rng``."""
    shown = _search(rng, attempts(nums), target, mix)
    last = shown[-1]
    p_broken = mix.p_broken_hit if last.value == target else mix.p_broken_quit
    return _think(shown) + _ending(rng, last.answer, target, rng.random() < p_broken) + IM_END


def drill(rng: random.Random, *, groups: int, min_number: int, max_number: int) -> str:
    """Arithmetic practice: ``groups`` lines of the solver's notation for random numbers."""
    lines = []
    for _ in range(groups):
        nums = [rng.randint(min_number, max_number) for _ in range(3)]
        cands = attempts(nums)
        g = rng.randrange(len(cands) // len(OPS)) * len(OPS)
        lines.append(
            "\n" + cands[g].first + ": " + ", ".join(a.second for a in cands[g : g + len(OPS)])
        )
    return "".join(lines)
