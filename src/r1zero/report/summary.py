"""What a reader needs first: per run, the headline (did it learn, where it broke, what it cost),
the summary table row, and the per-step counts behind the sample browser's true rates."""

from __future__ import annotations

from typing import Any

from r1zero.report.detectors import FLAGS
from r1zero.report.load import FAILURES, Run, StepSummary

COUNT_KEYS: tuple[str, ...] = (*FLAGS, "correct", *(f"fail:{r}" for r in FAILURES))
"""Flag filters of the browser whose count over every completion the page carries per step."""


def _peak(points: list[tuple[int, float]], ri: int, flag: str) -> dict[str, Any] | None:
    """The step where a rate peaked (the first such step), with a link to its samples."""
    points = [(s, v) for s, v in points if v is not None]
    if not points or max(v for _, v in points) <= 0:
        return None
    step, value = max(points, key=lambda p: (p[1], -p[0]))
    return {"step": step, "value": value, "href": f"#flag={flag}&run={ri}&smin={step}&smax={step}"}


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def headline(run: Run, ri: int, summaries: list[StepSummary]) -> dict[str, Any]:
    """Held-out accuracy first -> last eval, training accuracy over the first and last ten
    steps, the steps where truncation and loops peaked, throughput and wall time."""
    evals = [e for e in run.evals if e.get("eval/accuracy") is not None]
    acc = [(m["step"], m.get("accuracy")) for m in run.metrics if m.get("accuracy") is not None]
    trunc = [(m["step"], m.get("completions/clipped_ratio")) for m in run.metrics]
    if not any(v for _, v in trunc):
        trunc = [(s.step, s.stats.get("rate/truncated")) for s in summaries]
    times = [m.get("step_time") for m in run.metrics if m.get("step_time") is not None]
    return {
        "eval": [(e["step"], e["eval/accuracy"]) for e in (evals[0], evals[-1])] if evals else None,
        "train": (_mean([v for _, v in acc[:10]]), _mean([v for _, v in acc[-10:]]))
        if len(acc) >= 2
        else None,
        "truncation": _peak(trunc, ri, "truncated"),
        "loops": _peak(
            [(s.step, s.stats.get("rate/loop_truncated")) for s in summaries], ri, "loop_truncated"
        ),  # fmt: skip
        "tokens_per_s": _mean([m.get("tokens_per_s") for m in run.metrics]),
        "wall_s": sum(times) if times else None,
    }


def summary_row(run: Run, summaries: list[StepSummary], stable: int | None) -> dict[str, Any]:
    """One row of the summary table (short headers: it must fit 1280 px)."""
    last = run.metrics[-1] if run.metrics else {}
    best = max(run.evals, key=lambda e: e.get("eval/accuracy") or -1, default={})
    n = sum(s.stats["n"] for s in summaries)

    def total(key: str) -> int:
        return round(sum(s.stats[key] * s.stats["n"] for s in summaries))

    return {
        "run": run.name,
        "status": "done" if run.done else "running",
        "last step": last.get("step", max((s.step for s in summaries), default=None)),
        "reward": last.get("reward"),
        "accuracy": last.get("accuracy"),
        "best eval": best.get("eval/accuracy"),
        "at step": best.get("step"),
        "format ≥ 0.9 from": stable,
        "completions": n,
        "reflection": total("rate/reflection") / n if n else None,
        "aha": total("rate/aha"),
        "mixing": total("rate/mixing") / n if n else None,
        "repetition": total("rate/repetition") / n if n else None,
        "loop + trunc.": total("rate/loop_truncated"),
    }


def step_counts(summaries: list[StepSummary]) -> dict[str, list[int]]:
    """Per step of one run: ``steps``, ``n`` and the count of each COUNT_KEYS filter, so the
    browser can say what share of *every* completion a filter matches, not of the kept ones."""
    out: dict[str, list[int]] = {"steps": [], "n": [], **{k: [] for k in COUNT_KEYS}}
    for s in summaries:
        n = s.stats["n"]
        out["steps"].append(s.step)
        out["n"].append(n)
        failed = 0
        for k in COUNT_KEYS:
            if k.startswith("fail:"):
                c = round(s.stats.get(f"failure/{k[5:]}", 0.0) * n)
                failed += c
            elif k != "correct":
                c = round(s.stats.get(f"rate/{k}", 0.0) * n)
            else:
                continue
            out[k].append(c)
        out["correct"].append(n - failed)
    return out
