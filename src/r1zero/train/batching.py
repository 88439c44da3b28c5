"""How the step's sequences are laid out for the model: which rows go in one forward pass.

Three layouts of the same rows, all giving the same log-probabilities:

- ``fixed`` (the default): consecutive slices of ``micro_size`` sequences, prompts left-padded
  and completions right-padded to the slice's longest, with an attention mask. One long
  completion makes every row of its slice pay for its length.
- ``use_dynamic_bsz`` (veRL's name): sequences sorted by length and grouped under a token
  budget (rows x longest row <= ``ppo_max_token_len_per_gpu``), each row prompt + completion
  contiguous from position 0, right-padded. Right padding needs no attention mask: a causal
  model never looks at later positions, so the padded tail changes no real token, and SDPA
  runs its ``is_causal`` (flash) kernel. Padding is left only between sequences of similar
  length.
- ``padding_free`` (TRL's name): the grouped sequences concatenated into one row with
  position ids restarting at 0 for each; transformers reads the restarts as a packed batch
  and masks attention across them (a block-diagonal mask for sdpa and eager, a BlockMask for
  flex_attention). No padding at all, but SDPA then runs its masked kernel over the whole
  row's T x T scores.

Sequences whose loss mask is empty (truncated ones under ``mask_truncated_completions``) are
left out of the token-budget layouts: they add nothing to the loss or its gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from r1zero.rollout import RolloutBatch


@dataclass
class Chunk:
    """One forward pass over ``rows`` of the step's batch."""

    rows: torch.Tensor  # (b,) rows of the step's batch
    input_ids: torch.Tensor  # (r, L): r = b (padded layouts) or 1 (packed)
    position_ids: torch.Tensor  # (r, L)
    attention_mask: torch.Tensor | None  # (r, L); None: the causal mask alone is exact
    gather_index: torch.Tensor  # (b, C) flat index into (r * L) of the state predicting each token
    completion_ids: torch.Tensor  # (b, C) C = the rows' longest completion
    completion_mask: torch.Tensor  # (b, C) the loss mask of these rows

    @property
    def tokens(self) -> int:
        return self.input_ids.numel()


def fixed_chunks(batch: RolloutBatch, size: int, mask: torch.Tensor) -> list[Chunk]:
    """Consecutive slices of ``size`` sequences, left-padded prompts (as generated)."""
    out = []
    for s in range(0, batch.prompt_ids.shape[0], size):
        sl = slice(s, s + size)
        pm = batch.prompt_mask[sl]
        p0 = int((pm.sum(0) > 0).int().argmax())  # first column any prompt uses
        c1 = max(int(batch.completion_mask[sl].sum(-1).max()), 1)
        chunk = generation_layout(
            batch.prompt_ids[sl, p0:],
            pm[:, p0:],
            batch.completion_ids[sl, :c1],
            batch.completion_mask[sl, :c1],
            mask[sl, :c1],
        )
        chunk.rows = chunk.rows + s
        out.append(chunk)
    return out


def generation_layout(
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_attention: torch.Tensor,
    completion_mask: torch.Tensor,
) -> Chunk:
    """Rows as generated: (b, P) left-padded prompts, (b, C) right-padded completions."""
    b, P = prompt_ids.shape
    C = completion_ids.shape[1]
    attn = torch.cat([prompt_mask, completion_attention.clamp(max=1)], 1)  # (b, P + C)
    dev = prompt_ids.device
    row_start = torch.arange(b, device=dev)[:, None] * (P + C)
    return Chunk(
        rows=torch.arange(b, device=dev),
        input_ids=torch.cat([prompt_ids, completion_ids], 1),
        position_ids=(attn.cumsum(-1) - 1).clamp(min=0),  # left padding, as in generate
        attention_mask=attn,
        gather_index=row_start + P - 1 + torch.arange(C, device=dev),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
    )


