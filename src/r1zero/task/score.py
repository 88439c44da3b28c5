"""Score saved completions offline: the same rewards as training, applied to a file.

Three inputs are read, told apart by their content rather than their names:

- JSON lines with ``completion``, ``nums`` and ``target`` (other fields are kept);
- the same gzip-compressed, such as a run's own ``completions/step-NNNNNN.jsonl.gz``;
- the tutorial's sample files (Datawhale-R1 / mini-r1 ``completion_samples.txt`` and
  ``success_completion_samples.txt``): each sample is written as ``"\\n\\n==============\\n"``
  followed by ``"<think>" + completion``. They hold no ``nums`` or ``target``, so only
  ``format`` and ``thought_len`` can be scored; ``equation`` is None there.

Output is the same rows with one field per builtin reward (``format``, ``equation``,
``thought_len``). Useful to re-score samples after a reward change, or to check that a
reward function agrees with what a run logged. A target that is no bounded number
(``"1e-999999999"``, ``"1/0"``, NaN) is refused with its line number: see
:func:`r1zero.task.arith.target_value`.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from r1zero.task.arith import ArithError, target_value
from r1zero.task.rewards import REWARD_FUNCS

SAMPLE_SEPARATOR = "\n\n==============\n"
"""What the tutorial writes before each sample in completion_samples.txt."""
ACCEPTS = (
    "r1zero score reads JSON lines with completion, nums, target (plain or .gz, such as a "
    "run's completions/step-NNNNNN.jsonl.gz) or the tutorial's completion_samples.txt"
)
_GZIP_MAGIC = b"\x1f\x8b"


def _open_text(path: Path) -> IO[str]:
    """The file as text, gunzipped when it starts with gzip's magic bytes."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == _GZIP_MAGIC:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return path.open(encoding="utf-8")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line); decoding and gzip errors name the line they hit."""
    lineno = 0
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                yield lineno, line
    except UnicodeDecodeError:
        raise ValueError(f"{path}:{lineno + 1}: not UTF-8 text; {ACCEPTS}") from None
    except (EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: broken gzip file after line {lineno} ({e})") from None


def _check_target(path: Path, lineno: int, row: dict) -> None:
    try:
        target_value(row["target"])
    except ArithError as e:
        raise ValueError(f"{path}:{lineno}: {e}") from None


def read_jsonl(path: str | Path, *, required: tuple[str, ...] = ()) -> list[dict]:
    """Rows of a JSON-lines file, plain or gzip (blank lines skipped); ValueError names the
    bad line. A ``target`` among ``required`` must be a bounded number."""
    path = Path(path)
    rows = []
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:  # JSONDecodeError, or an integer over 4,300 digits
            msg = getattr(e, "msg", str(e).split(";")[0])
            raise ValueError(f"{path}:{lineno}: not JSON ({msg}); {ACCEPTS}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object")
        missing = [k for k in required if k not in row]
        if missing:
            raise ValueError(f"{path}:{lineno}: missing field(s) {missing}")
        if "target" in required:
            _check_target(path, lineno, row)
        rows.append(row)
    return rows


def _is_samples_file(path: Path) -> bool:
    """A tutorial sample file: its first bytes are the separator (or ``<think>``)."""
    try:
        with _open_text(path) as fh:
            head = fh.read(len(SAMPLE_SEPARATOR) + 8)
    except (UnicodeDecodeError, EOFError, OSError):
        return False
    return head.startswith((SAMPLE_SEPARATOR, "<think>"))


def read_samples(path: str | Path) -> list[dict]:
    """The tutorial's completion_samples.txt as rows ``{"completion", "sample"}``; the
    ``<think>`` the tutorial put in front of each completion is taken off again."""
    path = Path(path)
    text = "".join(line for _, line in _lines(path))
    rows = []
    for i, chunk in enumerate(c for c in text.split(SAMPLE_SEPARATOR) if c.strip()):
        completion = chunk.removeprefix("<think>")
        rows.append({"sample": i + 1, "completion": completion})
    return rows


def _write(rows: list[dict], out_path: Path) -> None:
    """JSON lines; a row whose text cannot be UTF-8 (a lone surrogate) is written escaped."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as fh:
        for row in rows:
            line = json.dumps(row, ensure_ascii=False)
            try:
                line.encode("utf-8")
            except UnicodeEncodeError:
                line = json.dumps(row)
            fh.write(line + "\n")


def score_file(in_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Score every row and write it out; return ``{"rows": n, <reward>: mean, ...}``
    (means are None for an empty file, and ``equation`` for a tutorial sample file)."""
    in_path, out_path = Path(in_path), Path(out_path)
    samples = _is_samples_file(in_path)
    if samples:
        rows = read_samples(in_path)
    else:
        rows = read_jsonl(in_path, required=("completion", "nums", "target"))
    columns: dict[str, list] = {"completions": [r["completion"] for r in rows]}
    if not samples:
        columns["nums"] = [r["nums"] for r in rows]
        columns["target"] = [r["target"] for r in rows]
    summary: dict[str, Any] = {"rows": len(rows)}
    for name, func in REWARD_FUNCS.items():
        if samples and name == "equation":
            scores: list[Any] = [None] * len(rows)  # the samples name no numbers or target
            summary[name] = None
        else:
            scores = func(**columns)
            summary[name] = sum(scores) / len(scores) if scores else None
        for row, s in zip(rows, scores, strict=True):
            row[name] = s
    if samples:
        summary["source"] = "tutorial completion samples (no nums/target: equation not scored)"
    _write(rows, out_path)
    return summary
