"""The bench's three workloads (issue 15) and the forcing of each completion's length.

- ``reference``: 16 prompts x 8 completions, prompt 150, every completion forced to 512 tokens.
- ``tutorial``: each completion forced to its own length, drawn once with a fixed seed from a
  log-normal of median 450 tokens and sigma 0.9, clipped to [16, 4096]: the Datawhale tutorial's
  long tail (mean about 675, p90 about 1,430, about 1 in 128 at the 4,096 cap).
- ``collapse``: every completion forced to 4,096 tokens (the tutorial's collapse phase).

The forcing lives here, not in the trainer: :class:`ForcedLengths` wraps the engine the step
uses; the fast engine gets the lengths as per-row limits (so finished rows leave its batch, as
rows ending at EOS do), any other engine generates the longest and the rest is masked.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass

import torch

from r1zero.bench import measure as M
from r1zero.rollout import RolloutBatch, SamplingParams

NAMES = ("reference", "tutorial", "collapse")
TUTORIAL_SEED = 2025  # the tutorial's run seed
TUTORIAL_MEDIAN, TUTORIAL_SIGMA = 450, 0.9
TUTORIAL_MIN, TUTORIAL_MAX = 16, 4096


@dataclass(frozen=True)
class Workload(M.Workload):
    """A bench workload; ``lengths`` holds each completion's forced length (empty: all
    ``completion_len``, which is also the ``max_completion_length``)."""

    name: str = "reference"
    lengths: tuple[int, ...] = ()

    def completion_lengths(self) -> list[int]:
        return list(self.lengths) or [self.completion_len] * self.sequences

    @property
    def tokens(self) -> int:  # real tokens of one step (prompts + forced completions)
        return sum(self.prompt_len + c for c in self.completion_lengths())

    def describe(self) -> dict:
        c = sorted(self.completion_lengths())
        return {
            "name": self.name,
            "prompts": self.prompts,
            "num_generations": self.num_generations,
            "prompt_len": self.prompt_len,
            "completion_len": self.completion_len,
            "tokens_per_step": self.tokens,
            "completion_mean": statistics.fmean(c),
            "completion_median": statistics.median(c),
            "completion_p90": c[min(len(c) - 1, math.ceil(0.9 * len(c)) - 1)],
            "completion_max": c[-1],
            "at_cap": sum(x >= self.completion_len for x in c),
            "lengths": list(self.lengths) or None,
        }


def lognormal_lengths(
    n: int,
    *,
    median: float = TUTORIAL_MEDIAN,
    sigma: float = TUTORIAL_SIGMA,
    lo: int = TUTORIAL_MIN,
    hi: int = TUTORIAL_MAX,
    seed: int = TUTORIAL_SEED,
) -> tuple[int, ...]:
    """``n`` lengths ``round(median * exp(sigma * z))``, z ~ N(0, 1) from a seeded CPU
    generator (the same on every machine), clipped to [lo, hi]."""
    z = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    lengths = (median * torch.exp(sigma * z)).round().clamp(lo, hi).long()
    return tuple(lengths.tolist())


def make(name: str, quick: bool = False) -> Workload:
    """The named workload; ``quick``: 2 prompts x 4, prompt 12, completions up to 8 tokens."""
    if name not in NAMES:
        raise SystemExit(f"unknown workload {name!r}; choose from {', '.join(NAMES)}")
    base = dict(prompts=2, num_generations=4, prompt_len=12) if quick else {}
    cap = 8 if quick else TUTORIAL_MAX
    if name == "reference":
        return Workload(**base, completion_len=8 if quick else 512, name=name)
    if name == "collapse":
        return Workload(**base, completion_len=cap, name=name)
    w = Workload(**base, completion_len=cap, name=name)
    scale = dict(median=3, lo=1, hi=cap) if quick else {}
    return dataclasses.replace(w, lengths=lognormal_lengths(w.sequences, **scale))


class ForcedLengths:
    """Wraps an engine so that row ``i`` of every call generates exactly ``lengths[i]`` tokens
    (all ``max_new_tokens`` when ``lengths`` is empty), EOS ignored."""

    def __init__(self, engine, lengths: tuple[int, ...] = ()) -> None:
        self.engine, self.lengths = engine, lengths

    def generate(self, model, prompt_ids, prompt_mask, params: SamplingParams, generator=None):
        forced = dataclasses.replace(params, ignore_eos=True)
        if not self.lengths:
            return self.engine.generate(model, prompt_ids, prompt_mask, forced, generator)
        B = prompt_ids.shape[0]
        lengths = torch.tensor([self.lengths[i % len(self.lengths)] for i in range(B)])
        lengths = lengths.clamp(max=params.max_new_tokens)
        if _takes_row_limits(self.engine):
            return self.engine.generate(
                model, prompt_ids, prompt_mask, forced, generator, max_new_tokens_per_row=lengths
            )
        longest = dataclasses.replace(forced, max_new_tokens=int(lengths.max()))
        batch = self.engine.generate(model, prompt_ids, prompt_mask, longest, generator)
        return cut(batch, lengths.to(batch.completion_ids.device), params.pad_token_id)


def make_engine(name: str):
    """``measure.make_engine`` (``hf``, ``hf_static``, ``fast``, ``fast_eager``), plus
    ``fast_nocompact`` (every row runs until the longest ends, as before compaction),
    ``fast_mm``, ``fast_sdpa`` (the engine's other decode attentions, see ``FastEngine``)
    and ``fast_hf`` (decode through the HF model's forward), to measure each against the
    default."""
    from r1zero.rollout.fast import FastEngine

    if name == "fast_nocompact":
        return FastEngine(compact=False)
    attention = {"fast_mm": "matmul", "fast_sdpa": "sdpa"}
    if name in attention:
        return FastEngine(decode_attention=attention[name])
    if name == "fast_hf":
        return FastEngine(own_forward=False)
    return M.make_engine(name)


def _takes_row_limits(engine) -> bool:
    from r1zero.rollout.fast import FastEngine

    return isinstance(engine, FastEngine)


def cut(batch: RolloutBatch, lengths: torch.Tensor, pad: int) -> RolloutBatch:
    """Keep the first ``lengths[i]`` tokens of row i; trim to the longest."""
    C = batch.completion_ids.shape[1]
    keep = torch.arange(C, device=lengths.device) < lengths[:, None]  # (B, C)
    mask = batch.completion_mask * keep
    width = int(mask.sum(-1).max())
    ids = batch.completion_ids.masked_fill(mask == 0, pad)[:, :width]
    return RolloutBatch(batch.prompt_ids, batch.prompt_mask, ids, mask[:, :width], batch.truncated)


def rollout_speed(
    model, engine_name: str, sequences: int, w: Workload, shape: dict, *, device, seed
):
    """Generated tokens per second of one engine on the workload's forced lengths, after a
    warm-up call timed as ``first_call_s`` (compilation, graph capture). HF generate with the
    dynamic cache compiles nothing, so its warm-up generates only 8 tokens."""
    engine = make_engine(engine_name)
    lengths = tuple(w.completion_lengths()[i % w.sequences] for i in range(sequences))
    forced = ForcedLengths(engine, lengths)
    ids, mask = M.random_prompts(sequences, w, shape["vocab_size"], device, seed)
    params = M.sampling(w, shape)
    if engine_name == "hf":
        warm = ForcedLengths(engine).generate
        _, first = M.timed(
            lambda: warm(model, ids, mask, dataclasses.replace(params, max_new_tokens=8)), device
        )
    else:
        _, first = M.timed(lambda: forced.generate(model, ids, mask, params), device)
    out, t = M.timed(lambda: forced.generate(model, ids, mask, params), device)
    new = int(out.completion_mask.sum())
    assert new == sum(lengths), "forced lengths not honoured"
    r = {
        "engine": engine_name,
        "sequences": sequences,
        "prompt_len": w.prompt_len,
        "new_tokens": w.completion_len,
        "generated_tokens": new,
        "decode_steps": max(lengths),
        "seconds": t,
        "tok_per_s": new / t,
        "first_call_s": first,
    }
    for key in ("last_split", "last_batch_sizes"):
        if hasattr(engine, key):
            r[key.removeprefix("last_")] = list(getattr(engine, key))
    return r
