"""watch: rebuild a run's report while it trains, until the run writes its ``done`` marker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from r1zero.report.build import build_report


def _signature(run_dir: Path) -> tuple:
    """Changes whenever the report would: metrics.jsonl, the step files, the done marker."""
    metrics = run_dir / "metrics.jsonl"
    st = metrics.stat() if metrics.exists() else None
    files = sorted(run_dir.glob("completions/step-*.jsonl.gz"))
    last = files[-1].stat() if files else None
    return (
        st and (st.st_mtime_ns, st.st_size),
        len(files),
        last and (last.st_mtime_ns, last.st_size),
        (run_dir / "done").exists(),
    )


def watch(
    run_dir: Path,
    out: Path,
    interval_s: float = 30,
    *,
    max_iterations: int | None = None,
    **build_kwargs: Any,
) -> int:
    """Rebuild ``out`` every ``interval_s`` seconds when the run changed; return the build count.

    Live pages carry a meta refresh of ``interval_s``; the last build (after ``done`` appears)
    does not. Stops on ``done``, Ctrl-C, or after ``max_iterations`` polls (tests).
    Step summaries are cached, so a rebuild only reads the new step files.
    """
    run_dir, cache, last, builds, polls = Path(run_dir), {}, None, 0, 0
    try:
        while True:
            polls += 1
            sig = _signature(run_dir)
            done = sig[-1]
            if sig != last:
                refresh = None if done else max(1, round(interval_s))
                stats = build_report([run_dir], out, refresh_s=refresh, cache=cache, **build_kwargs)
                builds, last = builds + 1, sig
                print(
                    f"report: {stats['out']} ({stats['bytes'] / 1e6:.1f} MB, {stats['seconds']} s)",
                    flush=True,
                )
            if done or (max_iterations is not None and polls >= max_iterations):
                return builds
            time.sleep(interval_s)
    except KeyboardInterrupt:
        return builds
