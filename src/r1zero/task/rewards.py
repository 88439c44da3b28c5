"""Rule-based rewards for Countdown, with TRL's signature ``f(completions, **columns)``.

Each completion is scored as ``"<think>" + completion`` because the prompt's assistant
prefix already opened the tag. Semantics follow the reference tutorial (Datawhale-R1 /
mini-r1), with two conscious departures:

- Its ``<think>(.*?)</think>`` and ``<answer>(.*?)</answer>`` lacked ``re.DOTALL``, so a
  multi-line thought never earned the length reward and a multi-line answer never earned
  the equation reward although the format reward accepted both. We follow the intent:
  the first think / answer block, newlines included.
- It scored the answer with ``eval``; we use :mod:`r1zero.task.arith` (exact fractions,
  bounded input, no unary minus, no decimals, no ``**``). The tolerance is exact:
  ``|value - target| < 1/100000``.

Every reward is linear-time and never raises on any text: a 1 MB completion scores in
well under 10 ms.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import math
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from r1zero.config import ConfigError
from r1zero.task.arith import ArithError, evaluate, numbers_used, parse, target_value

TOLERANCE = Fraction(1, 100_000)
MIN_THOUGHT_CHARS = 1_000
"""thought_len pays 1 when the stripped thought is strictly longer than this."""

FORMAT_REGEX = r"^<think>([^<]*(?:<(?!/?think>)[^<]*)*)<\/think>\n<answer>([\s\S]*?)<\/answer>$"
"""The tutorial's format check (with re.DOTALL). Linear, but Python's regex engine needs
~100 ms per hostile megabyte, so :func:`format_reward` uses an equivalent str-method test;
tests/test_rewards.py checks the two agree."""


def _text(completion: Any) -> str:
    """TRL passes plain strings, or message lists for conversational datasets."""
    if isinstance(completion, str):
        return "<think>" + completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return "<think>" + str(completion[-1].get("content", ""))
    return "<think>" + str(completion)


def _block(text: str, tag: str) -> str | None:
    """Content of the first ``<tag>...</tag>``; same as ``re.search(r"<tag>(.*?)</tag>",
    text, re.DOTALL)`` but plainly linear."""
    start = text.find(f"<{tag}>")
    if start < 0:
        return None
    start += len(tag) + 2
    end = text.find(f"</{tag}>", start)
    return None if end < 0 else text[start:end]


def _formatted(text: str) -> bool:
    """Same answer as ``re.match(FORMAT_REGEX, text, re.DOTALL)``: the think content is
    everything up to the first ``</think>`` and must hold no ``<think>``; then exactly
    ``</think>\n<answer>``; the text ends in ``</answer>``, or ``</answer>\n`` because ``$``
    also matches before one final newline."""
    if not text.startswith("<think>"):
        return False
    k = text.find("</think>", 7)
    if k < 0 or text.find("<think>", 7, k) >= 0:
        return False
    if not text.startswith("</think>\n<answer>", k):
        return False
    answer_start = k + len("</think>\n<answer>")
    end = len(text) - 1 if text.endswith("\n") else len(text)
    return text.endswith("</answer>", 0, end) and end - len("</answer>") >= answer_start


def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 for ``<think>...</think>\\n<answer>...</answer>`` with no nested think tags."""
    return [1.0 if _formatted(_text(c)) else 0.0 for c in completions]


def equation_failure(completion: Any, nums: list[int], target: int) -> str | None:
    """Why the equation reward is 0: "no_answer", "not_parseable", "wrong_numbers" or
    "wrong_value" (also division by zero, and a target that is no bounded number, see
    :func:`r1zero.task.arith.target_value`); None when it is 1."""
    answer = _block(_text(completion), "answer")
    if answer is None:
        return "no_answer"
    try:
        tree = parse(answer)
    except ArithError:
        return "not_parseable"
    if Counter(numbers_used(tree)) != Counter(int(x) for x in nums):
        return "wrong_numbers"
    try:
        value, goal = evaluate(tree), target_value(target)
    except ArithError:
        return "wrong_value"
    return None if abs(value - goal) < TOLERANCE else "wrong_value"


def _equation_ok(completion: Any, nums: Any, target: Any) -> bool:
    try:
        return equation_failure(completion, nums, target) is None
    except (TypeError, ValueError, OverflowError):  # malformed nums/target column
        return False


