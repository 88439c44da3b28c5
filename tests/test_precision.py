"""Mixed precision: bf16 weights and compute, fp32 master weights in the optimizer.

At the tutorial's learning rate (5e-7) an AdamW step is far below the bf16 spacing of a
typical weight (1.2e-4 near 0.02): applied to bf16 weights directly it is rounded away.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from r1zero.config import GRPOConfig, from_dict
from r1zero.train.distributed import Dist
from r1zero.train.optim import MasterWeightAdamW, build_optim, make_optimizer, param_groups

LR = 5e-7


def _linear(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 64), nn.LayerNorm(64))
    with torch.no_grad():
        model[0].weight.normal_(0, 0.02)
    return model.to(dtype)


def _train(model: nn.Module, opt: torch.optim.Optimizer, steps: int, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=gen).to(dtype)
        opt.step()
        opt.zero_grad(set_to_none=True)


def _movement(
    opt: torch.optim.Optimizer, model: nn.Module, base: torch.Tensor
) -> tuple[float, float]:
    w = opt.master_params[0] if isinstance(opt, MasterWeightAdamW) else model[0].weight
    d = (w.detach().float() - base).abs()
    return float((d > 0).float().mean()), float(d.mean())


def test_bf16_master_weights_move_as_float32_at_the_tutorial_lr() -> None:
    runs = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = _linear(dtype)
        base = model[0].weight.detach().float().clone()
        opt = make_optimizer(model, GRPOConfig(learning_rate=LR))
        assert isinstance(opt, MasterWeightAdamW) == (dtype == torch.bfloat16)
        _train(model, opt, 50, dtype)
        runs[dtype] = _movement(opt, model, base)
    moved, mean = runs[torch.bfloat16]
    assert moved >= 0.95
    assert abs(mean - runs[torch.float32][1]) <= 0.1 * runs[torch.float32][1]


def test_plain_adamw_on_bf16_rounds_the_updates_away() -> None:
    """The negative control: what r1zero did before master weights (so the test above can fail)."""
    model = _linear(torch.bfloat16)
    base = model[0].weight.detach().float().clone()
    opt = make_optimizer(model, GRPOConfig(learning_rate=LR, master_weights=False))
    assert not isinstance(opt, MasterWeightAdamW)
    _train(model, opt, 50, torch.bfloat16)
    moved, _ = _movement(opt, model, base)
    assert moved < 0.1


def test_model_weights_are_the_masters_rounded_to_bf16() -> None:
    model = _linear(torch.bfloat16)
    opt = make_optimizer(model, GRPOConfig(learning_rate=1e-3))
    _train(model, opt, 3, torch.bfloat16)
    for p, m in zip(opt.model_params, opt.master_params, strict=True):
        assert p.dtype == torch.bfloat16 and m.dtype == torch.float32
        assert torch.equal(p, m.to(torch.bfloat16))
        assert p.grad is None and m.grad is None


def test_resume_restores_the_exact_master_weights() -> None:
    a = _linear(torch.bfloat16)
    opt_a = make_optimizer(a, GRPOConfig(learning_rate=LR))
    _train(a, opt_a, 4, torch.bfloat16)
    state = copy.deepcopy(opt_a.state_dict())  # as torch.load would give it: no shared tensors
    b = _linear(torch.bfloat16)  # the bf16 weights a checkpoint would hold: the rounding
    b.load_state_dict(a.state_dict())
    opt_b = make_optimizer(b, GRPOConfig(learning_rate=LR))
    opt_b.load_state_dict(state)
    for ma, mb in zip(opt_a.master_params, opt_b.master_params, strict=True):
        assert torch.equal(ma, mb)
    _train(a, opt_a, 3, torch.bfloat16)
    _train(b, opt_b, 3, torch.bfloat16)
    for ma, mb in zip(opt_a.master_params, opt_b.master_params, strict=True):
        assert torch.equal(ma, mb)


def test_resume_refuses_a_state_without_master_weights() -> None:
    model = _linear(torch.bfloat16)
    plain = torch.optim.AdamW(param_groups(model, 0.0), lr=LR)
    opt = make_optimizer(model, GRPOConfig(learning_rate=LR))
    try:
        opt.load_state_dict(plain.state_dict())
    except ValueError as e:
        assert "master weights" in str(e)
    else:
        raise AssertionError("a state without master weights was accepted")


def test_weight_decay_exempts_biases_and_norms_as_the_hf_trainer() -> None:
    model = _linear(torch.float32)
    groups = param_groups(model, 0.1)
    decayed = {id(p) for g in groups if g["weight_decay"] == 0.1 for p in g["params"]}
    assert decayed == {id(model[0].weight)}
    opt = make_optimizer(model, GRPOConfig(learning_rate=1e-2, weight_decay=0.1))
    before = model[1].weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(model[1].weight, before)  # zero gradient, no decay: unchanged


def test_lora_adapters_train_in_float32_without_masters(tiny_model_dir) -> None:
    from r1zero.config import ModelConfig
    from r1zero.models import load_model

    cfg = ModelConfig(model_name_or_path=str(tiny_model_dir), use_peft=True, lora_r=4)
    model = load_model(str(tiny_model_dir), cfg, torch.bfloat16, torch.device("cpu"))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert all(p.dtype == torch.bfloat16 for p in frozen)
    opt = build_optim(model, from_dict({"learning_rate": LR}), 10, Dist()).optimizer
    assert not isinstance(opt, MasterWeightAdamW)


def test_tutorial_yaml_semantics() -> None:
    from r1zero.config import load_config

    cfg = load_config("examples/datawhale-r1.yaml")
    g = cfg.grpo
    assert g.defaults == "datawhale-r1"
    assert g.reward_funcs == ["format", "equation", "thought_len"]
    assert (g.loss_type, g.temperature, g.scoring_temperature) == ("grpo", 0.9, 1.0)
    assert (g.learning_rate, g.beta, g.max_completion_length) == (5e-7, 0.001, 4096)
    assert cfg.data.prompt_template == "zh"
    assert "learning_rate" not in cfg.from_defaults  # the YAML's own keys win


REWARD = """
def length_mod_3(completions, **kwargs):
    return [float(len(c) % 3) for c in completions]
