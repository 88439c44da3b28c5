"""Data-parallel GRPO through accelerate: who generates what, and how gradients meet.

Each rank generates whole groups (its own prompts x num_generations), so group
advantages need no cross-rank traffic. Two kinds of job, picked by accelerate's config
file as users already do:

- DDP (``distributed_type: MULTI_GPU`` / ``MULTI_CPU``, or plain torchrun): accelerate's
  DDP wrapper around :class:`LogprobModel`, the module whose forward is the training
  computation (backbone -> chunked log-probs), synchronises gradients.
- FSDP2 (``distributed_type: FSDP`` with ``fsdp_version: 2``): r1zero shards the model
  itself with ``fully_shard`` from the settings of accelerate's plugin (see
  :mod:`r1zero.train.sharded`), because the rollout and the frozen log-probs call inner
  modules that accelerate's wrapping would not gather. accelerate on a CPU ignores
  ``distributed_type: FSDP`` (it reports MULTI_CPU), so the plugin is read from the
  environment the launcher sets, on CPU and GPU alike.

Every other type accelerate can hand over (DeepSpeed, Megatron-LM, XLA, FSDP1) is
refused in one line: its wrappers would not synchronise r1zero's updates, so ranks
would drift apart silently.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from r1zero.config import ConfigError
from r1zero.train.update import LogprobModel

FSDP2_CONFIG = "examples/accelerate/fsdp2.yaml"


@dataclass
class Dist:
    """This process's place in the job; a single process has rank 0 of 1 and no accelerator."""

    rank: int = 0
    world: int = 1
    accelerator: Any = None
    fsdp: Any = None  # sharded.FsdpSettings under FSDP2, else None (DDP or one process)
    root: Any = None  # FSDP2: the sharded LogprobModel over the policy (the root unit)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device | None:
        return None if self.accelerator is None else self.accelerator.device

    @property
    def sharded(self) -> bool:
        return self.fsdp is not None

    def param_dtype(self, dtype: torch.dtype) -> torch.dtype:
        """The dtype to load trainable weights in: float32 under FSDP2 (sharded master
        weights; ``dtype`` becomes the compute dtype), else ``dtype`` itself."""
        return torch.float32 if self.sharded else dtype

    def wrap(self, module: LogprobModel) -> torch.nn.Module:
        """The training module: the sharded root (FSDP2, made by :meth:`shard_run`), the
        DDP-wrapped module, or the module itself (one process)."""
        if self.sharded:
            root = self.root
            if root is None or root.model is not module.model:
                raise RuntimeError("FSDP2: Dist.shard_run must shard the policy before wrap")
            root.temperature, root.chunk_size = module.temperature, module.chunk_size
            return root
        return module if self.accelerator is None else self.accelerator.prepare_model(module)

    def shard_run(self, policy: Any, compute_dtype: torch.dtype) -> None:
        """FSDP2: shard the policy (and the reference) before the optimizer sees the
        parameters, and gather the full weights around each rollout. No-op otherwise."""
        if not self.sharded:
            return
        from r1zero.train import sharded

        if "Fast" in type(policy.engine).__name__:
            raise ConfigError(
                "rollout_engine: fast is not supported under FSDP2 yet (its CUDA graphs keep "
                "the weights' addresses, which change when FSDP2 reshards); use rollout_engine: hf"
            )
        model = policy.model
        self.root = sharded.shard(LogprobModel(model, 1.0, 1), model, self.fsdp, compute_dtype)
        if policy.ref_model is not None:
            ref = policy.ref_model
            sharded.shard(ref, ref, self.fsdp, next(ref.parameters()).dtype)
            sharded.reshard_before(self.root, ref)
        policy.engine = sharded.GatheredEngine(policy.engine, self.root)

    def describe(self) -> str | None:
        """One banner line saying how the job is spread (None for one process)."""
        if self.sharded:
            return (
                f"distributed: FSDP2 over {self.world} process(es): fp32 parameter, gradient and "
                "AdamW shards (fully_shard per decoder layer + the log-prob module); compute in "
                "the training dtype; each rollout gathers the full weights once, then reshards"
            )
        if self.world > 1:
            return (
                f"distributed: DDP over {self.world} processes (every rank holds the whole model)"
            )
        return None

    def full_weights(self, root: torch.nn.Module) -> contextlib.AbstractContextManager:
        """FSDP2: every rank gathers the full weights (then one rank may generate alone)."""
        if not self.sharded:
            return contextlib.nullcontext()
        from r1zero.train import sharded

        return sharded.gathered(root)

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


