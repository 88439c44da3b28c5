"""The two sides of the TRL differential test (tests/test_parity_trl.py).

TRL 1.16's real ``GRPOTrainer`` is built offline around a tiny random float64 Qwen2; only its
rollout is replaced (``_generate`` returns fixed prompts and completions: some hit EOS, some
are truncated, prompts of different lengths), so TRL's own reward, advantage, log-prob and
``compute_loss`` code produces the numbers. r1zero's side runs its training code on the same
rollout: ``score`` / ``combine`` / the advantage estimators, ``frozen_logprobs`` /
``reference_logprobs``, and ``accumulate_gradients`` (micro-batches, gradient accumulation,
``policy_loss``).

Two levels:
- the loss math in float64: both sides score the same float64 leaf tensor of per-token
  log-probs (TRL's ``_get_per_token_logps_and_entropies`` and r1zero's scorer return slices of
  it), so loss and d loss / d logprobs must agree to rounding, for every setting (float32
  rounding while r1zero's per-token loss weights are float32, see test_parity_trl.py);
- end to end: real models and both libraries' own log-prob kernels, gradients of every
  weight. Both keep log-probs in float32 (TRL's fused LM head accumulates in float32, r1zero
  rounds its float64 values to float32), so these agree to float32 rounding only.

Level 2 is in tests/trl_parity_e2e.py. ``R1ZERO_PARITY_TABLE=FILE pytest tests/test_parity_trl.py``
writes every comparison and its largest relative difference to FILE.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from helpers import random_qwen2
from r1zero.algos import ADVANTAGES
from r1zero.config import GRPOConfig
from r1zero.rollout import RolloutBatch
from r1zero.task.rewards import combine, score
from r1zero.train.update import accumulate_gradients, loss_mask

VOCAB, G, PROMPTS, MAX_C, TEMPERATURE, BETA = 40, 4, 4, 6, 0.7, 0.04
N = G * PROMPTS
PAD, EOS = 0, 1
WEIGHTS = [1.0, 0.5]
# rows 5 and 10: one function abstains; row 13: both abstain (unscorable)
TABLE_A = [1.0, 0.0, 2.0, 1.0, 0.0, None, 1.0, 3.0, 2.0, 2.0, 1.0, 0.0, 1.0, None, 0.0, 2.0]
TABLE_B = [0.5, 1.0, 0.0, 0.0, 1.0, 1.0, math.nan, 0.0, 1.0, 0.0, math.nan, 1.0, 0.0, math.nan]
TABLE_B += [1.0, 0.0]


def reward_a(completions, row, **kwargs):
    return [TABLE_A[r] for r in row]


def reward_b(completions, row, **kwargs):
    return [TABLE_B[r] for r in row]


def flat_reward(completions, row, **kwargs):
    """Every function defined, no NaN: the plain case."""
    return [float((r * 7) % 5) for r in row]


def rel_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - b| / max |b|: one number per comparison, 0 for identical tensors."""
    a, b = actual.detach().double().flatten(), expected.detach().double().flatten()
    scale = b.abs().max().item() if b.numel() else 0.0
    return (a - b).abs().max().item() / max(scale, 1e-300) if b.numel() else 0.0


def loss_diff(actual: float, expected: float) -> float:
    """|a - b| relative to |b|, or to 1e-3 where the loss itself is about 0 (on-policy,
    beta 0: the advantages sum to 0 up to float32 rounding)."""
    return abs(actual - expected) / max(abs(expected), 1e-3)


