"""Every bad config key, type and value, broken model folder and malformed dataset of
tests/reliability/bad_input_table.py makes ``r1zero train`` exit non-zero with one ``error:`` line
and no traceback (run in-process through the CLI here; the script runs subprocesses and
writes the table in docs/reliability.md). Hostile completions never raise in any reward.
"""

from __future__ import annotations

import sys
import time

import datasets
import pytest
import transformers
from typer.testing import CliRunner

from helpers import harness
from r1zero.cli import app
from r1zero.task.data import generate_rows, write_jsonl
from r1zero.task.prompts import get_template, render
from r1zero.task.rewards import REWARD_FUNCS

# Their log handlers bind to sys.stderr when first configured: do it now, not inside a
# CliRunner whose stream is closed after one invocation ("--- Logging error ---").
datasets.utils.logging.get_verbosity()
transformers.utils.logging.get_verbosity()

table = harness("bad_input_table")


@pytest.fixture(scope="module")
def work(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("bad-input")
    data = root / "good.jsonl"
    write_jsonl(generate_rows(40, 1), data)
    return root, tiny_model_dir, data


WANT = {  # a few words each error line must hold: the case failed for its own reason
    "unknown key": "did you mean learning_rate",
    "unknown key in YAML": "did you mean learning_rate",
    "YAML syntax error": "not valid YAML",
    "YAML not a mapping": "expected a mapping",
    "config file missing": "config file not found",
    "int given text": "max_steps: expected an integer",
    "int given float": "num_generations: expected an integer",
    "float given text": "learning_rate: expected a number",
    "bool given text": "deterministic: expected true or false",
    "list given mapping": "reward_funcs: expected a string",
    "num_generations 1": "num_generations must be at least 2",
    "batch size 0": "per_device_train_batch_size must be at least 1",
    "completions not divisible": "must be divisible by num_generations",
    "temperature 0": "temperature must be > 0",
    "top_p 1.5": "top_p must be in",
    "beta -1": "beta must be >= 0",
    "learning_rate nan": "learning_rate must be a finite number",
    "learning_rate -1": "learning_rate must be a finite number",
    "max_completion_length 0": "max_completion_length must be at least 1",
    "gradient_accumulation_steps 0": "gradient_accumulation_steps must be at least 1",
    "scale_rewards unknown": "scale_rewards must be",
    "loss_type unknown": "loss_type: unknown 'ppo'",
    "advantage_estimator unknown": "advantage_estimator: unknown 'gae'",
    "lr_scheduler_type unknown": "lr_scheduler_type: unknown",
    "rollout_engine unknown": "rollout_engine",
    "reward function unknown": "did you mean 'equation'",
    "reward function file missing": "reward function file not found",
    "reward_weights length": "reward_weights has 1 entries",
    "prompt_template unknown": "prompt_template: unknown 'fr'",
    "test_size 1.5": "test_size must be in",
    "num_samples 0": "num_samples must be at least 1",
    "torch_dtype int8": "torch_dtype must be",
    "attn_implementation unknown": "fastest",
    "report_to unknown": "report_to takes",
    "save_strategy epoch": "save_strategy must be",
    "resume from a non-checkpoint": "not a resumable checkpoint",
    "stray positional argument": "unexpected argument 'extra'",
    "no such folder": "no model folder at",
    "folder without config.json": "has no config.json",
    "config.json not JSON": "not a valid JSON file",
    "config.json of an unknown architecture": "nonesuch",
    "model.safetensors truncated": "SafetensorError",
    "model.safetensors header cut": "SafetensorError",
    "weights missing": "no file named model.safetensors",
    "tokenizer missing": "tokenizer",
    "tokenizer.json corrupt": "cannot load the tokenizer",
    "hub id while offline": "cannot load the tokenizer of nonexistent-org/nonesuch",
    "file missing": "no such data file",
    "empty file": "is an empty file",
    "only blank lines": "has no rows",
    "unsupported file type": "unsupported file type",
    "line not JSON": "line 2: not JSON (Expecting property name enclosed in double quotes, column 2)",
    "blank lines between rows": "line 41: nums must be a non-empty list",
    "column target missing": "lacks column(s) ['target']",
    "nums missing": "line 31: nums must be",
    "nums a string": "line 31: nums must be",
    "nums holds text, first row": "line 1: nums must be a list of integers",
    "nums holds 3.5": "line 31: nums must be a list of integers",
    "nums holds a bool": "line 31: nums must be a list of integers",
    "nums holds null": "line 31: nums must be a list of integers",
    "nums empty": "line 31: nums must be a non-empty list",
    "one number": "must have 2 to 6 numbers, got 1",
    "seven numbers": "must have 2 to 6 numbers, got 7",
    "negative number": "non-negative",
    "13-digit number": "at most 12 digits",
    "target missing": "line 31: target must be an integer",
    "target text": "target must be an integer, got 'sixteen'",
    "target 3.5": "target must be an integer, got 3.5",
    "target null": "target must be an integer, got None",
    "row not an object": "line 1: not a JSON object, got [3, 5, 2, 16]",
    "every row malformed, skip_malformed": "no usable rows",
    "one row: nothing left to train on": "nothing to train on",
    "empty parquet (0 rows)": "empty.parquet",
    "folder without data files": "doesn't contain any data files",
    "swanlab true, swanlab not installed": "needs the swanlab package: pip install swanlab",
    "plain text, not JSON lines": "notes.txt:1: not JSON",
    "binary file": "not UTF-8 text; r1zero score reads JSON lines",
    "target 1e10000000": "t1.jsonl:1: target exponent beyond +-1000",
    "target 1e-999999999": "t2.jsonl:1: target exponent beyond +-1000",
    "target 1/0": "t3.jsonl:1: target must be a decimal number, got '1/0'",
    "target NaN": "t4.jsonl:1: target must be a finite number, got nan",
    "target a 5000-digit integer": "t5.jsonl:1: not JSON",
    "LoRA adapter whose base is gone": "its base model is not found",
}


def test_every_case_has_an_expectation():
    assert {c.name for c in table.CASES if not c.expect_ok} == set(WANT)


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("case", table.CASES, ids=[c.name for c in table.CASES])
def test_bad_input_is_one_clean_line(case, work, monkeypatch):
    root, model, data = work
    if "block" in case.extra:  # as if the package were not installed
        monkeypatch.setitem(sys.modules, case.extra["block"], None)
    result = invoke(table.prepare(case, root, model, data))
    if case.expect_ok:
        assert result.exit_code == 0, result.output
        return
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert isinstance(result.exception, SystemExit), (
        f"{case.name}: {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code != 0
    assert len(errors) == 1, result.stderr
    assert WANT[case.name] in errors[0], errors[0]
    assert "Traceback" not in result.output, result.output


def test_no_chat_template_uses_plain_text(tmp_path, tiny_model_dir):
    class NoTemplate:
        chat_template = None

    text = render(NoTemplate(), get_template("en"), [3, 5, 2], 16)
    assert text.startswith("User: Using the numbers [3, 5, 2], create an equation that equals 16")
    assert text.endswith("\nAssistant: Let me solve this step by step.\n<think>")


def test_hostile_completions_never_raise_and_stay_fast():
    for name, text in table.COMPLETIONS():
        for fname, fn in REWARD_FUNCS.items():
            t0 = time.perf_counter()
            out = fn([text], nums=[table.NUMS], target=[table.TARGET])
            ms = (time.perf_counter() - t0) * 1000
            assert out[0] in (0.0, 1.0), (name, fname, out)
            assert ms < 100, f"{fname} on {name}: {ms:.1f} ms"  # the fuzz script holds 10 ms
        if name.startswith("control"):
            assert REWARD_FUNCS["equation"]([text], nums=[table.NUMS], target=[table.TARGET]) == [
                1.0
            ]
