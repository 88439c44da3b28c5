"""Saving a checkpoint when the disk is full, the folder is read-only, or the process dies
while pruning: the previous checkpoint stays intact and loadable, no ``checkpoint-N`` for
the failed step appears, and the error says what happened and where, in one line.

Disk full is simulated where a real full disk raises (OSError ENOSPC from open/write,
safetensors' SafetensorError, torch.save's RuntimeError) and, where this machine lets us
mount a tiny tmpfs, also produced for real. Tests run as root, which chmod cannot stop,
so permission denied is simulated with a PermissionError (EACCES) too.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import safetensors
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1zero.train import checkpoint as ckpt


@pytest.fixture(scope="module")
def policy(tiny_model_dir: Path):
    """A model that took one AdamW step, its tokenizer, and a resume state like the trainer's."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    opt.step()
    return model, tok, opt


def save(out: Path, step: int, policy) -> Path:
    model, tok, opt = policy
    return ckpt.save_checkpoint(
        out,
        step,
        model=model,
        tokenizer=tok,
        resume_state={"step": step, "optimizer": opt.state_dict(), "rng": ckpt.rng_state()},
        trainer_state={"global_step": step, "max_steps": 10},
        total_limit=2,
    )


def assert_intact(out: Path, step: int, failed: int) -> None:
    """checkpoint-<step> loads and resumes; nothing for ``failed`` is left behind."""
    assert [s for s, _ in ckpt.checkpoints(out)] == [step]
    assert ckpt.latest_resumable(out) == out / f"checkpoint-{step}"
    AutoModelForCausalLM.from_pretrained(out / f"checkpoint-{step}")
    state = torch.load(out / f"checkpoint-{step}" / ckpt.RESUME_FILE, weights_only=True)
    assert state["step"] == step
    assert not (out / f"checkpoint-{failed}").exists()
    assert not list(out.glob(".tmp-*"))


def assert_one_line(e: ckpt.CheckpointError, out: Path, *words: str) -> None:
    msg = str(e)
    assert "\n" not in msg
    assert "saving checkpoint-2" in msg and str(out) in msg, msg
    assert "checkpoint-1 is intact" in msg, msg
    for w in words:
        assert w in msg, msg


def _enospc(path: object = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path) if path else None)


