"""One data-parallel optimizer step on a fixed global batch (run directly or by torchrun).

Usage: python tests/dist_worker.py MODEL_DIR OUT_DIR LOSS_TYPE [BETA]. Each rank takes its
slice of the same global batch. DDP or FSDP2 comes from the launcher's environment
(``accelerate launch --config_file examples/accelerate/fsdp2.yaml`` for FSDP2). Every rank
writes its full view of the updated weights (``weights-rank<R>.pt``); rank 0 also the loss and
a greedy rollout of 4 prompts (through the gathered weights under FSDP2).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import AutoModelForCausalLM

from r1zero.algos import ADVANTAGES
from r1zero.config import Config, GRPOConfig
from r1zero.rollout import RolloutBatch, SamplingParams, get_engine
from r1zero.train.build import seed_everything
from r1zero.train.distributed import make_dist
from r1zero.train.experience import Experience
from r1zero.train.optim import build_optim
from r1zero.train.step import optimizer_step
from r1zero.train.update import reference_logprobs

# R1ZERO_TEST_PASSES: how each rank cuts its half into forward passes (tiny token budgets,
# so that the ranks' numbers of passes differ)
BUDGET = {"ppo_max_token_len_per_gpu": 24, "log_prob_max_token_len_per_gpu": 24}
PASSES = {
    "fixed": {"use_dynamic_bsz": False},
    "dynamic": {"use_dynamic_bsz": True, **BUDGET},
    "packed": {"padding_free": True, **BUDGET},
}


def global_batch(vocab: int, groups: int = 4, G: int = 4) -> tuple[RolloutBatch, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    N, P, C = groups * G, 6, 8
    prompt_ids = torch.randint(3, vocab, (N, P), generator=gen)
    prompt_mask = torch.ones(N, P, dtype=torch.long)
    prompt_mask[::3, :2] = 0  # some left padding
    completion_ids = torch.randint(3, vocab, (N, C), generator=gen)
    lengths = torch.randint(2, C + 1, (N,), generator=gen)
    completion_mask = (torch.arange(C) < lengths.unsqueeze(1)).long()
    rewards = torch.randint(0, 3, (N,), generator=gen).float()
    batch = RolloutBatch(prompt_ids, prompt_mask, completion_ids, completion_mask, lengths == C)
    return batch, rewards


def main() -> None:
    model_dir, out_dir, loss_type = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    beta = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    dist = make_dist()
    seed_everything(0, True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ref = None
    if beta > 0:
        ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        ref.requires_grad_(False)
    cfg = GRPOConfig(
        loss_type=loss_type,
        learning_rate=1e-2,
        num_generations=4,
        max_completion_length=8,
        beta=beta,
        **PASSES[os.environ.get("R1ZERO_TEST_PASSES", "fixed")],
    )
    batch, rewards = global_batch(model.config.vocab_size)
    adv = ADVANTAGES["grpo"](rewards, 4)
    per = batch.prompt_ids.shape[0] // dist.world
    sl = slice(dist.rank * per, (dist.rank + 1) * per)
    local = RolloutBatch(
        *(
            t[sl]
            for t in (
                batch.prompt_ids,
                batch.prompt_mask,
                batch.completion_ids,
                batch.completion_mask,
                batch.truncated,
            )
        )
    )
    exp = Experience(
        rows=[],
        prompts=[],
        completions=[],
        batch=local,
        rewards_per_func={},
        rewards=rewards[sl],
        advantages=adv[sl],
    )
    policy = SimpleNamespace(model=model, ref_model=ref, engine=get_engine("hf"))
    dist.shard_run(policy, torch.float32)  # FSDP2 only: shard policy and reference
    opt = build_optim(model, Config(grpo=cfg), 1, dist)
    if beta > 0:  # through the sharded reference's frozen path (its backbone hook)
        exp.ref_logprobs = reference_logprobs(model, ref, local, cfg, 4)
    metrics = optimizer_step(exp, opt, cfg, micro_size=4)
    losses = dist.gather(metrics["loss"])
    weights = _full_weights(model, dist)
    greedy = _greedy(policy, batch)  # the gathered rollout path under FSDP2
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(weights, out_dir / f"weights-rank{dist.rank}.pt")  # every rank's copy
    if dist.is_main:
        torch.save(weights, out_dir / "weights.pt")
        torch.save(greedy, out_dir / "greedy.pt")
        (out_dir / "loss.json").write_text(
            json.dumps(
                {
                    "loss": sum(losses) / len(losses),
                    "grad_norm": metrics["grad_norm"],
                    "sharded": dist.sharded,
                    "world": dist.world,
                }
            )
        )
    dist.barrier()


def _full_weights(model: torch.nn.Module, dist) -> dict[str, torch.Tensor]:
    """This rank's view of the whole model: its replica (DDP), or the shards gathered (FSDP2)."""
    if not dist.sharded:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    opts = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
    return {k: v.clone() for k, v in get_model_state_dict(model, options=opts).items()}


def _greedy(policy, batch: RolloutBatch) -> torch.Tensor:
    params = SamplingParams(
        max_new_tokens=4,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        do_sample=False,
        eos_token_ids=(),
        pad_token_id=0,
    )
    with torch.no_grad():
        out = policy.engine.generate(
            policy.model, batch.prompt_ids[:4], batch.prompt_mask[:4], params
        )
    return out.completion_ids


if __name__ == "__main__":
    main()
