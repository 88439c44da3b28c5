"""The fast engine's decode step for Llama-family decoders (Qwen2 today), written out.

Measured on one H200 (Qwen2.5-3B shape, ``benchmarks/probes/decode_profile.py``): through HF's
forward a decode step launches about 21 kernels per layer (two RMSNorms, three q/k/v GEMMs,
two rotary kernels, two cache writes, two residual adds, ...); at two rows each costs a few
microseconds whatever its size, so the step took 4.3 ms at 2 rows, where cuBLAS needs 2.1 ms
for the GEMMs alone (their weights read once at 4.3 TB/s: 1.44 ms). Through this module: 3.5 ms
(692 kernels instead of 771). Each layer is two functions that ``torch.compile`` fuses once for
every layer and batch size (weights are arguments, shapes dynamic):

- :func:`pre_attention`: last layer's residual add + RMSNorm (one kernel), one GEMM for q, k and
  v (their weights concatenated into one buffer, :class:`DecodeWeights`), rotary embedding of q
  and k and the new K/V laid out as the cache holds them (one kernel);
- one cache write for K and V together (the store's ``(B, Hkv, 2, L, D)`` buffers);
- :func:`attention_mlp`: attention over the first W slots, o_proj, residual add + RMSNorm,
  gate and up GEMMs, SiLU x up (one kernel), down GEMM; its residual add goes to the next layer.

Same arithmetic as the HF modules (bf16 GEMMs, fp32 RMSNorm statistics, rotary as
``apply_rotary_pos_emb``): on the CPU, without ``torch.compile``, greedy output equals HF
``generate`` token for token (tests/test_fast_rollout.py). Models of another shape (PEFT-wrapped
projections, q/k norms, other activations) keep the HF forward (:func:`supported`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from r1zero.rollout import kv

MODEL_TYPES = ("qwen2",)
"""Whose HF forward takes the engine's per-layer-type mask mapping in the prefill (Llama's and
Mistral's in transformers 5.17 do not: they build their own mask from it, and lose it)."""


def supported(model: torch.nn.Module) -> bool:
    """Plain ``nn.Linear`` projections and the fields this step reads; else HF's forward."""
    config = model.config.get_text_config(decoder=True)
    if getattr(config, "model_type", None) not in MODEL_TYPES:
        return False
    if getattr(config, "hidden_act", "silu") != "silu":
        return False
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or not hasattr(inner, "rotary_emb") or not hasattr(inner, "norm"):
        return False
    attn, mlp = layers[0].self_attn, layers[0].mlp
    qkv = [attn.q_proj, attn.k_proj, attn.v_proj]  # may have a bias (Qwen2's do)
    unbiased = [attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj]
    return (
        all(type(m) is torch.nn.Linear for m in qkv + unbiased)
        and all(m.bias is None for m in unbiased)
        and not hasattr(attn, "q_norm")
    )


@dataclass
class LayerWeights:
    ln1: torch.Tensor  # (H,) input_layernorm
    qkv: torch.Tensor  # ((Hq + 2 Hkv) D, H): q, k, v projections, one buffer
    qkv_bias: torch.Tensor | None
    o: torch.Tensor  # (H, Hq D)
    ln2: torch.Tensor  # (H,) post_attention_layernorm
    gate: torch.Tensor  # (I, H)
    up: torch.Tensor  # (I, H)
    down: torch.Tensor  # (H, I)


class DecodeWeights:
    """The model's own weights, except q/k/v: copied into one buffer per layer (360 MB for
    Qwen2.5-3B) that :meth:`refresh` rewrites in place before each rollout, so captured
    graphs keep their addresses while training moves the weights."""

    def __init__(self, model: torch.nn.Module) -> None:
        inner = model.model
        self.embed = inner.embed_tokens
        self.rotary = inner.rotary_emb
        self.norm = inner.norm.weight
        self.head = model.get_output_embeddings().weight
        config = model.config.get_text_config(decoder=True)
        self.eps = float(config.rms_norm_eps)
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = kv.head_dim(config)
        self.scaling = self.head_dim**-0.5
        self.layers: list[LayerWeights] = []
        self._qkv_sources: list[tuple[torch.nn.Linear, ...]] = []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            projs = (a.q_proj, a.k_proj, a.v_proj)
            rows = sum(p.weight.shape[0] for p in projs)
            w = a.q_proj.weight
            self._qkv_sources.append(projs)
            self.layers.append(
                LayerWeights(
                    ln1=layer.input_layernorm.weight.detach(),
                    qkv=w.new_empty(rows, w.shape[1]),
                    qkv_bias=None if a.q_proj.bias is None else w.new_empty(rows),
                    o=a.o_proj.weight.detach(),
                    ln2=layer.post_attention_layernorm.weight.detach(),
                    gate=m.gate_proj.weight.detach(),
                    up=m.up_proj.weight.detach(),
                    down=m.down_proj.weight.detach(),
                )
            )
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        """Copy the current q/k/v weights into the fused buffers (in place)."""
        for w, projs in zip(self.layers, self._qkv_sources, strict=True):
            torch.cat([p.weight for p in projs], out=w.qkv)
            if w.qkv_bias is not None:
                torch.cat([p.bias for p in projs], out=w.qkv_bias)


