"""Crash safety: SIGKILL a tiny training run 20 times (during rollout, the optimizer step,
checkpoint writing and pruning, after the final model), restart it each time (every other
time with the very same command, which must resume by itself), and require
the final weights, metrics and completions to equal an uninterrupted run's, bit for bit
(tests/reliability/kill_test.py does the work). The resume log-truncation rules are checked fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import harness
from r1zero.train.logs import RunLogger

kill_test = harness("kill_test")


@pytest.mark.slow
def test_twenty_kills_resume_to_the_same_run(tmp_path, tiny_model_dir):
    s = kill_test.run_kill_test(tmp_path, kills=20, max_steps=10, seed=1, model=tiny_model_dir)
    print(kill_test.format_summary(s))
    assert s["kills"] >= 20
    assert {"rollout", "optimizer", "checkpoint", "final", "closing"} <= set(s["kills_by_phase"])
    assert s["unreadable_checkpoints"] == 0, s["unreadable_detail"]
    assert s["resumes_not_from_newest_checkpoint"] == []
    assert s["weights_moved_from_init"] > 0  # the comparison is not between two still models
    assert s["weights_bit_identical"] and s["max_abs_weight_diff"] == 0
    assert s["metrics_rows_differing"] == 0 and s["metrics_rows"] > 10
    assert s["completion_files_differing"] == 0
    assert s["done"] and s["leftovers_at_end"] == []
    assert s["restarts_by_same_command"] >= 5  # the same command resumes by itself
    assert s["resumes_not_announced"] == []
    rr = s["rerun_finished"]  # the same command on the finished run: a no-op
    assert rr["exit"] == 0 and rr["said_finished"] and rr["files_changed"] == 0, rr
    assert s["ok"]


def _rows(path: Path) -> list[tuple[int, str]]:
    out = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        out.append((row["step"], "eval" if any(k.startswith("eval/") for k in row) else "train"))
    return out


def test_resume_truncates_logs_and_never_logs_an_eval_twice(tmp_path):
    """What the interrupted run logged after its checkpoint goes; the eval rows the loop
    re-logs at the resume step (step 0 or the last step) are written once."""
    m = tmp_path / "metrics.jsonl"
    lines = [
        {"step": 0, "eval/accuracy": 0.1},
        {"step": 1, "reward": 0.5},
        {"step": 2, "reward": 0.6},
        {"step": 2, "eval/accuracy": 0.2},
        {"step": 3, "reward": 0.7},
    ]
    m.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 4, "rew')  # cut line
    (tmp_path / "completions").mkdir()
    for name in ("step-000002.jsonl.gz", "step-000003.jsonl.gz", "step-000004.jsonl.tmp"):
        (tmp_path / "completions" / name).write_bytes(b"x")

    logger = RunLogger(tmp_path, [], run_name="t", config={}, resume_step=2)
    assert _rows(m) == [(0, "eval"), (1, "train"), (2, "train"), (2, "eval")]
    assert sorted(p.name for p in (tmp_path / "completions").iterdir()) == ["step-000002.jsonl.gz"]
    logger.log(2, {"eval/accuracy": 0.2})  # the loop's final evaluation, again: skipped
    logger.log(3, {"reward": 0.7})
    logger.log(3, {"eval/accuracy": 0.3})
    assert _rows(m) == [
        (0, "eval"),
        (1, "train"),
        (2, "train"),
        (2, "eval"),
        (3, "train"),
        (3, "eval"),
    ]

    RunLogger(tmp_path, [], run_name="t", config={}, resume_step=0).log(0, {"eval/accuracy": 0.1})
    assert _rows(m) == [(0, "eval")]  # killed before the first checkpoint: eval 0 kept once
