"""FSDP2 (``torch.distributed.fsdp.fully_shard``) for GRPO: shard, gather for the rollout, save.

Sharding. Each decoder layer is its own FSDP unit and the :class:`LogprobModel` around the
policy is the root unit (it owns the embeddings, the final norm and the LM head, which
may be tied, so they must share a unit). Parameters stay float32 and sharded; with bf16
training a ``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)`` all-gathers them
as bf16 for compute and reduce-scatters gradients in fp32, so the sharded fp32 parameters
are the master weights and no extra master copy exists. The reference model (beta > 0)
is sharded the same way, in the training dtype, with itself as root.

Three ways in. Training calls the root's forward, so FSDP's own hooks gather and free
each unit. Frozen log-probs (reference, old policy) call the backbone directly: a
pre-hook on the backbone gathers the root unit (layers still go through their own
hooks, one at a time). Generation calls the HF model step by step: :func:`gathered`
unshards every unit once (the full bf16 weights, one copy) and reshards at the end.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from r1zero.train.model import backbone_and_head, causal_lm

log = logging.getLogger("r1zero")

OPTIMIZER_DIR = "optimizer_sharded"  # torch.distributed.checkpoint folder in a checkpoint


@dataclass(frozen=True)
class FsdpSettings:
    """What r1zero reads from accelerate's FSDP plugin (the ``fsdp_config`` of the file)."""

    reshard_after_forward: bool = True
    layer_classes: tuple[str, ...] = ()  # fsdp_transformer_layer_cls_to_wrap; empty: the model's


def settings_from_plugin(plugin: Any) -> FsdpSettings:
    """Check an accelerate ``FullyShardedDataParallelPlugin`` and keep the parts r1zero uses."""
    from r1zero.config import ConfigError

    fix = "; use examples/accelerate/fsdp2.yaml"
    if getattr(plugin, "fsdp_version", 1) != 2:
        raise ConfigError(f"accelerate config: fsdp_version must be 2 (FSDP2, fully_shard){fix}")
    offload = plugin.cpu_offload
    if offload is not None and type(offload).__name__ == "CPUOffloadPolicy":
        raise ConfigError(f"accelerate config: fsdp_offload_params true is not supported{fix}")
    names = plugin.transformer_cls_names_to_wrap or ()
    if isinstance(names, str):
        names = tuple(n.strip() for n in names.split(",") if n.strip())
    return FsdpSettings(bool(plugin.reshard_after_forward), tuple(names))


def _layers(model: torch.nn.Module, names: tuple[str, ...]) -> list[torch.nn.Module]:
    lm = causal_lm(model)
    wanted = set(names or getattr(lm, "_no_split_modules", None) or ())
    found = [m for m in model.modules() if type(m).__name__ in wanted]
    if not found:
        from r1zero.config import ConfigError

        raise ConfigError(
            f"FSDP2: no decoder layers of {sorted(wanted) or 'unknown class'} in "
            f"{type(lm).__name__}; set fsdp_transformer_layer_cls_to_wrap in the accelerate config"
        )
    return found


def shard(
    root: torch.nn.Module,
    model: torch.nn.Module,
    settings: FsdpSettings,
    compute_dtype: torch.dtype,
    mesh: Any = None,
) -> torch.nn.Module:
    """fully_shard every decoder layer of ``model``, then ``root`` (which contains ``model``)."""
    mp = MixedPrecisionPolicy(
        param_dtype=None if compute_dtype == torch.float32 else compute_dtype,
        reduce_dtype=torch.float32,
    )
    for layer in _layers(model, settings.layer_classes):
        fully_shard(
            layer, mesh=mesh, mp_policy=mp, reshard_after_forward=settings.reshard_after_forward
        )
    fully_shard(root, mesh=mesh, mp_policy=mp)
    root._r1zero_reshard = settings.reshard_after_forward  # type: ignore[attr-defined]
    # The root must initialise first (it tells the layers they are not roots); generation
    # and frozen log-probs call inner modules before any root forward would.
    root._get_fsdp_state()._lazy_init()  # type: ignore[attr-defined]
    backbone, _ = backbone_and_head(model)

    def gather_root(*_: Any) -> None:  # a no-op inside the root's own forward
        root.unshard()  # type: ignore[operator]

    backbone.register_forward_pre_hook(gather_root)
    return root


