"""Hostile report inputs and their timings (docs/report.md, "Hostile input").

    python -m r1zero.report.hostile        # prints the two tables of that section

``BAD_LINES`` are completions-file lines the report must skip and count (tests use them too);
``main`` times ``split_completion`` on ``<answer>`` loops that never close, a build of one step
of 128 such 16 KB completions, and a build of a one-step run with each bad line appended.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from pathlib import Path

from r1zero.report.build import build_report
from r1zero.report.detectors import split_completion
from r1zero.report.synthetic import write_synthetic_run

BAD_LINES: dict[str, str] = {
    "lone surrogate": '{"completion": "a\\ud800b", "reward": 0}',
    "nested 100k deep": '{"completion": "x", "rewards": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "int over 4,300 digits": '{"completion": "x", "length": ' + "9" * 5000 + "}",
    "non-string completion": '{"completion": ["not", "text"], "reward": 1.0}',
    "string length": '{"completion": "x", "length": "12"}',
    "hostile target 1e30000000": '{"completion": "<answer>1</answer>", "nums": [1], "target": "1e30000000"}',
    "hostile target 1/0": '{"completion": "<answer>1</answer>", "nums": [1], "target": "1/0"}',
    "huge integer target": '{"completion": "<answer>1</answer>", "nums": [1], "target": 1' + "0" * 4000 + "}",
    "not UTF-8": b"\xff\xfe".decode("latin-1"),
    "not an object": "[1, 2, 3]",
}  # fmt: skip
"""name -> line; "not UTF-8" is written as latin-1 bytes, the others as UTF-8."""

LOOP_UNIT = "<answer>44 + 19 = 63 "


def encoded(name: str) -> bytes:
    return BAD_LINES[name].encode("latin-1" if name == "not UTF-8" else "utf-8")


def _loop_step_build(root: Path) -> float:
    run = write_synthetic_run(root / "loops", steps=1, num_prompts=1)
    f = run / "completions" / "step-000001.jsonl.gz"
    row = json.loads(gzip.open(f, "rt", encoding="utf-8").readline())
    row["completion"] = LOOP_UNIT * 800  # ~16 KB, as a repetition loop writes
    with gzip.open(f, "wt", encoding="utf-8") as g:
        g.write((json.dumps(row) + "\n") * 128)
    t0 = time.perf_counter()
    build_report([run], root / "loops.html", workers=1)
    return time.perf_counter() - t0


def _bad_line_build(root: Path, name: str) -> tuple[float, str]:
    run = write_synthetic_run(root / name.replace(" ", "-").replace("/", "-"), steps=1)
    with gzip.open(run / "completions" / "step-000001.jsonl.gz", "ab") as g:
        g.write(encoded(name) + b"\n")
    t0 = time.perf_counter()
    stats = build_report([run], run / "r.html", workers=1)
    skipped = stats["skipped"][0]
    return time.perf_counter() - t0, f"skipped {skipped['rows']}: {skipped['rows_first']}"


def main() -> None:
    print(f"1-minute load average {os.getloadavg()[0]:.1f}\n")
    print("| case | seconds |\n| --- | --- |")
    for kb in (16, 64, 200):
        text = LOOP_UNIT * (kb * 1024 // len(LOOP_UNIT))
        t0 = time.perf_counter()
        split_completion(text)
        print(
            f"| split_completion, {kb} KB of unclosed <answer> | {time.perf_counter() - t0:.4f} |"
        )
    with tempfile.TemporaryDirectory() as tmp:
        print(f"| build, one step of 128 x 16 KB loops | {_loop_step_build(Path(tmp)):.2f} |\n")
        print("| line | seconds | result |\n| --- | --- | --- |")
        for name in BAD_LINES:
            seconds, what = _bad_line_build(Path(tmp), name)
            print(f"| {name} | {seconds:.2f} | {what} |")


if __name__ == "__main__":
    main()
