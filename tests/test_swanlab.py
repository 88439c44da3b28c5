"""SwanLab, the tutorial's tracker: a one-line hint when it is missing, an offline fallback
(one line, no traceback) without a login or a terminal, logs inside the run folder, and
workspace / project / experiment_name passed on. Passes with and without swanlab installed."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from r1zero.config import ConfigError
from r1zero.task.data import generate_rows, write_jsonl
from r1zero.train.logs import RunLogger, init_swanlab

HAS_SWANLAB = importlib.util.find_spec("swanlab") is not None


class FakeSwanLab(types.ModuleType):
    """Records init calls; online mode fails as swanlab does with no TTY and no login."""

    def __init__(self) -> None:
        super().__init__("swanlab")
        self.calls: list[dict] = []

    def init(self, **kw):
        self.calls.append(kw)
        if kw["mode"] == "online":
            raise RuntimeError(
                "Failed to initialize SwanLab in online mode: no TTY is available for "
                "interactive login.\nmore lines of traceback text"
            )


def test_offline_fallback_in_the_run_folder(tmp_path, monkeypatch, caplog):
    fake = FakeSwanLab()
    monkeypatch.setitem(sys.modules, "swanlab", fake)
    monkeypatch.delenv("SWANLAB_MODE", raising=False)
    with caplog.at_level(logging.WARNING, logger="r1zero"):
        init_swanlab(tmp_path / "run", project="p", workspace="w", name="e", config={"a": 1})
    assert [c["mode"] for c in fake.calls] == ["online", "offline"]
    assert {c["log_dir"] for c in fake.calls} == {str(tmp_path / "run" / "swanlog")}
    assert all((c["project"], c["workspace"], c["name"]) == ("p", "w", "e") for c in fake.calls)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "no TTY is available" in lines[0] and "logging offline to" in lines[0]


def test_swanlab_mode_from_the_environment_is_honoured(tmp_path, monkeypatch):
    fake = FakeSwanLab()
    monkeypatch.setitem(sys.modules, "swanlab", fake)
    monkeypatch.setenv("SWANLAB_MODE", "local")
    init_swanlab(tmp_path, project=None, workspace=None, name="run", config={})
    assert [c["mode"] for c in fake.calls] == ["local"]


def test_missing_swanlab_names_swanlab_not_report_to(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "swanlab", None)  # import swanlab -> ImportError
    with pytest.raises(ConfigError, match="pip install swanlab") as e:
        init_swanlab(tmp_path, project=None, workspace=None, name="run", config={})
    assert "report_to" not in str(e.value)


def test_tensorboard_events_file_waits_for_the_first_scalar(tmp_path):
    """A run that fails while starting left an empty events file in its folder."""
    logger = RunLogger(tmp_path, ["tensorboard"], run_name="r", config={})
    logger.close()
    assert not list((tmp_path / "runs").glob("events.*")) if (tmp_path / "runs").exists() else True
    logger = RunLogger(tmp_path, ["tensorboard"], run_name="r", config={})
    logger.log(1, {"reward": 1.0})
    logger.close()
    assert len(list((tmp_path / "runs").glob("events.*"))) == 1


def _train(tmp_path: Path, model: Path, *extra: str, env: dict | None = None, drop=()):
    data = write_jsonl(generate_rows(40, 1), tmp_path / "d.jsonl")
    args = ["--model_name_or_path", str(model), "--dataset_id_or_path", str(data),
            "--num_samples", "40", "--eval_num_samples", "0", "--max_steps", "1",
            "--max_completion_length", "8", "--per_device_train_batch_size", "1",
            "--num_generations", "2", "--report_to", "none", "--live", "false",
            "--save_strategy", "no", "--output_dir", str(tmp_path / "run"), *extra]  # fmt: skip
    cwd = tmp_path / "elsewhere"
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "r1zero", "train", *args], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, cwd=cwd, timeout=600, env={k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop},
    )  # fmt: skip


def test_cli_swanlab_true_without_the_package(tmp_path, tiny_model_dir):
    """Was: a message naming report_to, which the user never set."""
    blocker = tmp_path / "block"
    (blocker / "swanlab").mkdir(parents=True)
    (blocker / "swanlab" / "__init__.py").write_text("raise ImportError('no swanlab here')\n")
    path = os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])
    r = _train(tmp_path, tiny_model_dir, "--swanlab", "true", env={"PYTHONPATH": path})
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1, r.stderr
    assert "pip install swanlab" in errors[0] and "report_to" not in errors[0]
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not HAS_SWANLAB, reason="swanlab is not installed")
def test_cli_swanlab_without_login_or_tty_logs_offline_in_the_run(tmp_path, tiny_model_dir):
    """Was: RuntimeError: Failed to initialize SwanLab in online mode: no TTY ... (traceback)."""
    r = _train(tmp_path, tiny_model_dir, "--swanlab", "true", "--workspace", "wsx",
               "--project", "projx", "--experiment_name", "expx", env={"HOME": str(tmp_path)},
               drop=("SWANLAB_API_KEY", "SWANLAB_MODE"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("logging offline to") == 1, r.stderr
    runs = list((tmp_path / "run" / "swanlog").glob("run-*/*.swanlab"))
    assert len(runs) == 1 and not (tmp_path / "elsewhere" / "swanlog").exists()
    data = runs[0].read_bytes()
    assert all(w in data for w in (b"wsx", b"projx", b"expx"))
