"""Rollout through Hugging Face ``generate`` (the reference engine).

``generate`` fills every knob its ``generation_config`` leaves unset (None) from the
model's own ``generation_config.json``: Qwen2.5-Instruct's sets ``repetition_penalty:
1.05``, ``top_k: 20``, ``top_p: 0.8``, ``temperature: 0.7``, and a model folder may set
``min_new_tokens``, ``no_repeat_ngram_size``, ``suppress_tokens``... Each of these changes the
distribution sampled, so the rollout would be off-policy for a loss that scores
softmax(logits / temperature). The engine therefore generates with a neutral model
``generation_config`` (transformers' global defaults) and sets every sampling knob from
:class:`SamplingParams` explicitly: top_k 0 (off) where r1zero's ``top_k`` is empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from transformers import GenerationConfig

from r1zero.rollout.base import RolloutBatch, SamplingParams, completion_mask_from_ids


@contextlib.contextmanager
def neutral_generation_config(model: torch.nn.Module) -> Iterator[None]:
    """Hide the model's own generation_config.json for the duration of one ``generate``."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = getattr(lm, "generation_config", None)
    lm.generation_config = GenerationConfig()
    try:
        yield
    finally:
        lm.generation_config = saved


def generation_config(params: SamplingParams, cache_implementation: str | None) -> GenerationConfig:
    """Every processor ``generate`` could add, pinned: sampling is exactly
    softmax(logits / temperature) restricted by top_p / top_k (and the repetition penalty
    only where one is asked for). Greedy decoding leaves the sampling knobs unset (they would
    only draw warnings); the neutral model config then supplies transformers' defaults."""
    sampling = dict(
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,  # 0: off (None would become transformers' default, 50)
        typical_p=1.0,
        min_p=0.0,
        epsilon_cutoff=0.0,
        eta_cutoff=0.0,
    )
    return GenerationConfig(
        max_new_tokens=params.max_new_tokens,
        min_new_tokens=params.max_new_tokens if params.ignore_eos else 0,
        min_length=0,
        do_sample=params.do_sample,
        num_beams=1,
        repetition_penalty=params.repetition_penalty,
        encoder_repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        renormalize_logits=False,
        eos_token_id=None if params.ignore_eos else list(params.eos_token_ids) or None,
        pad_token_id=params.pad_token_id,
        cache_implementation=cache_implementation,
        **(sampling if params.do_sample else {}),
    )


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
        gen_cfg = generation_config(params, self.cache_implementation)
        was_training = model.training
        model.eval()
        with neutral_generation_config(model):
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
