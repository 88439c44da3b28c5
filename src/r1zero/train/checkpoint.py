"""Crash-safe checkpoints in the HF Trainer layout, in a run folder the run owns.

A checkpoint is written to ``.tmp-checkpoint-<step>`` and renamed into place, so a
``checkpoint-<step>`` folder is always complete; temporary leftovers are never taken for
checkpoints. Only the newest checkpoint keeps ``resume_state.pt`` (optimizer, scheduler,
RNG, data position); older ones are weights (or adapter) + tokenizer only.

Run folders get shared and downloaded, so nothing in one is trusted: ``r1zero-run.json``
names the run that made the folder, each checkpoint's ``trainer_state.json`` names its run,
and pruning, cleaning and resuming touch only what carries that name. A symbolic link is
never followed (r1zero writes none), and RNG state is stored as plain ints and lists so
that ``resume_state.pt`` loads with ``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

CKPT_RE = re.compile(r"^checkpoint-(\d+)$")
# what r1zero leaves (sharded-N: FSDP2's optimizer shards before they move into a checkpoint)
TEMP_RE = re.compile(r"^\.tmp-(?:(?:delete-)?checkpoint-\d+|final|sharded-\d+)$")
RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
RESUME_FILE = "resume_state.pt"
MARKER = "r1zero-run.json"
TRACKER_DIRS = ("runs", "swanlog", "wandb")  # written by the loggers, not by r1zero


class CheckpointError(RuntimeError):
    pass


# ---------------------------------------------------------------- who owns the folder


def run_id(output_dir: Path) -> str | None:
    """The id in ``output_dir``'s marker; None when there is none or it is not one r1zero wrote."""
    data = _read_json(output_dir / MARKER)
    rid = data.get("run_id") if isinstance(data, dict) else None
    return rid if isinstance(rid, str) and RUN_ID_RE.match(rid) else None


def claim(output_dir: Path) -> tuple[str, bool]:
    """(run id, True when the folder was just made) for a run folder r1zero may write in.

    A new or empty folder gets a fresh marker; a folder with one is the run's own; any other
    non-empty folder is refused, because a run deletes and truncates what it finds there.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    link = first_symlink(output_dir)
    if link is not None:
        raise CheckpointError(
            f"output_dir: {link} is a symbolic link; r1zero writes only plain files in a run "
            "folder and never follows a link out of it: remove the link or pass a new output_dir"
        )
    rid = run_id(output_dir)
    if rid is not None:
        return rid, False
    if any(output_dir.iterdir()):
        what = f"{'an unreadable' if (output_dir / MARKER).exists() else 'no'} {MARKER}"
        raise CheckpointError(
            f"output_dir: {output_dir} is not empty and has {what}, so this is not a run folder "
            "r1zero made, and a run would delete and overwrite files there: pass a new "
            "output_dir (add --resume_from_checkpoint PATH/checkpoint-N to continue a run from "
            "its checkpoint)"
        )
    rid = uuid.uuid4().hex
    marker = {"run_id": rid, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_new(output_dir / MARKER, json.dumps(marker) + "\n")
    return rid, True


def first_symlink(root: Path) -> Path | None:
    """The first symbolic link inside ``root`` (not following any), or None. The inside of
    the trackers' own folders (TensorBoard's runs/, swanlog/, wandb/) is theirs to manage."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            if os.path.islink(os.path.join(dirpath, name)):
                return Path(dirpath, name)
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in TRACKER_DIRS]
    return None


def write_new(path: Path, text: str) -> Path:
    """Write ``path`` as a new plain file: whatever sat there (a planted link) is removed
    first, and O_EXCL|O_NOFOLLOW make sure the write lands in the file itself."""
    if os.path.lexists(path):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _read_json(path: Path) -> Any:
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _owner(path: Path) -> str | None:
    state = _read_json(path / "trainer_state.json")
    return state.get("run_id") if isinstance(state, dict) else None


# ---------------------------------------------------------------- finding checkpoints


def checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of the folder's run, oldest first. A ``checkpoint-N`` that is a
    link, or (in a folder with a marker) one another run wrote, is not one of them."""
    if not output_dir.is_dir():
        return []
    rid = run_id(output_dir)
    found = [
        (int(m.group(1)), p)
        for p in output_dir.iterdir()
        if (m := CKPT_RE.match(p.name))
        and not p.is_symlink()
        and p.is_dir()
        and (rid is None or _owner(p) == rid)
    ]
    return sorted(found)


def foreign_checkpoints(output_dir: Path) -> list[str]:
    """Names that look like checkpoints but are not the run's own (ignored, never touched)."""
    own = {p.name for _, p in checkpoints(output_dir)}
    return sorted(
        p.name for p in output_dir.iterdir() if CKPT_RE.match(p.name) and p.name not in own
    )


def latest_resumable(output_dir: Path) -> Path | None:
    for _, p in reversed(checkpoints(output_dir)):
        f = p / RESUME_FILE
        if f.is_file() and not f.is_symlink():
            return p
    return None


# ---------------------------------------------------------------- RNG state as plain data


def rng_state() -> dict[str, Any]:
    """Every RNG the run draws from, as ints, lists and tensors (weights_only=True loads it)."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),  # (3, tuple of 625 ints, None)
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": np_state["state"]["key"].tolist(),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(_numpy_state(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state(s: Any) -> Any:
    """The plain form back to numpy's; the legacy tuple (older checkpoints) passes through."""
    if isinstance(s, dict):
        key = np.asarray(s["key"], dtype=np.uint32)
        return {
            "bit_generator": s["bit_generator"],
            "state": {"key": key, "pos": s["pos"]},
            "has_gauss": s["has_gauss"],
            "gauss": s["gauss"],
        }
    if not (isinstance(s, tuple) and len(s) == 5 and getattr(s[1], "dtype", None) == np.uint32):
        raise CheckpointError(f"the numpy RNG state is not one numpy wrote ({type(s).__name__})")
    return s


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def save_model(
    model: torch.nn.Module, tokenizer: Any, dest: Path, state_dict: dict | None = None
) -> None:
    """``state_dict``: the full weights gathered from a sharded (FSDP2) model."""
    model.save_pretrained(dest, safe_serialization=True, state_dict=state_dict)
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
    state_dict: dict | None = None,
    extra: Any = None,
) -> Path:
    """Write ``checkpoint-<step>`` atomically, then drop older optimizer state and old
    checkpoints of this run (never a folder another run, or a person, put there).
    FSDP2: ``state_dict`` holds the gathered weights; ``extra(tmp)`` moves the ranks'
    optimizer shards in before the rename."""
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f".tmp-checkpoint-{step}"
    rid = run_id(output_dir)
    if os.path.lexists(final) and final not in {p for _, p in checkpoints(output_dir)}:
        raise CheckpointError(
            f"saving checkpoint-{step}: {final} was not written by this run; r1zero does not "
            "replace it: move it out of the run folder and resume"
        )
    try:
        _clear(tmp)
        tmp.mkdir(parents=True)
        save_model(model, tokenizer, tmp, state_dict)
        if extra is not None:
            extra(tmp)
        state = trainer_state | ({"run_id": rid} if rid else {})
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1))
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
            shutil.rmtree(p / "optimizer_sharded", ignore_errors=True)  # FSDP2's AdamW shards
    if total_limit:
        for _, p in checkpoints(output_dir)[:-total_limit]:
            _remove(p)
    return final


def save_final(
    output_dir: Path, model: torch.nn.Module, tokenizer: Any, state_dict: dict | None = None
) -> None:
    """The final model in ``output_dir`` itself; each file lands by rename."""
    tmp = output_dir / ".tmp-final"
    try:
        _clear(tmp)
        save_model(model, tokenizer, tmp, state_dict)
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
    _clear(trash)
    try:
        os.replace(path, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def clean_temporaries(output_dir: Path) -> None:
    """Delete what an interrupted save left: only the ``.tmp-`` names r1zero itself uses."""
    if output_dir.is_dir():
        for p in output_dir.iterdir():
            if TEMP_RE.match(p.name):
                _clear(p)


def _clear(path: Path) -> None:
    """Remove ``path`` if present; a link is unlinked, never followed."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
