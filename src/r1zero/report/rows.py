"""Typed rows from run-folder files: what the report reads is checked before anything uses it.

Run folders get shared, so a completions or metrics file may hold anything. A line is parsed
with NaN and infinities turned into ``None`` (the page's JSON must stay parseable), and a row
whose JSON is broken or deeper than Python's recursion limit, holds an integer past 4,300
digits, a lone surrogate, or a field of the wrong type (a non-string completion, a string
``group`` or ``length``, a target that is not a bounded integer) is rejected with a one-line
reason. The caller skips it and counts it on the page instead of stopping the build.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_ABS_INT = 10**15
"""Largest |target|, |number| or |step| the report accepts: far above any Countdown value, and
small enough that the scorer's exact arithmetic on it stays instant."""


class BadRow(ValueError):
    """One line of a run-folder file the report skips; the message says why."""


@dataclass
class Skipped:
    """Malformed lines of one file or a whole run: how many, and the first reason."""

    count: int = 0
    first: str | None = None

    def add(self, where: str, why: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = f"{where}: {why}"

    def merge(self, other: Skipped) -> None:
        self.count += other.count
        if self.first is None:
            self.first = other.first


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None  # 1e999 parses as inf


def parse_line(line: str) -> Any:
    """json.loads with NaN / Infinity / overflowing floats as None; every failure a BadRow."""
    try:
        obj = json.loads(line, parse_constant=lambda _: None, parse_float=_finite)
    except RecursionError:
        raise BadRow("JSON nested too deep") from None
    except ValueError as e:  # JSONDecodeError, and int() past the 4,300-digit limit
        raise BadRow(f"not JSON ({str(e).split(':')[0][:80]})") from None
    if "\\u" in line and "\\ud" in line.lower():  # only an escape can make a lone surrogate
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRow("a string holds a lone surrogate (not UTF-8)") from None
    return obj


def read_lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of a .jsonl or .jsonl.gz file; text None for a line that is not UTF-8.

    A truncated final line (no newline: a live run writing it right now) is not yielded, and a
    gzip file still being written ends quietly where its data ends.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for i, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):
                    return
                try:
                    yield i, raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield i, None
    except (OSError, EOFError, zlib.error):
        return


def _number(row: dict, key: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise BadRow(f"{key} is {type(v).__name__}, not a number")
    if abs(v) > 1e300:
        raise BadRow(f"{key} is out of range")
    return float(v)


def _int(row: dict, key: str, *, required: bool = False) -> int | None:
    v = row.get(key)
    if type(v) is int and -MAX_ABS_INT <= v <= MAX_ABS_INT:  # the common case, fast
        return v
    if v is None and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadRow(f"{key} is {type(v).__name__}, not an integer")
    if abs(v) > MAX_ABS_INT:
        raise BadRow(f"{key} is out of range (|{key}| > 1e15)")
    return v


def _ints(nums: list) -> list[int]:
    if all(type(n) is int and -MAX_ABS_INT <= n <= MAX_ABS_INT for n in nums):
        return nums
    bad = next(n for n in nums if type(n) is not int or abs(n) > MAX_ABS_INT)
    raise BadRow(
        f"nums holds {type(bad).__name__ if type(bad) is not int else 'an integer out of range'}"
    )


def completion_row(obj: Any) -> dict[str, Any]:
    """A completions row with every field the report reads, typed; BadRow if it cannot be."""
    if not isinstance(obj, dict):
        raise BadRow(f"row is {type(obj).__name__}, not an object")
    completion, prompt = obj.get("completion"), obj.get("prompt", "")
    if not isinstance(completion, str):
        raise BadRow(f"completion is {type(completion).__name__}, not a string")
    if not isinstance(prompt, str):
        raise BadRow(f"prompt is {type(prompt).__name__}, not a string")
    nums = obj.get("nums")
    if nums is not None and not isinstance(nums, list):
        raise BadRow("nums is not a list")
    rewards = obj.get("rewards") or {}
    if not isinstance(rewards, dict):
        raise BadRow("rewards is not an object")
    truncated = obj.get("truncated", False)
    if not isinstance(truncated, bool):
        raise BadRow("truncated is not true or false")
    return {
        "step": _int(obj, "step"),
        "group": _int(obj, "group"),
        "nums": None if nums is None else _ints(nums),
        "target": _int(obj, "target"),
        "prompt": prompt,
        "completion": completion,
        "rewards": {str(k): _number(rewards, k) for k in rewards},
        "reward": _number(obj, "reward"),
        "advantage": _number(obj, "advantage"),
        "length": _int(obj, "length"),
        "truncated": truncated,
    }


def metrics_row(obj: Any) -> dict[str, Any]:
    """A metrics.jsonl line: an integer ``step`` >= 0 and its numeric values (others dropped)."""
    if not isinstance(obj, dict):
        raise BadRow(f"line is {type(obj).__name__}, not an object")
    step = _int(obj, "step", required=True)
    if step < 0:
        raise BadRow("step is negative")
    out: dict[str, Any] = {"step": step}
    for k, v in obj.items():
        if k != "step" and (v is None or (isinstance(v, int | float) and not isinstance(v, bool))):
            out[str(k)] = None if v is None or not math.isfinite(v) or abs(v) > 1e300 else v
    return out


def read_rows(path: Path, typer: Any, skipped: Skipped) -> list[tuple[int, dict[str, Any]]]:
    """(0-based line index, row) of every good row of ``path`` through ``typer``
    (completion_row, metrics_row); the bad ones are counted in ``skipped``."""
    rows = []
    for i, text in read_lines(path):
        try:
            if text is None:
                raise BadRow("not UTF-8")
            if text.strip():
                rows.append((i - 1, typer(parse_line(text))))
        except BadRow as e:
            skipped.add(f"{path.name} line {i}", str(e))
    return rows
