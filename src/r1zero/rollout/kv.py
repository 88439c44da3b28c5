"""The fast engine's own KV cache and the attention function that reads and writes it.

The model runs with ``past_key_values=None``: HF's attention modules hand the new tokens'
rotated keys and values to :func:`store_attention`, which writes them into a
:class:`KVStore` (one ``(B, Hkv, L, D)`` buffer per layer, ``module.layer_idx``) and attends
over the cache. Owning the cache (rather than HF's ``StaticCache``) is what lets the engine
compact its batch: a decode graph of ``b`` rows reads the first ``b`` rows of every buffer
(a contiguous view, a fixed address), and moving the live rows to the front is one
``index_select`` per buffer.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import AttentionInterface

ATTENTION_NAME = "r1zero_static_cache"
GIB = 2**30


@dataclass
class KVStore:
    """Per-layer key and value buffers, and the slot that a decode step writes."""

    kv: list[torch.Tensor]  # per layer (B, Hkv, 2, L, D): keys [:, :, 0], values [:, :, 1]
    slot: torch.Tensor  # (1,) long: cache slot of the token being decoded
    prefill: bool = False  # True while the prompts run in (they fill slots [0, P))
    decode_impl: str = "sdpa"  # a key of DECODE_ATTENTION
    keys: list[torch.Tensor] = field(init=False)  # per layer (B, Hkv, L, D) views of ``kv``
    values: list[torch.Tensor] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = [t[:, :, 0] for t in self.kv]
        self.values = [t[:, :, 1] for t in self.kv]

    @classmethod
    def allocate(cls, config, B: int, L: int, dtype, device) -> KVStore:
        Hkv, D = config.num_key_value_heads, head_dim(config)
        n = config.num_hidden_layers
        # K and V of a KV head side by side: one cache write per layer and step, and the
        # (b, Hkv) batch dims of a (b, Hkv, W, D) view still fold into one (matmul: no copy).
        both = [torch.zeros(B, Hkv, 2, L, D, dtype=dtype, device=device) for _ in range(n)]
        return cls(both, torch.zeros(1, dtype=torch.long, device=device))

    @property
    def rows(self) -> int:
        return self.keys[0].shape[0]

    @property
    def length(self) -> int:
        return self.keys[0].shape[2]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.kv)

    def gather(self, index: torch.Tensor) -> None:
        """Rows ``index`` (k,) of every buffer move to rows [0, k) (the batch compacts)."""
        k = index.shape[0]
        for t in self.kv:
            t[:k].copy_(t.index_select(0, index))


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Bytes of K and V of one token over all layers (36 KiB for Qwen2.5-3B in bf16)."""
    item = torch.empty((), dtype=dtype).element_size()
    return 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim(config) * item


def bytes_per_row(config, dtype: torch.dtype, prompt_len: int, cache_len: int) -> int:
    """An upper estimate of what one row of a rollout holds on the device: its KV cache, its
    decode buffers, and its share of the prefill's and the sampler's temporaries."""
    item = torch.empty((), dtype=dtype).element_size()
    kv = kv_bytes_per_token(config, dtype) * cache_len
    decode = cache_len * 9 + 8 * config.vocab_size * 4  # out + mask; fp32 logits, sort, race
    H, inter = config.hidden_size, config.intermediate_size
    prefill = prompt_len * (8 * H + 3 * inter) * item  # the widest layer activations
    prefill += config.num_attention_heads * prompt_len * prompt_len * 4  # fp32 scores
    return kv + decode + prefill


