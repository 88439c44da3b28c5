"""The trainer on a tiny random model: one step changes every trainable weight, every
algorithm option runs, resume is exact, checkpoints behave; then whole commands run in
subprocesses with tiny budgets."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from r1zero.config import Config, from_dict, load_config
from r1zero.task import countdown
from r1zero.task.data import generate_rows, write_jsonl
from r1zero.train import checkpoint as ckpt
from r1zero.train.logs import deterministic_view
from r1zero.train.loop import setup, train
from r1zero.train.step import grpo_step

ROOT = Path(__file__).resolve().parents[1]

REWARDS = '''
def length_reward(completions, **kwargs):
    """Non-degenerate even for a random model: groups get distinct rewards."""
    return [len(c) / 100 for c in completions]


def odd_target_length_reward(completions, target, **kwargs):
    """Flat (all 0) for even targets: DAPO dynamic sampling has groups to drop."""
    return [len(c) / 100 if t % 2 else 0.0 for c, t in zip(completions, target)]
'''


@pytest.fixture
def reward_file(tmp_path: Path) -> Path:
    path = tmp_path / "r.py"
    path.write_text(REWARDS)
    return path


@pytest.fixture(autouse=True)
def _restore_determinism():
    """``deterministic: true`` switches torch globally; switch it back after each test."""
    yield
    torch.use_deterministic_algorithms(False)


def quiet(*_: object) -> None:
    pass


def make_cfg(model: Path, out: Path, reward_file: Path, **overrides: object) -> Config:
    """2 prompts x 4 completions of at most 16 tokens per step, no eval, no loggers."""
    base = {
        "model_name_or_path": str(model),
        "prompt_template": "en",
        "num_samples": 40,
        "eval_num_samples": 0,
        "num_generations": 4,
        "per_device_train_batch_size": 2,
        "max_completion_length": 16,
        "max_steps": 2,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "constant",
        "rollout_engine": "hf",
        "report_to": "none",
        "live": False,
        "save_strategy": "no",
        "output_dir": str(out),
        "reward_funcs": ["format", f"{reward_file}:length_reward"],
        "seed": 0,
    }
    return from_dict(base | overrides)


def metric_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


# ---------------------------------------------------------------- one step


def test_one_grpo_step_changes_every_parameter(tiny_model_dir, reward_file, tmp_path):
    cfg = make_cfg(
        tiny_model_dir,
        tmp_path / "run",
        reward_file,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=2,  # 2 micro-batches of 4 completions
        logprob_chunk_size=5,
    )
    run = setup(cfg, quiet)
    model = run.policy.model
    before = trainable(model)
    assert len(before) == len(list(model.parameters()))  # full fine-tuning
    metrics, exp = grpo_step(
        run.policy, iter(run.stream), run.opt, cfg.grpo, run.task, run.micro_size
    )
    assert exp.completions and len(exp.completions) == 8
    assert exp.advantages.abs().sum() > 0, "rewards were degenerate; the test proves nothing"
    assert math.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
    assert all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))
    after = trainable(model)
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    assert not unchanged, f"not updated: {unchanged}"
    assert all(torch.isfinite(p).all() for p in after.values())


def test_lora_step_changes_only_the_adapter(tiny_model_dir, reward_file, tmp_path):
    cfg = make_cfg(
        tiny_model_dir,
        tmp_path / "run",
        reward_file,
        use_peft=True,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
    )
    run = setup(cfg, quiet)
    model = run.policy.model
    everything = {n: p.detach().clone() for n, p in model.named_parameters()}
    lora = {n for n, p in model.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n for n in lora)
    # lora_B starts at 0, so lora_A has no gradient before the first update: take two steps
    for _ in range(2):
        metrics, _ = grpo_step(
            run.policy, iter(run.stream), run.opt, cfg.grpo, run.task, run.micro_size
        )
        assert math.isfinite(metrics["loss"])
    for n, p in model.named_parameters():
        same = torch.equal(everything[n], p.detach())
        assert same != (n in lora), f"{n}: {'unchanged' if same else 'changed'}"


# ---------------------------------------------------------------- every option runs

# Each loss aggregation is paired with an advantage estimator, so that every one of both
# runs once in as few runs as possible.
OPTIONS = {
    "loss_grpo+adv_rloo": {"loss_type": "grpo", "advantage_estimator": "rloo"},
    "loss_bnpo+adv_dr_grpo": {"loss_type": "bnpo", "advantage_estimator": "dr_grpo"},
    "loss_dr_grpo+adv_grpo_batch": {"loss_type": "dr_grpo", "scale_rewards": "batch"},
    "loss_dapo+clip_higher": {"loss_type": "dapo", "epsilon_high": 0.28},
    "num_iterations+beta": {"num_iterations": 2, "beta": 0.04},
    "lora+beta+accumulation": {
        "use_peft": True,
        "lora_r": 4,
        "beta": 0.04,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 2,
    },
    "mask_truncated+overlong": {
        "mask_truncated_completions": True,
        "overlong_buffer_len": 8,
        "overlong_penalty_factor": 0.5,
    },
    "dynamic_bsz+num_iterations+beta": {
        "use_dynamic_bsz": True,
        "ppo_max_token_len_per_gpu": 64,
        "log_prob_max_token_len_per_gpu": 64,
        "num_iterations": 2,
        "beta": 0.04,
    },
    "padding_free+mask_truncated+beta": {
        "padding_free": True,
        "ppo_max_token_len_per_gpu": 64,
        "mask_truncated_completions": True,
        "beta": 0.04,
    },
    "dynamic_sampling": {
        "dynamic_sampling": True,
        "dynamic_sampling_max_tries": 2,
        "reward_funcs": ["format", "{rf}:odd_target_length_reward"],
    },
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_option_runs_two_steps(name, tiny_model_dir, reward_file, tmp_path):
    over = dict(OPTIONS[name])
    if "reward_funcs" in over:
        over["reward_funcs"] = [f.format(rf=reward_file) for f in over["reward_funcs"]]
    out = tmp_path / "run"
    train(make_cfg(tiny_model_dir, out, reward_file, **over))
    rows = metric_rows(out)
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]), r
        if "dynamic_sampling" in over:  # only groups with signal; fewer once tries run out
            assert r["frac_reward_zero_std"] == 0 and r["num_completions"] in (4, 8)
        else:
            assert r["num_completions"] == 8
    if "beta" in over:
        assert all(r["kl"] >= 0 for r in rows)
        assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # policy == reference at step 1
    if "num_iterations" in over:  # step 2 reuses step 1's rollouts: one completions file
        assert sorted(p.name for p in (out / "completions").iterdir()) == ["step-000001.jsonl.gz"]
        assert rows[1]["reward"] == rows[0]["reward"]
    if "overlong_buffer_len" in over:  # 16 tokens, buffer 8: penalised past 8 tokens
        for x in read_completions(out / "completions" / "step-000001.jsonl.gz"):
            penalty = -0.5 * min(max(x["length"] - 8, 0) / 8, 1.0)
            assert x["reward"] == pytest.approx(sum(x["rewards"].values()) + penalty, abs=1e-5)
    weights = "adapter_model.safetensors" if over.get("use_peft") else "model.safetensors"
    assert (out / weights).is_file() and (out / "done").is_file()


def read_completions(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# ---------------------------------------------------------------- resume and checkpoints


class Interrupted(Exception):
    pass


def interrupt_after_checkpoint(monkeypatch, step: int) -> None:
    """Make the run die right after ``checkpoint-<step>`` is on disk, as a kill would."""
    real = ckpt.save_checkpoint

    def save_then_die(output_dir, s, **kw):
        path = real(output_dir, s, **kw)
        if s == step:
            raise Interrupted
        return path

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_die)


@pytest.mark.parametrize(
    ("num_iterations", "save_steps", "killed_after"),
    [
        (1, 2, 2),
        # resumes mid-rollout: step 4 reuses step 3's rollout, restored from the checkpoint
        pytest.param(2, 1, 3, marks=pytest.mark.slow),
    ],
    ids=["plain", "mid_iteration"],
)
def test_resume_equals_uninterrupted(
    num_iterations, save_steps, killed_after, tiny_model_dir, reward_file, tmp_path, monkeypatch
):
    def cfg(out: Path, **kw: object) -> Config:
        return make_cfg(
            tiny_model_dir,
            out,
            reward_file,
            max_steps=4,
            save_strategy="steps",
            save_steps=save_steps,
            deterministic=True,
            num_iterations=num_iterations,
            lr_scheduler_type="linear",  # the schedule must continue, not restart
            **kw,
        )

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train(cfg(whole))
    with monkeypatch.context() as m:
        interrupt_after_checkpoint(m, killed_after)
        with pytest.raises(Interrupted):
            train(cfg(resumed))
    assert [r["step"] for r in metric_rows(resumed)] == list(range(1, killed_after + 1))
    assert not (resumed / "model.safetensors").exists()
    train(cfg(resumed, resume_from_checkpoint="true"))

    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    rows_a = [deterministic_view(r) for r in metric_rows(whole)]
    rows_b = [deterministic_view(r) for r in metric_rows(resumed)]
    assert rows_a == rows_b
    assert [r["step"] for r in rows_b] == [1, 2, 3, 4]
    for f in sorted((whole / "completions").iterdir()):
        assert read_completions(f) == read_completions(resumed / "completions" / f.name)


def test_checkpoints(tiny_model_dir, reward_file, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    ckpt.claim(out)  # the run's own folder (a foreign one is refused: tests/test_run_folder.py)
    stale = out / ".tmp-checkpoint-9"  # what a crash during a save leaves behind
    stale.mkdir(parents=True)
    (stale / ckpt.RESUME_FILE).write_bytes(b"half written")
    assert ckpt.checkpoints(out) == [] and ckpt.latest_resumable(out) is None
    cfg = make_cfg(
        tiny_model_dir,
        out,
        reward_file,
        max_steps=3,
        save_strategy="steps",
        save_steps=1,
        save_total_limit=2,
    )
    train(cfg)
    assert not stale.exists()
    assert [s for s, _ in ckpt.checkpoints(out)] == [2, 3]  # checkpoint-1 rotated out
    assert not (out / "checkpoint-2" / ckpt.RESUME_FILE).exists()
    assert (out / "checkpoint-3" / ckpt.RESUME_FILE).is_file()
    assert ckpt.latest_resumable(out) == out / "checkpoint-3"
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    model = AutoModelForCausalLM.from_pretrained(out / "checkpoint-2")
    assert sum(p.numel() for p in model.parameters()) > 0
    AutoTokenizer.from_pretrained(out / "checkpoint-2")
    last, final = (
        load_file(out / "checkpoint-3" / "model.safetensors"),
        load_file(out / "model.safetensors"),
    )
    assert all(torch.equal(last[k], final[k]) for k in final)  # final model == last step
    assert (out / "config.yaml").is_file()

    # resuming a finished run: nothing left to do, nothing broken
    train(make_cfg(tiny_model_dir, out, reward_file, max_steps=3, resume_from_checkpoint="true"))
    assert [r["step"] for r in metric_rows(out)] == [1, 2, 3]


def test_resume_from_a_path_that_is_no_checkpoint(tiny_model_dir, reward_file, tmp_path):
    cfg = make_cfg(
        tiny_model_dir, tmp_path / "run", reward_file, resume_from_checkpoint=str(tmp_path)
    )
    with pytest.raises(ckpt.CheckpointError, match="is not a resumable checkpoint"):
        setup(cfg, quiet)


# ---------------------------------------------------------------- whole commands


def r1zero(*args: object, in_process: bool = False) -> subprocess.CompletedProcess:
    """Run the ``r1zero`` command line: in a subprocess (the real entry point, ~20 s of
    imports on a busy 2-core machine) or in this process through typer's runner."""
    argv = [str(a) for a in args]
    if in_process:
        from typer.testing import CliRunner

        from r1zero.cli import app

        res = CliRunner().invoke(app, argv)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        return subprocess.CompletedProcess(argv, res.exit_code, res.stdout, res.stderr)
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "r1zero", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


