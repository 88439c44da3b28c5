"""Load the policy (full or LoRA) and its tokenizer; the reference model when beta > 0."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from r1zero.config import ConfigError, ModelConfig
from r1zero.train.display import phase

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
    if cfg.use_peft:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_target_modules or "all-linear",
            task_type=cfg.lora_task_type,
        )
        model = get_peft_model(model, lora)
    return model


def causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The underlying ``*ForCausalLM`` (unwrapping peft), whose LoRA layers stay active."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def backbone_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    lm = causal_lm(model)
    return getattr(lm, lm.base_model_prefix), lm.get_output_embeddings()


@contextlib.contextmanager
def reference_policy(
    model: torch.nn.Module, ref_model: torch.nn.Module | None
) -> Iterator[torch.nn.Module]:
    """The reference policy: a frozen copy, or (LoRA) the same model with the adapter disabled."""
    if ref_model is not None:
        yield ref_model
    elif hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield model
    else:
        raise RuntimeError("beta > 0 needs a reference model")


def load_reference(
    name: str, cfg: ModelConfig, dtype: torch.dtype, device: torch.device
) -> torch.nn.Module | None:
    """A second frozen copy for full fine-tuning; None with LoRA (the base is the reference)."""
    if cfg.use_peft:
        return None
    ref_cfg = ModelConfig(**{**cfg.__dict__, "use_peft": False})
    ref = load_model(name, ref_cfg, dtype, device).eval()
    ref.requires_grad_(False)
    return ref
