"""Chart specs for the page's inline SVG plotter (report.js draws them).

A chart is a dict: ``id``, ``title``, ``section``, ``pct`` (rates on a 0-1 axis shown as %),
``series`` (``label``, ``color``, ``dash``, ``dots``, ``points`` = [[step, value], ...]),
``markers`` (clickable points linking to samples) and ``vlines`` (labelled steps).
With one run, series are told apart by colour; with several, colour is the run, dash the series.
"""

from __future__ import annotations

import math
from typing import Any

from r1zero.report.detectors import first_stable_step
from r1zero.report.load import FAILURES, Run, StepSummary

PALETTE = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")

# (section, title, [(key, label), ...], pct). Keys are metrics.jsonl keys (docs/run-folder.md).
METRIC_CHARTS: list[tuple[str, str, list[tuple[str, str]], bool]] = [
    ("Rewards", "Total reward", [("reward", "mean"), ("reward_std", "std")], False),
    ("Rewards", "Accuracy (equation reward 1)",
     [("accuracy", "train batch"), ("eval/accuracy", "held-out eval"), ("eval/pass_at_k", "eval pass@k")], True),
    ("Rewards", "Format rate", [("format_rate", "train batch"), ("eval/format_rate", "held-out eval")], True),
    ("Length", "Completion length (tokens)",
     [("completions/mean_length", "mean"), ("completions/p90_length", "p90"),
      ("completions/max_length", "max")], False),
    ("Length", "Truncation rate (no EOS)", [("completions/clipped_ratio", "truncated")], True),
    ("Optimization", "KL to reference (k3, per token)", [("kl", "kl")], False),
    ("Optimization", "Entropy (per token)", [("entropy", "entropy")], False),
    ("Optimization", "Clip fraction (tokens)", [("clip_ratio", "clipped")], True),
    ("Optimization", "Learning rate", [("learning_rate", "lr")], False),
    ("Optimization", "Grad norm", [("grad_norm", "grad norm")], False),
    ("Optimization", "Loss", [("loss", "loss")], False),
    ("Optimization", "Zero-std groups (no learning signal)", [("frac_reward_zero_std", "fraction")], True),
    ("Throughput", "Tokens per second", [("tokens_per_s", "tokens/s")], False),
    ("Throughput", "Seconds per stage",
     [("step_time", "step"), ("time/rollout", "rollout"), ("time/rewards", "rewards"),
      ("time/logprobs", "logprobs"), ("time/update", "update")], False),
]  # fmt: skip

DETECTOR_CHARTS: list[tuple[str, list[tuple[str, str]], bool]] = [
    ("Reflection and aha candidates", [("rate/reflection", "reflection"), ("rate/aha", "aha")], True),
    ("Language mixing", [("rate/mixing", "mixing"), ("think_zh_share", "think mainly Chinese")], True),
    ("Repetition", [("rate/repetition", "repetition"), ("rate/loop_truncated", "loop + truncated")], True),
    ("Repetition scores (means)", [("mean_ngram_repeat", "n-gram repeat"), ("mean_compression", "zlib ratio")], False),
    ("Why the equation reward was 0", [(f"failure/{r}", r.replace("_", " ")) for r in FAILURES], True),
]  # fmt: skip


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(f"{v:.5g}")


def _style(run_i: int, series_i: int, n_runs: int) -> tuple[str, str]:
    if n_runs == 1:
        return PALETTE[series_i % len(PALETTE)], ""
    return PALETTE[run_i % len(PALETTE)], DASHES[series_i % len(DASHES)]


def _chart(cid: str, section: str, title: str, pct: bool) -> dict[str, Any]:
    return {
        "id": cid,
        "section": section,
        "title": title,
        "pct": pct,
        "series": [],
        "markers": [],
        "vlines": [],
    }


def format_stable_steps(runs: list[Run], steps: list[list[StepSummary]]) -> list[int | None]:
    """Per run: the first step from which format_rate stays >= 0.9 (metrics, else completions)."""
    out = []
    for run, summaries in zip(runs, steps, strict=True):
        pts = [(m["step"], m.get("format_rate")) for m in run.metrics if "format_rate" in m]
        if not pts:
            pts = [(s.step, s.stats.get("format_rate")) for s in summaries]
        out.append(first_stable_step([p[0] for p in pts], [p[1] for p in pts]) if pts else None)
    return out


def build_charts(runs: list[Run], steps: list[list[StepSummary]]) -> list[dict[str, Any]]:
    n = len(runs)
    stable = format_stable_steps(runs, steps)
    charts = []
    for k, (section, title, keys, pct) in enumerate(METRIC_CHARTS):
        chart = _chart(f"m{k}", section, title, pct)
        for ri, run in enumerate(runs):
            for si, (key, label) in enumerate(keys):
                rows = run.evals if key.startswith("eval/") else run.metrics
                pts = [[r["step"], _num(r.get(key))] for r in rows if key in r]
                if any(p[1] is not None for p in pts):
                    color, dash = _style(ri, si, n)
                    chart["series"].append({
                        "label": label if n == 1 else f"{run.name} · {label}", "color": color,
                        "dash": dash, "dots": key.startswith("eval/"), "points": pts, "shape": "os^"[si % 3],
                    })  # fmt: skip
            if title == "Format rate" and stable[ri] is not None:
                chart["vlines"].append(
                    {
                        "x": stable[ri],
                        "color": _style(ri, 0, n)[0],
                        "label": f">= 0.9 from {stable[ri]}",
                    }
                )
        charts.append(chart)
    for k, (title, keys, pct) in enumerate(DETECTOR_CHARTS):
        chart = _chart(f"d{k}", "Behaviour (detectors on every completion)", title, pct)
        for ri, (run, summaries) in enumerate(zip(runs, steps, strict=True)):
            for si, (key, label) in enumerate(keys):
                pts = [[s.step, _num(s.stats.get(key))] for s in summaries]
                if any(p[1] for p in pts) or (pts and not key.startswith("failure/")):
                    color, dash = _style(ri, si, n)
                    label = label if n == 1 else f"{run.name} · {label}"
                    chart["series"].append(
                        {"label": label, "color": color, "dash": dash, "dots": False, "points": pts}
                    )
            if title.startswith("Reflection"):
                color = _style(ri, 1, n)[0]
                for s in summaries:
                    if s.stats.get("aha_count"):
                        href = f"#flag=aha&run={ri}&smin={s.step}&smax={s.step}"
                        tip = (
                            f"{run.name}: {s.stats['aha_count']} aha candidate(s) at step {s.step}"
                        )
                        chart["markers"].append(
                            {"x": s.step, "y": _num(s.stats["rate/aha"]), "href": href, "title": tip, "color": color}
                        )  # fmt: skip
        charts.append(chart)
    return [c for c in charts if c["series"]]