def word_tokenizer():
    """One token per word ``w<id>``; pad 0, EOS 1 (prompts arrive as ids, text only for logs)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(2, VOCAB)} | {"<pad>": PAD, "<eos>": EOS}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>", padding_side="left"
    )


def fixed_rollout(seed: int = 0) -> tuple[list[list[int]], list[list[int]]]:
    """Prompts of 3-5 tokens (left padding differs), completions of 1-6 tokens; every 4th
    has no EOS (truncated). Groups of G share a prompt."""
    g = torch.Generator().manual_seed(seed)
    prompts, completions = [], []
    for p in range(PROMPTS):
        prompt = torch.randint(2, VOCAB, (3 + p % 3,), generator=g).tolist()
        for j in range(G):
            i = p * G + j
            c = torch.randint(2, VOCAB, (1 + (i * 5) % MAX_C,), generator=g).tolist()
            if i % 4 != 3:
                c[-1] = EOS
            prompts.append(prompt)
            completions.append(c)
    return prompts, completions


@dataclass
class Harness:
    """One TRL trainer (with a reference model) and r1zero's copy of the same weights."""

    trainer: object
    model: torch.nn.Module  # r1zero's policy (same initial weights as trainer.model)
    ref_model: torch.nn.Module
    prompts: list[list[int]]
    completions: list[list[int]]
    initial: dict[str, torch.Tensor] = field(default_factory=dict)


def build(workdir: Path, reward_funcs=(reward_a, reward_b), weights=WEIGHTS) -> Harness:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer

    model_dir = workdir / "model"
    random_qwen2(
        vocab=VOCAB, hidden=32, intermediate=64, layers=2, max_positions=64, eos_token_id=EOS
    ).double().save_pretrained(model_dir)
    tok = word_tokenizer()
    args = TRLConfig(
        output_dir=str(workdir / "trl"),
        per_device_train_batch_size=N // 2,
        gradient_accumulation_steps=2,
        num_generations=G,
        max_completion_length=MAX_C,
        temperature=TEMPERATURE,
        beta=BETA,  # so that TRL builds its reference model; cases set trainer.beta
        reward_weights=list(weights),
        model_init_kwargs={"dtype": "auto"},  # the saved float64
        use_cpu=True,
        bf16=False,  # TRL's default is true: bf16 autocast, on CPU too
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    data = Dataset.from_dict({"prompt": ["w2"] * N, "row": list(range(N))})
    trainer = GRPOTrainer(
        model=str(model_dir),
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=data,
        processing_class=tok,
    )
    assert trainer.compute_loss_func is not None  # HF's training_step does not rescale the loss
    prompts, completions = fixed_rollout()
    texts = [tok.decode(c) for c in completions]
    trainer._generate = lambda _: (prompts, completions, None, texts, None, {}, None, [])

    def load():
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64).train()

    h = Harness(trainer, load(), load().eval(), prompts, completions)
    h.initial = {k: v.detach().clone() for k, v in h.model.state_dict().items()}
    return h


@dataclass(frozen=True)
class Case:
    loss_type: str = "grpo"
    beta: float = 0.0
    epsilon_high: float | None = None
    off_policy: bool = False
    grad_accum: int = 2
    scale_rewards: str = "group"
    use_bias_correction_kl: bool = False
    mask_truncated_completions: bool = False

    @property
    def name(self) -> str:
        bits = [self.loss_type, f"beta={self.beta:g}", f"eps_high={self.epsilon_high}"]
        bits += ["off" if self.off_policy else "on", f"ga={self.grad_accum}"]
        if self.scale_rewards != "group":
            bits.append(f"scale={self.scale_rewards}")
        if self.use_bias_correction_kl:
            bits.append("bias_kl")
        if self.mask_truncated_completions:
            bits.append("mask_trunc")
        return " ".join(bits)


def r1zero_config(case: Case) -> GRPOConfig:
    return GRPOConfig(
        loss_type=case.loss_type,
        beta=case.beta,
        epsilon=0.2,
        epsilon_high=case.epsilon_high,
        num_generations=G,
        max_completion_length=MAX_C,
        temperature=TEMPERATURE,
        scale_rewards=case.scale_rewards,
        use_bias_correction_kl=case.use_bias_correction_kl,
        mask_truncated_completions=case.mask_truncated_completions,
        num_iterations=2 if case.off_policy else 1,
        reward_weights=list(WEIGHTS),
    )


