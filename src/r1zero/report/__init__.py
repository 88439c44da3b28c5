"""The run report: one self-contained HTML page from one or more run folders.

``build_report(run_dirs, out)`` overlays the runs' curves (metrics.jsonl), runs the behaviour
detectors (reflection/aha, language mixing, repetition) on every completion, and embeds a
sample browser; ``watch(run_dir, out)`` rebuilds it while a run trains. Detector definitions:
docs/report.md. Run-folder contract: docs/run-folder.md.
"""

from r1zero.report.build import build_report
from r1zero.report.watch import watch

__all__ = ["build_report", "watch"]
