"""Render README.md's speed-and-memory section from a ``r1zero bench`` JSON (no number by hand).

    python scripts/bench_readme.py benchmarks/results/bench-<date>-<gpu>.json [--readme README.md]

Replaces the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from r1zero.bench.report import table_lines

START, END = "<!-- bench:start -->", "<!-- bench:end -->"

INTRO = """## Speed and memory (`r1zero bench`)

`r1zero bench` builds a random-weight model of a real shape (`--shape qwen2.5-3b`, also `-0.5b`,
`-1.5b`, `-7b`; nothing is downloaded), forces every completion to its full length, and times the
rollout engines, the update (MFU = 6 N tokens / time / 989 TFLOP/s), the whole GRPO step of the
reference batch with the code of `r1zero train`, its peak memory, the LoRA variant, and TRL's
GRPOTrainer on the same work (`--sections trl`, needs `trl==1.16.0`). It writes
`benchmarks/results/bench-<date>-<gpu>.json` and prints this table.
`r1zero bench --shape tiny --device cpu --quick` is the smoke test."""


def section(result: dict, json_path: str) -> str:
    lines = table_lines(result)
    head, body = lines[:2], [x for x in lines[2:] if not x.startswith("note:")]
    notes = [x.removeprefix("note: ") for x in lines if x.startswith("note:")]
    out = [INTRO, "", *(f"{h}  " for h in head), f"([JSON]({json_path}))", "", *body]
    if notes:
        out += ["", "Notes from the run:", *(f"- {n}" for n in notes)]
    return "\n".join(out).strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json")
    ap.add_argument("--readme", default="README.md")
    args = ap.parse_args()
    readme = Path(args.readme)
    text = readme.read_text(encoding="utf-8")
    a, b = text.index(START) + len(START), text.index(END)
    block = section(json.loads(Path(args.json).read_text()), args.json)
    readme.write_text(text[:a] + "\n" + block + "\n" + text[b:], encoding="utf-8")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
