"""Chart specs for the page's inline SVG plotter (report-charts.js draws them).

A chart is a dict: ``id``, ``title``, ``section``, ``pct`` (rates on a 0-1 axis shown as %),
``log`` (a log-scale toggle is offered), ``series`` (``label``, ``color``, ``dash``, ``dots``,
``run``, ``link``, ``hidden``, ``points`` = [[step, value], ...]), ``markers`` (clickable points
linking to samples) and ``vlines`` (labelled steps). A series' ``link`` is the sample filter a
click on the chart opens at that step (``flag=repetition``, ``q=guess``; "" = every sample of
the step). Colour tells the runs apart, dash the series (one run: both tell the series apart).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

from r1zero.report.detectors import first_stable_step
from r1zero.report.load import FAILURES, Run, StepSummary

PALETTE = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")
MAX_MARKERS = 40
"""Aha markers per run and chart: steps are binned so at most this many circles are drawn."""
TOP_PHRASES = 8
"""Reflection phrases plotted one by one (the most frequent over the run)."""

Key = tuple[str, str, str]
"""(metrics or stats key, series label, sample filter a click opens)."""

# (section, title, keys, pct, log). Keys are metrics.jsonl keys (docs/run-folder.md).
METRIC_CHARTS: list[tuple[str, str, list[Key], bool, bool]] = [
    ("Rewards", "Total reward", [("reward", "mean", ""), ("reward_std", "std", "")], False, False),
    ("Rewards", "Accuracy (equation reward 1)",
     [("accuracy", "train batch", "flag=correct"), ("eval/accuracy", "held-out eval", ""),
      ("eval/pass_at_k", "eval pass@k", "")], True, False),
    ("Rewards", "Format rate",
     [("format_rate", "train batch", "flag=fail:no_answer"), ("eval/format_rate", "held-out eval", "")], True, False),
    ("Length", "Completion length (tokens)",
     [("completions/mean_length", "mean", ""), ("completions/p90_length", "p90", ""),
      ("completions/max_length", "max", "")], False, True),
    ("Length", "Truncation rate (no EOS)", [("completions/clipped_ratio", "truncated", "flag=truncated")], True, False),
    ("Optimization", "KL to reference (k3, per token)", [("kl", "kl", "")], False, True),
    ("Optimization", "Entropy (per token)", [("entropy", "entropy", "")], False, False),
    ("Optimization", "Clip fraction (tokens)", [("clip_ratio", "clipped", "")], True, False),
    ("Optimization", "Learning rate", [("learning_rate", "lr", "")], False, True),
    ("Optimization", "Grad norm", [("grad_norm", "grad norm", "")], False, True),
    ("Optimization", "Loss", [("loss", "loss", "")], False, False),
    ("Optimization", "Zero-std groups (no learning signal)", [("frac_reward_zero_std", "fraction", "")], True, False),
    ("Throughput", "Tokens per second", [("tokens_per_s", "tokens/s", "")], False, False),
    ("Throughput", "Seconds per stage",
     [("step_time", "step", ""), ("time/rollout", "rollout", ""), ("time/rewards", "rewards", ""),
      ("time/logprobs", "logprobs", ""), ("time/update", "update", "")], False, True),
]  # fmt: skip
HIDDEN = {"completions/max_length"}
"""Series drawn only after a click on their legend entry (the max would squash the mean)."""

BEHAVIOUR = "Behaviour (detectors on every completion)"
DETECTOR_CHARTS: list[tuple[str, list[Key], bool]] = [
    ("Reflection and aha candidates",
     [("rate/reflection", "reflection", "flag=reflection"), ("rate/aha", "aha", "flag=aha")], True),
    ("Accuracy with and without reflection",
     [("acc/reflection", "with reflection", "flag=reflection"), ("acc/no_reflection", "without", "")], True),
    ("Language mixing",
     [("rate/mixing", "mixing", "flag=mixing"), ("think_zh_share", "think mainly Chinese", "")], True),
    ("Repetition",
     [("rate/repetition_finished", "repetition, not truncated", "flag=repetition"),
      ("rate/loop_truncated", "loop + truncated", "flag=loop_truncated")], True),
    ("n-gram repeat (mean over every completion)", [("mean_ngram_repeat", "n-gram repeat", "flag=repetition")], False),
    ("Why the equation reward was 0",
     [(f"failure/{r}", r.replace("_", " "), f"flag=fail:{r}") for r in FAILURES], True),
]  # fmt: skip


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(f"{v:.6g}")


def _style(run_i: int, series_i: int, n_runs: int) -> tuple[str, str]:
    if n_runs == 1:
        return PALETTE[series_i % len(PALETTE)], DASHES[series_i % len(DASHES)]
    return PALETTE[run_i % len(PALETTE)], DASHES[series_i % len(DASHES)]


def _chart(cid: str, section: str, title: str, pct: bool, log: bool = False) -> dict[str, Any]:
    return {"id": cid, "section": section, "title": title, "pct": pct, "log": log,
            "series": [], "markers": [], "vlines": []}  # fmt: skip


def _series(chart: dict, run: Run, ri: int, si: int, n: int, key: Key, pts: list) -> None:
    """Append one series unless it has no value at all (no legend entry without a line)."""
    if not any(p[1] is not None for p in pts):
        return
    color, dash = _style(ri, si, n)
    k, label, link = key
    chart["series"].append({
        "label": label if n == 1 else f"{run.name} · {label}", "color": color, "dash": dash,
        "dots": k.startswith("eval/"), "points": pts, "shape": "os^"[si % 3], "run": ri,
        "link": link, "hidden": k in HIDDEN,
    })  # fmt: skip


def format_stable_steps(runs: list[Run], steps: list[list[StepSummary]]) -> list[int | None]:
    """Per run: the first step from which format_rate stays >= 0.9 (metrics, else completions)."""
    out = []
    for run, summaries in zip(runs, steps, strict=True):
        pts = [(m["step"], m.get("format_rate")) for m in run.metrics if "format_rate" in m]
        if not pts:
            pts = [(s.step, s.stats.get("format_rate")) for s in summaries]
        out.append(first_stable_step([p[0] for p in pts], [p[1] for p in pts]) if pts else None)
    return out


def _reward_keys(runs: list[Run]) -> list[Key]:
    names = sorted({k for r in runs for m in r.metrics for k in m if k.startswith("rewards/")})
    return [(k, k.split("/", 1)[1], "") for k in names]


def _metric_charts(runs: list[Run], stable: list[int | None]) -> list[dict[str, Any]]:
    n = len(runs)
    specs = list(METRIC_CHARTS)
    specs.insert(1, ("Rewards", "Reward per function (mean)", _reward_keys(runs), False, False))
    charts = []
    for k, (section, title, keys, pct, log) in enumerate(specs):
        chart = _chart(f"m{k}", section, title, pct, log)
        for ri, run in enumerate(runs):
            for si, key in enumerate(keys):
                rows = run.evals if key[0].startswith("eval/") else run.metrics
                pts = [[r["step"], _num(r.get(key[0]))] for r in rows if key[0] in r]
                _series(chart, run, ri, si, n, key, pts)
            if title == "Format rate" and stable[ri] is not None:
                chart["vlines"].append({"x": stable[ri], "color": _style(ri, 0, n)[0], "run": ri,
                                        "label": f">= 0.9 from {stable[ri]}"})  # fmt: skip
        charts.append(chart)
    return charts


def aha_markers(run: Run, ri: int, summaries: list[StepSummary], color: str) -> list[dict]:
    """At most MAX_MARKERS circles: steps binned evenly, each bin marked at its busiest step
    and linked to the aha candidates of the whole bin."""
    hits = [s for s in summaries if s.stats.get("aha_count")]
    if not hits:
        return []
    lo, hi = hits[0].step, hits[-1].step
    width = max(1, math.ceil((hi - lo + 1) / MAX_MARKERS))
    bins: dict[int, list[StepSummary]] = {}
    for s in hits:
        bins.setdefault((s.step - lo) // width, []).append(s)
    out = []
    for b, group in sorted(bins.items()):
        top = max(group, key=lambda s: s.stats["aha_count"])
        a, z = lo + b * width, min(hi, lo + (b + 1) * width - 1)
        count = sum(s.stats["aha_count"] for s in group)
        where = f"step {top.step}" if a == z else f"steps {a}-{z}"
        out.append({"x": top.step, "y": _num(top.stats["rate/aha"]), "color": color, "run": ri,
                    "href": f"#flag=aha&run={ri}&smin={a}&smax={z}",
                    "title": f"{run.name}: {count} aha candidate(s) at {where}"})  # fmt: skip
    return out


def _top_phrases(summaries: list[StepSummary]) -> list[Key]:
    total: dict[str, float] = {}
    for s in summaries:
        for k, v in s.stats.items():
            if k.startswith("phrase/"):
                total[k] = total.get(k, 0.0) + v * s.stats["n"]
    top = sorted(total, key=lambda k: -total[k])[:TOP_PHRASES]
    return [(k, k[7:], "flag=reflection&q=" + quote(k[7:])) for k in top]


def _user_keys(phrases: list[str]) -> list[Key]:
    def link(p: str) -> str:
        return "rx=" + quote(p[3:]) if p.startswith("re:") else "q=" + quote(p)

    return [(f"user/{p}", p, link(p)) for p in phrases]


def _detector_charts(
    runs: list[Run], steps: list[list[StepSummary]], phrases: list[str]
) -> list[dict[str, Any]]:
    n = len(runs)
    specs = list(DETECTOR_CHARTS)
    if phrases:
        specs.insert(0, ("Your phrases (share of every completion)", _user_keys(phrases), True))
    specs.insert(2, ("Reflection by phrase", [], True))
    charts = []
    for k, (title, keys, pct) in enumerate(specs):
        chart = _chart(f"d{k}", BEHAVIOUR, title, pct)
        for ri, (run, summaries) in enumerate(zip(runs, steps, strict=True)):
            run_keys = _top_phrases(summaries) if title == "Reflection by phrase" else keys
            for si, key in enumerate(run_keys):
                pts = [[s.step, _num(s.stats.get(key[0]))] for s in summaries]
                if any(p[1] for p in pts) or not key[0].startswith(("failure/", "phrase/")):
                    _series(chart, run, ri, si, n, key, pts)
            if title.startswith("Reflection and"):
                chart["markers"] += aha_markers(run, ri, summaries, _style(ri, 1, n)[0])
        charts.append(chart)
    return charts


def build_charts(
    runs: list[Run], steps: list[list[StepSummary]], phrases: list[str] = ()
) -> list[dict[str, Any]]:
    """Every chart that has data: metrics curves first, then the detectors' curves."""
    stable = format_stable_steps(runs, steps)
    charts = _metric_charts(runs, stable) + _detector_charts(runs, steps, list(phrases))
    return [c for c in charts if c["series"]]