def _flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in ("1", "true", "yes")


def refuse_unsupported() -> None:
    """One line for launchers whose wrappers would let the ranks' weights drift apart."""
    if _flag("ACCELERATE_USE_DEEPSPEED"):
        raise ConfigError(
            "accelerate config: DeepSpeed is not supported (r1zero's rollout and updates "
            "do not go through DeepSpeed's engine, so ZeRO-3 ranks would drift apart); "
            f"--config_file {FSDP2_CONFIG} shards parameters, gradients and AdamW state "
            "the same way (FSDP2)"
        )
    for flag, what in (("ACCELERATE_USE_MEGATRON_LM", "Megatron-LM"), ("ACCELERATE_USE_TP", "TP")):
        if _flag(flag):
            raise ConfigError(
                f"accelerate config: {what} is not supported; use {FSDP2_CONFIG} or "
                "examples/accelerate/ddp.yaml"
            )


def _fsdp_settings(acc: Any) -> Any:
    if not _flag("ACCELERATE_USE_FSDP"):
        return None
    from accelerate.utils import FullyShardedDataParallelPlugin

    from r1zero.train import sharded

    plugin = getattr(acc.state, "fsdp_plugin", None) or FullyShardedDataParallelPlugin()
    return sharded.settings_from_plugin(plugin)


def _check_type(acc: Any, fsdp: Any) -> None:
    from accelerate.utils import DistributedType as T

    ok = {T.NO, T.MULTI_CPU, T.MULTI_GPU} | ({T.FSDP} if fsdp is not None else set())
    if acc.distributed_type not in ok:
        raise ConfigError(
            f"accelerate config: distributed_type {acc.distributed_type.value} is not "
            f"supported; use examples/accelerate/ddp.yaml or {FSDP2_CONFIG}"
        )


def make_dist() -> Dist:
    """Start accelerate's process group when launched with several processes (or FSDP2)."""
    refuse_unsupported()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not _flag("ACCELERATE_USE_FSDP"):
        if _flag("ACCELERATE_USE_CPU"):
            logging.getLogger("r1zero").warning(
                "accelerate launch --cpu starts one process whatever --num_processes says; "
                "for N CPU processes run `accelerate launch --multi_gpu --num_processes N` "
                "(gloo on a machine without CUDA) or torchrun --nproc_per_node N"
            )
        return Dist()
    from accelerate import Accelerator

    # r1zero's own bf16 / torch_dtype keys set the precision; accelerate's mixed_precision
    # would wrap the DDP module's forward in autocast on top of them, silently.
    acc = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")
    fsdp = _fsdp_settings(acc)
    _check_type(acc, fsdp)
    if fsdp is not None and not torch.distributed.is_initialized():
        _init_single_process_group()
    return Dist(acc.process_index, acc.num_processes, acc, fsdp)


def _init_single_process_group() -> None:
    """FSDP2 with one process (a world-size-1 check on one GPU) still needs a process group."""
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29512")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch.distributed.init_process_group(backend, rank=0, world_size=1)


def weights_digest(module: torch.nn.Module) -> list[float]:
    """A float64 sum per local parameter tensor: equal on every rank iff they hold the
    same replicas (DDP). Sharded (FSDP2) tensors hold one copy and are skipped."""
    out = []
    for p in module.parameters():
        if type(p.data).__name__ != "DTensor":
            out.append(float(p.detach().double().sum()))
    return out


def assert_in_sync(module: torch.nn.Module, dist: Dist) -> None:
    """Raise if the ranks' replicated weights differ (a wrapper that did not synchronise)."""
    if dist.world == 1:
        return
    every = dist.gather(weights_digest(module))
    if any(d != every[0] for d in every[1:]):
        raise RuntimeError(
            "the ranks' weights differ after an update: gradients were not synchronised "
            "(an unsupported accelerate distributed type?); stopping before training on"
        )


def rank_slice(rows: list[dict], dist: Dist) -> list[dict]:
    """This rank's share of a step's prompts (the global order does not depend on world size)."""
    per = len(rows) // dist.world
    return rows[dist.rank * per : (dist.rank + 1) * per]


def rank_prompts(stream: Iterator[list[dict]], dist: Dist) -> Iterator[list[dict]]:
    for rows in stream:
        yield rank_slice(rows, dist)
