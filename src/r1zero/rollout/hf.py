"""Rollout through Hugging Face ``generate`` (the reference engine)."""

from __future__ import annotations

import torch
from transformers import GenerationConfig

from r1zero.rollout.base import RolloutBatch, SamplingParams, completion_mask_from_ids


class HFGenerateEngine:
    """``model.generate`` with the dynamic (default) or static KV cache."""

    def __init__(self, cache_implementation: str | None = None) -> None:
        self.cache_implementation = cache_implementation

    @torch.no_grad()
    def generate(
        self,
        model: torch.nn.Module,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        params: SamplingParams,
        generator: torch.Generator | None = None,
    ) -> RolloutBatch:
        eos = None if params.ignore_eos else list(params.eos_token_ids) or None
        gen_cfg = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            min_new_tokens=params.max_new_tokens if params.ignore_eos else None,
            do_sample=params.do_sample,
            temperature=params.temperature if params.do_sample else None,
            top_p=params.top_p if params.do_sample else None,
            top_k=params.top_k if params.do_sample else None,
            eos_token_id=eos,
            pad_token_id=params.pad_token_id,
            cache_implementation=self.cache_implementation,
        )
        was_training = model.training
        model.eval()
        out = model.generate(
            input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=gen_cfg
        )
        model.train(was_training)
        completion_ids = out[:, prompt_ids.shape[1] :]
        mask, truncated = completion_mask_from_ids(
            completion_ids, params.eos_token_ids, params.ignore_eos
        )
        completion_ids = completion_ids.masked_fill(mask == 0, params.pad_token_id)
        return RolloutBatch(prompt_ids, prompt_mask, completion_ids, mask, truncated)
