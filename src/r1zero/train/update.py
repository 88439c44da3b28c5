"""Log-probabilities and the policy update over micro-batches."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from r1zero.algos import policy_loss, selective_logprobs
from r1zero.config import GRPOConfig
from r1zero.rollout import RolloutBatch
from r1zero.train.model import backbone_and_head, reference_policy


@dataclass
class MicroBatch:
    prompt_ids: torch.Tensor  # (b, P) left-padded, trimmed to the longest prompt
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor  # (b, C) trimmed to the longest completion
    completion_mask: torch.Tensor
    index: torch.Tensor  # (b,) rows of the step's batch


def micro_batches(
    batch: RolloutBatch, size: int, mask: torch.Tensor | None = None
) -> Iterator[MicroBatch]:
    """Consecutive slices of ``size`` sequences with padding columns trimmed away."""
    cm = batch.completion_mask if mask is None else mask
    for s in range(0, batch.prompt_ids.shape[0], size):
        sl = slice(s, s + size)
        pm, m = batch.prompt_mask[sl], cm[sl]
        p0 = int((pm.sum(0) > 0).int().argmax())  # first column any prompt uses
        c1 = max(int(batch.completion_mask[sl].sum(-1).max()), 1)
        yield MicroBatch(
            batch.prompt_ids[sl, p0:],
            pm[:, p0:],
            batch.completion_ids[sl, :c1],
            m[:, :c1],
            torch.arange(s, min(s + size, batch.prompt_ids.shape[0]), device=pm.device),
        )


def sequence_logprobs(
    model: torch.nn.Module,
    mb: MicroBatch,
    *,
    temperature: float,
    chunk_size: int,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(completion tokens | prompt, prefix): (b, C), entropies (b, C) if asked."""
    input_ids = torch.cat([mb.prompt_ids, mb.completion_ids], 1)  # (b, P + C)
    attn = torch.cat([mb.prompt_mask, mb.completion_mask.clamp(max=1)], 1)
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # left padding, as in generate
    backbone, head = backbone_and_head(model)
    hidden = backbone(
        input_ids=input_ids, attention_mask=attn, position_ids=position_ids, use_cache=False
    ).last_hidden_state
    P = mb.prompt_ids.shape[1]
    h = hidden[:, P - 1 : -1]  # (b, C, H): position P-1+j predicts completion token j
    return selective_logprobs(
        h,
        head,
        mb.completion_ids,
        mb.completion_mask,
        temperature=temperature,
        chunk_size=chunk_size,
        with_entropy=with_entropy,
    )


def _scatter(full: torch.Tensor, mb: MicroBatch, part: torch.Tensor) -> None:
    full[mb.index, : part.shape[1]] = part


@torch.no_grad()
def frozen_logprobs(
    model: torch.nn.Module, batch: RolloutBatch, cfg: GRPOConfig, micro_size: int
) -> torch.Tensor:
    """Logprobs without grad for the whole batch: (N, C)."""
    out = torch.zeros(
        batch.completion_ids.shape, dtype=torch.float32, device=batch.completion_ids.device
    )
    for mb in micro_batches(batch, micro_size):
        lp, _ = sequence_logprobs(
            model, mb, temperature=cfg.temperature, chunk_size=cfg.logprob_chunk_size
        )
        _scatter(out, mb, lp)
    return out


def reference_logprobs(
    model: torch.nn.Module,
    ref_model: torch.nn.Module | None,
    batch: RolloutBatch,
    cfg: GRPOConfig,
    micro_size: int,
) -> torch.Tensor:
    with reference_policy(model, ref_model) as ref:
        return frozen_logprobs(ref, batch, cfg, micro_size)


def loss_mask(batch: RolloutBatch, cfg: GRPOConfig) -> torch.Tensor:
    """completion_mask, with truncated completions removed when DAPO's masking is on."""
    m = batch.completion_mask
    if cfg.mask_truncated_completions:
        m = m * (~batch.truncated).long().unsqueeze(-1)
    return m


class LogprobModel(torch.nn.Module):
    """``forward(micro-batch tensors) -> (logprobs, entropies)``: the training computation
    as one module, so that DDP (accelerate) can wrap it and synchronise its gradients."""

    def __init__(self, model: torch.nn.Module, temperature: float, chunk_size: int) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature
        self.chunk_size = chunk_size

    def forward(
        self,
        prompt_ids,
        prompt_mask,
        completion_ids,
        completion_mask,
        index,
        with_entropy: bool = True,
    ):
        mb = MicroBatch(prompt_ids, prompt_mask, completion_ids, completion_mask, index)
        return sequence_logprobs(
            self.model,
            mb,
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
) -> dict[str, float]:
    """Forward and backward over the micro-batches of one optimizer step; returns mean metrics.

    ``scorer`` is a :class:`LogprobModel`, possibly DDP-wrapped. DDP averages gradients over
    ``world`` ranks, so the token-normalised dapo loss (divided by the tokens of all ranks)
    is multiplied by ``world`` to stay a sum over the global batch.
    """
    mask = loss_mask(batch, cfg)
    advantages = advantages.to(mask.device)  # rewards are scored on the host
    n_micro = -(-batch.prompt_ids.shape[0] // micro_size)
    sums: dict[str, float] = {}
    ent_sum, ent_n = 0.0, 0
    for i, mb in enumerate(micro_batches(batch, micro_size, mask)):
        ctx = no_sync(scorer, i == n_micro - 1) if no_sync else contextlib.nullcontext()
        with ctx:
            lp, ent = scorer(
                mb.prompt_ids, mb.prompt_mask, mb.completion_ids, mb.completion_mask, mb.index
            )
            C = lp.shape[1]
            old = lp.detach() if old_logprobs is None else old_logprobs[mb.index, :C]
            ref = None if ref_logprobs is None else ref_logprobs[mb.index, :C]
            loss, metrics = policy_loss(
                logprobs=lp,
                old_logprobs=old,
                advantages=advantages[mb.index],
                completion_mask=mb.completion_mask,
                loss_type=cfg.loss_type,
                epsilon=cfg.epsilon,
                epsilon_high=cfg.epsilon_high,
                beta=cfg.beta,
                ref_logprobs=ref,
                grad_accum=n_micro,
                max_completion_length=cfg.max_completion_length,
                num_items_in_batch=num_items_in_batch,
                use_bias_correction_kl=cfg.use_bias_correction_kl,
            )
            scale = world if cfg.loss_type == "dapo" else 1
            (loss * scale).backward()
        metrics["loss"] = loss.item() * scale
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + (v if k == "loss" else v / n_micro)
        ent_sum += float((ent * mb.completion_mask).sum())
        ent_n += int(mb.completion_mask.sum())
    sums["entropy"] = ent_sum / max(ent_n, 1)
    return sums
