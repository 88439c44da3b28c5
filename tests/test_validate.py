"""All validation in config/ (issue 14 item 3): ``train(cfg)`` from Python checks the
registry names and ranges that ``r1zero train`` checks, before it loads anything."""

from __future__ import annotations

import subprocess
import sys

import pytest

from r1zero.config import ConfigError, from_dict
from r1zero.config.validate import validate
from r1zero.train.loop import train

BAD = [
    ({"loss_type": "dapoo"}, "loss_type: unknown 'dapoo'; did you mean dapo?"),
    ({"advantage_estimator": "grp"}, "advantage_estimator: unknown 'grp'"),
    ({"prompt_template": "shrt"}, "prompt_template: unknown 'shrt'"),
    ({"lr_scheduler_type": "cosin"}, "lr_scheduler_type: unknown 'cosin'"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number >= 0"),
    ({"test_size": 1.0}, "test_size must be in [0, 1)"),
    ({"rollout_engine": "vllm"}, "rollout_engine: unknown rollout_engine 'vllm'"),
    ({"reward_funcs": ["equaton"]}, "reward_funcs:"),
]


@pytest.mark.parametrize(("raw", "message"), BAD, ids=[next(iter(r)) for r, _ in BAD])
def test_train_from_python_refuses_what_the_cli_refuses(tmp_path, raw, message):
    """No model folder exists at the path: the config error must come first, before any
    loading (before this, train(cfg) skipped these checks and failed later or not at all)."""
    cfg = from_dict(
        {**raw, "model_name_or_path": str(tmp_path / "none"), "output_dir": str(tmp_path)}
    )
    with pytest.raises(ConfigError) as e:
        train(cfg)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_valid_config_passes():
    validate(from_dict({"loss_type": "grpo", "reward_funcs": ["format", "equation"]}))


def test_config_imports_without_torch():
    """The registries are looked up inside validate(), so config stays light."""
    code = "import sys, r1zero.config.validate; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
