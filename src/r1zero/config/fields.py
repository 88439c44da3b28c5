"""The config fields: one dataclass per concern, TRL's key names, each documented once.

Keys are TRL's ``GRPOConfig`` / ``ModelConfig`` names plus the reference tutorial's
extras (``dataset_id_or_path``, ``swanlab``, ...), so an existing TRL YAML just works.
Each field is documented once, in its ``help``; ``r1zero train --help`` prints them.
Unknown keys fail with the closest valid name; accepted-but-unused keys warn once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml


class ConfigError(ValueError):
    """A one-line, user-facing configuration error."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class ModelConfig:
    """Which model to train and how (TRL ``ModelConfig`` names)."""

    model_name_or_path: str | None = _f(
        None,
        "Hub id or local folder of any HF causal LM. Empty: the embedded tiny model, built on first use and cached (no GPU, no network).",
    )
    model_revision: str = _f("main", "Hub revision (branch, tag or commit).")
    torch_dtype: str = _f(
        "auto",
        "Weights dtype: auto (bfloat16 on a GPU that supports it, else float32), bfloat16, float16 or float32. Alias: dtype.",
    )
    attn_implementation: str | None = _f(
        None,
        "Attention kernel passed to from_pretrained (sdpa, eager, flash_attention_2). flash_attention_2 falls back to sdpa with a warning where it is not installed.",
    )
    trust_remote_code: bool = _f(
        False,
        "Run the Python files a model folder ships (modeling_*.py named in its config.json), from the hub or a local folder alike: this executes that code, so only for models you trust. false: transformers refuses such a model with an error.",
    )
    use_peft: bool = _f(
        False,
        "Train a LoRA adapter through peft instead of all weights; the reference model is then the base with the adapter disabled (no second copy).",
    )
    lora_r: int = _f(16, "LoRA rank.")
    lora_alpha: int = _f(32, "LoRA scaling alpha (update scaled by alpha / r).")
    lora_dropout: float = _f(0.05, "Dropout on the LoRA branch.")
    lora_target_modules: list[str] | None = _f(
        None,
        "Module names to adapt; empty: every linear layer of attention and MLP ('all-linear').",
    )
    lora_task_type: str = _f("CAUSAL_LM", "peft task type.")


@dataclass
class DataConfig:
    """Where problems come from and how they are shown to the model."""

    dataset_id_or_path: str | None = _f(
        None,
        "Countdown rows (nums, target): a hub id such as Jiayi-Pan/Countdown-Tasks-3to4, a parquet/json/jsonl/arrow file, or a datasets save_to_disk folder. Empty: generate problems offline with the seed. Alias: dataset_name.",
    )
    dataset_splits: str = _f("train", "Split to load from the dataset.")
    num_samples: int = _f(
        50_000,
        "Rows taken after a seeded shuffle (the tutorial's 50,000) before the train/test split.",
    )
    test_size: float = _f(
        0.1, "Fraction of the selected rows held out for evaluation (the tutorial's 90/10 split)."
    )
    skip_malformed: bool = _f(
        False, "Drop malformed rows (and say how many) instead of failing on the first."
    )
    prompt_template: str = _f(
        "zh",
        "Prompt: zh (the Datawhale tutorial's Chinese text), en (mini-r1's English text) or short (one sentence; the embedded tiny model's).",
    )
    prompt_user: str | None = _f(
        None,
        "Custom user instruction with {numbers} and {target} placeholders; replaces the template's.",
    )
    assistant_prefix: str | None = _f(
        None,
        "Custom pre-filled start of the assistant turn (the model continues it); default ends with '<think>'.",
    )
    eval_num_samples: int = _f(
        200,
        "Held-out problems scored (greedy) before the first and after the last step; 0 disables.",
    )
    eval_steps: int = _f(0, "Also evaluate every this many steps; 0: only before and after.")
    eval_pass_k: int = _f(
        0, "Also sample k completions per held-out problem for pass@k; 0 disables."
    )


