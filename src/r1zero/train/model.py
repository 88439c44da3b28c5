"""The training side of the policy: the causal LM under a peft wrapper, its backbone and
head (for chunked logprobs), and the reference model when beta > 0. Loading itself is
:mod:`r1zero.models`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from r1zero.config import ModelConfig
from r1zero.models import load_model


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
