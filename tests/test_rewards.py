"""Rewards: hand-written cases at every boundary, agreement with the tutorial's format
regex, speed on hostile input, and fuzzing (never raise, always fast)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1zero.task import countdown
from r1zero.task.rewards import (
    FORMAT_REGEX,
    REWARD_FUNCS,
    combine,
    equation_failure,
    equation_reward,
    format_reward,
    load_reward_funcs,
    thought_len_reward,
)

MB = 1_000_000
ORACLE = re.compile(FORMAT_REGEX, re.DOTALL)
OK = "I think.</think>\n"  # a closed thought, so equation cases read like real completions

# Completions as the model writes them: the prompt already opened <think>.
FORMAT_CASES = [
    ("x</think>\n<answer>1</answer>", 1.0),
    ("</think>\n<answer></answer>", 1.0),  # empty think and answer
    ("x</think>\n<answer>1</answer>\n", 1.0),  # `$` matches before one final newline
    ("x</think>\n<answer>1</answer>\n\n", 0.0),
    ("x</think>\n<answer>1</answer> ", 0.0),
    ("x</think>\n<answer>1</answer>junk", 0.0),
    ("x</think>\n<answer>1</answer>junk</answer>", 1.0),  # lazy answer, then anchored end
    ("x</think><answer>1</answer>", 0.0),  # no newline between blocks
    ("x</think>\n\n<answer>1</answer>", 0.0),
    ("x</think> \n<answer>1</answer>", 0.0),
    ("x</think>\r\n<answer>1</answer>", 0.0),
    ("x<think>y</think>\n<answer>1</answer>", 0.0),  # nested think
    ("<think>x</think>\n<answer>1</answer>", 0.0),  # model re-opened the tag
    ("x</think>y</think>\n<answer>1</answer>", 0.0),  # a second </think>
    ("a\nb\n\n c</think>\n<answer>1 +\n2\n</answer>", 1.0),  # multi-line think and answer
    ("a < b, <thinking> </thinker> <th</think>\n<answer>1</answer>", 1.0),  # look-alikes
    ("x</think>\n<answer><think></think></answer>", 1.0),  # answer content is free
    ("x</think>\n<answer>1", 0.0),
    ("x\n<answer>1</answer>", 0.0),  # no </think>
    ("x</think>\n", 0.0),
    ("", 0.0),
    ("x</THINK>\n<answer>1</answer>", 0.0),  # tags are case sensitive
    ("x\x00y</think>\n<answer>\x00</answer>", 1.0),  # NUL bytes are just characters
    ("lead\n</think>\n<answer>1</answer>", 1.0),
    ("x</think>\n<answer>1</answer><", 0.0),
    ("x" * MB + "</think>\n<answer>1</answer>", 1.0),
    ("<" * MB, 0.0),
]


@pytest.mark.parametrize("completion, want", FORMAT_CASES, ids=lambda v: repr(v)[:40])
def test_format_reward(completion, want):
    assert format_reward([completion]) == [want]
    assert bool(ORACLE.match("<think>" + completion)) == bool(want)  # the tutorial agrees


# (nums, target, answer text after OK, reward, failure). 44 + 19 - 35 = 28.
N, T = [44, 19, 35], 28
EQUATION_CASES = [
    (N, T, "<answer>44 + 19 - 35</answer>", None),
    (N, T, "<answer>(44 - 35) + 19</answer>", None),
    (N, T, "<answer>44 + (19 - 35)</answer>", None),
    (N, T, "<answer> \t44+19-35 \n</answer>", None),
    (N, T, "<answer>44 +\n19\r\n- 35</answer>", None),  # multi-line: DOTALL departure
    (N, T, "<answer>44 + 19 - 35</answer> trailing text", None),  # format is another reward
    (N, T, "<answer>44 + 19 + 35</answer>", "wrong_value"),
    (N, T, "<answer>44 + 19 - 35 = 28</answer>", "not_parseable"),
    (N, T, "<answer>44 - 16</answer>", "wrong_numbers"),  # missing and foreign number
    (N, T, "<answer>44 + 19</answer>", "wrong_numbers"),  # missing number
    (N, T, "<answer>44 + 19 - 35 + 0</answer>", "wrong_numbers"),  # extra number
    (N, T, "<answer>44 + 19 - 35 * 1</answer>", "wrong_numbers"),
    (N, T, "<answer>44 + 44 - 35</answer>", "wrong_numbers"),  # repeated number
    ([5, 5, 2], 12, "<answer>5 + 5 + 2</answer>", None),  # repeated numbers in nums
    ([5, 5, 2], 12, "<answer>5 * 2 + 2</answer>", "wrong_numbers"),
    ([5, 5, 2], 12, "<answer>5 + 5 + 2 + 5</answer>", "wrong_numbers"),
    ([3, 4, 6], 8, "<answer>4 / 3 * 6</answer>", None),  # fraction on the way
    ([1, 3, 2], 2, "<answer>1 / 3 + 2</answer>", "wrong_value"),  # fraction at the end
    ([1, 100000, 7], 7, "<answer>7 + 1 / 100000</answer>", "wrong_value"),  # |d| = 1e-5
    ([1, 100001, 7], 7, "<answer>7 + 1 / 100001</answer>", None),  # |d| < 1e-5
    ([1, 100001, 7], 7, "<answer>7 - 1 / 100001</answer>", None),
    ([5, 3, 3], 5, "<answer>5 / (3 - 3)</answer>", "wrong_value"),  # division by zero
    ([5, 3, 3], 5, "<answer>5 / (3 - 3) + 7</answer>", "wrong_numbers"),
    (N, T, "<answer>44**19**35</answer>", "not_parseable"),
    ([44, 19, 35], 2, "<answer>44//19*35</answer>", "not_parseable"),
    (N, T, "<answer>44.0 + 19 - 35</answer>", "not_parseable"),
    (N, T, "<answer>４４ + 19 - 35</answer>", "not_parseable"),  # fullwidth digits
    (N, T, "<answer>٤٤ + 19 - 35</answer>", "not_parseable"),  # Arabic-Indic digits
    ([3, 4, 1], 6, "<answer>٣ + 4 - 1</answer>", "not_parseable"),
    (N, T, "<answer>44 + 19 − 35</answer>", "not_parseable"),  # U+2212 minus
    ([44, 19, 35], 44 * 19 * 35, "<answer>44 × 19 × 35</answer>", "not_parseable"),
    ([44, 4, 2], 22, "<answer>44 ÷ 4 * 2</answer>", "not_parseable"),
    (N, T, "<answer>-35 + 44 + 19</answer>", "not_parseable"),  # unary minus refused
    (N, T, "<answer>44 + 19\x00 - 35</answer>", "not_parseable"),
    (N, T, "<answer>044 + 19 - 35</answer>", "not_parseable"),
    ([2, 3, 4], 14, "<answer>2(3 + 4)</answer>", "not_parseable"),  # implicit product
    (N, T, "<answer></answer>", "not_parseable"),
    (N, T, "<answer>" + "1+" * (MB // 2) + "1</answer>", "not_parseable"),
    (N, T, "<answer>" + "(" * 10_000 + "44+19-35" + ")" * 10_000 + "</answer>", "not_parseable"),
    (N, T, "<answer>" + "(" * 64 + "44+19-35" + ")" * 64 + "</answer>", None),
    (N, T, "<answer>" + "(" * 65 + "44+19-35" + ")" * 65 + "</answer>", "not_parseable"),
    (N, T, "no answer at all", "no_answer"),
    (N, T, "<answer>44 + 19 - 35", "no_answer"),  # never closed
    (N, T, "<answer>1</answer> <answer>44 + 19 - 35</answer>", "wrong_numbers"),  # first wins
    (N, T, "<answer>44 + 19 - 35</answer> <answer>1</answer>", None),
    (N, T, "<Answer>44 + 19 - 35</Answer>", "no_answer"),
]


@pytest.mark.parametrize(
    "nums, target, answer, failure", EQUATION_CASES, ids=lambda v: repr(v)[:40]
)
def test_equation_reward(nums, target, answer, failure):
    completion = OK + answer
    want = 1.0 if failure is None else 0.0
    assert equation_reward([completion], nums=[nums], target=[target]) == [want]
    assert equation_failure(completion, nums, target) == failure


def test_equation_reward_details():
    ans = "<answer>44 + 19 - 35</answer>"
    # the first answer counts even inside the thought, and format is not required
    assert equation_reward(["try " + ans + "</think>\n<answer>1</answer>"], [N], [T]) == [1.0]
    assert equation_reward([ans], nums=[(44, 19, 35)], target=[28.0]) == [1.0]
    assert equation_reward([ans], nums=[["a", 1]], target=[28]) == [0.0]  # bad column
    chat = [{"role": "assistant", "content": OK + ans}]  # TRL's conversational format
    assert equation_reward([chat], nums=[N], target=[T]) == [1.0]


THOUGHT_CASES = [
    ("a" * 1000 + "</think>\n<answer>1</answer>", 0.0),
    ("a" * 1001 + "</think>\n<answer>1</answer>", 1.0),
    ("  \n" + "a" * 1000 + "\n\t </think>", 0.0),  # stripped before counting
    ("\n".join(["a" * 99] * 11) + "</think>", 1.0),  # multi-line: DOTALL departure
    ("a" * 5000, 0.0),  # never closed
    ("a" * 1001 + "<think></think>", 1.0),  # first </think> closes it
]


@pytest.mark.parametrize("completion, want", THOUGHT_CASES, ids=lambda v: repr(v)[:30])
def test_thought_len_reward(completion, want):
    assert thought_len_reward([completion]) == [want]


HOSTILE = [
    "a" * MB,
    "<" * MB,
    "<think>" * (MB // 7),
    "x</think>\n<answer>" + "</answer>x" * (MB // 10),
    "x</think>\n<answer>" + "(" * 10_000 + "1" + ")" * 10_000 + "</answer>",
    "x</think>\n<answer>44**19**35</answer>",
    "x" * MB + "</think>\n<answer>" + "1+" * 499 + "1</answer>",
]


@pytest.mark.parametrize("completion", HOSTILE, ids=lambda v: repr(v)[:30])
@pytest.mark.parametrize("func", list(REWARD_FUNCS.values()), ids=list(REWARD_FUNCS))
def test_hostile_input_is_fast(func, completion):
    timings = []
    for _ in range(5):  # the fastest of a few runs: robust to a busy test machine
        start = time.perf_counter()
        func([completion], nums=[N], target=[T])
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.010


# ---- fuzzing -----------------------------------------------------------------------------

FRAGMENTS = ["<think>", "</think>", "<answer>", "</answer>", "\n", "<", "/", "think>",
             "answer>", " ", "1", "44", "+", "-", "*", "/", "(", ")", ".", "٣", "\x00", "x"]  # fmt: skip
texts = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=5), max_size=30).map("".join)
# Mostly well-formed skeletons with small perturbations, so both outcomes are common.
near_valid = st.tuples(
    texts,
    st.sampled_from(["</think>\n<answer>", "</think>\n\n<answer>", "</think><answer>"]),
    texts,
    st.sampled_from(["</answer>", "</answer>\n", "</answer>\n\n", "</answer> ", ""]),
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(texts | near_valid, min_size=1, max_size=8),
    st.lists(st.integers(0, 100), min_size=2, max_size=6),
)
def test_rewards_never_raise_and_are_fast(completions, nums):
    n = len(completions)
    for func in REWARD_FUNCS.values():
        start = time.perf_counter()
        out = func(completions, nums=[nums] * n, target=[24] * n, prompts=[""] * n)
        assert time.perf_counter() - start < 0.1  # a catastrophic case takes seconds
        assert len(out) == n and all(r in (0.0, 1.0) for r in out)


@settings(max_examples=1000, deadline=None)
@given(texts | near_valid)
def test_format_agrees_with_tutorial_regex(completion):
    assert format_reward([completion])[0] == float(bool(ORACLE.match("<think>" + completion)))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32))
def test_solver_answers_score_full_marks(seed):
    p = next(countdown.generate(1, seed=seed))
    eq = countdown.solve(p.nums, p.target)
    completion = f"Let me see.</think>\n<answer>{eq}</answer>"
    assert format_reward([completion]) == [1.0]
    assert equation_reward([completion], nums=[list(p.nums)], target=[p.target]) == [1.0]


# ---- loading and combining ---------------------------------------------------------------


def test_load_reward_funcs(tmp_path: Path):
    custom = tmp_path / "my_rewards.py"
    custom.write_text("def brevity(completions, **kw):\n    return [0.5 for _ in completions]\n")
    loaded = load_reward_funcs(
        ["format", f"{custom}:brevity", "r1zero.task.rewards:equation_reward"]
    )
    assert [name for name, _ in loaded] == ["format", "brevity", "equation_reward"]
    assert loaded[1][1](["x"]) == [0.5]
    for bad, msg in [
        ("formt", "did you mean 'format'"),
        (f"{tmp_path}/nope.py:f", "file not found"),
        (f"{custom}:missing", "has no function 'missing'"),
        ("no_such_pkg.mod:f", "module not found"),
        ("r1zero.task.rewards:TOLERANCE", "has no function"),
    ]:
        with pytest.raises(ValueError, match=msg):
            load_reward_funcs([bad])
    with pytest.raises(ValueError, match="named twice"):
        load_reward_funcs(["format", "format"])


def test_combine():
    per = {"format": [1.0, 0.0, 1.0], "equation": [1.0, 0.0, 0.0]}
    assert combine(per) == [2.0, 0.0, 1.0]
    assert combine(per, [0.5, 2.0]) == [2.5, 0.0, 0.5]
    assert combine({"a": [1.0, None], "b": [float("nan"), 1.0]}) == [1.0, 1.0]
    assert combine({}) == []
    with pytest.raises(ValueError, match="reward_weights has 1 entries"):
        combine(per, [1.0])
    with pytest.raises(ValueError, match="different lengths"):
        combine({"a": [1.0], "b": [1.0, 0.0]})


HOSTILE_TARGETS = ["1e10000000", "1e30000000", "1e-999999999", "1/0", 10**100_000,
                   float("nan"), float("inf"), None, True, "28; import os"]  # fmt: skip


@pytest.mark.parametrize(
    "target",
    HOSTILE_TARGETS,
    ids=lambda v: "huge int" if isinstance(v, int) and v.bit_length() > 9000 else repr(v)[:24],
)
def test_hostile_target_scores_zero_fast(target):
    """A target of "1e10000000" took 10 s to score; "1e-999999999" never finished (issue 21)."""
    good = OK + "<answer>44 + 19 - 35</answer>"
    t0 = time.perf_counter()
    assert equation_reward([good], nums=[[44, 19, 35]], target=[target]) == [0.0]
    assert equation_failure(good, [44, 19, 35], target) == "wrong_value"
    assert (time.perf_counter() - t0) * 1000 < 50  # the bound is 10 ms; margin for a busy CPU
    assert equation_reward([good], nums=[[44, 19, 35]], target=["28"]) == [1.0]
