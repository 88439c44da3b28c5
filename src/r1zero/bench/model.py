"""Random-weight models of real shapes, built on the device: no download, no checkpoint.

A shape is the architecture part of a model's ``config.json`` (shipped in ``bench/shapes/``);
speed and memory depend on it alone, not on the weight values.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PretrainedConfig

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
"""Dense bf16 tensor-core peak (datasheet, SXM) by GPU name fragment; MFU divides by it."""


def shape_names() -> list[str]:
    folder = resources.files("r1zero.bench") / "shapes"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load_shape(name: str) -> dict:
    """A shipped shape by name (``qwen2.5-3b``) or a path to a config.json."""
    p = Path(name)
    if p.is_file():
        return json.loads(p.read_text())
    f = resources.files("r1zero.bench") / "shapes" / f"{name}.json"
    if not f.is_file():
        raise SystemExit(f"unknown shape {name!r}; shipped: {', '.join(shape_names())}")
    return json.loads(f.read_text())


def shape_config(shape: dict) -> PretrainedConfig:
    fields = {k: v for k, v in shape.items() if not k.startswith("_")}
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def build_model(
    shape: dict, device: torch.device, dtype: torch.dtype = torch.bfloat16, seed: int = 0
) -> torch.nn.Module:
    """A randomly initialised causal LM, constructed directly on ``device`` (fast on a GPU)."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(
            shape_config(shape), dtype=dtype, attn_implementation="sdpa"
        )
    return model


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The reference policy of full fine-tuning: the same weights, frozen (as load_reference)."""
    ref = copy.deepcopy(model).eval()
    ref.requires_grad_(False)
    return ref


def enable_training(model: torch.nn.Module, *, peft: bool) -> None:
    """What ``r1zero train`` setup does before the first step (gradient checkpointing on)."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if peft:
        model.enable_input_require_grads()
    model.train()


def count_params(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Distinct parameters (tied embeddings count once)."""
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n


def peak_flops(device_name: str) -> float:
    """Dense bf16 peak for MFU; the H100's 989 TFLOP/s when the GPU is not in the table."""
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in device_name:
            return flops
    return PEAK_BF16_FLOPS["H100"]