def reshard_before(module: torch.nn.Module, other: torch.nn.Module) -> None:
    """Free ``other``'s root unit (the reference's, gathered for its log-probs) whenever
    ``module`` (the policy's root) starts a forward."""

    def free(*_: Any) -> None:
        other.reshard()  # type: ignore[operator]

    module.register_forward_pre_hook(free)


def units(root: torch.nn.Module) -> list[FSDPModule]:
    return [m for m in root.modules() if isinstance(m, FSDPModule)]


@contextlib.contextmanager
def gathered(root: torch.nn.Module) -> Iterator[None]:
    """Every unit of ``root`` unsharded (full weights in the compute dtype) until exit.

    Collective on entry (all-gathers); inside, the model runs with no communication, so
    one rank may generate alone (evaluation). Nested uses gather only once.
    """
    if not isinstance(root, FSDPModule):
        yield
        return
    depth = getattr(root, "_r1zero_gathered", 0)
    root._r1zero_gathered = depth + 1  # type: ignore[attr-defined]
    mods = units(root)
    try:
        if depth == 0:
            for m in mods:
                m.unshard()
                if m is not root:
                    m.set_reshard_after_forward(False, recurse=False)
        yield
    finally:
        root._r1zero_gathered = depth  # type: ignore[attr-defined]
        if depth == 0:
            after = getattr(root, "_r1zero_reshard", True)
            for m in mods:
                m.reshard()
                if m is not root:
                    m.set_reshard_after_forward(after, recurse=False)


class GatheredEngine:
    """A rollout engine that gathers the sharded policy around each generate call."""

    def __init__(self, engine: Any, root: torch.nn.Module) -> None:
        self.engine = engine
        self.root = root

    def generate(self, model: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        """With the weights gathered a forward needs no collective, so each rank stops when
        its own completions end: transformers' ``synced_gpus`` (on for a model it sees as
        FSDP-managed) would all-reduce every decode step and hang rank 0's lone evaluation."""
        lm = causal_lm(model)
        flag = getattr(lm, "_is_fsdp_managed_module", None)
        lm._is_fsdp_managed_module = False
        try:
            with gathered(self.root):
                return self.engine.generate(model, *args, **kwargs)
        finally:
            if flag is None:
                del lm._is_fsdp_managed_module
            else:
                lm._is_fsdp_managed_module = flag

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


# ---------------------------------------------------------------- checkpoints


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded weights on the CPU of rank 0 (an empty dict elsewhere). Collective."""
    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=opts)


def save_optimizer(root: torch.nn.Module, optimizer: torch.optim.Optimizer, dest: Path) -> None:
    """Each rank writes its shard of the AdamW state under ``dest``. Collective."""
    state = get_optimizer_state_dict(root, optimizer)
    dcp.save({"optimizer": state}, checkpoint_id=str(dest))


def load_optimizer(root: torch.nn.Module, optimizer: torch.optim.Optimizer, src: Path) -> None:
    """Read this rank's shard of the AdamW state (any world size can read it). Collective."""
    state = {"optimizer": get_optimizer_state_dict(root, optimizer)}
    dcp.load(state, checkpoint_id=str(src))
    set_optimizer_state_dict(root, optimizer, state["optimizer"])


@dataclass
class SavedParts:
    """What every rank contributed to a checkpoint before rank 0 writes and renames it."""

    state_dict: dict[str, torch.Tensor]  # full weights on rank 0's CPU
    optimizer_dir: Path | None  # the ranks' AdamW shards, in a .tmp-sharded-<step> folder

    def move_into(self, checkpoint_tmp: Path) -> None:
        """Rank 0: put the optimizer shards inside the checkpoint's temporary folder, so
        that they land with it in the one atomic rename."""
        if self.optimizer_dir is not None:
            shutil.move(str(self.optimizer_dir), str(checkpoint_tmp / OPTIMIZER_DIR))


def checkpoint_parts(
    model: torch.nn.Module,
    root: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    output_dir: Path,
    step: int,
    dist: Any,
) -> SavedParts:
    """Collective: gather the full weights to rank 0 and write the sharded AdamW state
    (``optimizer`` None: weights only). Output folders must be on a filesystem every
    node sees (a shared disk) when the job spans machines."""
    state = full_state_dict(model)
    if optimizer is None:
        return SavedParts(state, None)
    tmp = output_dir / f".tmp-sharded-{step}"
    if dist.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
    dist.barrier()
    save_optimizer(root, optimizer, tmp)
    dist.barrier()
    return SavedParts(state, tmp)