# ----------------------------------------------------------------------------- the layer
def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """HF's RMSNorm: statistics in fp32, the weight applied in the input's dtype."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``apply_rotary_pos_emb`` for one tensor: x cos + rotate_half(x) sin."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


def pre_attention(
    hidden: torch.Tensor,  # (b, H) the residual stream
    delta: torch.Tensor | None,  # (b, H) the last layer's MLP output, not yet added
    ln1: torch.Tensor,
    qkv_weight: torch.Tensor,
    qkv_bias: torch.Tensor | None,
    cos: torch.Tensor,  # (b, D)
    sin: torch.Tensor,
    eps: float,
    heads: int,
    kv_heads: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> residual stream (b, H), rotated queries (b, Hq, 1, D), new K/V (b, Hkv, 2, 1, D)."""
    if delta is not None:
        hidden = hidden + delta
    qkv = F.linear(rms_norm(hidden, ln1, eps), qkv_weight, qkv_bias)  # (b, (Hq + 2 Hkv) D)
    b, D = hidden.shape[0], cos.shape[-1]
    q, k, v = qkv.view(b, heads + 2 * kv_heads, D).split([heads, kv_heads, kv_heads], dim=1)
    cos, sin = cos[:, None], sin[:, None]  # (b, 1, D): broadcast over heads
    q = rotate(q, cos, sin)[:, :, None]  # (b, Hq, 1, D)
    new_kv = torch.stack((rotate(k, cos, sin), v), dim=2)[:, :, :, None]  # (b, Hkv, 2, 1, D)
    return hidden, q, new_kv


def attention_mlp(
    hidden: torch.Tensor,  # (b, H)
    q: torch.Tensor,  # (b, Hq, 1, D)
    cache: torch.Tensor,  # (B, Hkv, 2, L, D) the layer's whole buffer: b rows, W slots read
    mask: torch.Tensor,  # (b, 1, 1, W) additive
    o: torch.Tensor,
    ln2: torch.Tensor,
    gate: torch.Tensor,
    up: torch.Tensor,
    down: torch.Tensor,
    eps: float,
    scaling: float,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """-> residual stream after attention (b, H), the MLP's output (b, H) to add next.
    (Weights come as tensors, not a :class:`LayerWeights`, and the cache whole, not as a
    view: dynamo then guards on shapes only, and one graph serves every layer.)"""
    b, W = hidden.shape[0], mask.shape[-1]
    keys, values = cache[:b, :, 0, :W], cache[:b, :, 1, :W]  # (b, Hkv, W, D)
    attn, _ = kv.DECODE_ATTENTION[impl](q, keys, values, mask, scaling)  # (b, 1, Hq, D)
    hidden = hidden + F.linear(attn.reshape(b, -1), o)
    h = rms_norm(hidden, ln2, eps)
    return hidden, F.linear(F.silu(F.linear(h, gate)) * F.linear(h, up), down)


def final_norm(hidden: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor, eps: float):
    return rms_norm(hidden + delta, weight, eps)


@dataclass
class Steps:
    """The three per-layer functions, compiled or not."""

    pre: object = pre_attention
    post: object = attention_mlp
    final: object = final_norm

    @classmethod
    def compiled(cls) -> Steps:
        return cls(*(_compile(f) for f in (pre_attention, attention_mlp, final_norm)))


def _compile(fn):
    """``torch.compile`` with shapes dynamic and no "duck" sizing: a window of 128 slots and a
    head dim of 128 would otherwise be assumed equal, and a longer window recompile."""
    compiled = torch.compile(fn, dynamic=True)

    def call(*args):
        with torch.fx.experimental._config.patch(use_duck_shape=False):
            return compiled(*args)

    return call


def decode_forward(
    weights: DecodeWeights,
    store: kv.KVStore,
    steps: Steps,
    input_ids: torch.Tensor,  # (b, 1)
    position_ids: torch.Tensor,  # (b, 1)
    mask: torch.Tensor,  # (b, 1, 1, W) additive
) -> torch.Tensor:
    """One decode step of ``b`` rows: K/V to slot ``store.slot``, -> (b, V) logits."""
    b = input_ids.shape[0]
    hidden = weights.embed(input_ids[:, 0])  # (b, H), not a view: layer 0's input as the rest
    cos, sin = weights.rotary(hidden, position_ids)  # (b, 1, D)
    cos, sin = cos[:, 0], sin[:, 0]
    delta = None
    # chosen here, once a step, not by a shape guard in every compiled layer
    impl = kv.resolve_decode_impl(store.decode_impl, b, weights.kv_heads)
    for i, w in enumerate(weights.layers):
        hidden, q, new_kv = steps.pre(
            hidden, delta, w.ln1, w.qkv, w.qkv_bias, cos, sin,
            weights.eps, weights.heads, weights.kv_heads,
        )  # fmt: skip
        store.kv[i][:b].index_copy_(3, store.slot, new_kv)
        hidden, delta = steps.post(
            hidden, q, store.kv[i], mask,
            w.o, w.ln2, w.gate, w.up, w.down, weights.eps, weights.scaling, impl,
        )  # fmt: skip
    return F.linear(steps.final(hidden, delta, weights.norm, weights.eps), weights.head)