def configure_trl(h: Harness, case: Case) -> None:
    """The settings TRL reads at loss time, set as its __init__ would from GRPOConfig."""
    t = h.trainer
    t.model.train()  # TRL divides by gradient accumulation in train mode only
    t.loss_type, t.beta, t.scale_rewards = case.loss_type, case.beta, case.scale_rewards
    t.epsilon_low = 0.2
    t.epsilon_high = 0.2 if case.epsilon_high is None else case.epsilon_high
    t.args.use_bias_correction_kl = case.use_bias_correction_kl
    t.mask_truncated_completions = case.mask_truncated_completions
    t.args.steps_per_generation = case.grad_accum
    t.args.gradient_accumulation_steps = case.grad_accum
    t.current_gradient_accumulation_steps = case.grad_accum
    t.num_iterations = 2 if case.off_policy else 1  # TRL then computes old log-probs


def trl_experience(h: Harness, case: Case) -> dict:
    """TRL's own _generate_and_score_completions on the fixed rollout."""
    configure_trl(h, case)
    h.trainer.model.load_state_dict(h.initial)
    inputs = [{"prompt": "w2", "row": i} for i in range(N)]
    return h.trainer._generate_and_score_completions(inputs)


def rollout_batch(out: dict) -> RolloutBatch:
    ids = out["completion_ids"]
    truncated = torch.tensor([c[-1] != EOS for c in fixed_rollout()[1]])
    mask = torch.ones_like(ids).masked_fill(ids == PAD, 0)  # TRL pads with PAD after the end
    return RolloutBatch(out["prompt_ids"], out["prompt_mask"], ids, mask, truncated)


@contextlib.contextmanager
def reward_funcs(h: Harness, funcs) -> Iterator[None]:
    """Swap TRL's reward functions (and weights) for the duration of a comparison."""
    t = h.trainer
    saved = (t.reward_funcs, t.reward_func_names, t.reward_weights, t.reward_processing_classes)
    t.reward_funcs, t.reward_func_names = list(funcs), [f.__name__ for f in funcs]
    t.reward_weights = torch.tensor(WEIGHTS[: len(funcs)], dtype=torch.float32)
    t.reward_processing_classes = [None] * len(funcs)
    try:
        yield
    finally:
        t.reward_funcs, t.reward_func_names, t.reward_weights, t.reward_processing_classes = saved


def r1zero_advantages(case: Case, reward_funcs=(reward_a, reward_b), estimator="grpo"):
    """score -> combine -> advantage estimator, as make_experience does."""
    rows = [{"row": i} for i in range(N)]
    funcs = [(f.__name__, f) for f in reward_funcs]
    per_func = score(funcs, ["" for _ in range(N)], rows)
    weights = WEIGHTS[: len(funcs)]
    rewards = torch.tensor(combine({k: v.tolist() for k, v in per_func.items()}, weights))
    return ADVANTAGES[estimator](rewards, G, scale_rewards=case.scale_rewards)


def micro_slices(case: Case) -> list[slice]:
    size = N // case.grad_accum
    return [slice(s, s + size) for s in range(0, N, size)]


def _micro_inputs(out: dict, sl: slice) -> dict:
    return {k: (v[sl] if torch.is_tensor(v) and v.dim() > 0 else v) for k, v in out.items()}


# ------------------------------------------------------------- level 1: loss math in float64


def synthetic_logprobs(seed: int) -> dict[str, torch.Tensor]:
    """(N, MAX_C) float64 log-probs: live (a leaf), old and ref ones off by up to +-0.5 (so
    ratios leave [0.8, 1.28] and clipping binds on some tokens)."""
    g = torch.Generator().manual_seed(seed)
    live = -torch.rand(N, MAX_C, generator=g, dtype=torch.float64) * 3 - 0.05
    return {
        "live": live,
        "old": live + (torch.rand(N, MAX_C, generator=g, dtype=torch.float64) - 0.5),
        "ref": live + (torch.rand(N, MAX_C, generator=g, dtype=torch.float64) - 0.5) * 0.6,
    }


