"""Crash-safe checkpoints in the HF Trainer layout.

A checkpoint is written to ``.tmp-checkpoint-<step>`` and renamed into place, so a
``checkpoint-<step>`` folder is always complete; temporary leftovers are never taken for
checkpoints. Only the newest checkpoint keeps ``resume_state.pt`` (optimizer, scheduler,
RNG, data position); older ones are weights (or adapter) + tokenizer only.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

CKPT_RE = re.compile(r"^checkpoint-(\d+)$")
RESUME_FILE = "resume_state.pt"


class CheckpointError(RuntimeError):
    pass


def checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    if not output_dir.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if p.is_dir() and (m := CKPT_RE.match(p.name))
    ]
    return sorted(found)


def latest_resumable(output_dir: Path) -> Path | None:
    for _, p in reversed(checkpoints(output_dir)):
        if (p / RESUME_FILE).is_file():
            return p
    return None


def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def save_model(model: torch.nn.Module, tokenizer: Any, dest: Path) -> None:
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def save_checkpoint(
    output_dir: Path,
    step: int,
    *,
    model: torch.nn.Module,
    tokenizer: Any,
    resume_state: dict[str, Any] | None,
    trainer_state: dict[str, Any],
    total_limit: int | None,
) -> Path:
    """Write ``checkpoint-<step>`` atomically, then drop older optimizer state and old checkpoints."""
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f".tmp-checkpoint-{step}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(model, tokenizer, tmp)
        (tmp / "trainer_state.json").write_text(json.dumps(trainer_state, indent=1))
        if resume_state is not None:
            torch.save(resume_state, tmp / RESUME_FILE)
        _fsync_dir(tmp)
        if final.exists():
            _remove(final)
        os.replace(tmp, final)
    except Exception as e:  # a full disk surfaces as OSError, SafetensorError or RuntimeError
        msg = _failure(f"saving checkpoint-{step}", output_dir, e)  # free space before cleanup
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(msg) from e
    for s, p in checkpoints(output_dir):
        if s != step and resume_state is not None:
            (p / RESUME_FILE).unlink(missing_ok=True)
    if total_limit:
        for _, p in checkpoints(output_dir)[:-total_limit]:
            _remove(p)
    return final


def save_final(output_dir: Path, model: torch.nn.Module, tokenizer: Any) -> None:
    """The final model in ``output_dir`` itself; each file lands by rename."""
    tmp = output_dir / ".tmp-final"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        save_model(model, tokenizer, tmp)
        for f in tmp.iterdir():
            os.replace(f, output_dir / f.name)
        tmp.rmdir()
    except Exception as e:
        msg = _failure("saving the final model", output_dir, e)
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(msg) from e


def _failure(what: str, output_dir: Path, e: Exception) -> str:
    """One line: what failed, where, why, the free space, and what is still safe on disk."""
    if isinstance(e, OSError):
        why = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    else:
        lines = str(e).strip().splitlines()
        why = f"{type(e).__name__}: {lines[0][:200] if lines else ''}"
    try:
        left = shutil.disk_usage(output_dir).free
        free = f"{left / 2**20:.1f} MiB free there at the time" + (
            ": the disk is full" if left < 2**20 else ""
        )
    except OSError:
        free = "free space unknown"
    done = checkpoints(output_dir)
    kept = f"{done[-1][1].name} is intact" if done else "no earlier checkpoint exists"
    return f"{what} in {output_dir} failed ({why}; {free}); {kept}"


def _remove(path: Path) -> None:
    """Delete a checkpoint folder so that a kill midway never leaves a half-deleted
    ``checkpoint-<step>``: rename it to a ``.tmp-`` name (atomic), then delete that."""
    trash = path.with_name(f".tmp-delete-{path.name}")
    shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(path, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def clean_temporaries(output_dir: Path) -> None:
    if output_dir.is_dir():
        for p in output_dir.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
