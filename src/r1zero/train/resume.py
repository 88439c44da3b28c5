"""Resume: which checkpoint a run continues from, loading its state without running code.

Re-running the command of an interrupted run resumes it from its newest checkpoint, as the
tutorial's script does with ``get_last_checkpoint``; a finished run is left alone. A fresh
start on purpose is a new ``output_dir``: r1zero never wipes a run folder.

``resume_state.pt`` is loaded with ``torch.load(weights_only=True)``: a checkpoint from
someone else can hold a pickle whose load runs any code, and a weights-only load refuses
it. Checkpoints of older r1zero versions stored numpy's RNG state as an ndarray; exactly
the three numpy globals that rebuild a plain array are allowed for them.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from r1zero.config import Config
from r1zero.rollout import RolloutBatch
from r1zero.train import checkpoint as ckpt
from r1zero.train.experience import Experience


class RunFinished(Exception):
    """The run in output_dir is complete; the message says so and how to start fresh."""


# Keys whose change on resume makes the run differ from an uninterrupted one.
WATCHED = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_generations",
    "batch_unit",
)
FRESH = "pass a new output_dir to start fresh"


def choose(cfg: Config, out: Path, *, new: bool, say: Any) -> Path | None:
    """The checkpoint to resume from (None: step 0), or RunFinished for a finished run."""
    want = cfg.run.resume_from_checkpoint
    # false (parsed as empty) set on purpose: never resume, so never start over in a used folder
    never = want in (None, "", "false", "False") and "resume_from_checkpoint" in cfg.explicit
    want = None if want in (None, "", "true", "True", "false", "False") else want
    if want is not None and not never:
        path = Path(want)
        if not new and (out / "done").is_file():
            raise RunFinished(
                f"{out} holds a finished run; to continue from {path}, pass a new output_dir "
                "(the finished run stays as it is)"
            )
        if not (path / ckpt.RESUME_FILE).is_file():
            raise ckpt.CheckpointError(
                f"resume_from_checkpoint: {path} is not a resumable checkpoint (no {ckpt.RESUME_FILE})"
            )
        return path
    if new:
        if cfg.run.resume_from_checkpoint in ("true", "True"):
            say(f"resume_from_checkpoint: {out} holds no checkpoint yet; starting at step 0")
        return None
    found = ckpt.latest_resumable(out)
    if (out / "done").is_file():
        raise RunFinished(
            f"{out} is a finished run (done): nothing to do; {FRESH} "
            f"(or --resume_from_checkpoint {out}/checkpoint-N --output_dir NEW to branch from it)"
        )
    if never and found is not None:
        raise ckpt.CheckpointError(
            f"resume_from_checkpoint false: {out} holds this run up to {found.name}, which "
            f"r1zero never overwrites: drop the key to resume it, or {FRESH}"
        )
    for name in ckpt.foreign_checkpoints(out):
        say(f"[yellow]warning[/]: ignoring {out / name}: not written by this run")
    own = ckpt.checkpoints(out)
    if found is None and own:
        raise ckpt.CheckpointError(
            f"{out} holds this run up to {own[-1][1].name} but no checkpoint with "
            f"{ckpt.RESUME_FILE} (save_only_model), so it cannot resume, and starting over "
            f"would replace those checkpoints: {FRESH}"
        )
    if found is None and (out / "metrics.jsonl").exists():
        say(f"{out}: no resumable checkpoint yet; starting its run again at step 0")
    return found


def load_state(resume_dir: Path) -> dict[str, Any]:
    """``resume_state.pt`` loaded without unpickling code; one-line CheckpointError otherwise."""
    f = resume_dir / ckpt.RESUME_FILE
    if f.is_symlink():
        raise ckpt.CheckpointError(f"resume: {f} is a symbolic link; r1zero does not follow it")
    try:
        with torch.serialization.safe_globals(_legacy_numpy()):
            state = torch.load(f, weights_only=True)
    except pickle.UnpicklingError as e:
        why = _unpickle_reason(str(e))
        raise ckpt.CheckpointError(
            f"resume: refused the state in {f}: it holds objects that only a full unpickle "
            f"could build, which can run code ({why}); r1zero loads checkpoints with "
            f"weights_only=True and ran nothing. Resume from a checkpoint r1zero wrote, or {FRESH}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise ckpt.CheckpointError(
            f"resume: {f} is unreadable ({type(e).__name__}: {_first_line(str(e))})"
        ) from None
    if not isinstance(state, dict) or not {"step", "optimizer", "scheduler", "stream"} <= set(
        state
    ):
        raise ckpt.CheckpointError(f"resume: {f} is not an r1zero resume state")
    if state.get("experience") is not None:
        state["experience"] = unpack_experience(state["experience"])
    return state


def config_changes(cfg: Config, out: Path) -> list[str]:
    """One warning per WATCHED key that differs from the run's own config.yaml."""
    path = out / "config.yaml"
    if path.is_symlink() or not path.is_file():
        return []
    try:
        old = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []
    if not isinstance(old, dict):
        return []
    now = cfg.flat()
    return [
        f"[yellow]warning[/]: {k} changed on resume: {old[k]!r} in {path}, {now[k]!r} now; the "
        "resumed steps use the new value, so this run no longer matches an uninterrupted one"
        for k in WATCHED
        if k in old and k in now and not _same(old[k], now[k])
    ]


def apply_learning_rate(scheduler: Any, optimizer: Any, lr: float) -> None:
    """After load_state_dict the schedule's base learning rate is the checkpoint's; make it
    the configured one (warmup, decay type and length already follow the config)."""
    if not hasattr(scheduler, "base_lrs") or all(b == lr for b in scheduler.base_lrs):
        return
    scheduler.base_lrs = [lr] * len(scheduler.base_lrs)
    lambdas = getattr(scheduler, "lr_lambdas", None)
    for i, group in enumerate(optimizer.param_groups):
        group["initial_lr"] = lr
        if lambdas is not None:
            group["lr"] = lr * lambdas[i](scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # what is logged


def pack_experience(exp: Experience | None) -> dict[str, Any] | None:
    """An Experience as plain dicts, lists and tensors (what weights_only=True can load)."""
    if exp is None:
        return None
    d = {f.name: getattr(exp, f.name) for f in dataclasses.fields(exp)}
    d["batch"] = {f.name: getattr(exp.batch, f.name) for f in dataclasses.fields(exp.batch)}
    return d


def unpack_experience(d: dict[str, Any]) -> Experience:
    if not isinstance(d, dict) or not isinstance(d.get("batch"), dict):
        raise ckpt.CheckpointError("resume: the saved rollout is not one r1zero wrote")
    return Experience(**{**d, "batch": RolloutBatch(**d["batch"])})


def _legacy_numpy() -> list[Any]:
    """What pickling an ndarray needs: its rebuild function, the class and the dtype."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _unpickle_reason(text: str) -> str:
    """The line of torch's long weights-only error that names the refused global."""
    for line in text.splitlines():
        if any(k in line for k in ("Unsupported global", "unsupported GLOBAL", "but got")):
            return _first_line(line.replace("WeightsUnpickler error:", ""))
    return _first_line(text)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return a == b


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0][:160] if lines else ""
