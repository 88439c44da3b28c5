"""Long run: does a 300-step training run's memory stay flat?

    python tests/reliability/long_run_memory.py [--steps 300] [--out benchmarks/results/memory-DATE.json]

Runs ``r1zero.train.loop.train`` in this process on a fast random-init tiny Qwen2 (tiny
batches: 2 prompts x 4 completions of at most 16 tokens) with everything a real run does
switched on: metrics.jsonl, every completion logged, TensorBoard, a checkpoint every 50
steps (2 kept), a held-out evaluation every 100. After every optimizer step (hooked on
``RunLogger.log``) it samples the resident set size with psutil, and every 50 steps the
number of Python objects the garbage collector tracks. Start RSS is taken after step 10
(warm: allocator pools, tokenizer caches and first checkpoint paths exist); drift is end
minus start, and the slope is a least-squares fit over steps 10..end. Exit status 0 when
the drift stays under ``--max_drift_mib``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def _train_args(model: Path, data: Path, out: Path, steps: int) -> list[str]:
    """Tiny batches, everything a real run writes switched on."""
    sys.path.insert(0, str(HERE))
    from tiny_run import tiny_run_args

    return tiny_run_args(
        model, data, out,
        num_samples=200, eval_steps=100, max_completion_length=16, num_generations=4,
        max_steps=steps, learning_rate="1e-3",
        reward_funcs=f"[format, {HERE / 'kill_test.py'}:varied_reward]",
        save_steps=50, save_total_limit=2, report_to="tensorboard", logging_steps=50,
    )  # fmt: skip


class Sampler:
    """Wraps ``RunLogger.log``: after each training row, the RSS; every 50 steps, gc objects."""

    def __init__(self, logs: Any, log: Any) -> None:
        import psutil

        self.logs, self.log, self.proc = logs, log, psutil.Process()
        self.samples: list[dict[str, float]] = []
        self.objects: list[dict[str, int]] = []
        self.t0 = time.perf_counter()
        self.real_log = logs.RunLogger.log

    def __enter__(self) -> Sampler:
        sampler = self

        def sampled_log(logger: Any, step: int, metrics: dict[str, float]) -> None:
            sampler.real_log(logger, step, metrics)
            if not any(k.startswith("eval/") for k in metrics):
                sampler.sample(step)

        self.logs.RunLogger.log = sampled_log
        return self

    def __exit__(self, *exc: Any) -> None:
        self.logs.RunLogger.log = self.real_log

    def sample(self, step: int) -> None:
        rss = self.proc.memory_info().rss / 2**20
        self.samples.append({"step": step, "rss_mib": rss, "s": round(time.perf_counter() - self.t0, 2)})  # fmt: skip
        if step % 50 == 0:
            self.objects.append({"step": step, "gc_objects": len(gc.get_objects())})
            self.log(f"step {step}: RSS {rss:.1f} MiB, {self.objects[-1]['gc_objects']:,} objects")


def run(steps: int, work: Path, *, seed: int = 0, warm_step: int = 10, log=print) -> dict[str, Any]:
    """Train ``steps`` steps in this process; RSS start (after ``warm_step``), end, drift."""
    import torch

    sys.path.insert(0, str(HERE))
    from r1zero.config import load_config
    from r1zero.task.data import generate_rows, write_jsonl
    from r1zero.tiny.build import random_model_folder
    from r1zero.train import logs
    from r1zero.train.loop import train

    torch.set_num_threads(1)
    model = random_model_folder(work / "model", seed=seed)
    data = write_jsonl(generate_rows(200, 1), work / "data.jsonl")
    with Sampler(logs, log) as sampler:
        train(load_config(None, _train_args(model, data, work / "run", steps)))
    samples = sampler.samples
    warm = [s for s in samples if s["step"] >= warm_step]
    start, end = warm[0], warm[-1]
    slope = _slope([s["step"] for s in warm], [s["rss_mib"] for s in warm])
    return {
        "date": time.strftime("%Y-%m-%d"),
        "steps": steps,
        "start_step": start["step"],
        "start_rss_mib": round(start["rss_mib"], 1),
        "end_step": end["step"],
        "end_rss_mib": round(end["rss_mib"], 1),
        "drift_mib": round(end["rss_mib"] - start["rss_mib"], 1),
        "slope_mib_per_100_steps": round(100 * slope, 2),
        "max_rss_mib": round(max(s["rss_mib"] for s in samples), 1),
        "first_rss_mib": round(samples[0]["rss_mib"], 1),
        "gc_objects": sampler.objects,
        "seconds": round(time.perf_counter() - sampler.t0, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}",
        "samples": [{**s, "rss_mib": round(s["rss_mib"], 2)} for s in samples],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--max_drift_mib", type=float, default=20.0)
    ap.add_argument(
        "--out", type=Path, help="JSON path (default benchmarks/results/memory-DATE.json)."
    )
    ap.add_argument("--doc", type=Path, help="Markdown file whose memory section to replace.")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="long-run-") as tmp:
        r = run(a.steps, Path(tmp))
    r["ok"] = r["drift_mib"] < a.max_drift_mib
    out = a.out or HERE.parents[1] / "benchmarks" / "results" / f"memory-{r['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=1))
    print(
        f"memory: {r['steps']} steps; RSS {r['start_rss_mib']} MiB after step {r['start_step']} -> "
        f"{r['end_rss_mib']} MiB after step {r['end_step']}: drift {r['drift_mib']:+.1f} MiB, "
        f"slope {r['slope_mib_per_100_steps']:+.2f} MiB/100 steps, max {r['max_rss_mib']} MiB "
        f"({'PASS' if r['ok'] else 'FAIL'}, {r['seconds']} s)"
    )
    print(f"wrote {out}")
    if a.doc:
        sys.path.insert(0, str(HERE))
        from r1zero.markdown import replace_section

        rel = out.relative_to(HERE.parents[1]) if out.is_relative_to(HERE.parents[1]) else out
        replace_section(a.doc, "<!-- memory:begin -->", "<!-- memory:end -->", markdown(r, a, rel))
    return 0 if r["ok"] else 1


def markdown(r: dict[str, Any], a: argparse.Namespace, out: Path) -> str:
    by_step = {s["step"]: s for s in r["samples"]}
    objs = {o["step"]: o["gc_objects"] for o in r["gc_objects"]}
    lines = [
        f"Generated by `python tests/reliability/long_run_memory.py --steps {a.steps} --doc {a.doc}` on {r['date']} "
        f"({r['machine']}); raw samples in `{out}`; do not edit by hand.",
        "",
        f"RSS after step {r['start_step']} (warm): **{r['start_rss_mib']} MiB**; after step {r['end_step']}: "
        f"**{r['end_rss_mib']} MiB**; drift **{r['drift_mib']:+.1f} MiB**, least-squares slope "
        f"{r['slope_mib_per_100_steps']:+.2f} MiB per 100 steps, peak {r['max_rss_mib']} MiB "
        f"(step 1: {r['first_rss_mib']} MiB). {r['steps']} steps in {r['seconds']} s.",
        "",
        "| step | RSS MiB | Python objects tracked by gc |",
        "| --- | --- | --- |",
    ]
    for step in sorted(set(objs) | {r["start_step"]}):
        if step in by_step:
            lines.append(f"| {step} | {by_step[step]['rss_mib']:.1f} | {objs.get(step, '-')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
