"""The optimizer: AdamW with fp32 master weights for low-precision parameters, and its schedule.

Why master weights: an AdamW step moves a weight by about the learning rate (5e-7 in the
tutorial), while the spacing of bf16 numbers near a typical weight (0.02) is about 1.2e-4, so
AdamW applied directly to bf16 weights rounds almost every update away. Mixed-precision
training (Micikevicius et al. 2018, "Mixed Precision Training") keeps an fp32 copy of every
weight that the optimizer updates, and computes forward and backward with the bf16 copy
rounded from it; DeepSpeed's bf16 mode, which the tutorial ran, does the same.

Cost per trainable bf16 parameter: bf16 weight 2 + bf16 grad 2 + fp32 master 4 + fp32 AdamW
moments 8 = 16 bytes (AdamW on bf16 weights: 8 bytes, its moments in bf16). float32 and LoRA
parameters (peft keeps adapters in float32) are updated in place, with no copy.

Weight decay follows the HF Trainer that TRL builds on: biases and norm weights are exempt.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from transformers import get_scheduler
from transformers.trainer_pt_utils import get_parameter_names

from r1zero.config import Config, GRPOConfig
from r1zero.train.distributed import Dist
from r1zero.train.step import Optim
from r1zero.train.update import LogprobModel

# The HF Trainer's (transformers 5.17, Trainer.get_decay_parameter_names) exemption patterns.
NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: decayed, and exempt (biases, norms) at decay 0."""
    decay = set(get_parameter_names(model, [nn.LayerNorm], NO_DECAY_PATTERNS))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if n in decay], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def low_precision(params: Iterable[torch.Tensor]) -> bool:
    return any(p.dtype in (torch.bfloat16, torch.float16) for p in params)


class MasterWeightAdamW(torch.optim.AdamW):
    """AdamW over fp32 master copies of the model's bf16/fp16 parameters.

    ``step()`` moves each model gradient into its master (as fp32, freeing the low-precision
    one), runs AdamW on the masters, and writes the masters back rounded to nearest. float32
    parameters are their own masters. ``state_dict()`` carries the masters, so a resumed run
    continues from the exact fp32 weights rather than from their bf16 rounding.
    """

    def __init__(self, groups: list[dict], **kwargs) -> None:
        self.model_params: list[torch.Tensor] = [p for g in groups for p in g["params"]]
        master_groups = [{**g, "params": [_master_of(p) for p in g["params"]]} for g in groups]
        super().__init__(master_groups, **kwargs)
        self.master_params: list[torch.Tensor] = [p for g in self.param_groups for p in g["params"]]
        self.copies: list[tuple[torch.Tensor, torch.Tensor]] = [
            (p, m) for p, m in zip(self.model_params, self.master_params, strict=True) if p is not m
        ]
        """(model parameter, its fp32 master) for each low-precision parameter, found once."""

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        copies = self.copies
        for p, m in copies:
            m.grad = None if p.grad is None else p.grad.to(torch.float32)
            p.grad = None
        loss = super().step(closure)
        if copies:
            torch._foreach_copy_([p for p, _ in copies], [m for _, m in copies])
        for _, m in copies:
            m.grad = None
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.model_params:
            p.grad = None
        super().zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:  # type: ignore[override]
        state = super().state_dict()
        state["master_weights"] = [m.detach().clone() for _, m in self.copies]
        return state

    @torch.no_grad()
    def load_state_dict(self, state_dict: dict) -> None:  # type: ignore[override]
        state = dict(state_dict)
        masters = state.pop("master_weights", None)
        super().load_state_dict(state)
        copies = self.copies
        if masters is None or len(masters) != len(copies):
            raise ValueError(
                f"resume state holds {0 if masters is None else len(masters)} fp32 master weights "
                f"for {len(copies)} low-precision parameters (was it saved with another precision?)"
            )
        for (p, m), saved in zip(copies, masters, strict=True):
            m.copy_(saved)
            p.copy_(saved)


def _master_of(p: torch.Tensor) -> torch.Tensor:
    if p.dtype == torch.float32:
        return p
    return p.detach().to(torch.float32).clone().requires_grad_(True)


def make_optimizer(model: nn.Module, g: GRPOConfig) -> torch.optim.Optimizer:
    """AdamW with TRL's hyperparameter names; fp32 masters where the weights are bf16/fp16."""
    groups = param_groups(model, g.weight_decay)
    params = [p for grp in groups for p in grp["params"]]
    kwargs = {"lr": g.learning_rate, "betas": (g.adam_beta1, g.adam_beta2), "eps": g.adam_epsilon}
    if params and params[0].is_cuda:
        kwargs["fused"] = True
    master = g.master_weights if g.master_weights is not None else low_precision(params)
    if master:
        return MasterWeightAdamW(groups, **kwargs)
    return torch.optim.AdamW(groups, **kwargs)


def build_optim(model: nn.Module, cfg: Config, total_steps: int, dist: Dist) -> Optim:
    """Optimizer, learning-rate schedule and the (DDP-wrapped) training module of a run."""
    g = cfg.grpo
    optimizer = make_optimizer(model, g)
    warmup = g.warmup_steps or math.ceil(g.warmup_ratio * total_steps)
    scheduler = get_scheduler(
        g.lr_scheduler_type, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
    params = [p for p in model.parameters() if p.requires_grad]
    scorer = dist.wrap(LogprobModel(model, g.scoring_temperature, g.logprob_chunk_size))
    return Optim(optimizer, scheduler, params, scorer, dist)


def precision_summary(model: nn.Module, optimizer: torch.optim.Optimizer) -> str:
    """One banner line: compute dtype, what the optimizer updates, and its bytes per parameter."""
    params = [p for p in model.parameters() if p.requires_grad]
    n = sum(p.numel() for p in params)
    dtype = str(params[0].dtype).removeprefix("torch.") if params else "none"
    if isinstance(optimizer, MasterWeightAdamW):
        copies = sum(p.numel() for p, _ in optimizer.copies)
        return (
            f"precision: {dtype} weights and compute, AdamW on fp32 master weights "
            f"({n / 1e6:.1f}M trainable; masters {copies * 4 / 2**30:.2f} GiB, "
            f"moments {n * 8 / 2**30:.2f} GiB)"
        )
    return f"precision: {dtype} weights, AdamW updates them in place ({n / 1e6:.1f}M trainable)"
