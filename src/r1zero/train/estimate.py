"""The first step's wait, said before it starts: a CPU rollout of many long completions
can run for minutes with nothing to show (issue 19: 75 s of silence at
max_completion_length 4096). Short greedy probes measure a decode step of the whole batch
at two context lengths; with the cost linear in the context, that gives the rollout's
length if no completion stops early."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import torch

from r1zero.progress import phase
from r1zero.rollout.policy import sampling_params, tokenize_prompts

PROBE_TOKENS = (2, 18)
"""Two short decodes: their difference is 16 decode steps without the prefill."""
PROBE_ABOVE_TOKENS = 50_000
"""Probe only when the rollout may write this many tokens (completions x length) on CPU."""
PROBE_MAX_CONTEXT = 1_024
"""The longer probe context, at most this many tokens past the prompt."""


def decode_step_seconds(policy: Any, ids: torch.Tensor, mask: torch.Tensor, cfg: Any) -> float:
    """Seconds per decode step of the batch ``ids`` (B, L), greedy, on the run's engine.
    The RNG is forked so the run samples exactly what it would have without the probe."""
    times = []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for n in PROBE_TOKENS:
            params = dataclasses.replace(
                sampling_params(cfg, policy, greedy=True), max_new_tokens=n, ignore_eos=True
            )
            t0 = time.perf_counter()
            policy.engine.generate(policy.model, ids, mask, params)
            times.append(time.perf_counter() - t0)
    return max(times[1] - times[0], 1e-6) / (PROBE_TOKENS[1] - PROBE_TOKENS[0])


def rollout_seconds(policy: Any, row: dict, cfg: Any, batch: int) -> tuple[float, float]:
    """(seconds per decode step at the prompt, seconds for the whole rollout if no
    completion stops). A decode step costs about a + b x context; a and b come from
    probes at the prompt's length and up to PROBE_MAX_CONTEXT tokens further, and the
    rollout's T steps average the cost at context prompt + T/2."""
    _, ids, mask = tokenize_prompts(policy, [row], cfg.max_prompt_length)
    ids, mask = ids.expand(batch, -1), mask.expand(batch, -1)
    prompt, steps = ids.shape[1], cfg.max_completion_length
    extra = min(steps // 2, PROBE_MAX_CONTEXT)
    short = decode_step_seconds(policy, ids, mask, cfg)
    reps = -(-(prompt + extra) // prompt)
    long_ids = ids.repeat(1, reps)[:, -(prompt + extra) :]
    long = decode_step_seconds(policy, long_ids, torch.ones_like(long_ids), cfg)
    per_token = max(long - short, 0.0) / max(extra, 1)
    return short, steps * (short + per_token * steps / 2)  # sum of a + b (prompt + t), t < T


def first_step_line(run: Any, step: int = 1) -> str | None:
    """What the first step will generate and, on CPU where it is long, how long the
    rollout alone takes at most; None when the step is short."""
    g = run.cfg.grpo
    completions = run.stream.per_step // run.dist.world * g.num_generations
    tokens = completions * g.max_completion_length
    if run.policy.device.type != "cpu" or tokens < PROBE_ABOVE_TOKENS or not run.stream.rows:
        return None
    if run.dist.world > 1:  # a probe on rank 0 alone would stall sharded weights' gathers
        return None
    per_step, seconds = rollout_seconds(run.policy, run.stream.rows[0], g, completions)
    return (
        f"step {step}: the rollout generates {completions} completions of up to "
        f"{g.max_completion_length} tokens; measured {per_step * 1000:.1f} ms a decode step "
        f"at the prompt, more as the context grows: roughly {_duration(seconds)} if none "
        "stops early, then scoring and the update"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@contextlib.contextmanager
def first_step(run: Any, step: int, print_fn: Any) -> Iterator[None]:
    """The estimate line (where it is long), then a progress line while the run's first
    step (``step``: 1, or the one after the checkpoint it resumed from) runs."""
    line = first_step_line(run, step) if run.dist.is_main else None
    if line:
        print_fn(line)
    with phase(f"step {step} (the first rollout and update)"):
        yield
