"""Run folders r1zero does not own, or that were tampered with, and re-running a command.

Each case of tests/reliability/hostile_run_folders.py (the generator of docs/reliability.md's
"Hostile run folders" table) runs ``r1zero train`` through the CLI on a prepared folder and
must meet its expectation: unrelated files and files behind links survive, a pickle payload
in ``resume_state.pt`` never runs, the same command resumes an interrupted run and leaves a
finished one alone. The unit tests below pin the pieces: plain-data RNG state, the marker,
which temporaries are cleaned, which checkpoints are the run's own.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import harness
from r1zero.train import checkpoint as ckpt

hostile = harness("hostile_run_folders")


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_model_dir) -> Path:
    """The model, the data, an interrupted (Ctrl-C after checkpoint-1) and a finished run."""
    import shutil

    w = tmp_path_factory.mktemp("hostile")
    shutil.copytree(tiny_model_dir, w / "model")
    hostile.prepare(w)
    return w


@pytest.mark.parametrize("case", hostile.CASES, ids=[c.make.__name__[5:] for c in hostile.CASES])
def test_hostile_run_folder(case, work):
    r = hostile.run_case(case, work)
    shown = {k: v for k, v in r.items() if k != "output"}
    assert not r["traceback"], r["output"][-3000:]
    assert r["ok"], (shown, r["output"][-3000:])


def test_ctrl_c_says_what_is_saved_and_the_same_command_resumes(work, tmp_path):
    rc, out = hostile.interrupt_after(work, tmp_path / "run", step=2)
    assert rc != 0
    lines = [ln for ln in out.splitlines() if "interrupted in" in ln]  # after a tqdm bar
    assert len(lines) == 1, out
    assert "interrupted in step 2 of 3: checkpoint-2" in lines[0]
    assert "run the same command again to resume" in lines[0]
    rc, out = hostile.r1zero(hostile.train_args(work, tmp_path / "run"))
    assert rc == 0 and "resuming from checkpoint-2 (step 2 of 3)" in out, out
    assert hostile.metric_steps(tmp_path / "run") == [1, 2, 3]


def test_ctrl_c_before_any_checkpoint(work, tmp_path, monkeypatch):
    from r1zero.train import loop

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_one_step", ctrl_c)
    rc, out = hostile.r1zero(hostile.train_args(work, tmp_path / "run"))
    assert rc != 0
    line = next(ln for ln in out.splitlines() if "interrupted in" in ln)
    assert "interrupted in step 1 of 3, before any resumable checkpoint (save_steps 1)" in line
    assert "starts this run again at step 0" in line


# ---------------------------------------------------------------- the pieces


def test_rng_state_is_plain_data_that_resumes_every_stream(tmp_path):
    """weights_only=True loads it, and the draws after restoring equal the draws after saving."""
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    torch.save({"rng": ckpt.rng_state()}, tmp_path / "s.pt")
    want = (random.random(), float(np.random.standard_normal()), torch.rand(2).tolist())
    state = torch.load(tmp_path / "s.pt", weights_only=True)  # raises if anything is pickled
    ckpt.set_rng_state(state["rng"])
    assert (random.random(), float(np.random.standard_normal()), torch.rand(2).tolist()) == want


def test_saved_rollout_loads_weights_only(tmp_path):
    """num_iterations > 1 keeps the step's rollout in resume_state.pt: as plain data."""
    from r1zero.rollout import RolloutBatch
    from r1zero.train.experience import Experience
    from r1zero.train.resume import pack_experience, unpack_experience

    batch = RolloutBatch(*(torch.ones(2, 3, dtype=torch.long) for _ in range(4)), torch.ones(2))
    exp = Experience(
        rows=[{"nums": [1, 2], "target": 3}] * 2,
        prompts=["p", "q"],
        completions=["a", "b"],
        batch=batch,
        rewards_per_func={"format": torch.zeros(2)},
        rewards=torch.zeros(2),
        advantages=torch.ones(2),
        old_logprobs=torch.ones(2, 3),
    )
    torch.save({"experience": pack_experience(exp)}, tmp_path / "s.pt")
    back = unpack_experience(torch.load(tmp_path / "s.pt", weights_only=True)["experience"])
    assert back.rows == exp.rows and back.completions == exp.completions
    assert torch.equal(back.batch.completion_mask, batch.completion_mask)
    assert torch.equal(back.old_logprobs, exp.old_logprobs)


