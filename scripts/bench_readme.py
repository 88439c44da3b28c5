"""Render README.md's speed-and-memory section from a ``r1zero bench`` JSON (no number by hand).

    python scripts/bench_readme.py benchmarks/results/bench-<date>-<gpu>.json [--readme README.md]

Replaces the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from r1zero.bench.floors import floors
from r1zero.bench.model import load_shape
from r1zero.bench.report import table_lines
from r1zero.markdown import replace_section

START, END = "<!-- bench:start -->", "<!-- bench:end -->"

INTRO = """## Speed and memory (`r1zero bench`)

`r1zero bench` builds a random-weight model of a real shape (`--shape qwen2.5-3b`, also `-0.5b`,
`-1.5b`, `-7b`; nothing is downloaded) and measures three workloads of 16 prompts x 8
completions (`--workload`): `reference` (every completion forced to 512 tokens), `tutorial`
(each completion forced to its own length, drawn once with a fixed seed from a log-normal of
median 450 and sigma 0.9, clipped to [16, 4096]: the Datawhale tutorial's long tail) and
`collapse` (every completion 4,096 tokens). For each it times the rollout engines, the whole
GRPO step with the code of `r1zero train` (rollout, reference log-probs, update), its peak
memory, the LoRA variant, and TRL's GRPOTrainer on the same lengths (`--sections trl`, needs
`trl==1.16.0`); the update's MFU (6 N tokens / time / 989 TFLOP/s) on the reference workload.
A device call holds one workload and a few sections; `--merge` folds the JSONs into one.
`r1zero bench --shape tiny --device cpu --quick` is the smoke test.

On a GPU, `r1zero train` generates with the fast engine (`rollout_engine: fast`: its own KV
cache, CUDA-graphed decode, the layers' norms and MLPs compiled once for all layers; as rows
end, the decode batch compacts into batches of 64, 32, ... rows, and a rollout whose KV cache
would not fit the free memory runs in sub-batches); `torch_compile: true` compiles the same
blocks for training."""


def section(result: dict, json_path: str) -> str:
    """The README block: the header, the tables (blank lines kept between them), the gaps."""
    lines = table_lines(result)
    head = lines[:2]
    notes = [x.removeprefix("note: ") for x in lines if x.startswith("note:")]
    body = [x for x in lines[2:] if not x.startswith("note:")]
    while body and not body[0].strip():
        body = body[1:]
    out = [INTRO, "", *(f"{h}  " for h in head), f"([JSON]({json_path}))", "", *body]
    out += ["", gaps(result)]
    if notes:
        out += ["", "Notes from the run:", *(f"- {n}" for n in notes)]
    return "\n".join(out).strip()


def gaps(r: dict) -> str:
    """Each measured stage of each workload against its physical floor, largest gap first."""
    shape, n = load_shape(r["shape"]), r.get("n_params")
    parts = []
    for name, slot in (r.get("workloads") or {}).items():
        w = slot.get("workload")
        if not w or not n:
            continue
        f = floors(shape, w, n, r.get("device", ""))
        for stage in ("rollout_s", "logprobs_s", "update_s"):
            if slot.get(stage) is not None:
                parts.append((slot[stage] - f[stage], name, stage, slot[stage], f[stage]))
    if not parts:
        return ""
    parts = sorted(parts, reverse=True)[:6]
    text = ", ".join(
        f"{name} {stage.removesuffix('_s').replace('logprobs', 'reference logprobs')} "
        f"{t:.2f} s against {fl:.2f} s"
        for _, name, stage, t, fl in parts
    )
    bw = floors(shape, next(iter(r["workloads"].values()))["workload"], n, r.get("device", ""))
    return (
        f"Largest gaps to the floor: {text}. Floors: the rollout reads the weights and "
        f"the live rows' KV cache once per decode step at {bw['bandwidth'] / 1e12:.1f} TB/s; the "
        f"update 8N FLOPs a token, the reference log-probs 2N, at {bw['peak_flops'] / 1e12:.0f} "
        "TFLOP/s (`python -m r1zero.bench.floors`)."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json")
    ap.add_argument("--readme", default="README.md")
    args = ap.parse_args()
    readme = Path(args.readme)
    block = section(json.loads(Path(args.json).read_text()), args.json)
    replace_section(readme, START, END, block)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
