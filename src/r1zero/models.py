"""Load a model and its tokenizer (a local folder or a hub id, full weights or LoRA):
the policy of training, its reference copy and any model ``r1zero eval`` scores.

Below both training and evaluation, so that neither imports the other for it. Every
failure (no folder, no config.json, corrupt weights, offline) is one ConfigError line.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from r1zero.config import ConfigError, ModelConfig
from r1zero.progress import phase

log = logging.getLogger("r1zero")


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def pick_dtype(cfg: ModelConfig, bf16: bool | None, device: torch.device) -> torch.dtype:
    if bf16 is True or (cfg.torch_dtype == "bfloat16"):
        return torch.bfloat16
    names = {"float16": torch.float16, "float32": torch.float32}
    if cfg.torch_dtype in names:
        return names[cfg.torch_dtype]
    if cfg.torch_dtype != "auto":
        raise ConfigError(
            f"torch_dtype must be auto, bfloat16, float16 or float32, got {cfg.torch_dtype!r}"
        )
    if bf16 is None and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _check_path(name: str, *, needs: tuple[str, ...] = ("config.json",)) -> None:
    """A local folder must hold one of ``needs`` (a model: config.json; a tokenizer, which
    a LoRA adapter folder carries without a config.json: tokenizer_config.json too)."""
    p = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or p.exists() or name.count("/") != 1
    if looks_local and not p.is_dir():
        raise ConfigError(
            f"model_name_or_path: no model folder at {p} (and it is not a hub id like org/name)"
        )
    if p.is_dir() and not any((p / f).is_file() for f in needs):
        raise ConfigError(
            f"model_name_or_path: {p} has no {' or '.join(needs)}; "
            "is it a Hugging Face model folder?"
        )


def local_or_hub(name: str) -> str:
    """An existing local folder as an absolute path (so a LoRA adapter saved from it names
    a base that is found from any working directory); anything else unchanged."""
    p = Path(name).expanduser()
    return str(p.resolve()) if p.is_dir() else name


@functools.cache
def _warn_once(message: str) -> None:
    """The policy and the reference model load alike; the user needs each warning once."""
    log.warning(message)


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else ""
    return text if isinstance(e, OSError | ValueError) else f"{type(e).__name__}: {text}"


def load_tokenizer(name: str, cfg: ModelConfig) -> PreTrainedTokenizerBase:
    _check_path(name, needs=("config.json", "tokenizer_config.json"))
    try:
        tok = AutoTokenizer.from_pretrained(
            name, revision=cfg.model_revision, trust_remote_code=cfg.trust_remote_code
        )
    except Exception as e:  # missing, corrupt or offline: one line, not a traceback
        raise ConfigError(
            f"model_name_or_path: cannot load the tokenizer of {name}: {_first_line(e)}"
        ) from None
    if not tok("1 + 2", add_special_tokens=False)["input_ids"]:
        raise ConfigError(
            f"model_name_or_path: the tokenizer of {name} turns text into no tokens; "
            "are tokenizer.json / tokenizer_config.json missing?"
        )
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    name: str, cfg: ModelConfig, dtype: torch.dtype, device: torch.device
) -> torch.nn.Module:
    """Load weights (any HF causal LM); wrap in a LoRA adapter when ``use_peft``."""
    _check_path(name)
    name = local_or_hub(name)
    attn = cfg.attn_implementation
    if attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        _warn_once("attn_implementation flash_attention_2: flash-attn is not installed; using sdpa")
        attn = "sdpa"
    with phase(f"loading {name} ({str(dtype).removeprefix('torch.')}, {device.type})"):
        try:
            model = AutoModelForCausalLM.from_pretrained(
                name,
                revision=cfg.model_revision,
                dtype=dtype,
                attn_implementation=attn,
                trust_remote_code=cfg.trust_remote_code,
            )
        except Exception as e:  # OSError, ValueError, SafetensorError (truncated weights), ...
            raise ConfigError(f"model_name_or_path: cannot load {name}: {_first_line(e)}") from None
        model.to(device)
    return wrap_lora(model, cfg) if cfg.use_peft else model


def wrap_lora(model: torch.nn.Module, cfg: ModelConfig) -> torch.nn.Module:
    """The LoRA adapter of ``use_peft`` (peft's ``get_peft_model``, TRL's field names);
    the one construction both training and ``r1zero bench`` use."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules or "all-linear",
        task_type=cfg.lora_task_type,
    )
    return get_peft_model(model, lora)


def eos_ids(model: torch.nn.Module, tokenizer: Any) -> tuple[int, ...]:
    """Stop tokens: the tokenizer's EOS plus the model's generation_config EOS list."""
    ids: list[int] = []
    gen = getattr(model, "generation_config", None)
    g_eos = getattr(gen, "eos_token_id", None)
    for x in [tokenizer.eos_token_id] + (g_eos if isinstance(g_eos, list) else [g_eos]):
        if x is not None and x not in ids:
            ids.append(int(x))
    return tuple(ids)


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