@dataclass
class GRPOConfig:
    """The algorithm, the batch and the optimizer (TRL ``GRPOConfig`` names)."""

    num_generations: int = _f(8, "Completions sampled per prompt (the group G of GRPO).")
    per_device_train_batch_size: int = _f(
        1,
        "Prompts per process per micro-step (TRL 0.14 semantics, as in the tutorial's YAML); each brings num_generations completions. See batch_unit.",
    )
    batch_unit: str = _f(
        "prompts",
        "Unit of per_device_train_batch_size: prompts (TRL <= 0.14, the tutorial) or completions (TRL >= 0.15; must divide by num_generations).",
    )
    gradient_accumulation_steps: int = _f(
        1, "Micro-steps per optimizer step; the rollout of one step covers all of them."
    )
    max_steps: int = _f(
        -1, "Optimizer steps; -1: num_train_epochs passes over the training prompts."
    )
    num_train_epochs: float = _f(1.0, "Passes over the training prompts when max_steps is -1.")
    learning_rate: float = _f(
        1e-6, "Peak AdamW learning rate (TRL's GRPO default; the tutorial used 5e-7)."
    )
    lr_scheduler_type: str = _f(
        "linear", "transformers scheduler name: linear, cosine, constant, constant_with_warmup, ..."
    )
    warmup_ratio: float = _f(0.0, "Fraction of max_steps spent warming up the learning rate.")
    warmup_steps: int = _f(0, "Warm-up steps; overrides warmup_ratio when > 0.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    adam_beta1: float = _f(0.9, "AdamW beta1.")
    adam_beta2: float = _f(0.999, "AdamW beta2.")
    adam_epsilon: float = _f(1e-8, "AdamW epsilon.")
    max_grad_norm: float = _f(1.0, "Clip the global gradient norm to this; 0 disables.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward to save memory.")
    gradient_checkpointing_kwargs: dict | None = _f(
        None, "Passed to gradient_checkpointing_enable (e.g. use_reentrant: false)."
    )
    bf16: bool | None = _f(
        None,
        "bfloat16 weights and compute; empty: on where the GPU supports it. The optimizer then updates fp32 master weights (see master_weights).",
    )
    master_weights: bool | None = _f(
        None,
        "Keep fp32 master weights for AdamW when the trained weights are bf16/fp16 (4 more bytes per parameter), as DeepSpeed's bf16 mode does; without them updates below the bf16 spacing (lr 5e-7 on a weight near 0.02: 1.2e-4) are rounded away. Empty: on whenever trainable weights are bf16/fp16.",
    )
    torch_compile: bool = _f(
        False,
        "Compile the layers' norms and MLPs for training (regional torch.compile, seconds; see r1zero/compile.py).",
    )
    tf32: bool | None = _f(None, "Allow TF32 matmuls on Ampere+ GPUs.")
    beta: float = _f(
        0.0,
        "KL coefficient (k3 estimator against the reference model). 0 loads no reference model. The tutorial used 0.001; the GRPO paper 0.04.",
    )
    use_bias_correction_kl: bool = _f(
        False,
        "Weight the k3 KL term by the importance ratio pi/pi_old (unbiased off-policy). Off here, as in the tutorial's TRL 0.14 (plain k3); TRL 1.16's default is true.",
    )
    epsilon: float = _f(0.2, "Lower clip range of the importance ratio (PPO/GRPO clipping).")
    epsilon_high: float | None = _f(
        None, "Upper clip range; empty: same as epsilon. DAPO's clip-higher recommends 0.28."
    )
    loss_type: str = _f(
        "dapo",
        "Loss aggregation: grpo (mean per sequence, then batch), bnpo (tokens of the micro-batch), dr_grpo (constant normaliser max_completion_length; Dr. GRPO), dapo (tokens of the whole step; DAPO).",
    )
    advantage_estimator: str = _f(
        "grpo",
        "grpo (group mean/std per scale_rewards), dr_grpo (group mean, no std; Dr. GRPO), rloo (leave-one-out baseline).",
    )
    scale_rewards: str = _f(
        "group",
        "Std used by the grpo advantage: group, batch or none (TRL's values; true/false map to group/none).",
    )
    num_iterations: int = _f(
        1,
        "Optimizer steps per rollout (mu in the GRPO paper); > 1 reuses rollouts against their old logprobs.",
    )
    mask_truncated_completions: bool = _f(
        False, "Exclude completions without EOS from the loss (DAPO)."
    )
    dynamic_sampling: bool = _f(
        False,
        "DAPO dynamic sampling: drop groups whose rewards are all equal and refill with new prompts (up to dynamic_sampling_max_tries rollouts).",
    )
    dynamic_sampling_max_tries: int = _f(
        3, "Rollouts per step at most when dynamic_sampling refills."
    )
    overlong_buffer_len: int = _f(
        0,
        "DAPO overlong shaping: penalise completions in the last this many tokens before max_completion_length linearly; 0 disables.",
    )
    overlong_penalty_factor: float = _f(
        1.0, "Largest overlong penalty (reached at max_completion_length)."
    )
    max_prompt_length: int | None = _f(256, "Prompt tokens kept (left-truncated); empty: no limit.")
    max_completion_length: int = _f(
        512,
        "Largest number of new tokens; completions without EOS by then are truncated (logged as completions/clipped_ratio).",
    )
    temperature: float = _f(1.0, "Sampling temperature for rollouts.")
    logprob_temperature: float | None = _f(
        None,
        "Temperature at which the loss scores completions (logits / T); empty: the sampling temperature, as TRL >= 0.16 does. TRL 0.14 sampled at temperature but scored the unscaled logits (1.0).",
    )
    top_p: float = _f(1.0, "Nucleus sampling for rollouts.")
    top_k: int | None = _f(None, "Top-k sampling for rollouts; empty or 0 disables.")
    repetition_penalty: float = _f(
        1.0,
        "Rollout repetition penalty (TRL's key, 1.0: none). Other values sample from a distribution the loss does not score (off-policy) and need rollout_engine hf or hf_static (the fast engine has no penalty). A model's own generation_config.json never applies one.",
    )
    reward_funcs: list[str] = _f(
        ["format", "equation"],
        "Rewards summed into the return: format, equation, thought_len, or your own as module:function or path/to/file.py:function with TRL's signature. The tutorial used format, equation, thought_len. Your own entries are code: file.py:fn imports and runs that file, so a config.yaml from someone else can run code; read its reward_funcs first.",
    )
    reward_weights: list[float] | None = _f(None, "One weight per reward function; empty: all 1.")
    rollout_engine: str = _f(
        "auto",
        "auto (fast on GPU, hf on CPU), hf (HF generate), hf_static (static cache) or fast (r1zero's static-cache engine with a CUDA-graph decode step).",
    )
    logprob_chunk_size: int = _f(
        1024,
        "Tokens per chunk when computing log-probabilities from the LM head, so the [B, T, V] float32 logits never exist at once.",
    )
    use_dynamic_bsz: bool = _f(
        True,
        "veRL's key: run the update and the frozen log-probs in forward passes under a token budget (ppo_max_token_len_per_gpu, log_prob_max_token_len_per_gpu) instead of per_device_train_batch_size prompts each: sequences sorted by length, prompt and completion contiguous, right-padded, no attention mask. The loss and the optimizer step do not change: every token keeps the weight its micro-step gives it (bnpo still divides by the tokens of each per_device_train_batch_size micro-step, not of a pass). On by default: at the tutorial's lengths a 3B update took 5.7 s a step on an H200, against 17-18 s in fixed slices, where one long completion makes its whole slice pay for its length. Off: fixed slices, as generated.",
    )
    padding_free: bool = _f(
        False,
        "TRL's key: like use_dynamic_bsz, but each pass is one row of sequences packed end to end (position ids restart at each; transformers masks attention across them), so no padding at all. Pays with attn_implementation flex_attention; with sdpa the mask is dense (T x T scores per row).",
    )
    ppo_max_token_len_per_gpu: int = _f(
        16384,
        "veRL's key: tokens (prompt + completion, padding included) per forward/backward pass of the update under use_dynamic_bsz or padding_free. 16384 fits a 3B model's full fine-tune on an 80 GB GPU; a sequence longer than this gets a pass of its own.",
    )
    log_prob_max_token_len_per_gpu: int = _f(
        32768,
        "veRL's key: tokens per forward pass of the frozen log-probs (old policy, reference) under use_dynamic_bsz or padding_free; no activations are kept for a backward, so twice the update's budget.",
    )
    defaults: str = _f(
        "r1zero",
        "Which defaults fill the keys a config leaves out: r1zero (these), trl-0.14 (TRL 0.14.0's GRPOConfig, which the tutorial ran) or datawhale-r1 (trl-0.14 plus the tutorial script's three rewards and Chinese prompt). See r1zero/config/defaults.py.",
    )
    seed: int = _f(
        42,
        "Seeds data order, sampling, dropout and initialisation; a resumed run continues the same streams.",
    )

    @property
    def scoring_temperature(self) -> float:
        """The temperature of the log-probabilities the loss and KL use."""
        if self.logprob_temperature is not None:
            return self.logprob_temperature
        return self.temperature


@dataclass
class RunConfig:
    """Output, logging and checkpoints (transformers ``TrainingArguments`` names)."""

    output_dir: str = _f(
        "runs/r1zero",
        "Run folder: config, metrics.jsonl, completions, TensorBoard events, checkpoints, final model. r1zero marks a folder it starts with r1zero-run.json and writes only into a new or empty folder or one it marked; running the same command again resumes that run (or says it is finished). To start fresh on purpose, pass a new output_dir: r1zero never wipes a run.",
    )
    run_name: str | None = _f(None, "Name shown in loggers; default: the output folder's name.")
    report_to: list[str] = _f(
        ["tensorboard"],
        "Loggers: tensorboard, swanlab, wandb or none (swanlab and wandb are optional extras).",
    )
    logging_steps: int = _f(
        1, "Print a progress line every this many steps (metrics.jsonl gets every step)."
    )
    save_strategy: str = _f("steps", "steps: save every save_steps; no: only the final model.")
    save_steps: int = _f(50, "Save a checkpoint every this many steps.")
    save_total_limit: int | None = _f(
        2,
        "Checkpoints kept (oldest deleted first); empty keeps all. Only the newest holds optimizer state.",
    )
    save_only_model: bool = _f(
        False, "Never write optimizer/RNG state (checkpoints can then not be resumed)."
    )
    resume_from_checkpoint: str | None = _f(
        None,
        "Empty or true: continue from the newest checkpoint in output_dir when it holds this run (what re-running the same command does); a checkpoint path: continue from it (into a new output_dir, or this run's own); false: never resume, and refuse a folder that already holds a checkpoint. Same data order and RNG streams as an uninterrupted run; changed learning-rate or batch keys warn once each.",
    )
    log_completions: bool = _f(
        True,
        "Write every completion of every step to completions/step-NNNNNN.jsonl.gz (the report reads them).",
    )
    deterministic: bool = _f(
        False,
        "torch.use_deterministic_algorithms (bit-identical CPU runs for tests; slower on GPU).",
    )
    swanlab: bool = _f(
        False, "Log to SwanLab (the tutorial's key; same as adding swanlab to report_to)."
    )
    workspace: str | None = _f(None, "SwanLab workspace.")
    project: str | None = _f(None, "SwanLab / wandb project.")
    experiment_name: str | None = _f(None, "SwanLab experiment name.")
    live: bool = _f(
        True, "Show the live rich display (reward, accuracy and length curves) in a terminal."
    )


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "grpo": GRPOConfig,
    "run": RunConfig,
}

