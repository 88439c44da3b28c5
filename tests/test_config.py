"""YAML + command-line config: TRL key names, clear errors, the tutorial's file as shipped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from r1zero.config import ConfigError, all_fields, from_dict, load_config, to_yaml

ROOT = Path(__file__).resolve().parents[1]
DATAWHALE = ROOT / "examples" / "datawhale-r1.yaml"


def test_datawhale_yaml_loads():
    cfg = load_config(DATAWHALE)
    m, d, g, r = cfg.model, cfg.data, cfg.grpo, cfg.run
    assert m.model_name_or_path == "Qwen/Qwen2.5-3B-Instruct"
    assert m.torch_dtype == "bfloat16"
    assert m.attn_implementation == "flash_attention_2"
    assert d.dataset_id_or_path == "Jiayi-Pan/Countdown-Tasks-3to4"
    assert g.learning_rate == 5e-7
    assert g.beta == 0.001
    assert g.num_generations == 8
    assert g.max_steps == 450
    assert g.per_device_train_batch_size == 1
    assert g.gradient_accumulation_steps == 8
    assert g.gradient_checkpointing is True
    assert g.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert g.lr_scheduler_type == "cosine"
    assert g.warmup_ratio == 0.03
    assert g.seed == 2025
    assert g.max_prompt_length == 256
    assert g.max_completion_length == 4096
    assert g.bf16 is True and g.tf32 is True
    assert r.output_dir == "runs/Datawhale-R1"
    assert r.save_steps == 50 and r.logging_steps == 1
    assert r.report_to == ["tensorboard", "swanlab"]  # swanlab: true adds it
    assert (r.workspace, r.project, r.experiment_name) == ("group", "Try_R1", "qingxuan-3B")
    assert cfg.unused == {
        "use_vllm": True,
        "vllm_device": "cuda:2",
        "vllm_gpu_memory_utilization": 0.5,
        "logging_strategy": "steps",
    }
    assert "learning_rate" in cfg.explicit and "epsilon" not in cfg.explicit


def test_command_line_overrides_file():
    cfg = load_config(DATAWHALE, ["--max_steps", "2", "--swanlab", "false", "--report_to", "none"])
    assert cfg.grpo.max_steps == 2
    assert cfg.run.report_to == []
    assert cfg.grpo.learning_rate == 5e-7  # untouched keys keep the file's value


def test_defaults_round_trip_through_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(to_yaml(load_config(DATAWHALE)))
    again = load_config(p)
    assert again.flat() == load_config(DATAWHALE).flat()


# ---------------------------------------------------------------- errors


def test_unknown_key_in_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("lerning_rate: 1.0e-5\n")
    with pytest.raises(ConfigError, match="did you mean learning_rate?"):
        load_config(p)


def test_unknown_key_on_command_line():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["--lerning_rate", "1e-5"])
    assert "'lerning_rate'" in str(e.value)
    assert "did you mean learning_rate?" in str(e.value)
    with pytest.raises(ConfigError, match="see r1zero train --help"):
        load_config(None, ["--zzzzzz", "1"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max_steps", "abc"], "max_steps: expected an integer, got 'abc'"),
        (["--max_steps", "1.5"], "max_steps: expected an integer, got 1.5"),
        (["--bf16", "maybe"], "bf16: expected true or false, got 'maybe'"),
        (["--learning_rate", "fast"], "learning_rate: expected a number, got 'fast'"),
        (["--reward_weights", "[1, x]"], "reward_weights: expected a number, got 'x'"),
        (["--reward_funcs", "{a: 1}"], "reward_funcs: expected a string, got {'a': 1}"),
        (["--gradient_checkpointing_kwargs", "3"], "gradient_checkpointing_kwargs: expected a mapping"),
    ],
)  # fmt: skip
def test_wrong_type_names_key_and_type(args, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, args)


def test_exponent_without_dot_is_a_number(tmp_path):
    # YAML 1.1 reads "1e-5" as a string; a learning rate written that way must still work
    assert load_config(None, ["--learning_rate", "1e-5"]).grpo.learning_rate == 1e-5
    p = tmp_path / "c.yaml"
    p.write_text("learning_rate: 3e-6\nbeta: 4e-2\n")
    cfg = load_config(p)
    assert (cfg.grpo.learning_rate, cfg.grpo.beta) == (3e-6, 0.04)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    p = tmp_path / "c.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(p)
    p.write_text("a: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="unexpected argument 'oops'"):
        load_config(None, ["oops"])


def test_aliases():
    cfg = load_config(None, ["--dtype", "float32", "--dataset_name", "data/x.jsonl"])
    assert cfg.model.torch_dtype == "float32"
    assert cfg.data.dataset_id_or_path == "data/x.jsonl"
    assert {"torch_dtype", "dataset_id_or_path"} <= cfg.explicit


def test_batch_unit_completions_must_divide():
    with pytest.raises(
        ConfigError, match=r"\(12 completions\) must be divisible by num_generations \(8\)"
    ):
        from_dict({"batch_unit": "completions", "per_device_train_batch_size": 12})
    cfg = from_dict({"batch_unit": "completions", "per_device_train_batch_size": 16})
    assert cfg.grpo.per_device_train_batch_size == 16
    # prompts (the default): any count is fine
    assert from_dict({"per_device_train_batch_size": 3}).grpo.batch_unit == "prompts"
    with pytest.raises(ConfigError, match="batch_unit must be prompts or completions"):
        from_dict({"batch_unit": "tokens"})
    with pytest.raises(ConfigError, match="num_generations must be at least 2"):
        from_dict({"num_generations": 1})


def test_reward_weights_length():
    with pytest.raises(ConfigError, match="reward_weights has 1 entries for 2 reward_funcs"):
        from_dict({"reward_weights": [1.0]})
    cfg = from_dict(
        {"reward_funcs": ["format", "equation", "thought_len"], "reward_weights": [1, 2, 0.5]}
    )
    assert cfg.grpo.reward_weights == [1.0, 2.0, 0.5]


def test_other_checks_and_normalisation():
    assert from_dict({"scale_rewards": True}).grpo.scale_rewards == "group"  # TRL's bool form
    assert from_dict({"scale_rewards": "false"}).grpo.scale_rewards == "none"
    assert load_config(None, ["--scale_rewards", "false"]).grpo.scale_rewards == "none"
    with pytest.raises(ConfigError, match="scale_rewards must be group, batch or none"):
        from_dict({"scale_rewards": "token"})
    with pytest.raises(ConfigError, match="report_to takes tensorboard, swanlab, wandb or none"):
        from_dict({"report_to": "mlflow"})
    assert from_dict({"report_to": "wandb"}).run.report_to == ["wandb"]  # one name: a list
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        from_dict({"temperature": 0})


def test_key_value_forms():
    cfg = load_config(
        None,
        ["--max_steps=3", "--use_peft", "--beta", "0.04", "--mask-truncated-completions", "--top_k=5", "--bf16"],
    )  # fmt: skip
    assert cfg.grpo.max_steps == 3
    assert cfg.model.use_peft is True  # bare flag followed by another option
    assert cfg.grpo.beta == 0.04
    assert cfg.grpo.mask_truncated_completions is True  # dashes read as underscores
    assert cfg.grpo.top_k == 5
    assert cfg.grpo.bf16 is True  # bare flag at the end
    assert load_config(None, ["--top_k="]).grpo.top_k is None  # empty value: unset
    assert load_config(None, ["--use_peft", "false"]).model.use_peft is False


# ---------------------------------------------------------------- the command line


def r1zero(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "r1zero", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_unknown_key_fails_with_one_line():
    res = r1zero("train", "--lerning_rate", "1")
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "learning_rate" in lines[0] and "lerning_rate" in lines[0]
    assert "Traceback" not in res.stderr


def test_cli_train_help_lists_every_key():
    res = r1zero("train", "--help")
    assert res.returncode == 0, res.stderr
    shown = set(re.findall(r"│\s*(\w+)\s*(?=│)", res.stdout))
    missing = sorted(set(all_fields()) - shown)
    assert not missing, f"train --help lacks {missing}"


def test_list_keys_take_commas_and_several_values_on_the_command_line() -> None:
    from r1zero.config import ConfigError, load_config

    three = ["format", "equation", "thought_len"]
    for args in (
        ["--reward_funcs", "format,equation,thought_len"],
        ["--reward_funcs", "format", "equation", "thought_len", "--max_steps", "3"],
        ["--reward_funcs", "[format, equation, thought_len]"],
        ["--reward_funcs=format,equation,thought_len"],
    ):
        assert load_config(None, args).grpo.reward_funcs == three, args
    with pytest.raises(ConfigError, match="unexpected argument 'extra'"):
        load_config(None, ["--max_steps", "1", "extra"])


def test_defaults_sets_fill_only_what_the_config_leaves_out() -> None:
    from r1zero.config import ConfigError, load_config

    cfg = load_config(None, ["--defaults", "trl-0.14", "--temperature", "0.7"])
    g = cfg.grpo
    assert (g.loss_type, g.temperature, g.scoring_temperature, g.beta) == ("grpo", 0.7, 1.0, 0.04)
    assert "temperature" not in cfg.from_defaults and cfg.from_defaults["loss_type"] == "grpo"
    plain = load_config(None, [])
    assert (plain.grpo.loss_type, plain.grpo.scoring_temperature) == ("dapo", 1.0)
    with pytest.raises(ConfigError, match="did you mean trl-0.14"):
        load_config(None, ["--defaults", "trl-0.41"])
