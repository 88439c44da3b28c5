"""Builders shared by tests (imported as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def random_qwen2(
    *, vocab: int, hidden: int, intermediate: int, layers: int, max_positions: int, **config
) -> Qwen2ForCausalLM:
    """A seeded random-init Qwen2 with 4 query heads over 2 KV heads, pad id 0."""
    torch.manual_seed(0)
    return Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=intermediate,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=max_positions,
            pad_token_id=0,
            **config,
        )
    )


def harness(name: str) -> ModuleType:
    """A reliability harness of tests/reliability/ as a module, registered in sys.modules
    under its own name (its sibling harnesses and its child processes import it by name)."""
    path = Path(__file__).parent / "reliability" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
