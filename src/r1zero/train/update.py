"""Log-probabilities and the policy update over micro-batches.

The step's sequences are split into forward passes (:mod:`r1zero.train.batching`: fixed
slices of ``micro_size`` sequences, or token-budget groups, right-padded or packed); the
loss does not depend on that split. Each token's weight in the loss is fixed first, from its
micro-step (the ``gradient_accumulation_steps`` consecutive slices of the step's sequences
that the config defines) by the loss's registered ``token_weights``; every pass then adds
its tokens' weighted losses. One optimizer step per rollout batch, as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from r1zero.algos import LOSS_AGGREGATIONS, policy_loss, selective_logprobs
from r1zero.config import GRPOConfig
from r1zero.rollout import RolloutBatch
from r1zero.train.batching import Chunk, generation_layout, plan_chunks
from r1zero.train.model import backbone_and_head, reference_policy


@dataclass
class MicroBatch:
    """Rows of the step's batch in the generation layout (left-padded prompts)."""

    prompt_ids: torch.Tensor  # (b, P) left-padded, trimmed to the longest prompt
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor  # (b, C) trimmed to the longest completion
    completion_mask: torch.Tensor
    index: torch.Tensor  # (b,) rows of the step's batch


def chunk_logprobs(
    model: torch.nn.Module,
    chunk: Chunk,
    *,
    temperature: float,
    chunk_size: int,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(completion tokens | prompt, prefix) of one pass: (b, C), entropies if asked."""
    backbone, head = backbone_and_head(model)
    hidden = backbone(
        input_ids=chunk.input_ids,
        attention_mask=chunk.attention_mask,
        position_ids=chunk.position_ids,
        use_cache=False,  # without a cache transformers reads restarting positions as packing
    ).last_hidden_state  # (r, L, H)
    h = hidden.flatten(0, 1)[chunk.gather_index]  # (b, C, H): the state predicting each token
    return selective_logprobs(
        h,
        head,
        chunk.completion_ids,
        chunk.completion_mask,
        temperature=temperature,
        chunk_size=chunk_size,
        with_entropy=with_entropy,
    )


def sequence_logprobs(
    model: torch.nn.Module,
    mb: MicroBatch,
    *,
    temperature: float,
    chunk_size: int,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`chunk_logprobs` of a micro-batch in the generation layout: (b, C)."""
    chunk = generation_layout(
        mb.prompt_ids, mb.prompt_mask, mb.completion_ids, mb.completion_mask, mb.completion_mask
    )
    return chunk_logprobs(
        model, chunk, temperature=temperature, chunk_size=chunk_size, with_entropy=with_entropy
    )


def token_budget(cfg: GRPOConfig, *, frozen: bool) -> int | None:
    """Tokens per forward pass, or None for fixed slices of sequences."""
    if not (cfg.use_dynamic_bsz or cfg.padding_free):
        return None
    return cfg.log_prob_max_token_len_per_gpu if frozen else cfg.ppo_max_token_len_per_gpu


@torch.no_grad()
def frozen_logprobs(
    model: torch.nn.Module,
    batch: RolloutBatch,
    cfg: GRPOConfig,
    micro_size: int,
    agree: Callable[[int], int] | None = None,
) -> torch.Tensor:
    """Logprobs without grad for the whole batch: (N, C)."""
    out = torch.zeros(
        batch.completion_ids.shape, dtype=torch.float32, device=batch.completion_ids.device
    )
    chunks = plan_chunks(
        batch,
        batch.completion_mask,
        micro_size=micro_size,
        max_tokens=token_budget(cfg, frozen=True),
        packed=cfg.padding_free,
        agree=agree,
    )
    for ch in chunks:
        lp, _ = chunk_logprobs(
            model, ch, temperature=cfg.scoring_temperature, chunk_size=cfg.logprob_chunk_size
        )
        C = lp.shape[1]
        keep = ch.completion_mask.bool()  # a zero-mask pass (evening out ranks) writes nothing
        out[ch.rows, :C] = torch.where(keep, lp, out[ch.rows, :C])
    return out


def reference_logprobs(
    model: torch.nn.Module,
    ref_model: torch.nn.Module | None,
    batch: RolloutBatch,
    cfg: GRPOConfig,
    micro_size: int,
    agree: Callable[[int], int] | None = None,
) -> torch.Tensor:
    with reference_policy(model, ref_model) as ref:
        return frozen_logprobs(ref, batch, cfg, micro_size, agree)


def loss_mask(batch: RolloutBatch, cfg: GRPOConfig) -> torch.Tensor:
    """completion_mask, with truncated completions removed when DAPO's masking is on."""
    m = batch.completion_mask
    if cfg.mask_truncated_completions:
        m = m * (~batch.truncated).long().unsqueeze(-1)
    return m


def step_token_weights(
    mask: torch.Tensor, cfg: GRPOConfig, *, micro_size: int, num_items_in_batch: int, world: int
) -> torch.Tensor:
    """(N, C) weight of every token in the step's loss, each micro-step by its loss's own
    normaliser (and the loss's own factor for DDP's average over ranks)."""
    agg = LOSS_AGGREGATIONS[cfg.loss_type]
    N = mask.shape[0]
    n_micro = -(-N // micro_size)
    m = mask.to(torch.float64)  # exact normalisers; products with float32 log-probs promote
    parts = [
        agg.token_weights(
            m[s : s + micro_size],
            grad_accum=n_micro,
            max_completion_length=cfg.max_completion_length,
            num_items_in_batch=num_items_in_batch,
        )
        for s in range(0, N, micro_size)
    ]
    return torch.cat(parts) * agg.rank_scale(world)


class LogprobModel(torch.nn.Module):
    """``forward(pass tensors) -> (logprobs, entropies)``: the training computation
    as one module, so that DDP (accelerate) can wrap it and synchronise its gradients."""

    def __init__(self, model: torch.nn.Module, temperature: float, chunk_size: int) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature
        self.chunk_size = chunk_size

    def forward(
        self,
        input_ids,
        position_ids,
        attention_mask,
        gather_index,
        completion_ids,
        completion_mask,
        with_entropy: bool = True,
    ):
        chunk = Chunk(
            gather_index.new_zeros(0),
            input_ids,
            position_ids,
            attention_mask,
            gather_index,
            completion_ids,
            completion_mask,
        )
        return chunk_logprobs(
            self.model,
            chunk,
            temperature=self.temperature,
            chunk_size=self.chunk_size,
            with_entropy=with_entropy,
        )


def accumulate_gradients(
    scorer: torch.nn.Module,
    batch: RolloutBatch,
    advantages: torch.Tensor,
    cfg: GRPOConfig,
    *,
    micro_size: int,
    old_logprobs: torch.Tensor | None,
    ref_logprobs: torch.Tensor | None,
    num_items_in_batch: int,
    world: int = 1,
    no_sync=None,
    agree: Callable[[int], int] | None = None,
) -> dict[str, float]:
    """Forward and backward over the passes of one optimizer step; returns its metrics.

    ``scorer`` is a :class:`LogprobModel`, possibly DDP-wrapped; ``agree(n)`` returns the
    largest ``n`` over ranks, so that every rank runs as many passes.
    """
    mask = loss_mask(batch, cfg)
    advantages = advantages.to(mask.device)  # rewards are scored on the host
    weights = step_token_weights(
        mask, cfg, micro_size=micro_size, num_items_in_batch=num_items_in_batch, world=world
    )
    chunks = plan_chunks(
        batch,
        mask,
        micro_size=micro_size,
        max_tokens=token_budget(cfg, frozen=False),
        packed=cfg.padding_free,
        agree=agree,
    )
    sums: dict[str, float] = {"loss": 0.0}
    tokens = max(int(mask.sum()), 1)
    ent_sum = 0.0
    for i, ch in enumerate(chunks):
        ctx = no_sync(scorer, i == len(chunks) - 1) if no_sync else contextlib.nullcontext()
        with ctx:
            loss, metrics, ent = _chunk_loss(
                scorer, ch, weights, advantages, cfg, old_logprobs, ref_logprobs
            )
            loss.backward()
        sums["loss"] += loss.item()
        share = float(ch.completion_mask.sum()) / tokens  # token means over the step
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + v * share
        ent_sum += float((ent * ch.completion_mask).sum())
    sums["entropy"] = ent_sum / tokens
    return sums


def _chunk_loss(
    scorer: torch.nn.Module,
    ch: Chunk,
    weights: torch.Tensor,
    advantages: torch.Tensor,
    cfg: GRPOConfig,
    old_logprobs: torch.Tensor | None,
    ref_logprobs: torch.Tensor | None,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
    """One pass: its tokens' weighted loss, its metrics (token means) and entropies."""
    lp, ent = scorer(
        ch.input_ids,
        ch.position_ids,
        ch.attention_mask,
        ch.gather_index,
        ch.completion_ids,
        ch.completion_mask,
    )
    C = lp.shape[1]
    old = lp.detach() if old_logprobs is None else old_logprobs[ch.rows, :C]
    ref = None if ref_logprobs is None else ref_logprobs[ch.rows, :C]
    loss, metrics = policy_loss(
        logprobs=lp,
        old_logprobs=old,
        advantages=advantages[ch.rows],
        completion_mask=ch.completion_mask,
        loss_type=cfg.loss_type,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high,
        beta=cfg.beta,
        ref_logprobs=ref,
        use_bias_correction_kl=cfg.use_bias_correction_kl,
        token_weights=weights[ch.rows, :C] * ch.completion_mask,
    )
    return loss, metrics, ent