FAILURES = {
    # where the write fails -> (object, attribute, exception, words the message must hold)
    "weights ENOSPC": ("model", "save_pretrained", _enospc("model.safetensors"), ["No space left"]),
    "weights SafetensorError": (
        "model",
        "save_pretrained",
        safetensors.SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        ),
        ["SafetensorError", "No space left"],
    ),
    "tokenizer ENOSPC": ("tok", "save_pretrained", _enospc("tokenizer.json"), ["No space left"]),
    "optimizer state ENOSPC": ("torch", "save", _enospc(ckpt.RESUME_FILE), ["No space left"]),
    "optimizer state RuntimeError": (
        "torch",
        "save",
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),
        ["RuntimeError", "MiB free"],
    ),
    "fsync EIO": (
        "os",
        "fsync",
        OSError(errno.EIO, os.strerror(errno.EIO)),
        ["Input/output error"],
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_failed_save_keeps_previous_checkpoint(case, policy, tmp_path, monkeypatch):
    owner_name, attr, exc, words = FAILURES[case]
    model, tok, _ = policy
    owner = {"model": model, "tok": tok, "torch": ckpt.torch, "os": ckpt.os}[owner_name]
    save(tmp_path, 1, policy)

    def fail(*a, **k):
        raise exc

    monkeypatch.setattr(owner, attr, fail)
    with pytest.raises(ckpt.CheckpointError) as info:
        save(tmp_path, 2, policy)
    monkeypatch.undo()
    assert_one_line(info.value, tmp_path, *words)
    assert_intact(tmp_path, 1, failed=2)
    save(tmp_path, 2, policy)  # space again: the next save works and takes over
    assert [s for s, _ in ckpt.checkpoints(tmp_path)] == [1, 2]
    assert ckpt.latest_resumable(tmp_path) == tmp_path / "checkpoint-2"


def test_permission_denied(policy, tmp_path, monkeypatch):
    """EACCES when creating the temporary folder (a read-only output folder)."""
    save(tmp_path, 1, policy)
    mkdir = Path.mkdir

    def denied(self, *a, **k):
        if self.name.startswith(".tmp-checkpoint-"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(ckpt.CheckpointError) as info:
        save(tmp_path, 2, policy)
    monkeypatch.undo()
    assert_one_line(info.value, tmp_path, "Permission denied", ".tmp-checkpoint-2")
    assert_intact(tmp_path, 1, failed=2)


def test_read_only_folder_chmod(policy, tmp_path):
    """A real read-only folder; root ignores modes, so this only runs as another user."""
    save(tmp_path, 1, policy)
    tmp_path.chmod(0o555)
    try:
        if os.access(tmp_path, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes (EACCES is simulated above)")
        with pytest.raises(ckpt.CheckpointError) as info:
            save(tmp_path, 2, policy)
        assert_one_line(info.value, tmp_path, "Permission denied")
    finally:
        tmp_path.chmod(0o755)
    assert_intact(tmp_path, 1, failed=2)


def test_final_model_save_failure_is_one_line(policy, tmp_path, monkeypatch):
    model, tok, _ = policy
    save(tmp_path, 1, policy)
    monkeypatch.setattr(model, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(_enospc()))
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.save_final(tmp_path, model, tok)
    monkeypatch.undo()
    msg = str(info.value)
    assert "\n" not in msg and "saving the final model" in msg and "No space left" in msg
    assert "checkpoint-1 is intact" in msg
    assert not (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob(".tmp-*"))


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no ``except Exception`` catches it."""


def test_death_while_pruning_leaves_no_half_checkpoint(policy, tmp_path, monkeypatch):
    """A kill inside rmtree of the oldest checkpoint (save_total_limit) must not leave a
    ``checkpoint-N`` without its weights: it is renamed to ``.tmp-`` before deletion."""
    for step in (1, 2):
        save(tmp_path, step, policy)
    rmtree = shutil.rmtree

    def dies_midway(path, *a, **k):
        p = Path(path)
        if (p / "model.safetensors").is_file():
            (p / "model.safetensors").unlink()
            raise Killed
        return rmtree(path, *a, **k)

    monkeypatch.setattr(ckpt.shutil, "rmtree", dies_midway)
    with pytest.raises(Killed):
        save(tmp_path, 3, policy)
    monkeypatch.undo()
    for _, p in ckpt.checkpoints(tmp_path):
        AutoModelForCausalLM.from_pretrained(p)  # every checkpoint-N on disk loads
    assert ckpt.latest_resumable(tmp_path) == tmp_path / "checkpoint-3"
    ckpt.clean_temporaries(tmp_path)  # what the next start does
    assert not list(tmp_path.glob(".tmp-*"))


def test_partial_temporary_is_never_a_checkpoint(policy, tmp_path):
    save(tmp_path, 1, policy)
    half = tmp_path / ".tmp-checkpoint-2"
    shutil.copytree(tmp_path / "checkpoint-1", half)
    (half / "model.safetensors").write_bytes(b"\0" * 10)  # cut short by a kill
    assert [s for s, _ in ckpt.checkpoints(tmp_path)] == [1]
    assert ckpt.latest_resumable(tmp_path) == tmp_path / "checkpoint-1"
    ckpt.clean_temporaries(tmp_path)
    assert not half.exists()


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1.5-checkpoint tmpfs where this machine allows mounting one (root, no sandbox)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()[:80]}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_real_disk_full(policy, tiny_disk):
    first = save(tiny_disk, 1, policy)
    assert ckpt.dir_size(first) > 640 * 1024 / 2, "the disk must not hold two checkpoints"
    with pytest.raises(ckpt.CheckpointError) as info:
        save(tiny_disk, 2, policy)
    assert_one_line(info.value, tiny_disk)
    assert "No space left" in str(info.value) or "the disk is full" in str(info.value)
    assert_intact(tiny_disk, 1, failed=2)
