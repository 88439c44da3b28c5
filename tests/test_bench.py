"""``r1zero bench``: shipped shapes match the published models, the smoke run writes every key."""

import json
import subprocess
import sys

import pytest
import torch

from r1zero.bench import model as B
from r1zero.bench import workloads as W
from r1zero.bench.main import grpo_overrides, merge_into
from r1zero.bench.measure import ForcedLength
from r1zero.bench.report import SUMMARY_KEYS, headline, table_lines
from r1zero.bench.sections import REFERENCE_ONLY
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
    cmd = [sys.executable, "-m", "r1zero", "bench", "--shape", "tiny", "--device", "cpu"]
    cmd += ["--quick", "--sections", "rollout,train,step,lora", "--out", str(out)]
    cmd += ["--workload", "reference,tutorial"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert not r["errors"], r["errors"]
    for key in KEYS + ["device", "date", "torch", "transformers", "command"]:
        assert key in r
    assert r["rollout_tok_per_s"] > 0 and r["train_mfu"] > 0 and r["step_s"] > 0
    ref, tut = r["workloads"]["reference"], r["workloads"]["tutorial"]
    step = ref["step"]
    assert step["step_s"] >= step["rollout_s"] + step["update_s"]
    assert ref["lora"]["trainable_params"] > 0 and r["lora_peak_gib"] is None  # no CUDA: no peak
    for key in SUMMARY_KEYS:
        assert key in tut, key
    assert tut["step_s"] > 0 and tut["lora_step_s"] > 0 and tut["trl_not_run"]
    lengths = tut["workload"]["lengths"]
    for spec in ("hf@8", "fast@8"):  # every engine generates exactly the forced lengths
        assert tut["rollout"][spec]["generated_tokens"] == sum(lengths)
    assert tut["train"] == {"skipped": REFERENCE_ONLY["train"]}
    assert "| reference: GRPO step, full FT (hf rollout) |" in proc.stdout
    assert "| tutorial | 8 x " in proc.stdout


# ----------------------------------------------------------------------------- workloads
def test_tutorial_lengths_are_seeded_and_long_tailed():
    w = W.make("tutorial")
    assert w.lengths == W.make("tutorial").lengths == W.lognormal_lengths(128)
    assert len(w.lengths) == w.sequences == 128
    assert min(w.lengths) >= 16 and max(w.lengths) <= 4096 and w.completion_len == 4096
    many = torch.tensor(W.lognormal_lengths(200_000, lo=1, hi=10**9, seed=1)).double().log()
    assert abs(many.median().exp().item() - 450) < 5  # median 450
    assert abs(many.std().item() - 0.9) < 0.01  # sigma 0.9
    d = w.describe()
    assert d["completion_max"] == max(w.lengths) and d["tokens_per_step"] == w.tokens
    assert W.make("collapse").completion_lengths() == [4096] * 128
    assert W.make("reference").tokens == 128 * (150 + 512)


def test_unknown_workload_is_a_clear_error():
    with pytest.raises(SystemExit, match="choose from reference, tutorial, collapse"):
        W.make("tutorail")


def test_grpo_overrides_parse_yaml_values():
    assert grpo_overrides(
        ["padding_free=true", "loss_type=dapo", "ppo_max_token_len_per_gpu=8192"]
    ) == {
        "padding_free": True,
        "loss_type": "dapo",
        "ppo_max_token_len_per_gpu": 8192,
    }
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        grpo_overrides(["padding_free"])


@pytest.fixture(scope="module")
def tiny_model():
    from helpers import random_qwen2

    return random_qwen2(vocab=100, hidden=32, intermediate=64, layers=1, max_positions=128).eval()


def test_forced_lengths_same_for_engines_with_and_without_row_limits(tiny_model):
    from r1zero.rollout.fast import FastEngine
    from r1zero.rollout.hf import HFGenerateEngine

    ids = torch.randint(3, 100, (6, 5), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    lengths = (1, 7, 3, 12, 2, 5)
    params = SamplingParams(max_new_tokens=12, do_sample=False, eos_token_ids=(1,))
    fast = W.ForcedLengths(FastEngine(stop_check_interval=2), lengths)
    hf = W.ForcedLengths(HFGenerateEngine(), lengths)
    a = fast.generate(tiny_model, ids, mask, params)
    b = hf.generate(tiny_model, ids, mask, params)
    assert a.completion_lengths.tolist() == list(lengths) == b.completion_lengths.tolist()
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert fast.engine.last_batch_sizes[-1] == 2  # the 12-token row and a filler at the end


def test_trl_forced_eos_processor_gives_each_row_its_length(tiny_model):
    from transformers import GenerationConfig, LogitsProcessorList

    from r1zero.bench.trl_step import forced_eos_processor

    lengths, eos = [1, 4, 9, 2], 1
    ids = torch.randint(3, 100, (4, 6), generator=torch.Generator().manual_seed(1))
    cfg = GenerationConfig(max_new_tokens=12, do_sample=True, eos_token_id=eos, pad_token_id=0)
    out = tiny_model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        generation_config=cfg,
        logits_processor=LogitsProcessorList([forced_eos_processor(lengths, eos)]),
    )[:, 6:]
    first_eos = (out == eos).int().argmax(-1) + 1
    assert first_eos.tolist() == lengths


def test_merge_of_partial_workload_calls():
    """Three device calls, each one workload and a few sections, make one JSON of record."""
    a = {
        "command": "a",
        "device": "H200",
        "errors": {"tutorial/step": "OOM"},
        "workloads": {
            "tutorial": {
                "workload": {"name": "tutorial"},
                "rollout": {
                    "fast@128": {
                        "engine": "fast",
                        "sequences": 128,
                        "tok_per_s": 9e3,
                        "seconds": 8.0,
                    }
                },
            }
        },
    }
    b = {
        "command": "b",
        "device": "H200",
        "errors": {},
        "workloads": {
            "tutorial": {
                "step": {"rollout_s": 8.5, "step_s": 20.0, "peak_gib": 50.0},
                "rollout": {
                    "fast_nocompact@128": {
                        "engine": "fast_nocompact",
                        "sequences": 128,
                        "tok_per_s": 3e3,
                        "seconds": 25.0,
                    }
                },
            },
            "collapse": {
                "rollout": {
                    "fast@128": {
                        "engine": "fast",
                        "sequences": 128,
                        "tok_per_s": 2e4,
                        "seconds": 24.0,
                    }
                }
            },
        },
    }
    merged = {"errors": {}}
    merge_into(merged, a, measuring=False)
    merge_into(merged, b, measuring=False)
    h = headline(merged)
    tut = merged["workloads"]["tutorial"]
    assert set(tut["rollout"]) == {"fast@128", "fast_nocompact@128"}  # specs merge one by one
    assert tut["rollout_s"] == 8.5 and tut["step_s"] == 20.0  # the step's rollout
    assert merged["workloads"]["collapse"]["rollout_s"] == 24.0  # no step: the rollout section's
    assert merged["errors"] == {} and merged["commands"] == ["a", "b"]
    assert h["workload_goals"]["collapse rollout_s"]["met"] is True
    assert h["workload_goals"]["tutorial rollout_s"]["met"] is False


def test_old_json_of_record_merges_as_reference():
    from pathlib import Path

    old = json.loads(Path("benchmarks/results/bench-2026-11-25-h100-80gb-hbm3.json").read_text())
    merged = {"errors": {}}
    merge_into(merged, old, measuring=False)
    h = headline(merged)
    assert h["step_s"] == old["step"]["step_s"] and h["train_mfu"] == old["train_mfu"]
    assert merged["workloads"]["reference"]["rollout_s"] == old["step"]["rollout_s"]


def test_trl_timeout_keeps_the_finished_generate_times(tmp_path):
    from r1zero.bench.sections import trl_timed_out

    js = tmp_path / "trl.json"
    assert trl_timed_out(js, 1, 560)["trl_step_s_at_least"] is None  # killed before any
    (tmp_path / "trl.json.progress").write_text(json.dumps({"generate_s": [431.7]}))
    r = trl_timed_out(js, 1, 560)
    assert r["trl_step_s_at_least"] == 431.7 and "its generate took 432 s" in r["skipped"]


def test_micro_takes_a_compiled_suffix_and_rejects_the_rest():
    from r1zero.bench.main import parse

    assert parse(["--micro", "32c"]).micro == "32c"
    with pytest.raises(SystemExit, match="e.g. 32 or 32c"):
        parse(["--micro", "3x2"])
