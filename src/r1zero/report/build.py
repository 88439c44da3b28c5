"""build_report: run folders in, one self-contained HTML file out."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from r1zero.report import html
from r1zero.report.load import (
    TIER_BASE,
    TIER_SAMPLE,
    Run,
    StepSummary,
    load_run,
    summarize_steps,
    user_phrase,
)
from r1zero.report.plots import build_charts, format_stable_steps
from r1zero.report.rows import Skipped
from r1zero.report.summary import headline, step_counts, summary_row


def _names(paths: list[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
    return [f"{n} ({i})" if names.count(n) > 1 else n for i, n in enumerate(names)]


def flatten(cfg: Any, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"grpo.beta": "0.001", ...}; lists and scalars as compact JSON."""
    if isinstance(cfg, dict) and cfg:
        out: dict[str, str] = {}
        for k, v in cfg.items():
            out |= flatten(v, f"{prefix}{k}.")
        return out
    return {prefix[:-1]: json.dumps(cfg, ensure_ascii=False, default=str)} if prefix else {}


def config_diff(configs: list[dict]) -> list[tuple[str, list[str | None]]]:
    """Keys whose values differ between runs (a missing key counts as a value)."""
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    return [(k, [f.get(k) for f in flat]) for k in keys if len({f.get(k) for f in flat}) > 1]


def _pack_samples(
    runs: list[Run], steps: list[list[StepSummary]], *, budget: int, max_text: int
) -> tuple[str, dict[str, int]]:
    """Kept samples as base64(gzip(JSON)), most important first, until a budget is reached.

    ``budget`` caps the base64 text, ``max_text`` the JSON the browser will hold after inflating.
    """
    cands = [
        (x["tier"], x["rank"], s.step, ri, x)
        for ri, summaries in enumerate(steps)
        for s in summaries
        for x in s.samples
    ]
    cands.sort(key=lambda c: c[:4])
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip container
    parts = [comp.compress(b'{"samples":[')]
    size = raw = 0
    prompts: dict[str, int] = {}
    kept = {"flagged": 0, "stratified": 0, "dropped_flagged": 0, "dropped_stratified": 0}
    full = False
    for tier, _, _, ri, x in cands:
        is_strat = tier in (TIER_BASE, TIER_SAMPLE)
        if not full:
            item = {k: v for k, v in x.items() if k not in ("tier", "rank")}
            item["r"] = ri
            item["p"] = prompts.setdefault(x["p"], len(prompts))
            blob = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
            full = size * 4 // 3 > budget or raw + len(blob) > max_text
        if full:  # the budget is spent: drop the rest (they come later in priority order)
            kept["dropped_stratified" if is_strat else "dropped_flagged"] += 1
            continue
        parts.append(comp.compress((b"," if raw else b"") + blob))
        size += len(parts[-1])
        raw += len(blob) + 1
        kept["stratified" if is_strat else "flagged"] += 1
    tail = json.dumps(list(prompts), ensure_ascii=False, separators=(",", ":")).encode()
    parts += [comp.compress(b'],"prompts":' + tail + b"}"), comp.flush()]
    kept["json_bytes"] = raw + len(tail)
    return base64.b64encode(b"".join(parts)).decode("ascii"), kept


class ReportError(ValueError):
    """Bad input to the report (an output path, a phrase): the message is one line to print."""


def check_output(out: Path) -> None:
    """Refuse an output that is a folder, or an existing file that is not an HTML page (a run's
    metrics.jsonl, a config, anyone's notes): the report replaces what it writes."""
    if out.is_dir():
        raise ReportError(f"-o {out} is a folder; give a file name, e.g. -o {out / 'report.html'}")
    if out.exists() or out.is_symlink():
        try:
            with open(out, "rb") as f:
                head = f.read(64).lstrip().lower()
        except OSError as e:
            raise ReportError(f"-o {out}: cannot read the existing file ({e.strerror})") from None
        if not head.startswith((b"<!doctype html", b"<html")):
            raise ReportError(
                f"-o {out} exists and is not an HTML report; refusing to overwrite it "
                "(choose another -o, e.g. report.html)"
            )


