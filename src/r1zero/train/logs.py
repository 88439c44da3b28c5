"""Run-folder logs: metrics.jsonl, every completion, TensorBoard / SwanLab / wandb.

The file layout is the contract in docs/run-folder.md, which ``r1zero report`` reads.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

from r1zero.config import ConfigError
from r1zero.train.checkpoint import write_new
from r1zero.train.experience import Experience

log = logging.getLogger("r1zero")
_COMPLETIONS_RE = re.compile(r"^step-(\d{6})\.jsonl\.(gz|tmp)$")
TIMING_KEYS = ("time/", "tokens_per_s", "step_time")


class RunLogger:
    def __init__(
        self,
        output_dir: Path,
        report_to: list[str],
        *,
        run_name: str,
        config: dict[str, Any],
        resume_step: int = 0,
        project: str | None = None,
        workspace: str | None = None,
        experiment_name: str | None = None,
    ) -> None:
        self.dir = output_dir
        self.metrics_path = output_dir / "metrics.jsonl"
        (output_dir / "completions").mkdir(parents=True, exist_ok=True)
        self._truncate_after(resume_step)
        self.backends: list[Any] = []
        if "tensorboard" in report_to:
            self.backends.append(("tb", _LazyTensorBoard(output_dir / "runs")))
        if "swanlab" in report_to:
            swanlab = init_swanlab(
                output_dir,
                project=project,
                workspace=workspace,
                name=experiment_name or run_name,
                config=config,
            )
            self.backends.append(("swanlab", swanlab))
        if "wandb" in report_to:
            wandb = _optional("wandb")
            wandb.init(project=project, name=run_name, config=config, resume="allow")
            self.backends.append(("wandb", wandb))

    def _truncate_after(self, step: int) -> None:
        """On resume, forget what the interrupted run logged after its checkpoint (and a
        line cut short by the kill). Eval rows kept at the resume step are remembered: the
        loop evaluates again there (step 0, or the last step) and must not log them twice."""
        self._kept_evals: set[int] = set()
        if self.metrics_path.exists():
            keep = [
                ln
                for ln in self.metrics_path.read_text().splitlines()
                if ln.strip() and _step_of(ln) is not None and _step_of(ln) <= step
            ]
            self._kept_evals = {_step_of(ln) for ln in keep if '"eval/' in ln}
            tmp = self.metrics_path.with_suffix(".tmp")  # a planted link there is replaced
            write_new(tmp, "".join(ln + "\n" for ln in keep)).replace(self.metrics_path)
        for f in (self.dir / "completions").glob("step-*.jsonl.*"):
            m = _COMPLETIONS_RE.match(f.name)  # only the names this logger writes
            if m and (m.group(2) == "tmp" or int(m.group(1)) > step):
                f.unlink()

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if step in self._kept_evals and all(k.startswith("eval/") for k in metrics):
            return  # logged before the interruption; the cached eval file gives the same row
        row = {"step": step, **{k: significant(v) for k, v in metrics.items()}}
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        for kind, b in self.backends:
            if kind == "tb":
                for k, v in metrics.items():
                    b.add_scalar(k, v, step)
            else:
                b.log(dict(metrics), step=step)

    def write_completions(self, step: int, records: list[dict]) -> None:
        """Every completion of a step, gzip JSONL, landing by rename."""
        path = self.dir / "completions" / f"step-{step:06d}.jsonl.gz"
        tmp = path.with_suffix(".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        tmp.replace(path)

    def close(self) -> None:
        for kind, b in self.backends:
            if kind == "tb":
                b.close()
            else:
                b.finish()


def completion_records(
    step: int, exp: Experience, num_generations: int, group_offset: int = 0
) -> list[dict]:
    """One row per completion (schema in docs/run-folder.md)."""
    lengths = exp.batch.completion_lengths.tolist()
    truncated = exp.batch.truncated.tolist()
    out = []
    for i, (row, prompt, completion) in enumerate(
        zip(exp.rows, exp.prompts, exp.completions, strict=True)
    ):
        out.append(
            {
                "step": step,
                "group": group_offset + i // num_generations,
                "nums": row["nums"],
                "target": row["target"],
                "prompt": prompt,
                "completion": completion,
                "rewards": {k: significant(float(v[i])) for k, v in exp.rewards_per_func.items()},
                "reward": significant(float(exp.rewards[i])),  # NaN (abstained) -> null
                "advantage": significant(float(exp.advantages[i])),
                "length": int(lengths[i]),
                "truncated": bool(truncated[i]),
            }
        )
    return out


class _LazyTensorBoard:
    """A SummaryWriter made at the first scalar: a run that fails while starting leaves no
    empty events file in its folder."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.writer: Any = None

    def add_scalar(self, key: str, value: float, step: int) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.log_dir))
        self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def init_swanlab(
    output_dir: Path, *, project: str | None, workspace: str | None, name: str, config: dict
) -> Any:
    """SwanLab as the tutorial used it, but never a traceback: online when logged in (or
    asked on a terminal, as swanlab does), else offline with one line saying so; logs in
    ``RUN/swanlog``. ``SWANLAB_MODE`` in the environment is honoured as swanlab does."""
    try:
        import swanlab
    except ImportError:
        raise ConfigError(
            "swanlab: true needs the swanlab package: pip install swanlab (or set swanlab: false)"
        ) from None
    log_dir = output_dir / "swanlog"
    kw = {"project": project, "workspace": workspace, "name": name, "config": config}
    mode = os.environ.get("SWANLAB_MODE") or "online"
    try:
        swanlab.init(mode=mode, log_dir=str(log_dir), **kw)
    except Exception as e:  # not logged in with no terminal to ask on, no network, ...
        if mode != "online":
            raise ConfigError(f"swanlab (mode {mode}): {_first_line(e)}") from None
        why = _first_line(e).removeprefix("Failed to initialize SwanLab in online mode: ")
        log.warning(
            "swanlab: not online (%s); logging offline to %s: swanlab login, then "
            "swanlab sync on the run folder under it, puts it online",
            why.rstrip("."),
            log_dir,
        )
        try:
            swanlab.init(mode="offline", log_dir=str(log_dir), reinit=True, **kw)
        except Exception as e2:
            raise ConfigError(f"swanlab: cannot log offline either: {_first_line(e2)}") from None
    return swanlab


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise SystemExit(
            f"report_to {name}: {name} is not installed; pip install 'r1zero[{name}]' or drop it from report_to"
        ) from None


def _step_of(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def significant(v: Any, digits: int = 6) -> Any:
    """A float kept to ``digits`` significant digits (not decimals: lr 5e-7 and KL at beta 0.001
    must not log as 0.0); NaN and infinities become None (JSON has no NaN)."""
    if not isinstance(v, float):
        return v
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def deterministic_view(row: dict[str, Any]) -> dict[str, Any]:
    """A metrics row without wall-clock fields (what a resumed run must reproduce)."""
    return {k: v for k, v in row.items() if not k.startswith(TIMING_KEYS)}
