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
import tempfile
from collections.abc import Callable, Sequence
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


def check_rows(
    rows: list[dict],
    *,
    source: str,
    skip_malformed: bool = False,
    labels: list[str] | None = None,
    unparsed: Sequence[str] = (),
) -> Loaded:
    """Validate every row; raise DataError naming the first malformed rows as an editor
    shows them (``labels``: "line 5" for JSON lines, else "row 5", counted from 1), or drop
    them with ``skip_malformed``. ``unparsed`` are lines that were not JSON at all, already
    labelled; they count as malformed rows. An empty result is always an error."""
    if labels is None or len(labels) != len(rows):
        labels = [f"row {i + 1}" for i in range(len(rows))]
    good: list[dict] = []
    errors: list[str] = list(unparsed)
    for label, row in zip(labels, rows, strict=True):
        fixed, why = validate_row(row) if isinstance(row, dict) else (None, "not a mapping")
        if fixed is None:
            errors.append(f"{label}: {why}")
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


@dataclass
class _JsonLines:
    """A JSON-lines file read once: the editor line number of each row that parsed, the
    lines that did not (labelled), and the text of the good lines; ``cleaned`` when that
    text differs from the file's (lines dropped)."""

    labels: list[str]
    unparsed: list[str]
    good_text: str
    cleaned: bool


def _is_array_of_objects(text: str) -> bool:
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, list) and all(isinstance(r, dict) for r in data)


def _scan_json_lines(path: Path) -> _JsonLines | None:
    """Find the lines ``datasets`` would choke on (it names neither line nor row); None for
    a JSON array file, which ``datasets`` reads whole."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(f"{str(path)!r} line {line}: not UTF-8 text") from None
    if text.lstrip().startswith("[") and _is_array_of_objects(text):
        return None
    labels, unparsed, good = [], [], []
    lines = text.rstrip().split("\n")
    inner_blank = any(not line.strip() for line in lines)
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:  # JSONDecodeError, or an integer over 4,300 digits
            where = f", column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
            unparsed.append(f"line {lineno}: not JSON ({getattr(e, 'msg', 'too long')}{where})")
            continue
        if not isinstance(row, dict):
            unparsed.append(f"line {lineno}: not a JSON object, got {_short(row)}")
            continue
        labels.append(f"line {lineno}")
        good.append(line)
    return _JsonLines(
        labels, unparsed, "".join(ln + "\n" for ln in good), bool(unparsed) or inner_blank
    )


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
    ``Jiayi-Pan/Countdown-Tasks-3to4`` (needs the network or the hub cache). Errors name
    JSON lines by their line number, other rows by their 1-based position."""
    path = Path(path_or_id).expanduser()
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path_or_id!r} is an empty file")
    scan = None
    if path.is_file() and path.suffix.lower() in (".json", ".jsonl"):
        scan = _scan_json_lines(path)
    if scan is not None and not scan.labels and not scan.unparsed:
        raise DataError(f"{path_or_id!r} has no rows (only blank lines)")
    if scan is not None and not scan.labels:
        check_rows(
            [], source=repr(path_or_id), unparsed=scan.unparsed, skip_malformed=skip_malformed
        )
    if scan is not None and scan.cleaned:
        # Only the lines that parsed, blank lines dropped (they break datasets' pandas
        # fallback); read in a throw-away folder so no cache of it outlives the call.
        with tempfile.TemporaryDirectory() as tmp:
            good = Path(tmp) / path.name
            good.write_text(scan.good_text, encoding="utf-8")
            columns, rows = _load(str(good), path_or_id, split, tmp)
    else:
        columns, rows = _load(path_or_id, path_or_id, split, cache_dir)
    missing = [c for c in ("nums", "target") if c not in columns]
    if missing:
        raise DataError(f"{path_or_id!r} lacks column(s) {missing}; it has {columns}")
    return check_rows(
        rows,
        source=repr(path_or_id),
        skip_malformed=skip_malformed,
        labels=scan.labels if scan is not None else None,
        unparsed=scan.unparsed if scan is not None else [],
    )


def _load(
    where: str, path_or_id: str, split: str, cache_dir: str | None
) -> tuple[list[str], list[dict]]:
    """Column names and rows of :func:`_read`, its many exception types turned into one
    DataError line."""
    try:
        ds = _read(where, split, cache_dir)
        return ds.column_names, ds.to_list()
    except DataError:
        raise
    except Exception as e:  # datasets raises many types; the user needs one clear line
        if "corresponds to no data" in str(e):  # datasets' words for a split with no rows
            raise DataError(f"{path_or_id!r} has no rows in split {split!r}") from e
        raise DataError(f"cannot load {path_or_id!r} (split {split!r}): {_first_line(e)}") from e


def generate_rows(
    n: int, seed: int, *, progress: Callable[[int], None] | None = None, **generator_kwargs: Any
) -> list[dict]:
    """``n`` seeded, solvable rows from :func:`r1zero.task.countdown.generate`;
    ``progress(1)`` after each (50,000 take about a minute on a CPU core)."""
    rows = []
    for p in countdown.generate(n, seed=seed, **generator_kwargs):
        rows.append(p.row())
        if progress is not None:
            progress(1)
    return rows


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
