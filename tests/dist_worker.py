"""One data-parallel optimizer step on a fixed global batch (run directly or by torchrun).

Usage: python tests/dist_worker.py MODEL_DIR OUT_DIR LOSS_TYPE. Each rank takes its slice
of the same global batch; rank 0 writes the updated weights and the loss.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from r1zero.algos import ADVANTAGES
from r1zero.config import GRPOConfig
from r1zero.rollout import RolloutBatch
from r1zero.train.build import _optimizer, seed_everything
from r1zero.train.distributed import make_dist
from r1zero.train.experience import Experience
from r1zero.train.step import optimizer_step


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
    dist = make_dist()
    seed_everything(0, True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cfg = GRPOConfig(
        loss_type=loss_type, learning_rate=1e-2, num_generations=4, max_completion_length=8
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
    exp = Experience([], [], [], local, {}, rewards[sl], adv[sl])

    class _Cfg:  # the parts of Config that _optimizer reads
        grpo = cfg

    opt = _optimizer(model, _Cfg, 1, dist)
    metrics = optimizer_step(None, exp, opt, cfg, micro_size=4)
    losses = dist.gather(metrics["loss"])
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, out_dir / "weights.pt")
        (out_dir / "loss.json").write_text(
            json.dumps({"loss": sum(losses) / len(losses), "grad_norm": metrics["grad_norm"]})
        )
    dist.barrier()


if __name__ == "__main__":
    main()
