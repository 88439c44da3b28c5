"""The live terminal display: progress and curves of reward, accuracy and length; and
:func:`phase`, the progress line of every wait longer than a few seconds (loading,
generating problems, evaluating, the first rollout), so no phase is silent."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

BARS = " ▁▂▃▄▅▆▇█"
HEARTBEAT_S = float(os.environ.get("R1ZERO_HEARTBEAT_S", "30"))
"""Without a terminal, a phase still running prints a line this often (seconds)."""
QUIET_UNDER_S = 2.0
"""A phase that ends sooner says nothing more than its first line."""
_live_displays = 0  # a rich Live panel is on screen: phases stay quiet under it
SERIES = (
    ("reward", "reward"),
    ("accuracy", "accuracy"),
    ("format_rate", "format"),
    ("completions/mean_length", "length"),
)


def sparkline(values: list[float], width: int = 48) -> str:
    vals = values[-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    return "".join(BARS[1 + int((v - lo) / span * (len(BARS) - 2))] for v in vals)


class Display:
    """A rich Live panel when ``live`` and a terminal; otherwise plain progress lines."""

    def __init__(
        self,
        total_steps: int,
        start_step: int,
        *,
        live: bool,
        logging_steps: int,
        console: Console | None = None,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.live_on = live and self.console.is_terminal
        self.logging_steps = max(logging_steps, 1)
        self.history: dict[str, list[float]] = {k: [] for k, _ in SERIES}
        self.progress = Progress(
            TextColumn("[bold]GRPO"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task("steps", total=total_steps, completed=start_step)
        self.live: Live | None = None

    def __enter__(self) -> Display:
        global _live_displays
        if self.live_on:
            self.live = Live(self._render(), console=self.console, refresh_per_second=2)
            self.live.__enter__()
            _live_displays += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        global _live_displays
        if self.live is not None:
            self.live.__exit__(*exc)
            _live_displays -= 1
            self.live = None

    def _render(self) -> Group:
        table = Table(show_header=True, header_style="bold", box=None)
        for col in ("metric", "last", "curve"):
            table.add_column(col)
        for key, label in SERIES:
            h = self.history[key]
            table.add_row(label, f"{h[-1]:.3f}" if h else "-", sparkline(h))
        return Group(self.progress, table)

    def update(self, step: int, metrics: dict[str, float]) -> None:
        for key, _ in SERIES:
            if key in metrics:
                self.history[key].append(metrics[key])
        self.progress.update(self.task, completed=step)
        if self.live is not None:
            self.live.update(self._render())
        elif step % self.logging_steps == 0:
            parts = [f"step {step}"] + [
                f"{label} {metrics[k]:.3f}" for k, label in SERIES if k in metrics
            ]
            parts.append(f"{metrics.get('step_time', 0):.2f}s")
            self.console.print(" | ".join(parts))

    def print(self, *args: Any) -> None:
        self.console.print(*args)


@contextlib.contextmanager
def phase(
    what: str, *, total: int | None = None, console: Console | None = None
) -> Iterator[Callable[[int], None]]:
    """Say what the program waits for, and how far it got: a transient rich bar (or
    spinner) on a terminal; plain lines otherwise (the start, one every HEARTBEAT_S while
    it runs, the end if it took QUIET_UNDER_S or more). Yields ``advance(n)`` for
    ``total`` items. Silent on ranks other than 0 and under a live panel, whose clock
    already shows that the run is alive."""
    console = console or Console(stderr=True)
    if os.environ.get("RANK", "0") != "0" or _live_displays:
        yield lambda n=1: None
        return
    t0 = time.perf_counter()
    if console.is_terminal:
        columns = [SpinnerColumn(), TextColumn(what)]
        if total:
            columns += [BarColumn(), MofNCompleteColumn()]
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task(what, total=total)
            yield lambda n=1: bar.advance(task, n)
    else:
        with _heartbeat(what, total, console) as advance:
            yield advance
    seconds = time.perf_counter() - t0
    if seconds >= QUIET_UNDER_S:
        console.print(f"{what}: done in {seconds:.1f} s", highlight=False)


@contextlib.contextmanager
def _heartbeat(what: str, total: int | None, console: Console) -> Iterator[Callable[[int], None]]:
    """Plain lines for logs: the start now, then progress every HEARTBEAT_S seconds."""
    console.print(f"{what} ...", highlight=False)
    done = [0]
    stop = threading.Event()
    t0 = time.perf_counter()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            count = f" {done[0]:,}/{total:,}," if total else ""
            console.print(f"{what}:{count} {time.perf_counter() - t0:.0f} s", highlight=False)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield lambda n=1: done.__setitem__(0, done[0] + n)
    finally:
        stop.set()
        thread.join()
