"""The fast engine's decode step: sampling, the device state it updates in place, CUDA graphs.

Every buffer is allocated for the engine's largest batch; a decode step of ``b`` rows works on
their first ``b`` rows (:meth:`DecodeState.view`), so graphs captured for several batch sizes
share the buffers, and compaction (:meth:`DecodeState.gather`) moves the live rows to the front.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from r1zero.rollout.base import SamplingParams


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


def is_eos(token: torch.Tensor, eos: torch.Tensor | None) -> torch.Tensor:
    """(B,) tokens, (E,) EOS ids -> (B,) bool."""
    if eos is None:
        return torch.zeros_like(token, dtype=torch.bool)
    return (token[:, None] == eos).any(-1)


# ----------------------------------------------------------------------------- state
ROW_FIELDS = ("token", "prompt_lens", "key_mask", "done", "out", "limit")
"""Per-row buffers: what compaction moves (``step``, ``start``, ``slots`` are shared)."""


@dataclass
class DecodeState:
    """Device buffers one decode step reads and updates in place (fixed addresses for graphs)."""

    token: torch.Tensor  # (B, 1) last sampled token, the next step's input
    prompt_lens: torch.Tensor  # (B, 1) real prompt tokens per row
    key_mask: torch.Tensor  # (B, L) True on real prompt slots and on every generation slot
    done: torch.Tensor  # (B,) row has emitted EOS or reached its limit
    out: torch.Tensor  # (B, L) generated tokens
    limit: torch.Tensor  # (B,) the row's max_new_tokens
    step: torch.Tensor  # (1,) number of tokens generated so far
    start: torch.Tensor  # (1,) cache slot of the first generated token (= padded prompt length P)
    slots: torch.Tensor  # (L,) 0..L-1

    @classmethod
    def allocate(cls, B: int, L: int, device: torch.device) -> DecodeState:
        long = functools.partial(torch.zeros, dtype=torch.long, device=device)
        return cls(
            token=long(B, 1),
            prompt_lens=long(B, 1),
            key_mask=torch.ones(B, L, dtype=torch.bool, device=device),
            done=torch.zeros(B, dtype=torch.bool, device=device),
            out=long(B, L),
            limit=long(B),
            step=long(1),
            start=long(1),
            slots=torch.arange(L, device=device),
        )

    def view(self, b: int) -> DecodeState:
        """The first ``b`` rows (views: same storage, so a graph on them sees every update)."""
        return dataclasses.replace(self, **{f: getattr(self, f)[:b] for f in ROW_FIELDS})

    def load(self, prompt_mask, first: torch.Tensor, eos, limit: torch.Tensor) -> None:
        """Start from a prefill: (b, P) prompt mask, the (b,) first tokens, (b,) row limits."""
        b, P = prompt_mask.shape
        self.step.fill_(1)
        self.start.fill_(P)
        self.key_mask.fill_(True)
        self.key_mask[:b, :P].copy_(prompt_mask.bool())
        self.prompt_lens[:b].copy_(prompt_mask.sum(-1, keepdim=True))
        self.token[:b].copy_(first[:, None])
        self.limit[:b].copy_(limit)
        self.done[:b].copy_(is_eos(first, eos) | (limit <= 1))
        self.out[:b, 0].copy_(first)

    def gather(self, index: torch.Tensor) -> None:
        """Rows ``index`` (k,) move to rows [0, k) of every per-row buffer."""
        k = index.shape[0]
        for f in ROW_FIELDS:
            t = getattr(self, f)
            t[:k].copy_(t.index_select(0, index))

    def snapshot(self, b: int) -> dict[str, torch.Tensor]:
        """What a decode step changes (a graph's warm-up run is undone with it)."""
        return {f: getattr(self, f)[:b].clone() for f in ("token", "done", "out")} | {
            "step": self.step.clone()
        }

    def restore(self, saved: dict[str, torch.Tensor]) -> None:
        for f, t in saved.items():
            getattr(self, f)[: t.shape[0]].copy_(t)


def decode_one_token(
    forward: Callable[..., torch.Tensor],
    s: DecodeState,
    slot: torch.Tensor,
    *,
    params: SamplingParams,
    eos: torch.Tensor | None,
    generator: torch.Generator,
    window: int,
    bias_dtype: torch.dtype = torch.float32,
) -> None:
    """Feed ``s.token``, sample the next one into ``s.out[:, s.step]``; no host sync.

    ``forward(input_ids, position_ids, mask) -> (b, V) logits`` is the (compiled) model step;
    it writes K/V to cache slot ``slot`` (set here) and reads the first ``window`` slots,
    under an additive mask of ``bias_dtype`` (the model's: 0 attends, -inf does not).
    """
    slot.copy_(s.start + s.step - 1)  # the slot that s.token's K/V go to
    position_ids = s.prompt_lens + s.step - 1  # (b, 1)
    attend = s.key_mask[:, :window] & (s.slots[:window] <= slot)  # (b, W)
    # Additive, once per step: SDPA would turn a bool mask into one in every layer (2 kernels).
    mask = torch.zeros(attend.shape[0], 1, 1, window, dtype=bias_dtype, device=attend.device)
    mask.masked_fill_(~attend[:, None, None, :], float("-inf"))  # (b, 1, 1, W), not a view
    logits = forward(s.token, position_ids, mask)  # (b, V)
    token = sample(logits, params, generator).masked_fill(s.done, params.pad_token_id)  # (b,)
    s.done |= is_eos(token, eos) | (s.step + 1 >= s.limit)
    s.out.index_copy_(1, s.step, token[:, None])
    s.token.copy_(token[:, None])
    s.step.add_(1)


def decode_n_tokens(step: Callable[[], None], n: int) -> None:
    for _ in range(n):
        step()


def warm_up(fn: Callable[[], None], generator: torch.Generator, state: DecodeState, b: int):
    """Run ``fn`` once for real (compilation, cuBLAS handles) and undo what it changed: the
    decode state of the first ``b`` rows and the generator's position. The K/V it writes land
    in slots that the next steps overwrite before any step reads them."""
    saved, rng = state.snapshot(b), generator.get_state()
    if state.out.is_cuda:  # on a side stream, as torch.cuda.graphs asks
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.current_stream().wait_stream(stream)
    else:
        fn()
    state.restore(saved)
    generator.set_state(rng)


def capture_cuda_graph(
    fn: Callable[[], None], generator: torch.Generator, pool, state: DecodeState, b: int
) -> Callable[[], None]:
    """Warm ``fn`` up (:func:`warm_up`), record it once; -> its replay.

    Captured when first needed, in the middle of a rollout, hence the undone warm-up. Graphs
    share ``pool``: each one's temporaries die within its replay, and replays never overlap.
    """
    warm_up(fn, generator, state, b)
    graph = torch.cuda.CUDAGraph()
    graph.register_generator_state(generator)  # replays draw fresh numbers from our generator
    with torch.cuda.graph(graph, pool=pool):
        fn()
    return graph.replay
