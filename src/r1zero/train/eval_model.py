"""Load any model folder or checkpoint (full weights or a LoRA adapter) for evaluation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

from r1zero.config import ConfigError, GRPOConfig, ModelConfig
from r1zero.rollout import get_engine
from r1zero.rollout.policy import Policy
from r1zero.task.prompts import get_template
from r1zero.train.model import load_model, load_tokenizer, pick_device, pick_dtype
from r1zero.train.setup import eos_ids


def _found(name: str) -> bool:
    """A model folder here, or a name that can only be a hub id (org/name, no such path)."""
    p = Path(name).expanduser()
    if p.is_dir():
        return (p / "config.json").is_file()
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not p.exists()


def lora_base(adapter_dir: Path) -> str:
    """The base model of a LoRA adapter folder (a LoRA run folder or one of its
    checkpoints): ``base_model_name_or_path`` of adapter_config.json, else the run's
    config.yaml ``model_name_or_path``; a relative path is tried from the working
    directory and from the run folder's parent. ConfigError in one line if none is found."""
    try:
        adapter = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{adapter_dir}/adapter_config.json: cannot read it ({e})") from None
    names = [adapter.get("base_model_name_or_path") if isinstance(adapter, dict) else None]
    for folder in (adapter_dir, adapter_dir.parent):
        if (folder / "config.yaml").is_file():
            from r1zero.config import load_config

            names.append(load_config(folder / "config.yaml").model.model_name_or_path)
            break
    names = [n for n in names if isinstance(n, str) and n]
    run_dir = adapter_dir.parent if (adapter_dir.parent / "config.yaml").is_file() else adapter_dir
    for name in names:
        for candidate in (name, str(run_dir.parent / name)):
            if _found(candidate):
                return candidate
    tried = ", ".join(repr(n) for n in dict.fromkeys(names)) or "none named"
    raise ConfigError(
        f"LoRA adapter {adapter_dir}: its base model is not found ({tried}, from "
        "adapter_config.json base_model_name_or_path and the run's config.yaml); "
        "put the base model there or edit base_model_name_or_path"
    )


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
    if (Path(path) / "adapter_config.json").is_file():
        from peft import PeftModel

        base_name = lora_base(Path(path))
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
