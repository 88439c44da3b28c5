"""FSDP2 (issue 17): refusals, the gather/reshard step, checkpoints and the memory plan.

The multi-process tests (slow) launch through ``accelerate launch --config_file
examples/accelerate/fsdp2.yaml`` as a user would, on CPU with gloo: 2 processes equal 1
process on the same global batch, every rank ends with the same weights, and a run
killed after a checkpoint resumes to the uninterrupted run's weights.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from r1zero.bench import memory_plan
from r1zero.config import ConfigError
from r1zero.train import distributed, sharded
from r1zero.train.checkpoint import TEMP_RE

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("dist_worker.py")
FSDP2_YAML = ROOT / "examples" / "accelerate" / "fsdp2.yaml"
DDP_YAML = FSDP2_YAML.with_name("ddp.yaml")
ENV_KEYS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# ---------------------------------------------------------------- refusals (fast)


@pytest.mark.parametrize(
    ("flag", "words"),
    [("ACCELERATE_USE_DEEPSPEED", "DeepSpeed"), ("ACCELERATE_USE_MEGATRON_LM", "Megatron")],
)
def test_unsupported_launchers_are_refused_in_one_line(monkeypatch, flag: str, words: str) -> None:
    monkeypatch.setenv(flag, "true")
    with pytest.raises(ConfigError) as e:
        distributed.make_dist()
    msg = str(e.value)
    assert words in msg and "examples/accelerate/fsdp2.yaml" in msg and "\n" not in msg


def _plugin(**kw) -> SimpleNamespace:
    base = {
        "fsdp_version": 2,
        "cpu_offload": None,
        "reshard_after_forward": True,
        "transformer_cls_names_to_wrap": None,
    }
    return SimpleNamespace(**(base | kw))


def test_fsdp1_and_param_offload_are_refused() -> None:
    with pytest.raises(ConfigError, match="fsdp_version must be 2"):
        sharded.settings_from_plugin(_plugin(fsdp_version=1))
    from torch.distributed.fsdp import CPUOffloadPolicy

    with pytest.raises(ConfigError, match="fsdp_offload_params"):
        sharded.settings_from_plugin(_plugin(cpu_offload=CPUOffloadPolicy()))
    s = sharded.settings_from_plugin(
        _plugin(reshard_after_forward=False, transformer_cls_names_to_wrap="A, B")
    )
    assert s == sharded.FsdpSettings(False, ("A", "B"))


def test_distributed_types_other_than_ddp_and_fsdp2_are_refused() -> None:
    from accelerate.utils import DistributedType as T

    for t in (T.DEEPSPEED, T.XLA, T.MEGATRON_LM):
        with pytest.raises(ConfigError, match="not supported"):
            distributed._check_type(SimpleNamespace(distributed_type=t), None)
    with pytest.raises(ConfigError):  # FSDP without fsdp_version 2 settings (e.g. FSDP1)
        distributed._check_type(SimpleNamespace(distributed_type=T.FSDP), None)
    for t in (T.NO, T.MULTI_CPU, T.MULTI_GPU):
        distributed._check_type(SimpleNamespace(distributed_type=t), None)
    distributed._check_type(SimpleNamespace(distributed_type=T.FSDP), sharded.FsdpSettings())


def test_accelerate_cpu_flag_starting_one_process_is_explained(monkeypatch, caplog) -> None:
    for k in ENV_KEYS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    with caplog.at_level(logging.WARNING, logger="r1zero"):
        d = distributed.make_dist()
    assert d.world == 1
    assert "--multi_gpu --num_processes N" in caplog.text


def test_interrupted_sharded_saves_are_cleaned() -> None:
    assert TEMP_RE.match(".tmp-sharded-12") and not TEMP_RE.match(".tmp-sharded-x")


# ---------------------------------------------------------------- gather / reshard (world 1)


@pytest.fixture
def one_rank_group(monkeypatch):
    """A gloo process group of one rank in this process, torn down after the test."""
    import torch.distributed as td

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    td.init_process_group("gloo", rank=0, world_size=1)
    yield
    td.destroy_process_group()


def test_gathered_gives_full_weights_and_reshards_after(one_rank_group) -> None:
    from torch.distributed.tensor import DTensor

    from helpers import random_qwen2
    from r1zero.rollout import SamplingParams, get_engine
    from r1zero.train.update import LogprobModel

    plain = random_qwen2(
        vocab=64, hidden=32, intermediate=64, layers=2, max_positions=64, tie_word_embeddings=True
    )
    model = random_qwen2(
        vocab=64, hidden=32, intermediate=64, layers=2, max_positions=64, tie_word_embeddings=True
    )
    ids = torch.randint(3, 64, (3, 5), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    params = SamplingParams(max_new_tokens=6, do_sample=False)
    want = get_engine("hf").generate(plain, ids, mask, params).completion_ids
    root = sharded.shard(LogprobModel(model, 1.0, 8), model, sharded.FsdpSettings(), torch.float32)
    w = model.model.layers[0].mlp.up_proj
    assert isinstance(w.weight, DTensor)
    with sharded.gathered(root):
        assert not isinstance(w.weight, DTensor) and w.weight.shape == (64, 32)
        with sharded.gathered(root):  # nested: still gathered after the inner exit
            pass
        assert not isinstance(w.weight, DTensor)
    assert isinstance(w.weight, DTensor)
    engine = sharded.GatheredEngine(get_engine("hf"), root)
    assert torch.equal(engine.generate(model, ids, mask, params).completion_ids, want)
    assert isinstance(w.weight, DTensor)  # resharded after the rollout


def test_frozen_logprobs_through_the_backbone_hook_equal_unsharded(one_rank_group) -> None:
    """Reference log-probs call the backbone, not the root: the hook gathers the root unit."""
    from helpers import random_qwen2
    from r1zero.config import GRPOConfig
    from r1zero.rollout import RolloutBatch
    from r1zero.train.update import frozen_logprobs

    kw = dict(vocab=64, hidden=32, intermediate=64, layers=2, max_positions=64)
    plain, ref = random_qwen2(**kw).eval(), random_qwen2(**kw).eval()
    g = torch.Generator().manual_seed(2)
    batch = RolloutBatch(
        torch.randint(3, 64, (4, 5), generator=g),
        torch.ones(4, 5, dtype=torch.long),
        torch.randint(3, 64, (4, 6), generator=g),
        torch.ones(4, 6, dtype=torch.long),
        torch.zeros(4, dtype=torch.bool),
    )
    cfg = GRPOConfig(num_generations=4, max_completion_length=6)
    want = frozen_logprobs(plain, batch, cfg, 2)
    sharded.shard(ref, ref, sharded.FsdpSettings(), torch.float32)
    torch.testing.assert_close(frozen_logprobs(ref, batch, cfg, 2), want)


# ---------------------------------------------------------------- memory plan


def test_memory_plan_counts_qwen_7b_and_shards_the_state() -> None:
    from r1zero.bench.model import build_model, load_shape

    shape = load_shape("qwen2.5-7b")
    n = memory_plan.count_params(shape)
    embed = shape["vocab_size"] * shape["hidden_size"]  # Qwen2.5-7B's model card: 7.61B, 6.53B
    assert 7.61e9 <= n["total"] < 7.62e9 and round((n["total"] - 2 * embed) / 1e9, 2) == 6.53
    tiny = {
        **shape,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 100,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    model = build_model(tiny, torch.device("cpu"), torch.float32)
    assert memory_plan.count_params(tiny)["total"] == sum(p.numel() for p in model.parameters())
    p2, p8 = memory_plan.plan(shape, 2), memory_plan.plan(shape, 8)
    assert p2["AdamW moments (sharded)"] == pytest.approx(4 * p8["AdamW moments (sharded)"])
    assert p2["full weights bf16 (gathered)"] == p8["full weights bf16 (gathered)"]
    assert p2["peak"] > p8["peak"] and p2["peak"] == max(p2["peak training"], p2["peak rollout"])
    table = memory_plan.plan_table(shape, "qwen2.5-7b")
    assert "| **peak** (GiB) |" in table and "8 GPUs" in table


# ---------------------------------------------------------------- multi-process (slow)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "tests")}
    for k in ENV_KEYS:
        env.pop(k, None)
    return env


def _accelerate(nproc: int, target: list[str], port: int, config: Path = FSDP2_YAML) -> list[str]:
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--num_processes",
        str(nproc),
        "--main_process_port",
        str(port),
        *target,
    ]


def _run(cmd: list[str], timeout: int = 400) -> str:
    p = subprocess.run(
        cmd, env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("loss_type", "beta"), [("dapo", "0.0"), ("grpo", "0.04")])
def test_fsdp2_two_processes_equal_one(tiny_model_dir: Path, tmp_path: Path, loss_type, beta):
    one, two = tmp_path / "one", tmp_path / "two"
    _run([sys.executable, str(WORKER), str(tiny_model_dir), str(one), loss_type, beta])
    target = [str(WORKER), str(tiny_model_dir), str(two), loss_type, beta]
    _run(_accelerate(2, target, _free_port()))
    a, b = json.loads((one / "loss.json").read_text()), json.loads((two / "loss.json").read_text())
    assert b["sharded"] and b["world"] == 2 and not a["sharded"]
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-7)
    assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    w1, w2 = torch.load(one / "weights.pt"), torch.load(two / "weights.pt")
    assert set(w1) == set(w2)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)
    other = torch.load(two / "weights-rank1.pt")
    assert all(torch.equal(other[k], w2[k]) for k in w2), "the ranks' weights differ"
    assert torch.equal(torch.load(one / "greedy.pt"), torch.load(two / "greedy.pt"))


@pytest.mark.slow
def test_ddp_config_every_rank_holds_the_same_weights(tiny_model_dir: Path, tmp_path: Path):
    """examples/accelerate/ddp.yaml: replicas stay bit-identical after a step (grpo, beta > 0)."""
    target = [str(WORKER), str(tiny_model_dir), str(tmp_path), "grpo", "0.04"]
    _run(_accelerate(2, target, _free_port(), DDP_YAML))
    info = json.loads((tmp_path / "loss.json").read_text())
    assert info["world"] == 2 and not info["sharded"]
    w0, w1 = torch.load(tmp_path / "weights-rank0.pt"), torch.load(tmp_path / "weights-rank1.pt")
    assert all(torch.equal(w0[k], w1[k]) for k in w0), "the DDP replicas drifted apart"


@pytest.mark.slow
@pytest.mark.parametrize("config", [DDP_YAML, FSDP2_YAML], ids=["ddp", "fsdp2"])
def test_two_machines_on_localhost_equal_one_process(
    tiny_model_dir: Path, tmp_path: Path, config: Path
) -> None:
    """Two launches, --num_machines 2 --machine_rank 0/1 on 127.0.0.1, one process each,
    together give one process's step on the same global batch."""
    _run([sys.executable, str(WORKER), str(tiny_model_dir), str(tmp_path / "one"), "dapo"])
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        cmd = _accelerate(2, [], 0, config)[:-2]  # drop --main_process_port 0
        cmd += ["--num_machines", "2", "--machine_rank", str(rank), "--main_process_ip"]
        cmd += ["127.0.0.1", "--main_process_port", port]
        cmd += [str(WORKER), str(tiny_model_dir), str(tmp_path / "two"), "dapo"]
        procs.append(
            subprocess.Popen(
                cmd,
                env=_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        outs = [p.communicate(timeout=400)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-4000:]
    a = json.loads((tmp_path / "one" / "loss.json").read_text())
    b = json.loads((tmp_path / "two" / "loss.json").read_text())
    assert b["world"] == 2 and b["sharded"] == (config == FSDP2_YAML)
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-7)
    w1, w2 = (
        torch.load(tmp_path / "one" / "weights.pt"),
        torch.load(tmp_path / "two" / "weights.pt"),
    )
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)


