"""``r1zero bench``: shipped shapes match the published models, the smoke run writes every key."""

import json
import subprocess
import sys

import pytest
import torch

from r1zero.bench import model as B
from r1zero.bench.main import merge_into
from r1zero.bench.measure import ForcedLength
from r1zero.bench.report import headline, table_lines
from r1zero.rollout import SamplingParams

# Parameter counts of the Qwen2.5 *-Instruct checkpoints (tied embeddings counted once).
PUBLISHED = {
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-3b": 3_085_938_688,
    "qwen2.5-7b": 7_615_616_512,
}

KEYS = ["rollout_tok_per_s", "train_mfu", "step_s", "lora_peak_gib", "trl_step_s"]


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_shape_has_the_published_parameter_count(name):
    shape = B.load_shape(name)
    # 7B's config.json has a padded vocabulary of 152064; the smaller models 151936.
    assert shape["vocab_size"] == (152064 if name == "qwen2.5-7b" else 151936)
    assert shape["model_type"] == "qwen2"
    assert shape["tie_word_embeddings"] is (name != "qwen2.5-7b")
    model = B.build_model(shape, torch.device("meta"))
    assert B.count_params(model) == PUBLISHED[name]


def test_forced_length_sets_ignore_eos():
    seen = []

    class Spy:
        def generate(self, model, ids, mask, params, generator=None):
            seen.append(params)

    ForcedLength(Spy()).generate(None, None, None, SamplingParams(max_new_tokens=4))
    assert seen[0].ignore_eos and seen[0].max_new_tokens == 4


def test_headline_and_merge():
    first = {
        "device": "H100",
        "workload": {"prompts": 16, "num_generations": 8},
        "errors": {"lora": "OOM"},
        "rollout": {"fast@128": {"engine": "fast", "sequences": 128, "tok_per_s": 31000.0}},
        "step": {"step_s": 6.0, "peak_gib": 40.0},
    }
    second = {
        "device": "H100",
        "lora": {"peak_gib": 20.0, "step_s": 7.0},
        "trl": {"trl_step_s": 24.0},
        "errors": {},
    }
    merged = {"errors": {}}
    merge_into(merged, first, measuring=False)
    merge_into(merged, second, measuring=False)
    h = headline(merged)
    assert h["rollout_tok_per_s"] == 31000.0 and h["step_s"] == 6.0 and h["lora_peak_gib"] == 20.0
    assert h["speedup_vs_trl"] == 4.0 and merged["errors"] == {}
    assert h["goals"]["step_s"]["met"] and h["goals"]["train_mfu"]["met"] is None
    assert any("TRL" in line for line in table_lines(merged | h))


def test_quick_cpu_run_writes_every_key(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "-m",
        "r1zero",
        "bench",
        "--shape",
        "tiny",
        "--device",
        "cpu",
        "--quick",
        "--sections",
        "rollout,train,step,lora",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert not r["errors"], r["errors"]
    for key in KEYS + ["device", "date", "torch", "transformers", "command"]:
        assert key in r
    assert r["rollout_tok_per_s"] > 0 and r["train_mfu"] > 0 and r["step_s"] > 0
    step = r["step"]
    assert step["step_s"] >= step["rollout_s"] + step["update_s"]
    assert r["lora"]["trainable_params"] > 0 and r["lora_peak_gib"] is None  # no CUDA: no peak
    assert "| GRPO step, full FT (hf rollout) |" in proc.stdout