def _write_atomic(out: Path, text: str) -> None:
    """Write next to ``out`` under a fresh name, then rename: a browser reloading mid-build
    never sees half a page, and no planted ``out.tmp`` (or symlink) is written through."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _skipped(runs: list[Run], steps: list[list[StepSummary]]) -> list[dict[str, Any]]:
    """Per run: malformed lines skipped in metrics/eval files and in completion files."""
    out = []
    for run, summaries in zip(runs, steps, strict=True):
        rows = Skipped()
        for s in summaries:
            rows.merge(s.skipped)
        out.append({"run": run.name, "metrics": run.skipped.count, "metrics_first": run.skipped.first,
                    "rows": rows.count, "rows_first": rows.first})  # fmt: skip
    return out


def _read_runs(
    run_dirs: list[Path],
    *,
    max_samples_per_step: int,
    workers: int,
    cache: dict | None,
    user: tuple,
) -> tuple[list[Run], list[list[StepSummary]]]:
    """The runs, and per run its step summaries (every step file of all runs in one pool)."""
    paths = [Path(p) for p in run_dirs]
    runs = [load_run(p, n) for p, n in zip(paths, _names(paths), strict=True)]
    files = [f for r in runs for f in r.step_files]
    flat = summarize_steps(
        files,
        max_samples_per_step=max_samples_per_step,
        workers=workers,
        cache=cache,
        user_phrases=user,
    )
    steps, i = [], 0
    for r in runs:
        steps.append(flat[i : i + len(r.step_files)])
        i += len(r.step_files)
    return runs, steps


def build_report(
    run_dirs: list[Path],
    out: Path,
    *,
    max_samples_per_step: int = 12,
    title: str | None = None,
    max_mb: float = 18.0,
    max_text_mb: float = 32.0,
    workers: int = 2,
    refresh_s: int | None = None,
    cache: dict | None = None,
    phrases: list[str] = (),
) -> dict[str, Any]:
    """Write one self-contained HTML report for ``run_dirs`` (overlaid) to ``out``.

    Detectors run on every completion; the sample browser keeps, per step, up to
    ``max_samples_per_step`` completions stratified by total-reward level plus every flagged one,
    until the file would pass ``max_mb`` (or the inflated samples ``max_text_mb``).
    ``refresh_s`` reloads an open page that often (live mode); ``cache`` reuses step summaries
    across calls; ``phrases`` (literal, or ``re:REGEX``) become curves over every completion.
    Raises ReportError for an output that is a folder or a file that is not a report, and for
    a bad phrase. Returns stats: sizes, timings, counts per run.
    """
    t0 = time.perf_counter()
    out = Path(out)
    check_output(out)
    try:
        user = tuple(user_phrase(p) for p in phrases)
    except ValueError as e:
        raise ReportError(str(e)) from None
    runs, steps = _read_runs(
        run_dirs, max_samples_per_step=max_samples_per_step, workers=workers, cache=cache, user=user
    )
    t_detect = time.perf_counter() - t0
    charts = build_charts(runs, steps, [label for label, _ in user])
    stable = format_stable_steps(runs, steps)
    summary = [summary_row(r, s, st) for r, s, st in zip(runs, steps, stable, strict=True)]
    page = html.Page(
        title=title or "r1zero report: " + ", ".join(r.name for r in runs),
        runs=[{"name": r.name, "path": str(r.path), "done": r.done} for r in runs],
        summary=summary,
        config_diff=config_diff([r.config for r in runs]) if len(runs) > 1 else [],
        configs=[(r.name, flatten(r.config)) for r in runs],
        charts=charts,
        refresh_s=refresh_s,
        max_samples_per_step=max_samples_per_step,
        headlines=[headline(r, i, s) for i, (r, s) in enumerate(zip(runs, steps, strict=True))],
        counts=[step_counts(s) for s in steps],
        skipped=_skipped(runs, steps),
    )
    skeleton = len(html.render(page).encode())
    budget = int(max_mb * 1e6) - skeleton - 64_000
    page.samples_b64, kept = _pack_samples(
        runs, steps, budget=budget, max_text=int(max_text_mb * 1e6)
    )
    page.kept = kept | {"total": sum(s.stats["n"] for ss in steps for s in ss)}
    text = html.render(page)
    _write_atomic(out, text)
    return {
        "out": str(out),
        "bytes": len(text.encode()),
        "seconds": round(time.perf_counter() - t0, 2),
        "detect_seconds": round(t_detect, 2),
        "steps": [len(s) for s in steps],
        "completions": page.kept["total"],
        "samples_kept": kept["flagged"] + kept["stratified"],
        "samples": kept,
        "charts": len(charts),
        "format_stable_step": stable,
        "runs": summary,
        "skipped": page.skipped,
    }
