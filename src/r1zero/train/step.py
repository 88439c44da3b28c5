"""One GRPO step, top to bottom: rollout -> rewards -> advantages -> logprobs -> loss -> update.

GRPO (Shao et al. 2024): sample G completions per prompt, score them with rule-based
rewards, use the group-normalised reward as every token's advantage, and maximise the
clipped surrogate minus beta * KL(pi || pi_ref). No value network.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from r1zero.algos import zero_std_fraction
from r1zero.algos.advantages import informative_groups, nanstd
from r1zero.config import GRPOConfig
from r1zero.rollout.policy import Policy
from r1zero.task.tasks import Task
from r1zero.train.distributed import Dist
from r1zero.train.experience import Experience, concat, keep_groups, make_experience
from r1zero.train.update import accumulate_gradients, frozen_logprobs, loss_mask, reference_logprobs


@dataclass
class Optim:
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    params: list[torch.nn.Parameter]
    scorer: torch.nn.Module  # LogprobModel over the policy, DDP-wrapped when distributed
    dist: Dist = field(default_factory=Dist)


def collect(
    policy: Policy, prompts: Iterator[list[dict]], cfg: GRPOConfig, reward_funcs: list
) -> Experience:
    """Rollout and score one step's prompts; with DAPO dynamic sampling, replace
    zero-std groups by fresh prompts for up to ``dynamic_sampling_max_tries`` rollouts."""
    rows = next(prompts)
    exp = make_experience(policy, rows, cfg, reward_funcs)
    if not cfg.dynamic_sampling:
        return exp
    want, G = len(rows), cfg.num_generations
    kept: Experience | None = None
    for attempt in range(cfg.dynamic_sampling_max_tries):
        if attempt:
            exp = make_experience(policy, next(prompts), cfg, reward_funcs)
        useful = informative_groups(exp.rewards, G)  # NaN (abstained) rewards left out
        exp = keep_groups(exp, useful, G)
        kept = exp if kept is None else concat(kept, exp, policy.tokenizer.pad_token_id)
        if len(kept.rows) >= want * G:
            break
    assert kept is not None
    if len(kept.rows) == 0:  # every group flat: train on nothing useful, keep the last rollout
        return make_experience(policy, rows, cfg, reward_funcs)
    return keep_groups(kept, torch.arange(len(kept.rows) // G) < want, G)


def prepare(
    policy: Policy, exp: Experience, cfg: GRPOConfig, micro_size: int, dist: Dist | None = None
) -> None:
    """Logprobs the loss needs besides the live ones: old (num_iterations > 1) and reference (beta > 0)."""
    t0 = time.perf_counter()
    agree = _agree(dist)
    if cfg.num_iterations > 1:
        exp.old_logprobs = frozen_logprobs(policy.model, exp.batch, cfg, micro_size, agree)
    if cfg.beta > 0:
        exp.ref_logprobs = reference_logprobs(
            policy.model, policy.ref_model, exp.batch, cfg, micro_size, agree
        )
    exp.timings["time/logprobs"] = time.perf_counter() - t0


def _agree(dist: Dist | None) -> Callable[[int], int] | None:
    """The largest count over ranks: token-budget passes differ in number between ranks,
    and every rank must run as many (each forward and backward meets the others')."""
    if dist is None or dist.world == 1:
        return None
    return lambda n: max(dist.gather(n))


def optimizer_step(
    exp: Experience,
    opt: Optim,
    cfg: GRPOConfig,
    micro_size: int,
    num_items: int | None = None,
) -> dict[str, float]:
    """Accumulate gradients over micro-batches, clip, step AdamW and the schedule."""
    t0 = time.perf_counter()
    lr = opt.scheduler.get_last_lr()[0]
    local_items = int(loss_mask(exp.batch, cfg).sum()) if num_items is None else num_items
    metrics = accumulate_gradients(
        opt.scorer,
        exp.batch,
        exp.advantages,
        cfg,
        micro_size=micro_size,
        old_logprobs=exp.old_logprobs,
        ref_logprobs=exp.ref_logprobs,
        num_items_in_batch=opt.dist.sum_int(local_items),
        world=opt.dist.world,
        no_sync=opt.dist.no_sync,
        agree=_agree(opt.dist),
    )
    max_norm = cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf")
    metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(opt.params, max_norm))
    opt.optimizer.step()
    opt.scheduler.step()
    opt.optimizer.zero_grad(set_to_none=True)
    metrics["learning_rate"] = lr
    metrics["time/update"] = time.perf_counter() - t0
    return metrics


def step_metrics(exp: Experience, cfg: GRPOConfig, task: Task) -> dict[str, float]:
    """Rewards, lengths and the task's own metrics (Countdown: accuracy, format rate) of
    one step's completions."""
    lengths = exp.batch.completion_lengths.float().cpu()
    prompt_tokens = int(exp.batch.prompt_mask.sum())
    m = {
        # over scored completions only: NaN means every reward function abstained (TRL's nanmean)
        "reward": exp.rewards.nanmean().item(),
        "reward_std": nanstd(exp.rewards).item() if exp.rewards.numel() > 1 else 0.0,
        **{f"rewards/{k}": v.nanmean().item() for k, v in exp.rewards_per_func.items()},
        "completions/mean_length": lengths.mean().item(),
        "completions/p90_length": lengths.quantile(0.9).item(),
        "completions/max_length": lengths.max().item(),
        "completions/min_length": lengths.min().item(),
        "completions/clipped_ratio": exp.batch.truncated.float().mean().item(),
        "frac_reward_zero_std": zero_std_fraction(exp.rewards, cfg.num_generations),
        "num_prompts": len(exp.rows) // cfg.num_generations,
        "num_completions": len(exp.rows),
        "tokens": prompt_tokens + int(lengths.sum()),
    }
    return m | task.metrics_of(exp.rewards_per_func)


def grpo_step(
    policy: Policy,
    prompts: Iterator[list[dict]],
    opt: Optim,
    cfg: GRPOConfig,
    task: Task,
    micro_size: int,
) -> tuple[dict[str, float], Experience]:
    """A fresh rollout and one optimizer update (num_iterations = 1)."""
    t0 = time.perf_counter()
    exp = collect(policy, prompts, cfg, task.reward_funcs)  # rollout -> rewards -> advantages
    prepare(policy, exp, cfg, micro_size, opt.dist)  # old / reference logprobs
    metrics = optimizer_step(exp, opt, cfg, micro_size)  # loss -> backward -> AdamW
    metrics |= step_metrics(exp, cfg, task) | exp.timings
    metrics["step_time"] = time.perf_counter() - t0
    metrics["tokens_per_s"] = metrics["tokens"] / metrics["step_time"]
    return metrics, exp
