"""The embedded default model: tokenizer, traces, a throwaway build, determinism."""

from __future__ import annotations

import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1zero.task import countdown
from r1zero.task.prompts import TEMPLATES, render
from r1zero.task.rewards import equation_reward, format_reward
from r1zero.tiny import TINY_DATA, build_tiny, held_out, tiny_splits
from r1zero.tiny.tokenizer import TAG_TOKENS, train_tokenizer
from r1zero.tiny.traces import SIGNS, TraceMix, check_line, expression, trace

TINY = dict(steps=4, batch_size=8, tokenizer_problems=200, hidden_size=32, num_layers=1)
"""A throwaway recipe: builds in a second or two."""


@pytest.fixture(scope="module")
def tok():
    rng = random.Random(0)
    corpus = []
    for p in countdown.generate(300, seed=1, **TINY_DATA):
        for t in TEMPLATES.values():
            corpus.append(t.user.format(numbers=list(p.nums), target=p.target) + t.assistant_prefix)
        corpus.append(trace(p.nums, p.target, rng))
    return train_tokenizer(corpus)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_tiny(cache_dir=tmp_path_factory.mktemp("cache"), log=lambda s: None, **TINY)


def test_tokenizer_round_trips_any_text(tok):
    for text in [
        "Using the numbers [3, 5, 7]",
        "使用给定的数字 ✓ émoji 🙂",
        "<think>\n1+2=3\n</think>",
    ]:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_special_and_tag_tokens_are_single_ids(tok):
    for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", *TAG_TOKENS):
        ids = tok(t, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids) == [t]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    # the rewards read the tags, so decoding must keep them
    ids = tok("<think> 1 </think>\n<answer> 1 </answer><|im_end|>")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "<think> 1 </think>\n<answer> 1 </answer>"


def test_numbers_up_to_99_are_single_tokens(tok):
    tokens = tok.convert_ids_to_tokens(tok("7+15=22 123", add_special_tokens=False)["input_ids"])
    assert tokens == ["7", "+", "15", "=", "22", "Ġ", "12", "3"]


def test_chat_template_continues_the_assistant_turn(tok):
    for template in TEMPLATES.values():
        text = render(tok, template, [3, 5, 7], 22)
        assert text.startswith("<|im_start|>user\n")
        assert text.endswith("<|im_end|>\n<|im_start|>assistant\n" + template.assistant_prefix)
        assert text.endswith("\n<think>")


def test_traces_are_seeded_and_mixed():
    probs = list(countdown.generate(400, seed=3, **TINY_DATA))
    a = [trace(p.nums, p.target, random.Random(i)) for i, p in enumerate(probs)]
    b = [trace(p.nums, p.target, random.Random(i)) for i, p in enumerate(probs)]
    assert a == b
    texts = [t.removesuffix("<|im_end|>") for t in a]
    eq = equation_reward(
        texts, nums=[list(p.nums) for p in probs], target=[p.target for p in probs]
    )
    fmt = format_reward(texts)
    assert 0.3 < sum(eq) / len(eq) < 0.6  # careful ones right, most guesses wrong
    assert 0.8 < sum(fmt) / len(fmt) < 0.97  # some badly formatted
    careful = [t for t in texts if " yes\n" in t]
    assert 0.2 < len(careful) / len(texts) < 0.4


def test_patterns_and_check_lines_compute_right():
    for nums in ([3, 5, 7], [9, 1, 9], [2, 8, 4]):
        for signs in SIGNS:
            value = sum(n * s for n, s in zip(nums, signs, strict=True))
            text = f"</think>\n<answer> {expression(nums, signs, ' ')} </answer>"
            assert equation_reward([text], nums=[nums], target=[value]) == [1.0]
            line = check_line(nums, signs, 4)
            assert line.endswith(f"={value} {value}-4={value - 4}")
    assert check_line([6, 8, 6], (-1, 1, 1), 8) == "8+6=14 14-6=8 8-8=0"


def test_careful_traces_are_correct():
    mix = TraceMix(p_careful=1.0, p_broken=0.0)
    for i, p in enumerate(countdown.generate(100, seed=4, **TINY_DATA)):
        text = trace(p.nums, p.target, random.Random(i), mix).removesuffix("<|im_end|>")
        assert format_reward([text]) == [1.0]
        assert equation_reward([text], nums=[list(p.nums)], target=[p.target]) == [1.0]
        assert text.count("=0 yes") == 1 and text.count(" no\n") == text.count("\n") - 4


def test_held_out_problems_stay_out_of_pretraining_and_training():
    from r1zero.tiny.build import _examples

    train, test = tiny_splits(300, 100, seed=1)
    assert len(train) == 300 and len(test) == len({(tuple(r["nums"]), r["target"]) for r in test})
    assert all(held_out(r["nums"], r["target"]) for r in test)
    assert not any(held_out(r["nums"], r["target"]) for r in train)
    for prompt, _ in _examples(300, seed=0, mix=TraceMix()):
        nums, target = prompt.split("numbers [")[1].split("], create an equation that equals ")
        assert not held_out([int(x) for x in nums.split(", ")], int(target.split(".")[0]))


def test_build_loads_like_any_model(built):
    tok = AutoTokenizer.from_pretrained(built)
    model = AutoModelForCausalLM.from_pretrained(built)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    prompt = render(tok, TEMPLATES["short"], [3, 5, 7], 22)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert ids["input_ids"].shape[1] < out.shape[1] <= ids["input_ids"].shape[1] + 5
    assert (built / "model.safetensors").is_file()


def test_build_is_cached_and_deterministic(built, tmp_path):
    again = build_tiny(cache_dir=built.parent, log=lambda s: None, **TINY)
    assert again == built  # cached: same folder, no rebuild
    other = build_tiny(cache_dir=tmp_path, log=lambda s: None, **TINY)
    a = AutoModelForCausalLM.from_pretrained(built).state_dict()
    b = AutoModelForCausalLM.from_pretrained(other).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (built / "tokenizer.json").read_text() == (other / "tokenizer.json").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left


def test_env_overrides_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("R1ZERO_CACHE", str(tmp_path))
    folder = build_tiny(log=lambda s: None, **TINY)
    assert folder.parent == tmp_path


@pytest.mark.slow
def test_default_run_learns_on_held_out_problems(tmp_path, monkeypatch):
    """The issue's bar, end to end: ``r1zero train`` with no arguments (build included)
    raises held-out greedy accuracy by at least 20 points, format rate near 1."""
    import json

    from typer.testing import CliRunner

    from r1zero.cli import app

    monkeypatch.setenv("R1ZERO_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--live", "false"])
    assert result.exit_code == 0, result.output
    evals = sorted((tmp_path / "runs" / "tiny" / "eval").glob("step-*.json"))
    before, after = (json.loads(p.read_text()) for p in (evals[0], evals[-1]))
    assert before["n"] == after["n"] >= 200
    assert before["accuracy"] < 0.4  # the prior guesses
    assert after["accuracy"] >= before["accuracy"] + 0.2
    assert after["format_rate"] >= 0.95
