"""Bad-input table: what r1zero says, and how fast, for each kind of bad input.

    python tests/reliability/bad_input_table.py [--doc docs/reliability.md] [--json FILE] [--only config,model,data,score,eval,completion,target]

Config, model and data cases run ``python -m r1zero train ...`` in a subprocess on a fast
random-init model and record the exit status, the error line from stderr (the first
``error:`` line, else the first line) and the wall time, which includes Python start-up
and imports. Hostile completions go through every reward in ``REWARD_FUNCS`` in-process;
each row records the reward values and the slowest call of 3. With ``--doc`` the tables
replace the generated section of that Markdown file (between ``<!-- bad-input:begin -->``
and ``<!-- bad-input:end -->``): the table is never typed by hand.

``CASES`` (config, model and data cases as ``Case`` rows) and ``COMPLETIONS`` are imported
by tests/test_bad_input.py, which runs the same cases in-process through the CLI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from r1zero.markdown import replace_section

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- bad-input:begin -->", "<!-- bad-input:end -->"
ENV = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@dataclass
class Case:
    """One bad input: extra ``r1zero train`` options, and files it needs made first."""

    kind: str  # config | model | data | score | eval
    name: str
    args: list[str]
    make: Callable[[Path, Path], None] | None = None  # (workdir, good model dir) -> None
    note: str = ""
    expect_ok: bool = False  # a case that must run (e.g. the chat-template fallback)
    extra: dict = field(default_factory=dict)
    command: str = "train"  # score and eval cases get only their own args


# ---------------------------------------------------------------- files the cases need


def _write(rel: str, text: str) -> Callable[[Path, Path], None]:
    def make(work: Path, model: Path) -> None:
        p = work / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")

    return make


def _rows(rel: str, rows: list, good: int = 30) -> Callable[[Path, Path], None]:
    """A JSONL file: ``good`` valid rows, then the bad ones (so the error names their index)."""
    ok = [{"nums": [3, 5, 2], "target": 16}] * good
    return _write(rel, "".join(json.dumps(r) + "\n" for r in ok + rows))


def _model_copy(rel: str, damage: Callable[[Path], None]) -> Callable[[Path, Path], None]:
    def make(work: Path, model: Path) -> None:
        dest = work / rel
        shutil.copytree(model, dest, dirs_exist_ok=True)
        damage(dest)

    return make


def _truncate(name: str, keep: int) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[:keep])

    return damage


def _remove(*names: str) -> Callable[[Path], None]:
    def damage(d: Path) -> None:
        for n in names:
            (d / n).unlink()

    return damage


def _overwrite(name: str, text: str) -> Callable[[Path], None]:
    return lambda d: (d / name).write_text(text)


def _gzip_rows(rel: str, rows: list) -> Callable[[Path, Path], None]:
    def make(work: Path, model: Path) -> None:
        import gzip

        with gzip.open(work / rel, "wt", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in rows))

    return make


def _lora(rel: str, base: str | None = None) -> Callable[[Path, Path], None]:
    """A LoRA run folder as r1zero leaves it: adapter and tokenizer, no config.json;
    ``base`` overrides the base model path the adapter names ("" = a path that is gone)."""

    def make(work: Path, model: Path) -> None:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dest = work / rel
        if not (dest / "adapter_config.json").exists():
            lora = get_peft_model(AutoModelForCausalLM.from_pretrained(str(model)), LoraConfig(r=2, target_modules="all-linear"))  # fmt: skip
            lora.save_pretrained(dest)
            AutoTokenizer.from_pretrained(str(model)).save_pretrained(dest)
        if base is not None:
            cfg = json.loads((dest / "adapter_config.json").read_text())
            cfg["base_model_name_or_path"] = base or str(work / "gone-base-model")
            (dest / "adapter_config.json").write_text(json.dumps(cfg))

    return make


_COMPLETION = "ok</think>\n<answer>3 + 5 * 2</answer>"
_SAMPLES = "".join("\n\n==============\n<think>" + c for c in [_COMPLETION, "no tags at all"])


def _no_chat_template(d: Path) -> None:
    (d / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))


# ---------------------------------------------------------------- the cases

_C = "config"
CASES: list[Case] = [
    Case(_C, "unknown key", ["--learning_rat", "1e-6"]),
    Case(_C, "unknown key in YAML", ["@bad.yaml"], _write("bad.yaml", "lerning_rate: 1.0e-6\n")),
    Case(_C, "YAML syntax error", ["@broken.yaml"], _write("broken.yaml", "max_steps: [1,\n")),
    Case(_C, "YAML not a mapping", ["@list.yaml"], _write("list.yaml", "- max_steps\n- 3\n")),
    Case(_C, "config file missing", ["@missing.yaml"]),
    Case(_C, "int given text", ["--max_steps", "ten"]),
    Case(_C, "int given float", ["--num_generations", "2.5"]),
    Case(_C, "float given text", ["--learning_rate", "fast"]),
    Case(_C, "bool given text", ["--deterministic", "maybe"]),
    Case(_C, "list given mapping", ["--reward_funcs", "{a: 1}"]),
    Case(_C, "num_generations 1", ["--num_generations", "1"]),
    Case(_C, "batch size 0", ["--per_device_train_batch_size", "0"]),
    Case(
        _C,
        "completions not divisible",
        ["--batch_unit", "completions", "--per_device_train_batch_size", "3"],
    ),
    Case(_C, "temperature 0", ["--temperature", "0"]),
    Case(_C, "top_p 1.5", ["--top_p", "1.5"]),
    Case(_C, "beta -1", ["--beta", "-1"]),
    Case(_C, "learning_rate nan", ["--learning_rate", ".nan"]),
    Case(_C, "learning_rate -1", ["--learning_rate", "-1"]),
    Case(_C, "max_completion_length 0", ["--max_completion_length", "0"]),
    Case(_C, "gradient_accumulation_steps 0", ["--gradient_accumulation_steps", "0"]),
    Case(_C, "scale_rewards unknown", ["--scale_rewards", "token"]),
    Case(_C, "loss_type unknown", ["--loss_type", "ppo"]),
    Case(_C, "advantage_estimator unknown", ["--advantage_estimator", "gae"]),
    Case(_C, "lr_scheduler_type unknown", ["--lr_scheduler_type", "cosine_annealing"]),
    Case(_C, "rollout_engine unknown", ["--rollout_engine", "vllm"]),
    Case(_C, "reward function unknown", ["--reward_funcs", "[format, equaton]"]),
    Case(_C, "reward function file missing", ["--reward_funcs", "[nowhere.py:score]"]),
    Case(_C, "reward_weights length", ["--reward_weights", "[1.0]"]),
    Case(_C, "prompt_template unknown", ["--prompt_template", "fr"]),
    Case(_C, "test_size 1.5", ["--test_size", "1.5"]),
    Case(_C, "num_samples 0", ["--num_samples", "0"]),
    Case(_C, "torch_dtype int8", ["--torch_dtype", "int8"]),
    Case(_C, "attn_implementation unknown", ["--attn_implementation", "fastest"]),
    Case(_C, "report_to unknown", ["--report_to", "mlflow"]),
    Case(_C, "save_strategy epoch", ["--save_strategy", "epoch"]),
    Case(_C, "resume from a non-checkpoint", ["--resume_from_checkpoint", "/nonexistent/ckpt"]),
    Case(_C, "stray positional argument", ["--max_steps", "1", "extra"]),
    # model folders
    Case("model", "no such folder", ["--model_name_or_path", "/nonexistent/model"]),
    Case("model", "folder without config.json", ["--model_name_or_path", "@empty-model"]),
    Case(
        "model",
        "config.json not JSON",
        ["--model_name_or_path", "@m-badconfig"],
        _model_copy("m-badconfig", _overwrite("config.json", "{not json")),
    ),
    Case(
        "model",
        "config.json of an unknown architecture",
        ["--model_name_or_path", "@m-arch"],
        _model_copy("m-arch", _overwrite("config.json", '{"model_type": "nonesuch"}')),
    ),
    Case(
        "model",
        "model.safetensors truncated",
        ["--model_name_or_path", "@m-trunc"],
        _model_copy("m-trunc", _truncate("model.safetensors", 5000)),
    ),
    Case(
        "model",
        "model.safetensors header cut",
        ["--model_name_or_path", "@m-header"],
        _model_copy("m-header", _truncate("model.safetensors", 4)),
    ),
    Case(
        "model",
        "weights missing",
        ["--model_name_or_path", "@m-noweights"],
        _model_copy("m-noweights", _remove("model.safetensors")),
    ),
    Case(
        "model",
        "tokenizer missing",
        ["--model_name_or_path", "@m-notok"],
        _model_copy("m-notok", _remove("tokenizer.json", "tokenizer_config.json")),
    ),
    Case(
        "model",
        "tokenizer.json corrupt",
        ["--model_name_or_path", "@m-badtok"],
        _model_copy("m-badtok", _overwrite("tokenizer.json", '{"version": "1.0", "model": 3}')),
    ),
    Case("model", "hub id while offline", ["--model_name_or_path", "nonexistent-org/nonesuch"]),
    Case(
        "model",
        "tokenizer without a chat template",
        ["--model_name_or_path", "@m-nochat"],
        _model_copy("m-nochat", _no_chat_template),
        note="trains with the plain-text fallback prompt",
        expect_ok=True,
    ),
    # datasets
    Case("data", "file missing", ["--dataset_id_or_path", "@nowhere.jsonl"]),
    Case("data", "empty file", ["--dataset_id_or_path", "@empty.jsonl"], _write("empty.jsonl", "")),
    Case(
        "data",
        "only blank lines",
        ["--dataset_id_or_path", "@blank.jsonl"],
        _write("blank.jsonl", "\n\n\n"),
    ),
    Case(
        "data",
        "unsupported file type",
        ["--dataset_id_or_path", "@rows.txt"],
        _write("rows.txt", "3 5 2 16\n"),
    ),
    Case(
        "data",
        "line not JSON",
        ["--dataset_id_or_path", "@notjson.jsonl"],
        _write("notjson.jsonl", '{"nums": [3, 5, 2], "target": 16}\n{nums: oops\n'),
    ),
    Case(
        "data",
        "line not JSON, skip_malformed",
        ["--dataset_id_or_path", "@notjson-skip.jsonl", "--skip_malformed", "true"],
        _write("notjson-skip.jsonl", '{"nums": [3, 5, 2], "target": 16}\n' * 30 + "{nums: oops\n"),
        note="skips and counts the line: skipped 1 malformed row(s) ...: line 31: not JSON",
        expect_ok=True,
    ),
    Case(
        "data",
        "blank lines between rows",
        ["--dataset_id_or_path", "@gaps.jsonl"],
        _write("gaps.jsonl", '{"nums": [3, 5, 2], "target": 16}\n\n' * 20 + '{"nums": "x", "target": 1}\n'),
    ),
    Case(
        "data",
        "column target missing",
        ["--dataset_id_or_path", "@nocol.jsonl"],
        _write("nocol.jsonl", '{"nums": [3, 5, 2]}\n' * 5),
    ),
    Case("data", "nums missing", ["--dataset_id_or_path", "@d1.jsonl"], _rows("d1.jsonl", [{"target": 16}])),
    Case("data", "nums a string", ["--dataset_id_or_path", "@d2.jsonl"], _rows("d2.jsonl", [{"nums": "3,5,2", "target": 16}])),
    Case("data", "nums holds text, first row", ["--dataset_id_or_path", "@d0.jsonl"], _write("d0.jsonl", json.dumps({"nums": [3, "x", 2], "target": 16}) + "\n")),
    Case("data", "nums holds a digit string", ["--dataset_id_or_path", "@d3.jsonl"], _rows("d3.jsonl", [{"nums": [3, "5", 2], "target": 16}]), note="accepted: Arrow's JSON reader casts \"5\" to 5 in an int column", expect_ok=True),
    Case("data", "nums holds 3.5", ["--dataset_id_or_path", "@d4.jsonl"], _rows("d4.jsonl", [{"nums": [3, 5.5, 2], "target": 16}])),
    Case("data", "nums holds a bool", ["--dataset_id_or_path", "@d5.jsonl"], _rows("d5.jsonl", [{"nums": [3, True, 2], "target": 16}])),
    Case("data", "nums holds null", ["--dataset_id_or_path", "@d6.jsonl"], _rows("d6.jsonl", [{"nums": [3, None, 2], "target": 16}])),
    Case("data", "nums empty", ["--dataset_id_or_path", "@d7.jsonl"], _rows("d7.jsonl", [{"nums": [], "target": 16}])),
    Case("data", "one number", ["--dataset_id_or_path", "@d8.jsonl"], _rows("d8.jsonl", [{"nums": [16], "target": 16}])),
    Case("data", "seven numbers", ["--dataset_id_or_path", "@d9.jsonl"], _rows("d9.jsonl", [{"nums": [1] * 7, "target": 7}])),
    Case("data", "negative number", ["--dataset_id_or_path", "@d10.jsonl"], _rows("d10.jsonl", [{"nums": [3, -5, 2], "target": 16}])),
    Case("data", "13-digit number", ["--dataset_id_or_path", "@d11.jsonl"], _rows("d11.jsonl", [{"nums": [3, 10**12, 2], "target": 16}])),
    Case("data", "target missing", ["--dataset_id_or_path", "@d12.jsonl"], _rows("d12.jsonl", [{"nums": [3, 5, 2]}])),
    Case("data", "target a digit string", ["--dataset_id_or_path", "@d13.jsonl"], _rows("d13.jsonl", [{"nums": [3, 5, 2], "target": "16"}]), note="accepted: Arrow's JSON reader casts \"16\" to 16 in an int column", expect_ok=True),
    Case("data", "target text", ["--dataset_id_or_path", "@d18.jsonl"], _rows("d18.jsonl", [{"nums": [3, 5, 2], "target": "sixteen"}])),
    Case("data", "target 3.5", ["--dataset_id_or_path", "@d14.jsonl"], _rows("d14.jsonl", [{"nums": [3, 5, 2], "target": 3.5}])),
    Case("data", "target null", ["--dataset_id_or_path", "@d15.jsonl"], _rows("d15.jsonl", [{"nums": [3, 5, 2], "target": None}])),
    Case("data", "row not an object", ["--dataset_id_or_path", "@d16.jsonl"], _write("d16.jsonl", "[3, 5, 2, 16]\n")),
    Case(
        "data",
        "every row malformed, skip_malformed",
        ["--dataset_id_or_path", "@d17.jsonl", "--skip_malformed", "true"],
        _rows("d17.jsonl", [{"nums": "x", "target": 1}] * 3, good=0),
    ),
    Case(
        "data",
        "one row: nothing left to train on",
        ["--dataset_id_or_path", "@one.jsonl"],
        _rows("one.jsonl", [], good=1),
    ),
    Case(
        "data",
        "empty parquet (0 rows)",
        ["--dataset_id_or_path", "@empty.parquet"],
        extra={"parquet_rows": 0},
    ),
    Case("data", "folder without data files", ["--dataset_id_or_path", "@empty-dir/"]),
    Case(_C, "swanlab true, swanlab not installed", ["--swanlab", "true"], extra={"block": "swanlab"}),
    # r1zero score
    Case("score", "a run's completions/step-*.jsonl.gz", ["@step-000001.jsonl.gz", "--out", "@scored.jsonl"], _gzip_rows("step-000001.jsonl.gz", [{"completion": _COMPLETION, "nums": [3, 5, 2], "target": 13}]), note="scores it", expect_ok=True, command="score"),
    Case("score", "the tutorial's completion_samples.txt", ["@completion_samples.txt", "--out", "@scored.jsonl"], _write("completion_samples.txt", _SAMPLES), note="format and thought_len (no nums/target recorded)", expect_ok=True, command="score"),
    Case("score", "plain text, not JSON lines", ["@notes.txt", "--out", "@scored.jsonl"], _write("notes.txt", "some notes\n"), command="score"),
    Case("score", "binary file", ["@model.bin", "--out", "@scored.jsonl"], extra={"bytes": b"\x00\xff\xfe\x80" * 8}, command="score"),
    Case("score", "target 1e10000000", ["@t1.jsonl", "--out", "@scored.jsonl"], _write("t1.jsonl", json.dumps({"completion": _COMPLETION, "nums": [3, 5, 2], "target": "1e10000000"}) + "\n"), command="score"),
    Case("score", "target 1e-999999999", ["@t2.jsonl", "--out", "@scored.jsonl"], _write("t2.jsonl", json.dumps({"completion": _COMPLETION, "nums": [3, 5, 2], "target": "1e-999999999"}) + "\n"), command="score"),
    Case("score", "target 1/0", ["@t3.jsonl", "--out", "@scored.jsonl"], _write("t3.jsonl", json.dumps({"completion": _COMPLETION, "nums": [3, 5, 2], "target": "1/0"}) + "\n"), command="score"),
    Case("score", "target NaN", ["@t4.jsonl", "--out", "@scored.jsonl"], _write("t4.jsonl", '{"completion": "x", "nums": [3, 5, 2], "target": NaN}\n'), command="score"),
    Case("score", "target a 5000-digit integer", ["@t5.jsonl", "--out", "@scored.jsonl"], _write("t5.jsonl", '{"completion": "x", "nums": [3, 5, 2], "target": ' + "9" * 5000 + "}\n"), command="score"),
    # r1zero eval
    Case("eval", "LoRA run folder (no config.json)", ["@lora-run", "--data", "@good.jsonl", "--n", "2", "--max-new-tokens", "4"], _lora("lora-run"), note="evaluates the base with the adapter", expect_ok=True, command="eval"),
    Case("eval", "LoRA adapter whose base is gone", ["@lora-orphan", "--data", "@good.jsonl", "--n", "2", "--max-new-tokens", "4"], _lora("lora-orphan", base=""), command="eval"),
]  # fmt: skip


def base_args(work: Path, model: Path, data: Path, name: str) -> list[str]:
    """A valid one-step run; each case overrides a few of these."""
    sys.path.insert(0, str(HERE))
    from tiny_run import tiny_run_args

    out = work / "out" / name.replace(" ", "_")
    return tiny_run_args(
        model, data, out,
        eval_num_samples=0, max_steps=1, per_device_train_batch_size=1, save_strategy="no",
    )  # fmt: skip


def prepare(case: Case, work: Path, model: Path, data: Path) -> list[str]:
    """Make the case's files and return the full ``train`` argument list."""
    if case.make is not None:
        case.make(work, model)
    (work / "empty-model").mkdir(exist_ok=True)
    (work / "empty-dir").mkdir(exist_ok=True)
    if "parquet_rows" in case.extra and not (work / "empty.parquet").exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"nums": pa.array([], pa.list_(pa.int64())), "target": pa.array([], pa.int64())}), work / "empty.parquet")  # fmt: skip
    if "bytes" in case.extra:
        (work / case.args[0][1:]).write_bytes(case.extra["bytes"])
    args = [str(work / a[1:]) if a.startswith("@") else a for a in case.args]
    if case.command != "train":
        return [case.command, *args]
    config = [a for a in args if a.endswith(".yaml")]
    rest = [a for a in args if not a.endswith(".yaml")]
    return ["train", *config, *base_args(work, model, data, case.name), *rest]


