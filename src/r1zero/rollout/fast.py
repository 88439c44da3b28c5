"""Fast rollout: own KV cache, batched prefill, CUDA-graphed decode that compacts as rows end.

``generate`` = ``prefill`` (the left-padded prompts into the engine's :class:`KVStore`) + decode
rounds of ``stop_check_interval`` one-token steps, each round one CUDA graph replay, until every
row has hit EOS or its length limit. Between rounds the host reads how many rows are still
live (its only sync); once they fit a batch of half the size (powers of two: 128, 64, ..., 1),
the live rows move to the front of every buffer and the following rounds replay graphs of the
smaller batch. A batch where one completion runs to 4,096 tokens and the others end near 450
thus pays 4,096 steps of the weights but not 4,096 steps of 128 rows. Attention reads the
first W cache slots, W the current length rounded up to ``cache_len_multiple``; a graph is
captured per (batch size, W) when first needed and kept for later calls.

Like gpt-fast's ``generate.py``, but through the HF model's own forward, so it samples from
the training model's weights (no copy, no reload), PEFT-wrapped or not. Departures from HF
``generate``: attention runs through :func:`r1zero.rollout.kv.store_attention` (switched on
for the duration of a call), and sampling is the exponential race ``argmax(p / E)``.

Memory: before a call the engine estimates what a row needs (:func:`kv.bytes_per_row`) and,
when the batch would not fit the free memory (or ``memory_budget``), runs it in sub-batches.
Limits: full-attention decoder-only models (no sliding-window layers, no logit soft-capping)
whose forward passes a per-layer-type mask mapping through (Qwen2, Qwen3; not Llama or Mistral
in transformers 5.17: a one-line error says to use ``rollout_engine: hf``);
the buffers never shrink (a long call keeps its memory for later calls).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from r1zero.compile import compiled_blocks
from r1zero.rollout import kv, llama
from r1zero.rollout.base import RolloutBatch, SamplingParams, completion_mask_from_ids
from r1zero.rollout.decode import (
    DecodeState,
    capture_cuda_graph,
    decode_n_tokens,
    decode_one_token,
    sample,
    top_p_filter,
)
from r1zero.rollout.kv import ATTENTION_NAME, KVStore, attention_implementation

__all__ = [
    "ATTENTION_NAME",
    "FastEngine",
    "attention_implementation",
    "round_up",
    "sample",
    "top_p_filter",
]


# ----------------------------------------------------------------------------- model steps
def forward_last(model, input_ids, position_ids, mask) -> torch.Tensor:
    """One forward (K/V go to the active store); logits of the last position only, (b, V)."""
    out = model(
        input_ids=input_ids,
        attention_mask={"full_attention": mask},  # a mapping: HF passes it through unchanged
        position_ids=position_ids,
        use_cache=False,
        logits_to_keep=1,
    )
    return out.logits[:, -1]


def prefill(model, store: KVStore, prompt_ids, prompt_mask, forward=forward_last) -> torch.Tensor:
    """Run the left-padded prompts (b, P) into cache slots [0, P); -> (b, V) next-token logits."""
    P = prompt_ids.shape[1]
    position_ids = (prompt_mask.long().cumsum(-1) - 1).clamp(min=0)  # (b, P) as HF generate
    eye = torch.eye(P, dtype=torch.bool, device=prompt_ids.device)  # (P, P)
    # Pad queries attend to themselves only: no all-masked softmax row, so no NaN in their K/V.
    mask = (eye.cumsum(0).bool() & prompt_mask.bool()[:, None, :]) | eye  # (b, P, P) causal
    store.prefill = True
    try:
        return forward(model, prompt_ids, position_ids, mask[:, None])
    finally:
        store.prefill = False


def round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def bucket(live: int, rows: int) -> int:
    """The batch size that ``live`` rows decode in: the next power of two, at most ``rows``,
    at least 2 (a batch of 1 costs what 2 do, and torch.compile would specialise on it)."""
    return min(rows, max(2, 1 << max(live - 1, 0).bit_length()))


def memory_cap(device: torch.device) -> int:
    """Bytes this process may allocate on ``device`` (``set_per_process_memory_fraction``)."""
    total = torch.cuda.get_device_properties(device).total_memory
    fraction = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    return int(total * (fraction(device) if fraction else 1.0))


class GraphKey(NamedTuple):
    """What the captured decode graphs depend on: a change of any one drops them (a graph
    replays fixed addresses: another model, new weight storage, another KV store or
    another sampler would replay stale ones)."""

    model_id: int  # id(model)
    weights_ptrs: int  # hash of every parameter's data_ptr(): one moves when it is reassigned
    store_id: int  # id(KVStore): the cache whose slots the graphs read and write
    sampler: SamplingParams  # with max_new_tokens 0: graphs serve any length
    use_graph: bool  # CUDA graphs captured (else the compiled step runs eagerly)


# ----------------------------------------------------------------------------- engine
class FastEngine:
    """Rollout engine with its own KV cache; buffers and decode graphs persist across calls.

    Args:
        compile: ``torch.compile`` the layers' norms and MLPs in the decode step (fuses their
            pointwise ops; see :mod:`r1zero.compile`); default: on CUDA.
        cuda_graph: record ``stop_check_interval`` decode steps in one CUDA graph; default: on CUDA.
        stop_check_interval: decode steps between the host's looks at the live rows.
        cache_len_multiple: attention windows and the cache length are multiples of this.
        compact: move the live rows into a smaller batch as rows end (off: every round runs
            all rows, as before; for measuring the difference).
        memory_budget: bytes a call may use for its cache and buffers; default on CUDA: what
            is free (plus what this engine already holds) less 10% and 2 GiB, and at most
            ``kv_fraction`` of the memory the process may use; on CPU unbounded.
        kv_fraction: the share of the device (or of ``set_per_process_memory_fraction``'s
            cap) that the buffers may take. They stay allocated between calls (the graphs
            point into them), so the update that follows a rollout runs beside them: 0.4 of a
            24 GB card leaves the update the rest; on an H200 no workload here splits.
        decode_attention: ``sdpa`` (one fused kernel, one block per row and KV head),
            ``matmul`` (two cuBLAS products and an fp32 softmax: cuBLAS tiles the slots) or
            ``auto`` (matmul below 128 rows x KV heads, sdpa above); each reads every cached
            key once, without copies. ``auto`` by default: at 2 rows and 4,224 slots SDPA's
            4 blocks took 3.06 ms a step over 36 layers, the products 0.86 ms; at 128 rows
            and 640 slots SDPA 1.38 ms, the products 1.99 ms (H200, decode_profile.py).
        own_forward: decode through :mod:`r1zero.rollout.llama` (fused layers; Qwen2 models
            with plain linear layers) instead of the HF model's forward; default:
            wherever :func:`llama.supported` says so. Prefill always runs HF's forward.
    """

    def __init__(
        self,
        *,
        compile: bool | None = None,
        cuda_graph: bool | None = None,
        stop_check_interval: int = 16,
        cache_len_multiple: int = 128,
        compact: bool = True,
        memory_budget: int | None = None,
        kv_fraction: float = 0.4,
        decode_attention: str = "auto",
        own_forward: bool | None = None,
    ) -> None:
        self.compile, self.cuda_graph = compile, cuda_graph
        self.stop_check_interval = stop_check_interval
        self.cache_len_multiple = cache_len_multiple
        self.compact, self.memory_budget = compact, memory_budget
        self.kv_fraction = kv_fraction
        if decode_attention not in kv.DECODE_ATTENTION:
            names = ", ".join(kv.DECODE_ATTENTION)
            raise ValueError(f"decode_attention {decode_attention!r}: choose one of {names}")
        self.decode_attention = decode_attention
        self.own_forward = own_forward
        self._weights: llama.DecodeWeights | None = None
        self._steps: llama.Steps | None = None
        self._compiled: dict = {}
        self._store = self._state = self._generator = self._buffer_key = None
        self._graphs: dict = {}
        self._graph_key: GraphKey | None = None
        self._pool = None
        self.last_split: list[int] = []  # rows per sub-batch of the last call
        self.last_batch_sizes: list[int] = []  # rows decoded per round of the last call

    @torch.no_grad()
    def generate(
        self,
        model: torch.nn.Module,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        params: SamplingParams,
        generator: torch.Generator | None = None,
        *,
        max_new_tokens_per_row: torch.Tensor | None = None,
    ) -> RolloutBatch:
        """``generator`` (any device) seeds the engine's own generator on the model's device.

        ``max_new_tokens_per_row`` (B,) caps each row (at most ``params.max_new_tokens``): the
        bench's per-completion forced lengths; a row that reaches its cap counts as truncated.
        """
        B = prompt_ids.shape[0]
        limit = torch.full((B,), params.max_new_tokens, dtype=torch.long)
        if max_new_tokens_per_row is not None:
            limit = max_new_tokens_per_row.to(torch.long).cpu().clamp(1, params.max_new_tokens)
        was_training = model.training
        model.eval()
        try:
            with attention_implementation(model.config, ATTENTION_NAME):
                ids = self._rollout_split(model, prompt_ids, prompt_mask, params, generator, limit)
        finally:
            model.train(was_training)
        return self._batch(prompt_ids, prompt_mask, ids, params, limit.to(ids.device))

    @staticmethod
    def _batch(prompt_ids, prompt_mask, ids, params, limit) -> RolloutBatch:
        """Mask up to the first EOS and within each row's limit; trim as HF generate does."""
        mask, truncated = completion_mask_from_ids(ids, params.eos_token_ids, params.ignore_eos)
        truncated = truncated | (mask.sum(-1) > limit)  # its first EOS lies past its limit
        mask = mask * (torch.arange(ids.shape[1], device=ids.device) < limit[:, None])
        width = int(mask.sum(-1).max()) if ids.numel() else 0  # HF stops once every row is done
        ids = ids.masked_fill(mask == 0, params.pad_token_id)[:, :width]
        return RolloutBatch(prompt_ids, prompt_mask, ids, mask[:, :width], truncated)

    def _rollout_split(self, model, prompt_ids, prompt_mask, params, generator, limit):
        """Sub-batches of the rows that fit the memory budget; -> (B, C) completion ids."""
        B, P = prompt_ids.shape
        config = model.config.get_text_config(decoder=True)
        dtype = model.get_input_embeddings().weight.dtype
        L = self._cache_len(P, params.max_new_tokens)
        per_row = kv.bytes_per_row(config, dtype, P, L)
        rows = kv.rows_that_fit(per_row, self._budget(prompt_ids.device), B)
        self.last_split = [min(rows, B - i) for i in range(0, B, rows)]
        self.last_batch_sizes = []
        self._seed(prompt_ids.device, generator)
        parts = [
            self._rollout(
                model, prompt_ids[i : i + n], prompt_mask[i : i + n], params, limit[i : i + n]
            )
            for i, n in zip(range(0, B, rows), self.last_split, strict=True)
        ]
        width = max(p.shape[1] for p in parts)
        return torch.cat(
            [F.pad(p, (0, width - p.shape[1]), value=params.pad_token_id) for p in parts]
        )

    def _cache_len(self, P: int, max_new: int) -> int:
        return round_up(P + max_new + self.stop_check_interval, self.cache_len_multiple)

    def _budget(self, device: torch.device) -> int | None:
        """Bytes this call may hold: ``memory_budget``, else (CUDA) free memory and our own."""
        if self.memory_budget is not None:
            return self.memory_budget
        if device.type != "cuda":
            return None
        free, _ = torch.cuda.mem_get_info(device)
        cap = memory_cap(device)
        free = min(free, cap - torch.cuda.memory_reserved(device))  # within the process's cap
        held = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        budget = int(0.9 * (free + held + self._held_bytes())) - 2 * kv.GIB
        return min(budget, int(self.kv_fraction * cap))

    def _held_bytes(self) -> int:
        if self._store is None:
            return 0
        return self._store.nbytes

    def release(self) -> None:
        """Free the buffers and graphs now (the next call allocates and captures again)."""
        self._store = self._state = self._buffer_key = self._weights = None
        self._graphs, self._graph_key = {}, None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _seed(self, device: torch.device, generator: torch.Generator | None) -> None:
        """The engine's generator (graphs bind it), seeded from the caller's (or torch's)."""
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device)
            self._graphs, self._graph_key = {}, None
        src = generator.device if generator is not None else "cpu"
        self._generator.manual_seed(
            int(torch.randint(2**62, (1,), generator=generator, device=src))
        )

    def _rollout(self, model, prompt_ids, prompt_mask, params, limit) -> torch.Tensor:
        """One sub-batch -> (b, C) completion ids, C <= max_new_tokens."""
        B, P = prompt_ids.shape
        n, device = self.stop_check_interval, prompt_ids.device
        store, state = self._buffers(model, B, self._cache_len(P, params.max_new_tokens), device)
        graphs = self._graphs_for(model, store, params)
        if self._weights is not None:
            self._weights.refresh()  # the fused q/k/v buffers follow the trained weights
        with kv.using_store(store):
            logits = prefill(model, store, prompt_ids, prompt_mask)
            first = sample(logits, params, self._generator)
            state.load(prompt_mask, first, self._eos(params, device), limit.to(device))
            rows = torch.arange(B, device=device)  # slot -> row of the sub-batch (-1: filler)
            result = torch.full((B, params.max_new_tokens), params.pad_token_id, device=device)
            b, generated = B, 1
            while generated < params.max_new_tokens:
                window = round_up(P + generated + n - 1, self.cache_len_multiple)
                self._decoder(graphs, model, store, state, params, b, window)()
                self.last_batch_sizes.append(b)
                generated += n
                live = int((~state.done[:b]).sum())  # the host sync, every n tokens
                if live == 0:
                    break
                if self.compact and bucket(live, B) < b:
                    b = self._compact(store, state, rows, result, b, live, B)
            self._save(state, rows, result, b, min(generated, params.max_new_tokens))
        return result[:, : min(generated, params.max_new_tokens)]

    @staticmethod
    def _save(state: DecodeState, rows, result, b: int, width: int) -> None:
        """Copy the tokens of the real rows among the first ``b`` slots to their rows."""
        real = rows[:b] >= 0
        result[rows[:b][real], :width] = state.out[:b, :width][real]

    def _compact(self, store, state, rows, result, b: int, live: int, B: int) -> int:
        """Move the live rows to slots [0, live); -> the new batch size (fillers done)."""
        self._save(state, rows, result, b, result.shape[1])
        keep = (~state.done[:b]).nonzero().squeeze(1)  # (live,) slots
        store.gather(keep)
        state.gather(keep)
        rows[:live] = rows[keep]
        new_b = bucket(live, B)
        rows[live:new_b] = -1
        state.done[live:new_b] = True
        return new_b

    @staticmethod
    def _eos(params: SamplingParams, device) -> torch.Tensor | None:
        if params.eos_token_ids and not params.ignore_eos:
            return torch.tensor(params.eos_token_ids, device=device)
        return None

    def _buffers(self, model, B: int, L: int, device: torch.device):
        """The KV store and decode state; reallocated only for more rows or a longer cache."""
        config = model.config.get_text_config(decoder=True)
        if "sliding_attention" in (getattr(config, "layer_types", None) or []):
            raise NotImplementedError("FastEngine supports full-attention models only")
        dtype = model.get_input_embeddings().weight.dtype
        key = (id(config), dtype, device)
        store = self._store
        if key == self._buffer_key and store.rows >= B and store.length >= L:
            return store, self._state
        self._store = self._state = None  # free first
        self._graphs, self._graph_key = {}, None
        self._store = KVStore.allocate(config, B, L, dtype, device)
        self._store.decode_impl = self.decode_attention
        self._state, self._buffer_key = DecodeState.allocate(B, L, device), key
        return self._store, self._state

    def _graphs_for(self, model, store, params) -> dict:
        """The captured graphs, dropped when the model, its weights or the sampler change."""
        use_graph = store.slot.is_cuda if self.cuda_graph is None else self.cuda_graph
        sampler = dataclasses.replace(params, max_new_tokens=0)  # graphs serve any length
        ptrs = hash(tuple(p.data_ptr() for p in model.parameters()))  # ~0.1 ms for 434
        key = GraphKey(id(model), ptrs, id(store), sampler, use_graph)
        if key != self._graph_key:
            self._graphs, self._graph_key = {}, key
            self._pool = torch.cuda.graph_pool_handle() if use_graph else None
            own = llama.supported(model) if self.own_forward is None else self.own_forward
            self._weights = llama.DecodeWeights(model) if own else None
        return self._graphs

    def _decoder(self, graphs, model, store, state, params, b: int, window: int):
        """A callable that decodes ``stop_check_interval`` tokens of ``b`` rows (cached)."""
        if (b, window) in graphs:
            return graphs[(b, window)]
        view = state.view(b)
        if self._weights is not None:
            forward = functools.partial(
                llama.decode_forward, self._weights, store, self._own_steps(view.out.is_cuda)
            )
        else:
            forward = functools.partial(self._forward_fn(view.out.is_cuda), model)
        step = functools.partial(
            decode_one_token,
            forward,
            view,
            store.slot,
            params=params,
            eos=self._eos(params, view.out.device),
            generator=self._generator,
            window=window,
            bias_dtype=store.keys[0].dtype,
        )
        fn = functools.partial(decode_n_tokens, step, self.stop_check_interval)
        if self._pool is None:
            return fn
        graphs[(b, window)] = capture_cuda_graph(fn, self._generator, self._pool, state, b)
        return graphs[(b, window)]

    def _own_steps(self, on_cuda: bool) -> llama.Steps:
        """The own forward's layer functions, compiled once per engine (on CUDA by default)."""
        if self._steps is None:
            compiled = on_cuda if self.compile is None else self.compile
            self._steps = llama.Steps.compiled() if compiled else llama.Steps()
        return self._steps

    def _forward_fn(self, on_cuda: bool) -> Callable[..., torch.Tensor]:
        """The decode step's model call, its layers compiled once per engine (shared by every
        batch size, window and sampler)."""
        if not (on_cuda if self.compile is None else self.compile):
            return forward_last

        def forward(model, *args) -> torch.Tensor:
            with compiled_blocks(model, self._compiled):
                return forward_last(model, *args)

        return forward