def test_clean_temporaries_removes_only_r1zeros_own(tmp_path):
    ckpt.claim(tmp_path)
    for name in (".tmp-checkpoint-3", ".tmp-delete-checkpoint-2", ".tmp-final", ".tmp-important"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    ckpt.clean_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-important", ckpt.MARKER]


def test_save_never_replaces_a_checkpoint_another_run_wrote(tmp_path):
    ckpt.claim(tmp_path)
    junk = tmp_path / "checkpoint-4"
    junk.mkdir()
    (junk / "thesis.tex").write_text("mine")
    with pytest.raises(ckpt.CheckpointError, match="was not written by this run"):
        ckpt.save_checkpoint(
            tmp_path, 4, model=None, tokenizer=None, resume_state=None, trainer_state={},
            total_limit=1,
        )  # fmt: skip
    assert (junk / "thesis.tex").read_text() == "mine"
    assert ckpt.checkpoints(tmp_path) == [] and ckpt.foreign_checkpoints(tmp_path) == [junk.name]


def test_claim_marks_a_new_folder_and_knows_it_again(tmp_path):
    rid, new = ckpt.claim(tmp_path / "run")
    assert new and ckpt.run_id(tmp_path / "run") == rid
    assert ckpt.claim(tmp_path / "run") == (rid, False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ckpt.CheckpointError, match="not a run folder r1zero made") as e:
        ckpt.claim(tmp_path / "other")
    assert "\n" not in str(e.value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=80), st.recursive(st.none() | st.text() | st.integers(),
       lambda c: st.lists(c) | st.dictionaries(st.text(), c), max_leaves=8).map(json.dumps)))  # fmt: skip
def test_any_marker_content_is_read_without_raising(tmp_path_factory, content):
    """A marker is a run id only when it is one r1zero wrote; anything else reads as None."""
    d = tmp_path_factory.mktemp("m")
    data = content if isinstance(content, bytes) else content.encode()
    (d / ckpt.MARKER).write_bytes(data)
    rid = ckpt.run_id(d)
    assert rid is None or ckpt.RUN_ID_RE.match(rid)


def test_links_inside_a_trackers_folder_are_the_trackers_business(tmp_path):
    """A logger may keep links in its own folder (wandb's latest-run); only r1zero's paths
    must be plain, and the tracker folder itself must not be a link."""
    ckpt.claim(tmp_path)
    (tmp_path / "swanlog").mkdir()
    (tmp_path / "swanlog" / "latest-run").symlink_to(tmp_path / "swanlog")
    assert ckpt.first_symlink(tmp_path) is None
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "step-000000.json").symlink_to(tmp_path / ckpt.MARKER)
    assert ckpt.first_symlink(tmp_path) == tmp_path / "eval" / "step-000000.json"


@pytest.mark.slow  # a fresh interpreter: 20-60 s of imports on a busy 2-core machine
def test_ctrl_c_in_a_real_process_says_what_is_saved(work, tmp_path):
    """SIGINT to ``python -m r1zero train`` past its second checkpoint: one line naming the
    checkpoint that holds the run and how to resume, and no traceback."""
    import os
    import signal
    import subprocess
    import time

    out = tmp_path / "run"
    args = hostile.train_args(work, out)
    args[args.index("--max_steps") + 1] = "500"  # long enough to be interrupted
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "r1zero", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 300
    while not (out / "checkpoint-2").is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    lines = [ln for ln in output.splitlines() if "interrupted in step" in ln]
    assert len(lines) == 1, output[-3000:]
    last = ckpt.latest_resumable(out)
    assert last is not None and f": {last.name} in " in lines[0], lines[0]
    assert "run the same command again to resume from it" in lines[0]
    assert "Traceback" not in output, output[-3000:]


def test_mid_iteration_rollout_is_saved_and_resumed(work, tmp_path):
    """num_iterations 2: checkpoint-1 holds the rollout step 2 reuses, as plain data; the
    same command resumes from it (a shadowed name once made this save crash)."""
    from r1zero.train import checkpoint as ck

    out = tmp_path / "run"
    real = ck.save_checkpoint

    def save_then_ctrl_c(output_dir, s, **kw):
        path = real(output_dir, s, **kw)
        if s == 1:
            raise KeyboardInterrupt
        return path

    ck.save_checkpoint = save_then_ctrl_c
    try:
        hostile.r1zero(hostile.train_args(work, out, "--num_iterations", "2"))
    finally:
        ck.save_checkpoint = real
    state = torch.load(out / "checkpoint-1" / ckpt.RESUME_FILE, weights_only=True)
    assert state["experience"]["completions"]
    rc, output = hostile.r1zero(hostile.train_args(work, out, "--num_iterations", "2"))
    assert rc == 0 and "resuming from checkpoint-1 (step 1 of 3)" in output, output[-3000:]
    assert hostile.metric_steps(out) == [1, 2, 3]