# The subprocess variants repeat the in-process ones through the real entry point; they
# spend most of their time importing torch and transformers, so they run with -m slow.
MODES = ["in_process", pytest.param("subprocess", marks=pytest.mark.slow)]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_jsonl(generate_rows(60, seed=3), tmp_path / "data.jsonl")


COMPLETION_KEYS = {
    "step", "group", "nums", "target", "prompt", "completion",
    "rewards", "reward", "advantage", "length", "truncated",
}  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_datawhale_yaml_trains_two_steps(mode, tiny_model_dir, data_file, tmp_path):
    out = tmp_path / "run"
    res = r1zero(
        "train", ROOT / "examples" / "datawhale-r1.yaml",
        "--model_name_or_path", tiny_model_dir,
        "--dataset_id_or_path", data_file,
        "--max_steps", 2,
        "--max_completion_length", 16,
        "--num_samples", 50,
        "--eval_num_samples", 4,
        "--swanlab", "false",
        "--report_to", "none",
        "--output_dir", out,
        # in process: 2 of the tutorial's 8 accumulation steps, to stay within seconds
        *(["--gradient_accumulation_steps", 2] if mode == "in_process" else []),
        in_process=mode == "in_process",
    )  # fmt: skip
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-3000:]
    assert "defaults: datawhale-r1" in log and "AdamW" in log  # semantics and precision lines
    for key in ("use_vllm", "vllm_device", "vllm_gpu_memory_utilization", "logging_strategy"):
        assert f"{key}=" in log and "is accepted but not used" in log, key
    rows = metric_rows(out)
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    # the tutorial's batch: 1 prompt x 8 accumulation steps x 8 completions
    prompts = 2 if mode == "in_process" else 8
    assert all(r["num_completions"] == prompts * 8 and r["num_prompts"] == prompts for r in steps)
    evals = [r for r in rows if "eval/accuracy" in r]
    assert [r["step"] for r in evals] == [0, 2]
    recs = read_completions(out / "completions" / "step-000001.jsonl.gz")
    assert len(recs) == prompts * 8
    for x in recs:
        assert set(x) == COMPLETION_KEYS
        assert x["step"] == 1 and 0 <= x["group"] < prompts
        # the tutorial script's three rewards, through the YAML's defaults: datawhale-r1
        assert set(x["rewards"]) == {"format", "equation", "thought_len"}
        assert x["reward"] == pytest.approx(sum(x["rewards"].values()), abs=1e-6)
        assert 1 <= x["length"] <= 16 and isinstance(x["truncated"], bool)
        assert x["prompt"].startswith("<|im_start|>user\n") and "<think>" in x["prompt"]
    groups = {}
    for x in recs:  # the 8 completions of a group share one problem
        groups.setdefault(x["group"], set()).add((tuple(x["nums"]), x["target"]))
    assert all(len(v) == 1 for v in groups.values())
    saved = load_config(out / "config.yaml")
    assert saved.grpo.max_steps == 2 and saved.grpo.learning_rate == 5e-7
    assert saved.grpo.gradient_checkpointing is True
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert json.loads((out / "eval" / "step-000002.json").read_text())["n"] == 4
    heldout = (out / "eval" / "heldout.jsonl").read_text().splitlines()
    assert len(heldout) == 4 and all({"nums", "target"} <= set(json.loads(x)) for x in heldout)