ALIASES = {"dtype": "torch_dtype", "dataset_name": "dataset_id_or_path"}

# Accepted so that TRL / tutorial files load, but not acted on: each warns once.
UNUSED: dict[str, str] = {
    "use_vllm": "r1zero generates with its own engine on the training GPU (rollout_engine)",
    "vllm_device": "no vLLM: no GPU is set aside for generation",
    "vllm_gpu_memory_utilization": "no vLLM",
    "vllm_mode": "no vLLM",
    "logging_strategy": "metrics.jsonl gets every step",
    "fp16": "use bf16 or float32",
    "dataloader_num_workers": "prompts are tiny; no worker processes",
    "remove_unused_columns": "dataset columns are always passed to reward functions",
    "log_level": "r1zero prints its own progress",
    "ddp_find_unused_parameters": "set by accelerate",
    "push_to_hub": "push the output folder yourself",
    "hub_model_id": "push the output folder yourself",
    "overwrite_output_dir": "an existing run folder is resumed or refused, never overwritten",
    "do_eval": "evaluation runs on eval_num_samples held-out problems",
    "eval_strategy": "see eval_steps",
    "per_device_eval_batch_size": "evaluation batches all held-out prompts",
    "ds3_gather_for_generation": "no DeepSpeed ZeRO-3 generation path",
    "load_in_4bit": "quantised loading is not supported yet",
    "load_in_8bit": "quantised loading is not supported yet",
}


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    run: RunConfig = field(default_factory=RunConfig)
    explicit: set[str] = field(default_factory=set)
    """Keys the user set (file or command line), so presets fill only the rest."""
    unused: dict[str, Any] = field(default_factory=dict)
    from_defaults: dict[str, Any] = field(default_factory=dict)
    """Keys filled by the named ``defaults`` set (shown in the start-up banner)."""
    tiny: bool = False
    """The embedded tiny model is in use (no model_name_or_path was given)."""

    def flat(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for sec in SECTIONS:
            out.update(dataclasses.asdict(getattr(self, sec)))
        return out


def all_fields() -> dict[str, tuple[str, dataclasses.Field]]:
    """Every valid key -> (section, field)."""
    return {f.name: (sec, f) for sec, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


def prompts_per_micro_step(g: GRPOConfig) -> int:
    if g.batch_unit == "completions":
        return g.per_device_train_batch_size // g.num_generations
    return g.per_device_train_batch_size


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.flat(), sort_keys=False, allow_unicode=True)


def help_rows() -> list[tuple[str, str, str, str]]:
    """(section, key, default, help) for ``r1zero train --help``."""
    rows = []
    for sec, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            rows.append((sec, f.name, repr(default), f.metadata["help"]))
    return rows
