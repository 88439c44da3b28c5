"""Fast rollout: static KV cache, batched prefill, CUDA-graphed decode, sampling on the GPU.

``generate`` = ``prefill`` (the left-padded prompts into a preallocated transformers
``StaticCache``) + ``decode_n_tokens`` (``stop_check_interval`` one-token steps, recorded once in
a CUDA graph per attention window, then replayed) until every row has hit EOS or
``max_new_tokens``. The host waits on the device only for the "all rows done?" check per replay.
Like gpt-fast's ``generate.py``, but through the HF model's own forward, so it samples from the
training model's weights (no copy, no reload), PEFT-wrapped or not. Departures from HF
``generate``: attention runs through :func:`static_cache_attention` (switched on for the
duration of a call), and sampling is the exponential race ``argmax(p / E)``, ``E ~ Exp(1)``.

Limits: full-attention decoder-only models (no sliding-window layers, no logit soft-capping);
the cache never shrinks (a long call keeps its memory for later calls).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, StaticCache

from r1zero.compile import compiled_blocks
from r1zero.rollout.base import RolloutBatch, SamplingParams, completion_mask_from_ids

ATTENTION_NAME = "r1zero_static_cache"


# ----------------------------------------------------------------------------- attention
def static_cache_attention(
    module: torch.nn.Module,
    query: torch.Tensor,  # (B, H, T, D)
    key: torch.Tensor,  # (B, Hkv, L, D) the whole static cache
    value: torch.Tensor,  # (B, Hkv, L, D)
    attention_mask: torch.Tensor,  # (B, 1, T, W) bool, True = attend; W <= L
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """SDPA over the first W cache slots; returns (B, T, H, D) like HF's attention functions.

    The mask's length W is the attention window: slots from W on are not written yet, so they
    are neither read nor masked, and attention costs what the sequences hold, not the cache size.
    In decode (T == 1) the G = H / Hkv query heads of a KV group share the group's keys and the
    row's mask, so (B, H, 1, D) is viewed as (B, Hkv, G, D): G "query positions" per KV head.
    SDPA then reads each cached key once, where repeat_kv would copy the cache G times.
    """
    B, H, T, D = query.shape
    Hkv, W = key.shape[1], attention_mask.shape[-1]
    key, value = key[:, :, :W], value[:, :, :W]  # (B, Hkv, W, D) views
    if T == 1:
        q = query.view(B, Hkv, H // Hkv, D)  # (B, Hkv, G, D)
        out = F.scaled_dot_product_attention(q, key, value, attn_mask=attention_mask, scale=scaling)
        return out.reshape(B, 1, H, D), None
    key = key.repeat_interleave(H // Hkv, dim=1)  # (B, H, W, D): prefill is compute-bound anyway
    value = value.repeat_interleave(H // Hkv, dim=1)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION_NAME, static_cache_attention)


@contextmanager
def attention_implementation(config, name: str):
    """Route the model's attention through ``name`` for the duration of the block."""
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


