"""Data-parallel GRPO: 2 processes (gloo, CPU) equal 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

WORKER = Path(__file__).with_name("dist_worker.py")


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if k not in extra:
            env.pop(k, None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], world: int) -> None:
    """What torchrun does, explicitly: one process per rank with the rendezvous in env."""
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), *args],
            env=_env(
                WORLD_SIZE=str(world),
                RANK=str(r),
                LOCAL_RANK=str(r),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
            )
            if world > 1
            else _env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in range(world)
    ]
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["dapo", "grpo"])
def test_two_processes_equal_one(tiny_model_dir: Path, tmp_path: Path, loss_type: str) -> None:
    _launch([str(tiny_model_dir), str(tmp_path / "one"), loss_type], world=1)
    _launch([str(tiny_model_dir), str(tmp_path / "two"), loss_type], world=2)
    one = json.loads((tmp_path / "one" / "loss.json").read_text())
    two = json.loads((tmp_path / "two" / "loss.json").read_text())
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-7)
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-4)
    w1 = torch.load(tmp_path / "one" / "weights.pt")
    w2 = torch.load(tmp_path / "two" / "weights.pt")
    initial = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    assert any(not torch.equal(w1[k], initial[k]) for k in w1), "the step changed nothing"
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(("loss_type", "passes"), [("dapo", "dynamic"), ("bnpo", "packed")])
def test_token_budget_passes_on_two_processes_equal_fixed_on_one(
    tiny_model_dir: Path, tmp_path: Path, loss_type: str, passes: str, monkeypatch
) -> None:
    """Each rank cuts its half into its own number of token-budget passes (they agree on
    the largest); the step equals one process's fixed micro-batches."""
    _launch([str(tiny_model_dir), str(tmp_path / "one"), loss_type], world=1)
    monkeypatch.setenv("R1ZERO_TEST_PASSES", passes)
    _launch([str(tiny_model_dir), str(tmp_path / "two"), loss_type], world=2)
    one = json.loads((tmp_path / "one" / "loss.json").read_text())
    two = json.loads((tmp_path / "two" / "loss.json").read_text())
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5, abs=1e-7)
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-4)
    w1 = torch.load(tmp_path / "one" / "weights.pt")
    w2 = torch.load(tmp_path / "two" / "weights.pt")
    # AdamW's first step moves a weight by lr * g / (|g| + eps): where g is near eps (1e-8),
    # passes summed in another order move it by up to ~2e-5 more (seen on one of 19,488
    # weights); lr is 1e-2, so 5e-5 is still 0.5% of one step. grad_norm above is exact.
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=5e-5)