"""


def _saved_movement(run: Path, base_dir: Path) -> tuple[float, float]:
    from safetensors.torch import load_file

    base, w = load_file(base_dir / "model.safetensors"), load_file(run / "model.safetensors")
    moved = total = 0
    dist = 0.0
    for k, b in base.items():
        d = (w[k].float() - b.to(w[k].dtype).float()).abs()
        moved, total, dist = moved + int((d > 0).sum()), total + d.numel(), dist + float(d.sum())
    return moved / total, dist / total


@pytest.mark.slow
def test_bf16_run_saves_weights_that_moved_like_float32(tiny_model_dir, tmp_path) -> None:
    """lr 2e-5 for 20 steps: each step is under half a bf16 spacing near 0.02, the sum is not.
    Without master weights the saved bf16 model barely moves (7% of weights, 14x less)."""
    reward = tmp_path / "reward.py"
    reward.write_text(REWARD)
    out = {}
    for bf16 in ("true", "false"):
        run = tmp_path / f"run-{bf16}"
        cmd = [
            sys.executable, "-m", "r1zero", "train", "--model_name_or_path", str(tiny_model_dir),
            "--bf16", bf16, "--learning_rate", "2e-5", "--lr_scheduler_type", "constant",
            "--max_steps", "20", "--per_device_train_batch_size", "2", "--num_generations", "4",
            "--max_completion_length", "16", "--reward_funcs", f"{reward}:length_mod_3",
            "--eval_num_samples", "0", "--save_strategy", "no", "--num_samples", "100",
            "--prompt_template", "short", "--output_dir", str(run), "--live", "false",
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        out[bf16] = _saved_movement(run, tiny_model_dir)
    (moved, dist), (_, dist32) = out["true"], out["false"]
    assert moved >= 0.5, out  # without master weights: 0.30, and a quarter of the distance
    assert dist >= 0.5 * dist32, out


def test_metrics_keep_six_significant_digits(tmp_path) -> None:
    import json

    from r1zero.train.logs import RunLogger, significant

    assert significant(5e-7) == 5e-7 and significant(1.234567891e-9) == 1.23457e-9
    assert significant(123456.789) == 123457.0 and significant(float("nan")) is None
    logger = RunLogger(tmp_path, [], run_name="t", config={})
    logger.log(1, {"learning_rate": 5e-7, "kl": 3.21e-8, "loss": float("inf")})
    row = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert row == {"step": 1, "learning_rate": 5e-7, "kl": 3.21e-8, "loss": None}