def equation_reward(
    completions: list[Any], nums: list[list[int]], target: list[int], **kwargs: Any
) -> list[float]:
    """1.0 if the first answer uses exactly ``nums`` (each once) and equals ``target``."""
    return [
        1.0 if _equation_ok(c, n, t) else 0.0
        for c, n, t in zip(completions, nums, target, strict=True)
    ]


def thought_len_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 if the stripped first think block is longer than 1,000 characters."""
    out = []
    for c in completions:
        thought = _block(_text(c), "think")
        out.append(1.0 if thought is not None and len(thought.strip()) > MIN_THOUGHT_CHARS else 0.0)
    return out


REWARD_FUNCS: dict[str, Callable[..., list[float]]] = {
    "format": format_reward,
    "equation": equation_reward,
    "thought_len": thought_len_reward,
}


def _load_one(spec: str) -> tuple[str, Callable[..., list[float]]]:
    if ":" not in spec:
        if spec in REWARD_FUNCS:
            return spec, REWARD_FUNCS[spec]
        close = difflib.get_close_matches(spec, REWARD_FUNCS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"unknown reward function {spec!r}; {hint}use one of {sorted(REWARD_FUNCS)}, "
            "'package.module:function' or 'path/to/file.py:function'"
        )
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise ValueError(f"reward function file not found: {where!r} (from {spec!r})")
        mod_spec = importlib.util.spec_from_file_location(f"r1zero_reward_{path.stem}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise ValueError(f"cannot import reward function file {where!r}")
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)  # importing the user's own file is the point
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as e:
            raise ValueError(f"reward function module not found: {where!r} ({e})") from None
    func = getattr(module, name, None)
    if not callable(func):
        raise ValueError(f"{where!r} has no function {name!r} (from reward spec {spec!r})")
    return name, func


def load_reward_funcs(names: list[str]) -> list[tuple[str, Callable[..., list[float]]]]:
    """Resolve names ("format", "pkg.mod:fn", "path/file.py:fn") to (name, function)
    pairs; the name labels the reward's metrics, so duplicates are refused."""
    out = [_load_one(spec) for spec in names]
    seen = [n for n, _ in out]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise ValueError(f"reward function named twice: {dupes}; use reward_weights instead")
    return out


def combine(
    rewards_per_func: dict[str, list[float]], weights: list[float] | None = None
) -> list[float]:
    """Weighted sum over functions per completion (TRL's ``reward_weights``, default all 1).
    A None or NaN reward (a function abstaining on that sample) adds nothing, like TRL's
    nansum; a completion on which every function abstained is NaN (unscorable: the
    advantage estimators leave it out of its group's statistics and give it 0), as in TRL."""
    names = list(rewards_per_func)
    if weights is None:
        weights = [1.0] * len(names)
    if len(weights) != len(names):
        raise ValueError(
            f"reward_weights has {len(weights)} entries but there are {len(names)} "
            f"reward functions {names}"
        )
    lengths = {len(v) for v in rewards_per_func.values()}
    if len(lengths) > 1:
        raise ValueError(f"reward functions returned different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    total, scored = [0.0] * n, [False] * n
    for w, name in zip(weights, names, strict=True):
        for i, r in enumerate(rewards_per_func[name]):
            if r is not None and not math.isnan(r):
                total[i] += w * r
                scored[i] = True
    return [t if ok else math.nan for t, ok in zip(total, scored, strict=True)]


def score(
    reward_funcs: list[tuple[str, Callable]], completions: list[str], rows: list[dict]
) -> dict[str, torch.Tensor]:
    """Each reward function with TRL's signature: (completions, **dataset_columns).

    None (a function abstaining on a completion, TRL's convention) becomes NaN; a wrong
    number of rewards or a non-number is a one-line error naming the function (a
    ConfigError: the fix is in reward_funcs)."""
    columns = {k: [r[k] for r in rows] for k in rows[0]}
    return {
        name: _as_rewards(name, fn(completions, **columns), len(completions))
        for name, fn in reward_funcs
    }


def _as_rewards(name: str, values: Any, n: int) -> torch.Tensor:
    """(n,) float32 rewards from what a reward function returned; None -> NaN."""
    try:
        out = [math.nan if v is None else float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(
            f"reward function {name!r} must return a list of numbers or None, got {str(values)[:80]}"
        ) from None
    if len(out) != n:
        raise ConfigError(
            f"reward function {name!r} returned {len(out)} rewards for {n} completions"
        )
    return torch.tensor(out, dtype=torch.float32)
