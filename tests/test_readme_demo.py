"""The README's count of the embedded demo's distinct held-out problems is computed, not
typed: the 200 held-out problems are orderings of fewer distinct number-sets-with-target."""

from __future__ import annotations

import math
from pathlib import Path

from r1zero.config import load_config
from r1zero.task import countdown
from r1zero.tiny import tiny_splits
from r1zero.tiny.build import TINY_DATA, held_out
from r1zero.train.setup import TINY_PRESET

README = Path(__file__).parents[1] / "README.md"


def _key(nums, target) -> tuple:
    return tuple(sorted(nums)), target


def test_readme_counts_the_demos_distinct_held_out_problems():
    seed = load_config(None, []).grpo.seed
    n = TINY_PRESET["num_samples"]
    n_test = math.ceil(TINY_PRESET["test_size"] * n)
    _, test = tiny_splits(n - n_test, n_test, seed + 1)
    shown = test[: TINY_PRESET["eval_num_samples"]]
    distinct = len({_key(r["nums"], r["target"]) for r in shown})
    pairs = {_key(p.nums, p.target) for p in countdown.generate(20_000, seed=1, **TINY_DATA)}
    in_quarter = sum(held_out(*k) for k in pairs)
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert f"the {len(shown)} held-out problems are orderings of {distinct} of those" in text
    assert f"it holds {len(pairs)} distinct number-sets-with-target, {in_quarter} of them" in text