def test_eval_defaults_to_the_runs_template(tmp_path):
    from r1zero.cli import _trained_template

    run = tmp_path / "run"
    (run / "checkpoint-2").mkdir(parents=True)
    (run / "config.yaml").write_text("prompt_template: short\nmax_steps: 2\n")
    assert _trained_template(str(run)) == "short"
    assert _trained_template(str(run / "checkpoint-2")) == "short"
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "r1zero_tiny.json").write_text("{}")
    assert _trained_template(str(tmp_path / "tiny")) == "short"
    assert _trained_template(str(tmp_path)) is None


@pytest.mark.parametrize("mode", MODES)
def test_eval_command(mode, tiny_model_dir, data_file, tmp_path):
    res = r1zero(
        "eval", tiny_model_dir,
        "--data", data_file,
        "--n", 8,
        "--k", 2,
        "--max-new-tokens", 16,
        "--json", tmp_path / "out.json",
        "--samples", tmp_path / "s.jsonl",
        in_process=mode == "in_process",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["n"] == 8 and result["k"] == 2
    for key in ("accuracy", "format_rate", "pass_at_k", "mean_length"):
        assert 0 <= result[key] <= (16 if key == "mean_length" else 1), key
    assert json.loads(res.stdout.strip().splitlines()[-1])["n"] == 8
    samples = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(samples) == 8 + 8 * 2
    for s in samples:
        assert {"completion", "nums", "target", "format", "equation", "thought_len"} <= set(s)
    assert [s["greedy"] for s in samples] == [True] * 8 + [False] * 16  # greedy first
    assert [s["problem"] for s in samples[:8]] == list(range(8))
    assert sorted(s["problem"] for s in samples[8:]) == sorted(list(range(8)) * 2)

    # the samples re-score to the same rewards offline
    res = r1zero("score", tmp_path / "s.jsonl", "--out", tmp_path / "g.jsonl", in_process=True)
    assert res.returncode == 0, res.stderr
    rescored = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert [(r["format"], r["equation"]) for r in rescored] == [
        (s["format"], s["equation"]) for s in samples
    ]


def test_data_and_score_commands(tmp_path):
    f = tmp_path / "f.jsonl"
    res = r1zero("data", "--n", 20, "--seed", 7, "--out", f)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in f.read_text().splitlines()]
    assert rows == generate_rows(20, seed=7)  # seeded: the same problems every time
    assert all(countdown.solve(r["nums"], r["target"]) for r in rows)

    res = r1zero("score", f, "--out", tmp_path / "g.jsonl", in_process=True)  # no completions
    assert res.returncode != 0
    assert "missing field(s) ['completion']" in res.stderr and "Traceback" not in res.stderr

    for i, r in enumerate(rows):  # even rows: a correct answer; odd rows: a wrong one
        answer = countdown.solve(r["nums"], r["target"]) if i % 2 == 0 else "1 + 1"
        r["completion"] = f" thinking</think>\n<answer>{answer}</answer>"
    write_jsonl(rows, f)
    res = r1zero("score", f, "--out", tmp_path / "g.jsonl", in_process=True)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["rows"] == 20 and summary["format"] == 1.0 and summary["equation"] == 0.5
    scored = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert [r["equation"] for r in scored] == [1.0, 0.0] * 10


def test_torch_compile_routes_policy_and_reference_blocks(tiny_model_dir, reward_file, tmp_path):
    """torch_compile: true compiles the frozen reference's norms and MLPs too: its log-probs
    are a forward over every token of the step (1.6 s of the tutorial step on an H200)."""
    from r1zero.compile import compilable_blocks

    cfg = make_cfg(tiny_model_dir, tmp_path / "run", reward_file, torch_compile=True, beta=0.04)
    run = setup(cfg, quiet)
    for model in (run.policy.model, run.policy.ref_model):
        blocks = compilable_blocks(model)
        assert blocks and all(b._compiled_call_impl is not None for b in blocks)
