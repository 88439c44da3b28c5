"""Render README.md's speed-and-memory section from a ``r1zero bench`` JSON (no number by hand).

    python scripts/bench_readme.py benchmarks/results/bench-<date>-<gpu>.json [--readme README.md]

Replaces the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from r1zero.bench.model import load_shape
from r1zero.bench.report import table_lines

START, END = "<!-- bench:start -->", "<!-- bench:end -->"

INTRO = """## Speed and memory (`r1zero bench`)

`r1zero bench` builds a random-weight model of a real shape (`--shape qwen2.5-3b`, also `-0.5b`,
`-1.5b`, `-7b`; nothing is downloaded), forces every completion to its full length, and times the
rollout engines, the update (MFU = 6 N tokens / time / 989 TFLOP/s), the whole GRPO step of the
reference batch with the code of `r1zero train`, its peak memory, the LoRA variant, and TRL's
GRPOTrainer on the same work (`--sections trl`, needs `trl==1.16.0`). It writes
`benchmarks/results/bench-<date>-<gpu>.json` and prints this table.
`r1zero bench --shape tiny --device cpu --quick` is the smoke test.

On a GPU, `r1zero train` generates with the fast engine (`rollout_engine: fast`: static KV cache,
CUDA-graphed decode, the layers' norms and MLPs compiled once for all layers, about 20 s on the
first call of a 3B model); `torch_compile: true` compiles the same blocks for training (the
`32c` rows below)."""


def section(result: dict, json_path: str) -> str:
    lines = table_lines(result)
    head = lines[:2]
    body = [x for x in lines[2:] if x.strip() and not x.startswith("note:")]
    notes = [x.removeprefix("note: ") for x in lines if x.startswith("note:")]
    out = [INTRO, "", *(f"{h}  " for h in head), f"([JSON]({json_path}))", "", *body]
    out += ["", gaps(result)]
    if notes:
        out += ["", "Notes from the run:", *(f"- {n}" for n in notes)]
    return "\n".join(out).strip()


HBM_BYTES_PER_S = 3.0e12
"""The H100's sustained memory bandwidth (the issue's basis for its 47,000 tok/s floor)."""


def decode_floor_s(r: dict) -> float:
    """Seconds to read the bf16 weights and the KV cache once per decode step, for the step's
    rollout (every sequence decoding ``completion_len`` tokens)."""
    shape, w = load_shape(r["shape"]), r["workload"]
    seqs, p, c = w["prompts"] * w["num_generations"], w["prompt_len"], w["completion_len"]
    head_dim = shape.get("head_dim") or shape["hidden_size"] // shape["num_attention_heads"]
    kv_per_token = 2 * shape["num_hidden_layers"] * shape["num_key_value_heads"] * head_dim * 2
    weight_bytes = 2 * r["train"]["n_params"]
    kv_bytes = seqs * kv_per_token * (p + c / 2)  # the mean context over the decode
    return c * (weight_bytes + kv_bytes) / HBM_BYTES_PER_S


def gaps(r: dict) -> str:
    """Each stage of the measured step against its physical floor, the largest gap first."""
    step, train, w = r["step"], r["train"], r["workload"]
    n, peak = train["n_params"], train["peak_flops"]
    tokens = w["tokens_per_step"]
    floors = {
        "update": (step["update_s"], 8 * n * tokens / peak, "8N FLOPs a token at peak"),
        "rollout": (
            step["rollout_s"],
            decode_floor_s(r),
            "weights and KV cache read once per decode step at 3.0 TB/s",
        ),
        "reference logprobs": (step["logprobs_s"], 2 * n * tokens / peak, "2N FLOPs a token"),
    }
    parts = sorted(floors.items(), key=lambda kv: kv[1][1] - kv[1][0])
    text = ", ".join(
        f"{k} {t:.2f} s against a floor of {f:.2f} s ({why})" for k, (t, f, why) in parts
    )
    steps_per_hour = 3600 / r["step_s"]
    return (
        f"Gaps to the floor, largest first: {text}. At {r['step_s']:.1f} s a step, the "
        f"reference experiment's 450 steps take {450 / steps_per_hour:.2f} h on this GPU."
    )


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