def trl_loss_math(h: Harness, case: Case, out: dict, lp: dict) -> tuple[float, torch.Tensor]:
    """TRL's compute_loss over the micro-batches, its log-probs replaced by the leaf."""
    leaf = lp["live"].clone().requires_grad_(True)
    rows: list[slice] = []
    t = h.trainer

    def fake_logps(model, input_ids, attention_mask, logits_to_keep, **kw):
        return leaf[rows[0], :logits_to_keep], torch.zeros_like(leaf[rows[0]]), None

    t._get_per_token_logps_and_entropies = fake_logps
    total = 0.0
    try:
        for sl in micro_slices(case):
            rows[:] = [sl]
            mb = _micro_inputs(out, sl)
            mb["ref_per_token_logps"] = lp["ref"][sl]
            if case.off_policy:
                mb["old_per_token_logps"] = lp["old"][sl]
            else:
                mb.pop("old_per_token_logps", None)
            loss = t.compute_loss(t.model, mb)
            loss.backward()
            total += loss.item()
    finally:
        del t._get_per_token_logps_and_entropies
    return total, leaf.grad


class LeafScorer(torch.nn.Module):
    """Stands in for LogprobModel: returns the leaf's rows for each forward pass. A pass
    names its rows only through its tokens, so rows are found by their non-pad tokens
    (prompt + completion: unique in the fixed rollout)."""

    def __init__(self, leaf: torch.Tensor, batch: RolloutBatch) -> None:
        super().__init__()
        self.leaf = leaf
        full = torch.cat([batch.prompt_ids, batch.completion_ids], 1)
        self.row_of = {_tokens(r): i for i, r in enumerate(full)}
        assert len(self.row_of) == N

    def forward(self, input_ids, position_ids, attention_mask, gather_index, completion_ids, *_):
        rows = [self.row_of[_tokens(r)] for r in input_ids]
        lp = self.leaf[rows, : completion_ids.shape[1]]
        return lp, torch.zeros_like(lp.detach())


def _tokens(row: torch.Tensor) -> tuple[int, ...]:
    return tuple(x for x in row.tolist() if x != PAD)


def r1zero_loss_math(
    case: Case,
    batch: RolloutBatch,
    advantages: torch.Tensor,
    lp: dict,
    cfg: GRPOConfig | None = None,
) -> tuple[float, torch.Tensor]:
    cfg = cfg or r1zero_config(case)
    leaf = lp["live"].clone().requires_grad_(True)
    metrics = accumulate_gradients(
        LeafScorer(leaf, batch),
        batch,
        advantages.double(),
        cfg,
        micro_size=N // case.grad_accum,
        old_logprobs=lp["old"] if case.off_policy else None,
        ref_logprobs=lp["ref"] if cfg.beta > 0 else None,
        num_items_in_batch=int(loss_mask(batch, cfg).sum()),
    )
    return metrics["loss"], leaf.grad


# ------------------------------------------------------------- the matrix


LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")


def loss_cases() -> list[Case]:
    """Every loss_type x beta x epsilon_high x on/off-policy x gradient accumulation."""
    return [
        Case(lt, beta, eh, off, ga)
        for lt in LOSS_TYPES
        for beta in (0.0, BETA)
        for eh in (None, 0.28)
        for off in (False, True)
        for ga in (1, 2)
    ]


def option_cases() -> list[Case]:
    """The KL and masking options on top: bias-corrected KL, truncated-completion masking."""
    out = [
        Case(lt, BETA, None, off, 2, use_bias_correction_kl=True)
        for lt in LOSS_TYPES
        for off in (False, True)
    ]
    out += [Case(lt, BETA, 0.28, True, 2, mask_truncated_completions=True) for lt in LOSS_TYPES]
    return out