def token_budget_groups(lengths: list[int], max_tokens: int, *, packed: bool) -> list[list[int]]:
    """Indices grouped so that each group costs at most ``max_tokens``, longest first.

    Padded rows cost rows x the group's longest length: the lengths sorted, the groups are
    the cut of that order into runs with the least padded tokens plus a fixed cost per pass
    (:data:`PASS_COST_TOKENS`), so rows of one group are alike.
    Packed rows cost the sum of lengths: first-fit decreasing (each sequence, longest first,
    into the first group with room), which leaves few and full groups. A sequence longer
    than the budget gets a group of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    if not packed:
        return [
            [order[k] for k in run]
            for run in _least_padding_runs([lengths[i] for i in order], max_tokens)
        ]
    groups: list[list[int]] = []
    costs: list[int] = []
    for i in order:
        fit = next((k for k, c in enumerate(costs) if c + lengths[i] <= max_tokens), None)
        if fit is None:
            groups.append([i])
            costs.append(lengths[i])
        else:
            groups[fit].append(i)
            costs[fit] += lengths[i]
    return groups


PASS_COST_TOKENS = 1024
"""What one more forward/backward pass costs, in tokens' worth of compute: its fixed work
(kernel launches of every layer, the LM head's chunk loop, host syncs), a guess of about 30 ms
on a GPU that spends about as long on 1,000 tokens of a 3B model. It keeps the grouping from
cutting a batch into single rows to save the last padded token."""


def _least_padding_runs(desc: list[int], max_tokens: int) -> list[range]:
    """Cut lengths sorted longest first into runs of at most ``max_tokens`` padded tokens
    (run size x its first length), minimising padded tokens + PASS_COST_TOKENS per run:
    dynamic programming over the cut points, O(n x the rows that fit in a run)."""
    n = len(desc)
    best: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # best[j]: (cost, runs) of desc[:j]
    start = [0] * (n + 1)
    for j in range(1, n + 1):
        cands = []
        for i in range(j - 1, -1, -1):  # run desc[i:j], its longest desc[i]
            tokens = (j - i) * desc[i]
            if tokens > max_tokens and i < j - 1:
                break  # longer runs only cost more
            cands.append(((best[i][0] + tokens + PASS_COST_TOKENS, best[i][1] + 1), i))
        best[j], start[j] = min(cands)
    runs, j = [], n
    while j > 0:
        runs.append(range(start[j], j))
        j = start[j]
    return runs[::-1]


Layout = Callable[[RolloutBatch, torch.Tensor, torch.Tensor, torch.Tensor], "Chunk"]


def budget_layout(*, packed: bool) -> Layout:
    """``(batch, mask, rows, prompt_lens) -> Chunk`` for the token-budget passes."""
    return packed_chunk if packed else right_padded_chunk


def budget_chunks(
    batch: RolloutBatch, mask: torch.Tensor, max_tokens: int, *, packed: bool
) -> list[Chunk]:
    """Rows grouped by length under ``max_tokens``, laid out right-padded or packed."""
    prompt_lens = batch.prompt_mask.sum(-1)
    _check_padding(batch, prompt_lens)
    lengths = (prompt_lens + batch.completion_mask.sum(-1)).tolist()
    active = (mask.sum(-1) > 0).nonzero().flatten().tolist()
    if not active:  # nothing to learn from: still one (zero-gradient) pass, so backward runs
        active = [min(range(len(lengths)), key=lengths.__getitem__)]
    groups = token_budget_groups([lengths[i] for i in active], max_tokens, packed=packed)
    layout = budget_layout(packed=packed)
    dev = batch.prompt_ids.device
    return [
        layout(batch, mask, torch.tensor([active[j] for j in g], device=dev), prompt_lens)
        for g in groups
    ]


def _check_padding(batch: RolloutBatch, prompt_lens: torch.Tensor) -> None:
    """The layouts copy each row's last ``prompt_len`` prompt columns and first completion
    columns: prompts must be left-padded and completions right-padded, as generated."""
    P, C = batch.prompt_ids.shape[1], batch.completion_ids.shape[1]
    dev = prompt_lens.device
    left = torch.arange(P, device=dev)[None] >= (P - prompt_lens)[:, None]
    right = torch.arange(C, device=dev)[None] < batch.completion_mask.sum(-1)[:, None]
    if not (
        torch.equal(batch.prompt_mask.bool(), left)
        and torch.equal(batch.completion_mask.bool(), right)
    ):
        raise ValueError(
            "token-budget passes need left-padded prompts and right-padded completions "
            "(as the rollout engines return them); set use_dynamic_bsz and padding_free off"
        )


def _source_columns(
    batch: RolloutBatch, rows: torch.Tensor, prompt_lens: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Column of ``cat(prompt_ids, completion_ids)`` holding token ``t`` of each row's
    unpadded sequence: the prompt is left-padded, so it starts at P - prompt_len and the
    completion follows it at column P: column t + P - prompt_len for both."""
    P, C = batch.prompt_ids.shape[1], batch.completion_ids.shape[1]
    return (t + (P - prompt_lens[rows])[:, None]).clamp(max=P + C - 1)


def _rows_tokens(batch: RolloutBatch, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    full = torch.cat([batch.prompt_ids[rows], batch.completion_ids[rows]], 1)  # (b, P + C)
    return full.gather(1, cols)


def _completions(
    batch: RolloutBatch, mask: torch.Tensor, rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, int]:
    c1 = max(int(batch.completion_mask[rows].sum(-1).max()), 1)
    return batch.completion_ids[rows, :c1], mask[rows, :c1], c1


def right_padded_chunk(
    batch: RolloutBatch, mask: torch.Tensor, rows: torch.Tensor, prompt_lens: torch.Tensor
) -> Chunk:
    """Each row prompt + completion from position 0, right-padded; no attention mask."""
    lens = prompt_lens[rows] + batch.completion_mask[rows].sum(-1)  # (b,)
    L = int(lens.max())
    t = torch.arange(L, device=rows.device)[None, :]  # (1, L)
    ids = _rows_tokens(batch, rows, _source_columns(batch, rows, prompt_lens, t))
    ids = ids.masked_fill(t >= lens[:, None], 0)  # the tail is never attended: any id
    comp, cm, c1 = _completions(batch, mask, rows)
    j = torch.arange(c1, device=rows.device)[None, :]
    start = torch.arange(len(rows), device=rows.device)[:, None] * L + prompt_lens[rows][:, None]
    return Chunk(
        rows=rows,
        input_ids=ids,
        position_ids=t.expand(len(rows), L),
        attention_mask=None,
        gather_index=(start - 1 + j).clamp(max=len(rows) * L - 1),
        completion_ids=comp,
        completion_mask=cm,
    )


def packed_chunk(
    batch: RolloutBatch, mask: torch.Tensor, rows: torch.Tensor, prompt_lens: torch.Tensor
) -> Chunk:
    """The rows' sequences concatenated in one row, position ids restarting at each."""
    lens = prompt_lens[rows] + batch.completion_mask[rows].sum(-1)  # (b,)
    offsets = lens.cumsum(0) - lens  # (b,) where each sequence starts
    T = int(lens.sum())
    seq = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lens)  # (T,)
    t = torch.arange(T, device=rows.device) - offsets[seq]  # position within its sequence
    cols = _source_columns(batch, rows[seq], prompt_lens, t[:, None])  # (T, 1)
    ids = torch.cat([batch.prompt_ids, batch.completion_ids], 1)[rows[seq], cols[:, 0]]
    comp, cm, c1 = _completions(batch, mask, rows)
    j = torch.arange(c1, device=rows.device)[None, :]
    start = (offsets + prompt_lens[rows])[:, None]
    return Chunk(
        rows=rows,
        input_ids=ids[None],
        position_ids=t[None],
        attention_mask=None,
        gather_index=(start - 1 + j).clamp(max=T - 1),  # masked beyond a row's length
        completion_ids=comp,
        completion_mask=cm,
    )


def plan_chunks(
    batch: RolloutBatch,
    mask: torch.Tensor,
    *,
    micro_size: int,
    max_tokens: int | None,
    packed: bool,
    agree=None,
) -> list[Chunk]:
    """The forward passes of one step: ``fixed_chunks`` when ``max_tokens`` is None, else
    the token-budget layout. ``agree(n) -> max over ranks`` makes every rank run the same
    number of passes (collectives per forward under DDP buffer sync and FSDP2): a rank
    with fewer splits its largest groups, or adds zero-mask passes."""
    if max_tokens is None:
        return fixed_chunks(batch, micro_size, mask)
    chunks = budget_chunks(batch, mask, max_tokens, packed=packed)
    want = len(chunks) if agree is None else agree(len(chunks))
    return even_out(batch, mask, chunks, want, packed=packed)


def even_out(
    batch: RolloutBatch,
    mask: torch.Tensor,
    chunks: list[Chunk],
    want: int,
    *,
    packed: bool,
) -> list[Chunk]:
    """``chunks`` split (largest row count first) or padded with empty passes to ``want``."""
    layout = budget_layout(packed=packed)
    prompt_lens = batch.prompt_mask.sum(-1)
    while len(chunks) < want:
        i = max(range(len(chunks)), key=lambda k: len(chunks[k].rows))
        rows = chunks[i].rows
        if len(rows) > 1:
            half = len(rows) // 2
            chunks[i : i + 1] = [
                layout(batch, mask, rows[:half], prompt_lens),
                layout(batch, mask, rows[half:], prompt_lens),
            ]
        else:  # one row per pass already: a pass that scores nothing
            chunks.append(layout(batch, torch.zeros_like(mask), rows, prompt_lens))
    return chunks
