"""Regional ``torch.compile``: the decoder layers' norms and MLPs, compiled once for all layers.

A transformer repeats one layer N times; compiled as a whole, a 3B model takes minutes. Its
layers' blocks share code objects and dynamo lifts their weights to graph inputs, so
compiling each block's call reuses the first layer's graph for all N: seconds. The attention
module stays eager: HF's indexes the KV cache by its integer ``layer_idx``, which dynamo
treats as a constant, so it would compile once per layer.

Used by the fast rollout engine (around its decode step, with the rotary embedding too) and,
with ``torch_compile: true``, by training (fused RMSNorm and SwiGLU, forward and backward).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import torch


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The repeated blocks: the longest ``ModuleList`` (``model.model.layers`` for HF decoders,
    wherever PEFT wrapping puts it)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no ModuleList of decoder layers")
    return max(lists, key=len)


def compilable_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Each decoder layer's children that do not touch the KV cache: its norms and MLP."""
    return [
        child
        for layer in decoder_layers(model)
        for child in layer.children()
        if not any(hasattr(m, "layer_idx") for m in child.modules())
    ]


def compile_blocks(model: torch.nn.Module, compiled: dict | None = None) -> list[torch.nn.Module]:
    """Route every compilable block through ``torch.compile`` from now on; returns the blocks.
    ``compiled`` keeps the wrappers (and the model's block list) across calls."""
    compiled = {} if compiled is None else compiled
    blocks = _cached_blocks(model, compiled)
    for block in blocks:
        if id(block) not in compiled:
            compiled[id(block)] = torch.compile(block._call_impl, dynamic=True)
        block._compiled_call_impl = compiled[id(block)]
    return blocks


def _cached_blocks(model: torch.nn.Module, compiled: dict) -> list[torch.nn.Module]:
    """:func:`compilable_blocks`, found once per model (not walked again per decode step)."""
    key = ("blocks", id(model))
    if key not in compiled:
        compiled[key] = compilable_blocks(model)
    return compiled[key]


def eager_blocks(model: torch.nn.Module) -> None:
    """Undo :func:`compile_blocks`: every block runs eagerly again."""
    for block in compilable_blocks(model):
        block._compiled_call_impl = None


@contextmanager
def compiled_rotary(model: torch.nn.Module, compiled: dict):
    """Inside the block, the attention modules' ``apply_rotary_pos_emb`` (a global of their
    modeling module, looked up at each call) runs compiled: a pure function, one graph for
    every layer, ~10 pointwise kernels fused into one."""
    key = ("rotary modules", id(model))
    if key not in compiled:  # found once: the walk over every module is not per decode step
        compiled[key] = {
            sys.modules[type(m).__module__] for m in model.modules() if hasattr(m, "layer_idx")
        }
    patched = []
    for mod in compiled[key]:
        fn = getattr(mod, "apply_rotary_pos_emb", None)
        if fn is None:
            continue
        key = ("apply_rotary_pos_emb", mod.__name__)
        if key not in compiled:
            compiled[key] = torch.compile(fn, dynamic=True)
        mod.apply_rotary_pos_emb = compiled[key]
        patched.append((mod, fn))
    try:
        yield
    finally:
        for mod, fn in patched:
            mod.apply_rotary_pos_emb = fn


@contextmanager
def compiled_blocks(model: torch.nn.Module, compiled: dict):
    """:func:`compile_blocks` and :func:`compiled_rotary` inside the block only; each block's
    previous routing (eager, or training's own compiled call) comes back afterwards."""
    blocks = _cached_blocks(model, compiled)
    before = [b._compiled_call_impl for b in blocks]
    compile_blocks(model, compiled)
    try:
        with compiled_rotary(model, compiled):
            yield
    finally:
        for block, impl in zip(blocks, before, strict=True):
            block._compiled_call_impl = impl
