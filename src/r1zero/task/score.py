"""Score saved completions offline: the same rewards as training, applied to a file.

Input is JSON lines with ``completion``, ``nums`` and ``target`` (other fields are kept);
output is the same rows with one field per builtin reward (``format``, ``equation``,
``thought_len``). Useful to re-score samples after a reward change, or to check that a
reward function agrees with what a run logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from r1zero.task.data import write_jsonl
from r1zero.task.rewards import REWARD_FUNCS


def read_jsonl(path: str | Path, *, required: tuple[str, ...] = ()) -> list[dict]:
    """Rows of a JSON-lines file (blank lines skipped); ValueError names the bad line."""
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            missing = [k for k in required if k not in row]
            if missing:
                raise ValueError(f"{path}:{lineno}: missing field(s) {missing}")
            rows.append(row)
    return rows


def score_file(in_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Score every row and write it out; return ``{"rows": n, <reward>: mean, ...}``
    (means are None for an empty file)."""
    rows = read_jsonl(in_path, required=("completion", "nums", "target"))
    columns = {
        "completions": [r["completion"] for r in rows],
        "nums": [r["nums"] for r in rows],
        "target": [r["target"] for r in rows],
    }
    summary: dict[str, Any] = {"rows": len(rows)}
    for name, func in REWARD_FUNCS.items():
        scores = func(**columns)
        for row, s in zip(rows, scores, strict=True):
            row[name] = s
        summary[name] = sum(scores) / len(scores) if scores else None
    write_jsonl(rows, out_path)
    return summary