def _kill_job(p: subprocess.Popen) -> None:
    """SIGKILL the launcher and every worker (torchrun puts each worker in its own session,
    so killing the launcher's process group alone leaves the ranks running)."""
    import psutil

    procs = psutil.Process(p.pid).children(recursive=True)
    for q in procs:
        q.send_signal(signal.SIGKILL)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    psutil.wait_procs(procs, timeout=30)


def _train_cmd(model: Path, out: Path, port: int) -> list[str]:
    """A random tiny model never earns the Countdown rewards (zero advantages, no update), so
    the run scores completions by their length mod 3, a reward whose groups vary."""
    reward = out.parent / "length_reward.py"
    reward.write_text(
        "def length(completions, **kwargs):\n    return [len(str(c)) % 3 for c in completions]\n"
    )
    args = (
        f"--reward_funcs {reward}:length "
        f"--model_name_or_path {model} --output_dir {out} --max_steps 4 --save_steps 2 --eval_num_samples 4 --live false "
        "--beta 0.01 --num_generations 4 --per_device_train_batch_size 2 "
        "--gradient_accumulation_steps 1 --max_completion_length 32 --learning_rate 1e-3"
    )
    return _accelerate(2, ["-m", "r1zero", "train", *args.split()], port)


@pytest.mark.slow
def test_fsdp2_resume_after_kill_equals_uninterrupted(tiny_model_dir: Path, tmp_path: Path):
    """SIGKILL the whole job once checkpoint-2 (weights + sharded AdamW state) exists; the
    same command resumes it and ends with the uninterrupted run's weights."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    _run(_train_cmd(tiny_model_dir, whole, _free_port()))
    cmd = _train_cmd(tiny_model_dir, killed, _free_port())
    p = subprocess.Popen(
        cmd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 400
    while not (killed / "checkpoint-2" / sharded.OPTIMIZER_DIR).is_dir():
        assert p.poll() is None and time.time() < deadline, "no checkpoint-2 before the end"
        time.sleep(0.2)
    _kill_job(p)
    assert not (killed / "done").exists(), "the kill came too late to test a resume"
    out = _run(_train_cmd(tiny_model_dir, killed, _free_port()))
    assert "resuming from checkpoint-2" in out
    a, b = load_file(whole / "model.safetensors"), load_file(killed / "model.safetensors")
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6)
    start = load_file(tmp_path / "whole" / "checkpoint-2" / "model.safetensors")
    assert any(not torch.equal(a[k], start[k]) for k in a), "steps 3-4 changed nothing"
