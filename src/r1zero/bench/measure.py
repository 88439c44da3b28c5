"""The measurements: rollout speed, update speed (MFU), the whole GRPO step, peak memory.

Every completion is forced to its full length (``ignore_eos``), so the work is fixed and
numbers compare across engines, runs and trainers. The step runs the same functions as
``r1zero train`` (``Policy``, the engine, ``prepare``, ``optimizer_step``); only the rewards
are random, since random weights write no text worth scoring.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from r1zero.algos import ADVANTAGES, selective_logprobs
from r1zero.config import Config, GRPOConfig
from r1zero.rollout import RolloutBatch, RolloutEngine, SamplingParams, get_engine
from r1zero.rollout.policy import Policy
from r1zero.train.experience import Experience
from r1zero.train.step import Optim, optimizer_step, prepare

GIB = 2**30


@dataclass(frozen=True)
class Workload:
    """The reference batch: prompts x generations sequences of prompt_len + completion_len."""

    prompts: int = 16
    num_generations: int = 8
    prompt_len: int = 150
    completion_len: int = 512

    @property
    def sequences(self) -> int:
        return self.prompts * self.num_generations

    @property
    def tokens(self) -> int:
        return self.sequences * (self.prompt_len + self.completion_len)


class ForcedLength:
    """Wraps an engine so that every call generates exactly ``max_new_tokens`` per row."""

    def __init__(self, engine: RolloutEngine) -> None:
        self.engine = engine

    def generate(self, model, prompt_ids, prompt_mask, params: SamplingParams, generator=None):
        forced = dataclasses.replace(params, ignore_eos=True)
        return self.engine.generate(model, prompt_ids, prompt_mask, forced, generator)


def make_engine(name: str) -> RolloutEngine:
    """``get_engine(name)``, plus ``fast_eager``: the fast engine without ``torch.compile``
    (CUDA graphs only), which starts in seconds where compiling a 3B model takes minutes."""
    if name == "fast_eager":
        from r1zero.rollout.fast import FastEngine

        return FastEngine(compile=False)
    return get_engine(name)


# ----------------------------------------------------------------------------- clocks
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[object, float]:
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None


# ----------------------------------------------------------------------------- inputs
def grpo_config(w: Workload, **overrides) -> GRPOConfig:
    """The reference run's algorithm settings (the tutorial's TRL YAML, r1zero key names)."""
    base = dict(
        num_generations=w.num_generations,
        max_completion_length=w.completion_len,
        max_prompt_length=256,
        beta=0.001,
        learning_rate=5e-7,
        lr_scheduler_type="constant",
        gradient_checkpointing=True,
        use_dynamic_bsz=False,  # the records' layout; --grpo use_dynamic_bsz=true as train's default
        loss_type="dapo",
        temperature=1.0,
    )
    return GRPOConfig(**(base | overrides))


def sampling(w: Workload, shape: dict) -> SamplingParams:
    eos = shape.get("eos_token_id")
    return SamplingParams(
        max_new_tokens=w.completion_len,
        eos_token_ids=(eos,) if isinstance(eos, int) else tuple(eos or ()),
        pad_token_id=shape.get("bos_token_id") or 0,
    )


def random_prompts(
    n: int, w: Workload, vocab: int, device: torch.device, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, w.prompt_len), generator=g)
    return ids.to(device), torch.ones_like(ids, device=device)


def experience(batch: RolloutBatch, w: Workload, seed: int) -> Experience:
    """Rollout -> rewards -> advantages as make_experience, with seeded random rewards."""
    n = batch.prompt_ids.shape[0]
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randint(0, 3, (n,), generator=g).float()  # like format + equation in {0, 1, 2}
    advantages = ADVANTAGES["grpo"](rewards, w.num_generations, scale_rewards="group")
    # On the batch's device: accumulate_gradients indexes advantages with a device index
    # (advantages[mb.index]), which a CPU tensor refuses when the index is on the GPU.
    advantages = advantages.to(batch.prompt_ids.device)
    return Experience(
        rows=[{}] * n,
        prompts=[""] * n,
        completions=[""] * n,
        batch=batch,
        rewards_per_func={"random": rewards},
        rewards=rewards,
        advantages=advantages,
    )


def fixed_batch(w: Workload, vocab: int, device: torch.device, seed: int) -> RolloutBatch:
    """A rollout's output without the rollout: random completions of full length."""
    ids, mask = random_prompts(w.sequences, w, vocab, device, seed)
    g = torch.Generator().manual_seed(seed + 1)
    comp = torch.randint(0, vocab, (w.sequences, w.completion_len), generator=g).to(device)
    full = torch.ones(w.sequences, dtype=torch.bool, device=device)
    return RolloutBatch(ids, mask, comp, torch.ones_like(comp), full)


def optimizer(model: torch.nn.Module, cfg: GRPOConfig) -> Optim:
    """AdamW, schedule (and the training module) exactly as ``r1zero train`` builds them."""
    from r1zero.train.distributed import Dist
    from r1zero.train.optim import build_optim

    return build_optim(model, Config(grpo=cfg), 1000, Dist())


