"""``r1zero eval`` on a LoRA run folder or checkpoint (adapter_config.json, no config.json):
the base comes from the adapter config or the run's config.yaml; one error line without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r1zero.task.data import generate_rows, write_jsonl


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model_dir) -> Path:
    """A run folder as a LoRA run leaves it: adapter + tokenizer at the top and in a
    checkpoint, config.yaml naming the base, no config.json anywhere."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path_factory.mktemp("lora-run")
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules="all-linear"))
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    for folder in (run, run / "checkpoint-1"):
        peft_model.save_pretrained(folder)
        tok.save_pretrained(folder)
    (run / "config.yaml").write_text(
        f"model_name_or_path: {tiny_model_dir}\nuse_peft: true\nprompt_template: en\n"
    )
    write_jsonl(generate_rows(3, seed=1), run / "heldout.jsonl")
    return run


def _eval(model: Path, data: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "r1zero", "eval", str(model), "--data", str(data), "--n", "2",
         "--max-new-tokens", "4"],
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )  # fmt: skip


def _set_base(folder: Path, base: str) -> None:
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = base
    (folder / "adapter_config.json").write_text(json.dumps(cfg))


def test_eval_a_lora_run_folder(lora_run, tmp_path):
    """Was: error: model_name_or_path: runs/lora has no config.json."""
    assert not (lora_run / "config.json").exists()
    r = _eval(lora_run, lora_run / "heldout.jsonl", tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["n"] == 2 and result["model"] == str(lora_run)


def test_eval_a_lora_checkpoint_whose_base_path_moved(lora_run, tmp_path):
    """A relative base saved from another working directory: config.yaml's base is used."""
    ckpt = lora_run / "checkpoint-1"
    _set_base(ckpt, "somewhere/else/model-that-moved/")
    r = _eval(ckpt, lora_run / "heldout.jsonl", tmp_path)
    assert r.returncode == 0, r.stderr


def test_eval_a_lora_adapter_without_its_base_is_one_line(lora_run, tmp_path):
    lonely = tmp_path / "adapter"
    for f in (lora_run / "checkpoint-1").iterdir():
        (lonely / f.name).parent.mkdir(exist_ok=True)
        (lonely / f.name).write_bytes(f.read_bytes())
    _set_base(lonely, str(tmp_path / "gone"))
    r = _eval(lonely, lora_run / "heldout.jsonl", tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "its base model is not found" in errors[0] and "gone" in errors[0]
