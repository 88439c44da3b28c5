"""No silent waits (issue 19 item 4): every long phase says what it waits for, as plain
lines when stderr is not a terminal, with a heartbeat; the first long CPU step is
estimated before it starts. And the flash-attn fallback warning prints once (item 7)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console

from r1zero import progress
from r1zero.progress import phase
from r1zero.train.display import Display


def _plain() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=200), buf


def test_phase_without_a_terminal_prints_start_heartbeat_and_end(monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(progress, "QUIET_UNDER_S", 0.0)
    console, buf = _plain()
    with phase("generating 10 problems", total=10, console=console) as advance:
        advance(4)
        time.sleep(0.3)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "generating 10 problems ..."
    assert any(ln.startswith("generating 10 problems: 4/10,") for ln in lines[1:-1]), lines
    assert lines[-1].startswith("generating 10 problems: done in ")


def test_a_short_phase_says_one_line(monkeypatch):
    console, buf = _plain()
    with phase("loading x", console=console):
        pass
    assert buf.getvalue().splitlines() == ["loading x ..."]


def test_phase_on_a_terminal_is_a_transient_bar():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with phase("loading x", total=3, console=console) as advance:
        advance(3)
    assert "loading x ..." not in buf.getvalue()


def test_phase_is_quiet_under_the_live_panel():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    with Display(3, 0, live=True, logging_steps=1, console=console):
        inner, inner_buf = _plain()
        with phase("evaluating", console=inner):
            pass
    assert inner_buf.getvalue() == ""


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from r1zero.config import ModelConfig
    from r1zero.models import load_tokenizer
    from r1zero.rollout import get_engine
    from r1zero.rollout.policy import Policy
    from r1zero.task.prompts import get_template

    tok = load_tokenizer(str(tiny_model_dir), ModelConfig(model_name_or_path=str(tiny_model_dir)))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    return Policy(model, tok, get_template("en"), get_engine("hf"), torch.device("cpu"), (0,))


def _run(policy, *, completions: int, length: int, device: str = "cpu"):
    from r1zero.config import GRPOConfig

    cfg = GRPOConfig(num_generations=8, max_completion_length=length, max_prompt_length=None)
    pol = SimpleNamespace(**{**policy.__dict__, "device": torch.device(device)})
    return SimpleNamespace(
        cfg=SimpleNamespace(grpo=cfg),
        stream=SimpleNamespace(per_step=completions // 8, rows=[{"nums": [3, 5, 2], "target": 16}]),
        dist=SimpleNamespace(world=1, is_main=True),
        policy=pol if device != "cpu" else policy,
    )  # fmt: skip


def test_first_step_estimate_where_it_is_long(policy):
    from r1zero.train.estimate import first_step_line

    rng = torch.get_rng_state()
    line = first_step_line(_run(policy, completions=16, length=4096))
    assert torch.equal(rng, torch.get_rng_state())  # the probe samples nothing of the run's
    assert line.startswith("step 1: the rollout generates 16 completions of up to 4096 tokens")
    assert "ms a decode step" in line and "roughly" in line
    assert first_step_line(_run(policy, completions=16, length=256)) is None  # short
    assert first_step_line(_run(policy, completions=16, length=4096, device="cuda")) is None


def test_cli_progress_lines_without_a_terminal(tmp_path, tiny_model_dir):
    """With no dataset, stderr a pipe: generating, loading, evaluating and the first step
    each say so (was: silence); the flash-attn fallback warning prints once (was: twice,
    policy and reference)."""
    args = ["--model_name_or_path", str(tiny_model_dir), "--num_samples", "40",
            "--eval_num_samples", "4", "--max_steps", "1", "--max_completion_length", "8",
            "--per_device_train_batch_size", "1", "--num_generations", "2", "--beta", "0.04",
            "--attn_implementation", "flash_attention_2", "--report_to", "none",
            "--live", "false", "--save_strategy", "no", "--output_dir", str(tmp_path / "run")]  # fmt: skip
    r = subprocess.run(
        [sys.executable, "-m", "r1zero", "train", *args], capture_output=True, text=True,
        timeout=600, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    err = r.stderr
    for words in (
        "generating 40 Countdown problems (no dataset_id_or_path given) ...",
        f"loading {tiny_model_dir} (float32, cpu) ...",
        "evaluating on 4 held-out problems (greedy) ...",
        "step 1 (the first rollout and update) ...",
    ):
        assert words in err, (words, err)
    assert err.count("flash-attn is not installed") == 1, err
    assert not (tmp_path / "run" / "runs").exists()  # report_to none: no events file