# ----------------------------------------------------------------------------- measurements
def rollout_speed(
    model, engine_name: str, sequences: int, w: Workload, shape: dict, *, device, seed: int
) -> dict:
    """Generated tokens per second of one engine, after a warm-up call timed as
    ``first_call_s`` (compilation, graph capture). HF generate with the dynamic cache
    compiles nothing, so its warm-up generates only 8 tokens."""
    engine = ForcedLength(make_engine(engine_name))
    ids, mask = random_prompts(sequences, w, shape["vocab_size"], device, seed)
    params = sampling(w, shape)
    warm = dataclasses.replace(params, max_new_tokens=8) if engine_name == "hf" else params
    _, first = timed(lambda: engine.generate(model, ids, mask, warm), device)
    out, t = timed(lambda: engine.generate(model, ids, mask, params), device)
    assert isinstance(out, RolloutBatch)
    new = int(out.completion_mask.sum())
    assert new == sequences * w.completion_len, "forced length not honoured"
    return {
        "engine": engine_name,
        "sequences": sequences,
        "prompt_len": w.prompt_len,
        "new_tokens": w.completion_len,
        "seconds": t,
        "tok_per_s": new / t,
        "first_call_s": first,
    }


def update_speed(
    policy: Policy, opt: Optim, cfg: GRPOConfig, w: Workload, *, micro: int, repeats: int, seed: int
) -> dict:
    """``optimizer_step`` on a fixed experience (ref logprobs from the reference model)."""
    device = policy.device
    exp = experience(fixed_batch(w, policy.model.config.vocab_size, device, seed), w, seed)
    prepare(policy, exp, cfg, micro)
    optimizer_step(exp, opt, cfg, micro)  # warm-up (allocates AdamW state)
    times = [timed(lambda: optimizer_step(exp, opt, cfg, micro), device)[1]]
    times += [
        timed(lambda: optimizer_step(exp, opt, cfg, micro), device)[1] for _ in range(repeats - 1)
    ]
    t = statistics.median(times)
    return {
        "micro_batch": micro,
        "seconds": t,
        "all_seconds": times,
        "tokens": w.tokens,
        "tok_per_s": w.tokens / t,
    }


def grpo_step(
    policy: Policy, opt: Optim, cfg: GRPOConfig, w: Workload, *, micro: int, shape: dict, seed: int
) -> dict:
    """One whole step of the reference batch: rollout -> rewards/advantages -> ref logprobs
    -> update, each stage timed (device-synchronised), and its peak memory."""
    device = policy.device
    ids, mask = random_prompts(w.prompts, w, shape["vocab_size"], device, seed)
    ids, mask = (
        ids.repeat_interleave(w.num_generations, 0),
        mask.repeat_interleave(w.num_generations, 0),
    )
    reset_peak(device)
    sync(device)
    t0 = time.perf_counter()
    batch, t_roll = timed(
        lambda: policy.engine.generate(policy.model, ids, mask, sampling(w, shape)), device
    )
    exp, t_adv = timed(lambda: experience(batch, w, seed), device)
    _, t_lp = timed(lambda: prepare(policy, exp, cfg, micro), device)
    metrics, t_upd = timed(lambda: optimizer_step(exp, opt, cfg, micro), device)
    step_s = time.perf_counter() - t0
    return {
        "rollout_s": t_roll,
        "rewards_s": t_adv,
        "logprobs_s": t_lp,
        "update_s": t_upd,
        "step_s": step_s,
        "peak_gib": peak_gib(device),
        "micro_batch": micro,
        "loss": metrics["loss"],
        "kl": metrics.get("kl"),
        "grad_norm": metrics["grad_norm"],
    }


def head_cost(
    shape: dict, w: Workload, *, device, chunk_size: int, repeats: int = 3, impl=selective_logprobs
) -> dict:
    """The LM-head part of one optimizer step alone: ``selective_logprobs`` over every
    completion token, forward + backward (with entropy, as the update) and forward only (as
    the reference logprobs). Hidden states are random, the head has the shape's size."""
    n, H, V = w.sequences * w.completion_len, shape["hidden_size"], shape["vocab_size"]
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    head = torch.nn.Linear(H, V, bias=False, device=device, dtype=dtype)
    hidden = torch.randn(1, n, H, device=device, dtype=dtype, requires_grad=True)
    targets = torch.randint(0, V, (1, n), device=device)
    mask = torch.ones_like(targets)

    def train() -> None:
        lp, _ = impl(hidden, head, targets, mask, chunk_size=chunk_size, with_entropy=True)
        lp.sum().backward()

    def ref() -> None:
        with torch.no_grad():
            impl(hidden, head, targets, mask, chunk_size=chunk_size)

    train(), ref()  # warm-up
    t_train = statistics.median(timed(train, device)[1] for _ in range(repeats))
    t_ref = statistics.median(timed(ref, device)[1] for _ in range(repeats))
    matmul_s = 3 * 2 * n * H * V / 790e12  # fwd + 2 bwd products at a measured H100 rate
    return {
        "tokens": n,
        "chunk_size": chunk_size,
        "fwd_bwd_s": t_train,
        "fwd_only_s": t_ref,
        "matmul_floor_fwd_bwd_s": matmul_s,
    }
