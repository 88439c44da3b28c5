"""The live terminal display: progress and curves of reward, accuracy and length.
The progress line of every other wait is :func:`r1zero.progress.phase`."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from r1zero.progress import live_panel

BARS = " ▁▂▃▄▅▆▇█"
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
        if self.live_on:
            self.live = Live(self._render(), console=self.console, refresh_per_second=2)
            self.live.__enter__()
            live_panel(True)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            live_panel(False)
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
