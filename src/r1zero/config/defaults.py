"""Named sets of defaults for the keys a config leaves out (the ``defaults`` key).

A YAML written for TRL 0.14 (the tutorial's) relied on TRL 0.14.0's defaults for everything it
did not set; r1zero's own defaults follow later TRL. Each value below was read from TRL
v0.14.0's ``trl/trainer/grpo_config.py`` and ``grpo_trainer.py`` (and the transformers
``TrainingArguments`` it inherits), or from the tutorial's training script:

- loss: per-sequence mean over tokens, then mean over sequences (``loss_type: grpo``);
- sampling at temperature 0.9 (vLLM ``SamplingParams(temperature, max_tokens)``: no top-p,
  no top-k, no repetition penalty), but log-probabilities from the unscaled logits
  (``logprob_temperature: 1.0``; TRL divides by the temperature from 0.16 on);
- advantages ``(r - mean) / (std + 1e-4)`` per group (``scale_rewards: group``), KL the plain
  k3 estimator, one update per rollout (so the ratio is 1 and clipping never acts);
- ``per_device_train_batch_size`` counts prompts (``batch_unit: prompts``);
- the optimizer and schedule of ``TrainingArguments``: AdamW (0.9, 0.999, 1e-8), no weight
  decay, linear schedule, no warm-up, gradient clipping at 1.0.
"""

from __future__ import annotations

from typing import Any

TRL_0_14: dict[str, Any] = {
    "loss_type": "grpo",
    "advantage_estimator": "grpo",
    "scale_rewards": "group",
    "temperature": 0.9,
    "logprob_temperature": 1.0,
    "top_p": 1.0,
    "top_k": None,
    "learning_rate": 1e-6,
    "beta": 0.04,
    "max_prompt_length": 512,
    "max_completion_length": 256,
    "num_generations": 8,
    "per_device_train_batch_size": 1,
    "batch_unit": "prompts",
    "gradient_accumulation_steps": 8,
    "num_iterations": 1,
    "mask_truncated_completions": False,
    "lr_scheduler_type": "linear",
    "warmup_ratio": 0.0,
    "warmup_steps": 0,
    "weight_decay": 0.0,
    "adam_beta1": 0.9,
    "adam_beta2": 0.999,
    "adam_epsilon": 1e-8,
    "max_grad_norm": 1.0,
    "num_train_epochs": 3.0,
    "seed": 42,
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "r1zero": {},
    "trl-0.14": TRL_0_14,
    # The tutorial's train script passes three reward functions the YAML does not list, and
    # writes its prompt in Chinese with full-width punctuation.
    "datawhale-r1": {
        **TRL_0_14,
        "reward_funcs": ["format", "equation", "thought_len"],
        "prompt_template": "zh",
    },
}

DESCRIPTIONS: dict[str, str] = {
    "r1zero": "r1zero's own (later TRL: loss_type dapo, temperature 1.0; batches in prompts)",
    "trl-0.14": "TRL 0.14.0's GRPOConfig, which the tutorial ran",
    "datawhale-r1": "TRL 0.14.0's GRPOConfig plus the tutorial script's rewards and prompt",
}
