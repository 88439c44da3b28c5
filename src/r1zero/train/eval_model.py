"""Load any model folder or checkpoint (full weights or a LoRA adapter) for evaluation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from r1zero.config import ConfigError, GRPOConfig, ModelConfig
from r1zero.rollout import get_engine
from r1zero.task.prompts import get_template
from r1zero.train.experience import Policy
from r1zero.train.model import load_model, load_tokenizer, pick_device, pick_dtype
from r1zero.train.setup import eos_ids


def load_for_eval(
    path: str,
    *,
    template: str,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    engine: str = "auto",
) -> tuple[Policy, GRPOConfig]:
    random.seed(seed)
    torch.manual_seed(seed)
    device = pick_device()
    mcfg = ModelConfig(model_name_or_path=path)
    dtype = pick_dtype(mcfg, None, device)
    adapter = Path(path) / "adapter_config.json"
    if adapter.is_file():
        from peft import PeftModel

        base_name = json.loads(adapter.read_text()).get("base_model_name_or_path")
        if not base_name:
            raise ConfigError(f"{adapter} names no base_model_name_or_path")
        model = PeftModel.from_pretrained(load_model(base_name, mcfg, dtype, device), path)
        tok_src = path if (Path(path) / "tokenizer_config.json").is_file() else base_name
    else:
        model = load_model(path, mcfg, dtype, device)
        tok_src = path
    model.eval()
    tokenizer = load_tokenizer(tok_src, mcfg)
    name = engine if engine != "auto" else ("fast" if device.type == "cuda" else "hf")
    policy = Policy(
        model,
        tokenizer,
        get_template(template),
        get_engine(name),
        device,
        eos_ids(model, tokenizer),
    )
    cfg = GRPOConfig(
        max_completion_length=max_new_tokens, temperature=temperature, max_prompt_length=None
    )
    return policy, cfg
