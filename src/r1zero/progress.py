"""The progress line of every wait longer than a few seconds (loading, generating
problems, evaluating, the first rollout), so no phase is silent.

It sits below every stage (task data, model loading, evaluation and training all wait),
so that none of them imports train/ for it; train/display.py's live panel tells it,
through :func:`live_panel`, when to stay quiet.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

HEARTBEAT_S = float(os.environ.get("R1ZERO_HEARTBEAT_S", "30"))
"""Without a terminal, a phase still running prints a line this often (seconds)."""
QUIET_UNDER_S = 2.0
"""A phase that ends sooner says nothing more than its first line."""
_live_panels = 0  # a rich Live panel is on screen: phases stay quiet under it


def live_panel(shown: bool) -> None:
    """A live panel appeared (True) or went (False): its clock already shows that the
    run is alive, and a phase's bar would fight it for the screen."""
    global _live_panels
    _live_panels += 1 if shown else -1


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
    if os.environ.get("RANK", "0") != "0" or _live_panels:
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