# ----------------------------------------------------------------------------- sampling
def sample(logits: torch.Tensor, params: SamplingParams, generator) -> torch.Tensor:
    """(B, V) logits -> (B,) token ids; temperature, then top-k, then top-p (HF's order)."""
    if not params.do_sample:
        return logits.argmax(-1)
    logits = logits.float() / max(params.temperature, 1e-5)  # (B, V)
    if params.top_k > 0:
        kth = torch.topk(logits, min(params.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        logits = top_p_filter(logits, params.top_p)
    probs = logits.softmax(-1)  # (B, V)
    race = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return (probs / race).argmax(-1)  # argmax_i p_i / E_i is distributed as Categorical(p)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability mass reaches ``top_p``."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)  # (B, V)
    probs = sorted_logits.softmax(-1)
    mass_before = probs.cumsum(-1) - probs  # mass of the strictly more likely tokens
    drop_sorted = mass_before >= top_p  # never drops the top token
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocab order
    return logits.masked_fill(drop, float("-inf"))


# ----------------------------------------------------------------------------- model steps
def forward_last(model, cache, input_ids, position_ids, mask) -> torch.Tensor:
    """One forward through the cache; logits of the last position only, (B, V)."""
    out = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return out.logits[:, -1]


def prefill(model, cache, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
    """Run the left-padded prompts (B, P) into cache slots [0, P); returns (B, V) next-token logits."""
    P = prompt_ids.shape[1]
    position_ids = (prompt_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, P) as HF generate
    eye = torch.eye(P, dtype=torch.bool, device=prompt_ids.device)  # (P, P)
    # Pad queries attend to themselves only: no all-masked softmax row, so no NaN in their K/V.
    mask = (eye.cumsum(0).bool() & prompt_mask.bool()[:, None, :]) | eye  # (B, P, P) causal
    return forward_last(model, cache, prompt_ids, position_ids, mask[:, None])


@dataclass
class DecodeState:
    """Device buffers one decode step reads and updates in place (fixed addresses for the graph)."""

    token: torch.Tensor  # (B, 1) last sampled token, the next step's input
    step: torch.Tensor  # (1,) number of tokens generated so far
    start: torch.Tensor  # (1,) cache slot of the first generated token (= padded prompt length P)
    prompt_lens: torch.Tensor  # (B, 1) real prompt tokens per row
    key_mask: torch.Tensor  # (B, L) True on real prompt slots and on every generation slot
    slots: torch.Tensor  # (L,) 0..L-1
    done: torch.Tensor  # (B,) row has emitted EOS
    out: torch.Tensor  # (B, L) generated tokens

    @classmethod
    def allocate(cls, B: int, L: int, device: torch.device) -> DecodeState:
        long = functools.partial(torch.zeros, dtype=torch.long, device=device)
        return cls(
            token=long(B, 1),
            step=long(1),
            start=long(1),
            prompt_lens=long(B, 1),
            key_mask=torch.ones(B, L, dtype=torch.bool, device=device),
            slots=torch.arange(L, device=device),
            done=torch.zeros(B, dtype=torch.bool, device=device),
            out=long(B, L),
        )

    def rewind(self) -> None:
        """Back to slot 0 with nothing masked: warm-up steps then stay in bounds and NaN-free."""
        self.step.fill_(1)
        self.start.zero_()
        self.key_mask.fill_(True)
        self.done.zero_()

    def load(self, prompt_mask: torch.Tensor, first: torch.Tensor, eos: torch.Tensor | None):
        """Start from a prefill: (B, P) prompt mask and the (B,) first sampled tokens."""
        P = prompt_mask.shape[1]
        self.rewind()
        self.start.fill_(P)
        self.key_mask[:, :P].copy_(prompt_mask.bool())
        self.prompt_lens.copy_(prompt_mask.sum(-1, keepdim=True))
        self.token.copy_(first[:, None])
        self.done.copy_(is_eos(first, eos))
        self.out[:, 0].copy_(first)


def is_eos(token: torch.Tensor, eos: torch.Tensor | None) -> torch.Tensor:
    """(B,) tokens, (E,) EOS ids -> (B,) bool."""
    if eos is None:
        return torch.zeros_like(token, dtype=torch.bool)
    return (token[:, None] == eos).any(-1)


def decode_one_token(
    forward: Callable[..., torch.Tensor],
    s: DecodeState,
    *,
    params: SamplingParams,
    eos: torch.Tensor | None,
    generator: torch.Generator,
    window: int,
) -> None:
    """Feed ``s.token``, sample the next one into ``s.out[:, s.step]``; no host sync.

    ``forward(input_ids, position_ids, mask) -> (B, V) logits`` is the (compiled) model step;
    attention reads the first ``window`` cache slots, which must hold the current slot.
    """
    slot = s.start + s.step - 1  # (1,) cache slot that s.token's K/V go to
    position_ids = s.prompt_lens + s.step - 1  # (B, 1)
    mask = (s.key_mask[:, :window] & (s.slots[:window] <= slot))[:, None, None, :]  # (B, 1, 1, W)
    logits = forward(s.token, position_ids, mask)  # (B, V)
    token = sample(logits, params, generator).masked_fill(s.done, params.pad_token_id)  # (B,)
    s.done |= is_eos(token, eos)
    s.out.index_copy_(1, s.step, token[:, None])
    s.token.copy_(token[:, None])
    s.step.add_(1)


def decode_n_tokens(step: Callable[[], None], n: int) -> None:
    for _ in range(n):
        step()


def capture_cuda_graph(fn, generator: torch.Generator, pool, rewind) -> Callable[[], None]:
    """Warm ``fn`` up on a side stream (compilation, cuBLAS handles), record it once; -> replay.

    ``rewind()`` puts the buffers that the warm-up dirties back in bounds. Graphs may share
    ``pool``: each one's temporaries die within its replay, and replays never overlap.
    """
    rewind()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)  # replays draw fresh numbers from our generator
    with torch.cuda.graph(graph, pool=pool):
        fn()
    return graph.replay


# ----------------------------------------------------------------------------- engine
def round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


class FastEngine:
    """Static-cache rollout engine; buffers and the decode graph persist across calls.

    Args:
        compile: ``torch.compile`` the layers' norms and MLPs in the decode step (fuses their
            pointwise ops; see :mod:`r1zero.compile`); default: on CUDA.
        cuda_graph: record ``stop_check_interval`` decode steps in one CUDA graph; default: on CUDA.
        stop_check_interval: decode steps between the "all rows done?" checks (host syncs).
        cache_len_multiple: round the cache length up to this, so that calls with slightly
            different prompt lengths reuse the cache, the compiled step and the graph.
    """

    def __init__(
        self,
        *,
        compile: bool | None = None,
        cuda_graph: bool | None = None,
        stop_check_interval: int = 16,
        cache_len_multiple: int = 128,
    ) -> None:
        self.compile, self.cuda_graph = compile, cuda_graph
        self.stop_check_interval = stop_check_interval
        self.cache_len_multiple = cache_len_multiple
        self._compiled: dict = {}
        self._cache = self._state = self._generator = self._cache_key = None
        self._decoder_key = self._decoders = self._decoder_eos = None

    @torch.no_grad()
    def generate(
        self,
        model: torch.nn.Module,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        params: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> RolloutBatch:
        """``generator`` (any device) seeds the engine's own generator on the model's device."""
        was_training = model.training
        model.eval()
        try:
            with attention_implementation(model.config, ATTENTION_NAME):
                completion_ids = self._rollout(model, prompt_ids, prompt_mask, params, generator)
        finally:
            model.train(was_training)
        ids = completion_ids
        mask, truncated = completion_mask_from_ids(ids, params.eos_token_ids, params.ignore_eos)
        width = int(mask.sum(-1).max()) if ids.numel() else 0  # HF stops once every row is done
        ids = ids.masked_fill(mask == 0, params.pad_token_id)[:, :width]
        return RolloutBatch(prompt_ids, prompt_mask, ids, mask[:, :width], truncated)

    def _rollout(self, model, prompt_ids, prompt_mask, params, generator) -> torch.Tensor:
        """-> (B, C) completion ids, C <= max_new_tokens (fewer if every row stopped early)."""
        B, P = prompt_ids.shape
        n = self.stop_check_interval
        cache, state = self._buffers(model, B, P + params.max_new_tokens + n, prompt_ids.device)
        if self._generator is None or self._generator.device != prompt_ids.device:
            self._generator = torch.Generator(prompt_ids.device)  # graphs bind it: rebuilt below
            self._decoder_key = None
        decoders = self._decoders_for(model, cache, state, params)  # may warm up: before reset
        # Seed from the caller's generator (or torch's default) after the warm-up, which draws too.
        src = generator.device if generator is not None else "cpu"
        self._generator.manual_seed(
            int(torch.randint(2**62, (1,), generator=generator, device=src))
        )
        cache.reset()
        logits = prefill(model, cache, prompt_ids, prompt_mask)  # (B, V)
        eos = self._decoder_eos
        state.load(prompt_mask, sample(logits, params, self._generator), eos)
        generated = 1
        while generated < params.max_new_tokens:
            window = round_up(P + generated + n - 1, self.cache_len_multiple)  # slots this round
            decoders[window]()  # n tokens: one graph replay on CUDA
            generated += n
            if eos is not None and bool(state.done.all()):  # the host sync, every n tokens
                break
        return state.out[:, : min(generated, params.max_new_tokens)].clone()

    def _buffers(self, model, B: int, needed: int, device: torch.device):
        """The static cache and decode state; reallocated only for a new batch size or a longer need."""
        config = model.config.get_text_config(decoder=True)
        dtype = model.get_input_embeddings().weight.dtype
        cache_key = (id(config), dtype, device, B)
        if cache_key == self._cache_key and self._state.out.shape[1] >= needed:
            return self._cache, self._state
        self._cache = self._state = self._decoders = self._decoder_key = None  # free first
        L = round_up(needed, self.cache_len_multiple)
        if "sliding_attention" in (getattr(config, "layer_types", None) or []):
            raise NotImplementedError("FastEngine supports full-attention models only")
        head_dim = (
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        cache = StaticCache(config=config, max_cache_len=L)
        cache.early_initialization(B, config.num_key_value_heads, head_dim, dtype, device)
        self._cache, self._state = cache, DecodeState.allocate(B, L, device)
        self._cache_key = cache_key
        return self._cache, self._state

    def _decoders_for(self, model, cache, state, params) -> dict[int, Callable[[], None]]:
        """Attention window -> a callable that decodes ``stop_check_interval`` tokens."""
        on_cuda = state.out.is_cuda
        use_graph = on_cuda if self.cuda_graph is None else self.cuda_graph
        weights = model.get_input_embeddings().weight
        sampler = dataclasses.replace(params, max_new_tokens=0)  # graphs serve any length
        key = (id(model), weights.data_ptr(), id(cache), sampler, use_graph)
        if key == self._decoder_key:
            return self._decoders
        self._decoders = None  # free the old graphs first
        eos = None
        if params.eos_token_ids and not params.ignore_eos:
            eos = torch.tensor(params.eos_token_ids, device=state.out.device)
        forward = functools.partial(self._forward_fn(on_cuda), model, cache)
        step = functools.partial(
            decode_one_token, forward, state, params=params, eos=eos, generator=self._generator
        )
        n, L = self.stop_check_interval, state.out.shape[1]
        decoders = {
            w: functools.partial(decode_n_tokens, functools.partial(step, window=w), n)
            for w in range(self.cache_len_multiple, L + 1, self.cache_len_multiple)
        }
        if use_graph:
            pool, gen = torch.cuda.graph_pool_handle(), self._generator

            def rewind():
                cache.reset()
                state.rewind()

            decoders = {w: capture_cuda_graph(f, gen, pool, rewind) for w, f in decoders.items()}
        self._decoder_key, self._decoders, self._decoder_eos = key, decoders, eos
        return decoders

    def _forward_fn(self, on_cuda: bool) -> Callable[..., torch.Tensor]:
        """The decode step's model call, its layers compiled once per engine (shared by every
        batch size, window and sampler)."""
        if not (on_cuda if self.compile is None else self.compile):
            return forward_last

        def forward(model, cache, *args) -> torch.Tensor:
            with compiled_blocks(model, self._compiled):
                return forward_last(model, cache, *args)

        return forward