def rows_that_fit(per_row: int, budget: int | None, rows: int) -> int:
    """How many rows to run at once within ``budget`` bytes (``rows`` when unbounded)."""
    if budget is None:
        return rows
    fit = int(budget // per_row)
    if fit < 1:
        raise MemoryError(
            f"one rollout row needs about {per_row / GIB:.2f} GiB (KV cache and buffers) but "
            f"only {max(budget, 0) / GIB:.2f} GiB are free: lower max_completion_length or "
            "free GPU memory"
        )
    return min(rows, fit)


# ----------------------------------------------------------------------------- attention
_ACTIVE: list[KVStore] = []


@contextmanager
def using_store(store: KVStore):
    """Route :func:`store_attention` to ``store`` for the duration of the block."""
    _ACTIVE.append(store)
    try:
        yield
    finally:
        _ACTIVE.pop()


def store_attention(
    module: torch.nn.Module,
    query: torch.Tensor,  # (b, H, T, D)
    key: torch.Tensor,  # (b, Hkv, T, D) the new tokens' keys
    value: torch.Tensor,  # (b, Hkv, T, D)
    attention_mask: torch.Tensor,  # (b, 1, T, W): prefill bool (True = attend), decode additive
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Write the new K/V into the active store, attend; returns (b, T, H, D) like HF's.

    Prefill (T = P prompt tokens) writes slots [0, P) and attends over the prompt itself;
    decode (T = 1) writes ``store.slot`` and attends over the first W slots, the mask's
    length: the engine rounds W up from the current length, so a step reads what the rows
    hold, not the whole preallocated cache.
    """
    if attention_mask is None:
        raise NotImplementedError(
            f"the fast rollout engine needs a model whose forward passes a mask mapping through "
            f"(Qwen2, Qwen3); {type(module).__name__} dropped it: set rollout_engine: hf"
        )
    store = _ACTIVE[-1]
    b, T = query.shape[0], query.shape[2]
    k_cache, v_cache = store.keys[module.layer_idx][:b], store.values[module.layer_idx][:b]
    if store.prefill:
        k_cache[:, :, :T].copy_(key)
        v_cache[:, :, :T].copy_(value)
        return prefill_attention(query, key, value, attention_mask, scaling), None
    k_cache.index_copy_(2, store.slot, key)
    v_cache.index_copy_(2, store.slot, value)
    W = attention_mask.shape[-1]
    attend = DECODE_ATTENTION[store.decode_impl]
    return attend(query, k_cache[:, :, :W], v_cache[:, :, :W], attention_mask, scaling)


def prefill_attention(query, key, value, mask, scaling) -> torch.Tensor:
    """Causal SDPA over the prompts (compute-bound: repeating the KV heads costs little)."""
    H, Hkv = query.shape[1], key.shape[1]
    key = key.repeat_interleave(H // Hkv, dim=1)  # (b, H, P, D)
    value = value.repeat_interleave(H // Hkv, dim=1)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
    return out.transpose(1, 2).contiguous()


def decode_attention(query, key, value, mask, scaling) -> tuple[torch.Tensor, None]:
    """One query per row over W cached slots, each cached key read once.

    The G = H / Hkv query heads of a KV group share the group's keys and the row's mask, so
    (b, H, 1, D) is viewed as (b, Hkv, G, D): G "query positions" per KV head, where
    repeat_kv would copy the cache G times.
    """
    b, H, _, D = query.shape
    Hkv = key.shape[1]
    q = query.view(b, Hkv, H // Hkv, D)  # (b, Hkv, G, D)
    out = F.scaled_dot_product_attention(q, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(b, 1, H, D), None


def decode_attention_matmul(query, key, value, mask, scaling) -> tuple[torch.Tensor, None]:
    """The same as :func:`decode_attention` in two batched matrix products (cuBLAS tiles
    the W cached slots, so a small batch at long context still spreads over the GPU), the
    softmax in fp32 as HF's eager attention."""
    b, H, _, D = query.shape
    Hkv = key.shape[1]
    q = query.view(b, Hkv, H // Hkv, D) * (scaling if scaling is not None else D**-0.5)
    scores = torch.matmul(q, key.transpose(-1, -2)).float()  # (b, Hkv, G, W)
    probs = (scores + mask).softmax(-1).to(value.dtype)  # mask: additive, (b, 1, 1, W)
    return torch.matmul(probs, value).reshape(b, 1, H, D), None


def resolve_decode_impl(impl: str, rows: int, kv_heads: int) -> str:
    """``auto`` -> ``matmul`` while rows x KV heads are too few to fill the GPU's 132
    multiprocessors with SDPA's one block each (the tail of a long-tailed rollout: cuBLAS
    tiles, and may split, the W slots), ``sdpa`` above that; other names unchanged."""
    if impl != "auto":
        return impl
    return "matmul" if rows * kv_heads < 128 else "sdpa"


def decode_attention_auto(query, key, value, mask, scaling):
    """:func:`resolve_decode_impl`'s choice for this batch."""
    impl = resolve_decode_impl("auto", query.shape[0], key.shape[1])
    return DECODE_ATTENTION[impl](query, key, value, mask, scaling)


DECODE_ATTENTION = {
    "sdpa": decode_attention,
    "matmul": decode_attention_matmul,
    "auto": decode_attention_auto,
}
AttentionInterface.register(ATTENTION_NAME, store_attention)


@contextmanager
def attention_implementation(config, name: str):
    """Route the model's attention through ``name`` for the duration of the block."""
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous
