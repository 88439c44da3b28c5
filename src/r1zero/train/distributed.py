"""Data-parallel GRPO through accelerate: who generates what, and how gradients meet.

Each rank generates whole groups (its own prompts x num_generations), so group
advantages need no cross-rank traffic. Gradients are synchronised by accelerate's DDP
wrapper around :class:`LogprobModel`, the module whose forward is the training
computation (backbone -> chunked log-probs); generation uses the unwrapped model.
Launch with ``accelerate launch --num_processes N -m r1zero train CONFIG.yaml``
(or ``torchrun --nproc_per_node N -m r1zero train ...``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from r1zero.train.update import LogprobModel


@dataclass
class Dist:
    """This process's place in the job; a single process has rank 0 of 1 and no accelerator."""

    rank: int = 0
    world: int = 1
    accelerator: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device | None:
        return None if self.accelerator is None else self.accelerator.device

    def wrap(self, module: LogprobModel) -> torch.nn.Module:
        return module if self.accelerator is None else self.accelerator.prepare_model(module)

    def no_sync(self, module: torch.nn.Module, last: bool) -> contextlib.AbstractContextManager:
        """Skip the gradient all-reduce on all but the last micro-batch of a step."""
        if self.accelerator is None or last or not hasattr(module, "no_sync"):
            return contextlib.nullcontext()
        return module.no_sync()

    def sum_int(self, n: int) -> int:
        if self.world == 1:
            return n
        t = torch.tensor([n], device=self.device())
        torch.distributed.all_reduce(t)
        return int(t.item())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (any picklable), in rank order."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()


def make_dist() -> Dist:
    """Start accelerate's process group when launched with several processes."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist()
    from accelerate import Accelerator

    acc = Accelerator(cpu=not torch.cuda.is_available())
    return Dist(acc.process_index, acc.num_processes, acc)


def rank_slice(rows: list[dict], dist: Dist) -> list[dict]:
    """This rank's share of a step's prompts (the global order does not depend on world size)."""
    per = len(rows) // dist.world
    return rows[dist.rank * per : (dist.rank + 1) * per]


def rank_prompts(stream: Iterator[list[dict]], dist: Dist) -> Iterator[list[dict]]:
    for rows in stream:
        yield rank_slice(rows, dist)