def error_line(stderr: str) -> str:
    """The ``error:`` line, else the last line of a traceback, else the first line."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("error:"):
            return ln
    if any(ln.startswith("Traceback") for ln in lines):
        return "TRACEBACK: " + lines[-1]
    return lines[0] if lines else ""


def run_cli_case(case: Case, work: Path, model: Path, data: Path) -> dict:
    args = prepare(case, work, model, data)
    env = {**os.environ, **ENV}
    if "block" in case.extra:  # a package made unimportable, as if not installed
        blocker = work / "blocked" / case.extra["block"]
        blocker.mkdir(parents=True, exist_ok=True)
        (blocker / "__init__.py").write_text("raise ImportError('not installed')\n")
        env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "r1zero", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    seconds = time.perf_counter() - t0
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    return {
        "kind": case.kind,
        "case": case.name,
        "input": (case.command + " " if case.command != "train" else "")
        + " ".join(case.args).replace("@", ""),
        "exit": r.returncode,
        "message": error_line(r.stderr) if r.returncode else (case.note or "runs"),
        "traceback": "Traceback" in r.stderr,
        "one_line": len(errors) == 1 and "Traceback" not in r.stderr,
        "seconds": round(seconds, 2),
        "ok": (r.returncode == 0) if case.expect_ok else (r.returncode != 0 and len(errors) == 1),
    }


# ---------------------------------------------------------------- hostile completions

NUMS, TARGET = [44, 19, 35], 98
_MB = 10 * 2**20


def _completions() -> list[tuple[str, str]]:
    think = "Let me add them.</think>\n<answer>{}</answer>"
    long = "x" * 1500
    return [
        ("control: correct answer", think.format("44 + 19 + 35")),
        ("control: long thought, correct", f"{long}</think>\n<answer>44 + 19 + 35</answer>"),
        ("multi-line answer", think.format("44 +\n19 +\n35")),
        ("44**19**35 (tutorial's eval hangs)", think.format("44**19**35")),
        ("44^19^35", think.format("44^19^35")),
        (
            "huge literals 999999999999*...",
            think.format("999999999999 * 999999999999 * 999999999999"),
        ),
        ("13-digit literal", think.format("4400000000000 + 19 + 35")),
        ("huge intermediate ((44*19*35)*...)", think.format("*".join(["(44*19*35)"] * 300))),
        ("deep nesting, 100k parens", think.format("(" * 100_000 + "44+19+35" + ")" * 100_000)),
        ("deep nesting, 60 parens", think.format("(" * 60 + "44+19+35" + ")" * 60)),
        ("long chain 1+1+...+1 (999 chars)", think.format("+".join(["1"] * 500)[:999])),
        ("division by zero", think.format("44 / (19 - 19) + 35")),
        ("decimal 44.0", think.format("44.0 + 19 + 35")),
        ("exponent 1e308", think.format("1e308 + 44 + 19 + 35")),
        ("unary minus", think.format("-44 + 19 + 35 + 88")),
        ("NUL bytes in answer", think.format("44\x00 + 19 + 35")),
        ("NUL bytes everywhere", "\x00" * 1000 + "</think>\n<answer>\x00</answer>"),
        ("fullwidth digits ４４+１９+３５", think.format("４４ + １９ + ３５")),
        ("Arabic-Indic digits ٤٤", think.format("٤٤ + ١٩ + ٣٥")),
        ("superscript digits ⁴⁴", think.format("⁴⁴ + ¹⁹ + ³⁵")),
        ("minus sign U+2212", think.format("44 + 19 + 35 − 0")),
        ("× and ÷", think.format("44 × 19 ÷ 35")),
        ("fullwidth plus ＋", think.format("44 ＋ 19 ＋ 35")),
        ("lone surrogate", think.format("44 + 19 + 35\ud800")),
        ("python code", think.format("__import__('os').system('true')")),
        ("nested think tags", "a<think>b</think>c</think>\n<answer>44 + 19 + 35</answer>"),
        ("10 MB thought", "x" * _MB + "</think>\n<answer>44 + 19 + 35</answer>"),
        ("10 MB answer", "</think>\n<answer>" + "4" * _MB + "</answer>"),
        ("10 MB without tags", "y" * _MB),
        ("10 MB of <think> tags", "<think>" * (_MB // 7)),
        ("10 MB of </answer> tags", "</answer>" * (_MB // 9)),
        ("empty completion", ""),
    ]


COMPLETIONS = _completions
"""(name, completion) pairs; a function, so importers do not hold 60 MB of strings."""


def run_completion_cases() -> list[dict]:
    from r1zero.task.rewards import REWARD_FUNCS

    rows = []
    for name, text in _completions():
        values, slowest = {}, 0.0
        for fname, fn in REWARD_FUNCS.items():
            for _ in range(3):
                t0 = time.perf_counter()
                out = fn([text], nums=[NUMS], target=[TARGET])
                slowest = max(slowest, time.perf_counter() - t0)
            values[fname] = out[0]
        rows.append(
            {
                "case": name,
                "chars": len(text),
                **values,
                "max_ms": round(slowest * 1000, 3),
            }
        )
    return rows


TARGETS = ["1e10000000", "1e30000000", "1e-999999999", "1/0", "nan", "inf", 10**100_000,
           float("nan"), float("inf"), True, None, "98"]  # fmt: skip
"""Hostile ``target`` values (issue 21): the equation reward must answer each within 10 ms."""


def _target_name(t: object) -> str:
    """repr, except for huge ints (repr refuses over 4,300 digits)."""
    if isinstance(t, int) and not isinstance(t, bool) and t.bit_length() > 1000:
        return f"int of {math.floor(math.log10(t)) + 1:,} digits"
    return repr(t)


def run_target_cases() -> list[dict]:
    """The equation reward on the control completion with each hostile target (slowest of 3)."""
    from r1zero.task.rewards import REWARD_FUNCS, equation_failure

    good = "Let me add them.</think>\n<answer>44 + 19 + 35</answer>"
    rows = []
    for t in TARGETS:
        slowest = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            value = REWARD_FUNCS["equation"]([good], nums=[NUMS], target=[t])[0]
            slowest = max(slowest, time.perf_counter() - t0)
        why = equation_failure(good, NUMS, t) or "solved"
        rows.append({"case": _target_name(t), "equation": value, "why": why, "max_ms": round(slowest * 1000, 3)})  # fmt: skip
    return rows


def _target_table(rows: list[dict]) -> list[str]:
    out = [f"#### hostile targets (answer `44 + 19 + 35`, nums {NUMS})", "",
           "| target | equation | reason | max ms |", "| --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        out.append(
            f"| `{_md_cell(r['case'])}` | {r['equation']:g} | {r['why']} | {r['max_ms']:.2f} |"
        )
    return out + [""]


# ---------------------------------------------------------------- table and doc


def _md_cell(text: str) -> str:
    """Table-safe, with the temporary work folder's path cut from messages."""
    text = re.sub(r"/\S*?/bad-input-[^/\s]+/", "", text)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(
    cli_rows: list[dict], completion_rows: list[dict], meta: dict, target_rows: list[dict] = ()
) -> str:
    out = [
        f"Generated by `python tests/reliability/bad_input_table.py --doc docs/reliability.md` on {meta['date']} "
        f"({meta['machine']}); do not edit by hand. Times for the CLI cases are the wall time of the "
        "whole `python -m r1zero train` (or `score`, `eval`) subprocess, Python start-up and imports included; reward "
        "times are the slowest of 3 calls of one reward function on one completion.",
        "",
    ]
    for kind in ("config", "model", "data", "score", "eval"):
        rows = [r for r in cli_rows if r["kind"] == kind]
        if not rows:
            continue
        out += [
            f"#### {kind}",
            "",
            "| case | input | exit | message (stderr) | s |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in rows:
            msg = r["message"] + ("" if r["ok"] else "  **(not one clean line)**")
            out.append(
                f"| {_md_cell(r['case'])} | `{_md_cell(r['input'])}` | {r['exit']} | "
                f"{_md_cell(msg)} | {r['seconds']:.1f} |"
            )
        out.append("")
    if completion_rows:
        names = [k for k in completion_rows[0] if k not in ("case", "chars", "max_ms")]
        out += [
            f"#### hostile completions (nums {NUMS}, target {TARGET})",
            "",
            f"| completion | chars | {' | '.join(names)} | max ms |",
            "| --- | --- | " + " | ".join("---" for _ in names) + " | --- |",
        ]
        for r in completion_rows:
            vals = " | ".join(f"{r[n]:g}" for n in names)
            out.append(f"| {_md_cell(r['case'])} | {r['chars']:,} | {vals} | {r['max_ms']:.2f} |")
        out.append("")
    if target_rows:
        out += _target_table(list(target_rows))
    return "\n".join(out)


def machine() -> str:
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--doc", type=Path, help="Markdown file whose generated section to replace.")
    ap.add_argument("--json", type=Path, help="Write the rows as JSON here.")
    ap.add_argument(
        "--only", default="config,model,data,score,eval,completion,target", help="Kinds to run."
    )
    ap.add_argument("--model", type=Path, help="A good model folder (default: random tiny).")
    ap.add_argument(
        "--from_json", type=Path, help="Only re-render the doc section from an earlier --json."
    )
    a = ap.parse_args(argv)
    if a.from_json:
        saved = json.loads(a.from_json.read_text())
        replace_section(a.doc, BEGIN, END, markdown(saved["cli"], saved["completions"], saved["meta"], saved.get("targets", [])))  # fmt: skip
        return 0
    kinds = set(a.only.split(","))
    from r1zero.tiny.build import random_model_folder

    cli_rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bad-input-") as tmp:
        work = Path(tmp)
        model = a.model or random_model_folder(work / "good-model")
        data = work / "good.jsonl"
        from r1zero.task.data import generate_rows, write_jsonl

        write_jsonl(generate_rows(40, 1), data)
        for case in CASES:
            if case.kind in kinds:
                row = run_cli_case(case, work, model, data)
                print(f"{row['kind']:6s} {row['case']:38s} exit {row['exit']}  {row['seconds']:5.1f}s  {row['message'][:110]}", flush=True)  # fmt: skip
                cli_rows.append(row)
    completion_rows = run_completion_cases() if "completion" in kinds else []
    target_rows = run_target_cases() if "target" in kinds else []
    for r in completion_rows:
        print(f"reward {r['case']:40s} {r['max_ms']:8.2f} ms  {r}", flush=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": machine()}
    if a.json:
        a.json.write_text(json.dumps({"meta": meta, "cli": cli_rows, "completions": completion_rows, "targets": target_rows}, indent=1))  # fmt: skip
    if a.doc:
        replace_section(a.doc, BEGIN, END, markdown(cli_rows, completion_rows, meta, target_rows))
    bad = [r["case"] for r in cli_rows if not r["ok"]]
    slow = [r["case"] for r in completion_rows if r["max_ms"] >= 10 * max(1, r["chars"] / 2**20)]
    slow += [r["case"] for r in target_rows if r["max_ms"] >= 10]
    print(f"{len(cli_rows)} CLI cases, {len(bad)} without one clean error line: {bad}")
    print(f"{len(completion_rows)} hostile completions, {len(slow)} over 10 ms per MB: {slow}")
    return 1 if bad or slow else 0


if __name__ == "__main__":
    sys.exit(main())
