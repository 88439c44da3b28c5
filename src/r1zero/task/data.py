"""Countdown datasets: load (local file, folder, ``save_to_disk`` dir or hub id), generate,
validate, and select the tutorial's 50,000-row 90/10 split.

Rows are plain dicts with at least ``nums`` (list of 2-6 ints) and ``target`` (int); other
columns are kept. Validation is strict where a wrong value would silently poison training
(strings, bools, 3.5, missing values) and lenient where the meaning is unambiguous: an
integer-valued float such as ``3.0`` is accepted and converted to ``3``, because Arrow and
pandas turn a whole int column into floats as soon as one value is a float or missing.
``nums`` must also be non-negative with at most 12 digits: answers cannot contain unary
minus or longer literals (see :mod:`r1zero.task.arith`), so such a row could never score.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1zero.task import countdown
from r1zero.task.arith import MAX_DIGITS

log = logging.getLogger(__name__)

MIN_NUMS, MAX_NUMS = 2, 6
SHOWN_ERRORS = 5
"""How many malformed rows an error message names."""

_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".arrow": "arrow"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class DataError(ValueError):
    """A dataset that cannot be used; the message is one line that says what to fix."""


@dataclass
class Loaded:
    """What :func:`load_rows` returns: the valid rows, and how many malformed rows were
    dropped (only non-zero with ``skip_malformed=True``), with the first few reasons."""

    rows: list[dict]
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def _as_int(x: Any) -> int | None:
    """``x`` as an int if it is one (or an integer-valued float); bools are not numbers here."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float) and math.isfinite(x) and x.is_integer():
        return int(x)
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):  # numpy scalars
        try:
            return _as_int(x.item())
        except (TypeError, ValueError):
            return None
    return None


def _short(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_row(row: dict) -> tuple[dict | None, str | None]:
    """(normalized row, None) or (None, reason); the reason names the field and the value."""
    nums, target = row.get("nums"), row.get("target")
    if not isinstance(nums, (list, tuple)) or not nums:
        return None, f"nums must be a non-empty list of integers, got {_short(nums)}"
    ints = [_as_int(x) for x in nums]
    if any(x is None for x in ints):
        return None, f"nums must be a list of integers, got {_short(nums)}"
    if not MIN_NUMS <= len(ints) <= MAX_NUMS:
        return None, f"nums must have {MIN_NUMS} to {MAX_NUMS} numbers, got {len(ints)}"
    if any(not 0 <= x < 10**MAX_DIGITS for x in ints):
        return None, f"nums must be non-negative with at most {MAX_DIGITS} digits, got {ints}"
    t = _as_int(target)
    if t is None:
        return None, f"target must be an integer, got {_short(target)}"
    return {**row, "nums": ints, "target": t}, None


def check_rows(rows: list[dict], *, source: str, skip_malformed: bool = False) -> Loaded:
    """Validate every row; raise DataError naming the first malformed rows by index, or
    drop them with ``skip_malformed``. An empty result is always an error."""
    good: list[dict] = []
    errors: list[str] = []
    for i, row in enumerate(rows):
        fixed, why = validate_row(row) if isinstance(row, dict) else (None, "not a mapping")
        if fixed is None:
            errors.append(f"row {i}: {why}")
        else:
            good.append(fixed)
    shown = "; ".join(errors[:SHOWN_ERRORS]) + ("; ..." if len(errors) > SHOWN_ERRORS else "")
    if errors and not skip_malformed:
        raise DataError(
            f"{len(errors)} malformed row(s) in {source}: {shown} "
            "(fix them, or pass skip_malformed=True to drop them)"
        )
    if errors:
        log.warning("skipped %d malformed row(s) in %s: %s", len(errors), source, shown)
    if not good:
        raise DataError(f"no usable rows in {source}" + (" (all malformed)" if errors else ""))
    return Loaded(good, len(errors), errors[:SHOWN_ERRORS])


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def _read(path_or_id: str, split: str, cache_dir: str | None) -> Any:
    """The ``datasets`` object behind a path or hub id (imported lazily: it is slow)."""
    import datasets

    path = Path(path_or_id).expanduser()
    if path.is_file():
        builder = _BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DataError(
                f"unsupported file type {path.suffix!r} for {path_or_id!r}; "
                f"use one of {sorted(_BUILDERS)}"
            )
        # A single file is a single split, whatever ``split`` says.
        return datasets.load_dataset(
            builder, data_files=str(path), split="train", cache_dir=cache_dir
        )
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise DataError(f"{path_or_id!r} has no split {split!r}; it has {list(ds)}")
                ds = ds[split]
            return ds
        # A folder of data files (e.g. a downloaded hub repo): datasets infers the format
        # and the splits from file names (train-*.parquet, test-*.parquet, ...).
        return datasets.load_dataset(str(path), split=split, cache_dir=cache_dir)
    if path.suffix.lower() in _BUILDERS or not _HUB_ID.match(path_or_id):
        raise DataError(f"no such data file or folder: {path_or_id!r}")
    return datasets.load_dataset(path_or_id, split=split, cache_dir=cache_dir)


def load_rows(
    path_or_id: str,
    *,
    split: str = "train",
    skip_malformed: bool = False,
    cache_dir: str | None = None,
) -> Loaded:
    """Load and validate Countdown rows from a parquet/json/jsonl/arrow file, a
    ``save_to_disk`` folder, a folder of data files, or a hub id such as
    ``Jiayi-Pan/Countdown-Tasks-3to4`` (needs the network or the hub cache)."""
    path = Path(path_or_id).expanduser()
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path_or_id!r} is an empty file")
    try:
        ds = _read(path_or_id, split, cache_dir)
    except DataError:
        raise
    except Exception as e:  # datasets raises many types; the user needs one clear line
        if "corresponds to no data" in str(e):  # datasets' words for a split with no rows
            raise DataError(f"{path_or_id!r} has no rows in split {split!r}") from e
        raise DataError(f"cannot load {path_or_id!r} (split {split!r}): {_first_line(e)}") from e
    missing = [c for c in ("nums", "target") if c not in ds.column_names]
    if missing:
        raise DataError(f"{path_or_id!r} lacks column(s) {missing}; it has {ds.column_names}")
    return check_rows(ds.to_list(), source=repr(path_or_id), skip_malformed=skip_malformed)


def generate_rows(n: int, seed: int, **generator_kwargs: Any) -> list[dict]:
    """``n`` seeded, solvable rows from :func:`r1zero.task.countdown.generate`."""
    return [p.row() for p in countdown.generate(n, seed=seed, **generator_kwargs)]


def select(
    rows: list[dict], *, seed: int, n: int = 50_000, test_size: float = 0.1
) -> tuple[list[dict], list[dict]]:
    """The tutorial's selection: shuffle with ``seed``, keep ``n`` rows (all if fewer), then
    split into train and test, test being ``ceil(test_size * kept)`` rows as in
    ``datasets.train_test_split``. Deterministic, but not datasets' exact permutation."""
    if not 0 <= test_size < 1:
        raise ValueError(f"test_size must be in [0, 1), got {test_size}")
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    kept = [rows[i] for i in order[:n]]
    n_test = math.ceil(test_size * len(kept))
    if len(kept) - n_test < 1:
        raise DataError(f"{len(kept)} rows leave nothing to train on with test_size={test_size}")
    return kept[: len(kept) - n_test], kept[len(kept) - n_test :]


def write_jsonl(rows: list[dict], path: str | Path) -> Path:
    """One JSON object per line, UTF-8, parent folders created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
