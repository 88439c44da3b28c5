"""Assemble a run: seeds, model, reference, engine, data stream, optimizer; resume state."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from r1zero.compile import compile_blocks
from r1zero.config import Config, prompts_per_micro_step, to_yaml
from r1zero.models import eos_ids, load_model, load_tokenizer, pick_device, pick_dtype
from r1zero.rollout import get_engine
from r1zero.rollout.policy import Policy
from r1zero.task.prompts import get_template
from r1zero.task.tasks import Task, countdown
from r1zero.train import checkpoint as ckpt
from r1zero.train import resume
from r1zero.train.distributed import Dist, make_dist
from r1zero.train.model import load_reference
from r1zero.train.optim import build_optim
from r1zero.train.setup import apply_presets, load_splits
from r1zero.train.step import Optim
from r1zero.train.stream import PromptStream

log = logging.getLogger("r1zero")


@dataclass
class Run:
    cfg: Config
    policy: Policy
    opt: Optim
    stream: PromptStream  # the global prompt order; each rank takes its slice
    test_rows: list[dict]
    task: Task  # its reward functions and its metrics
    output_dir: Path
    total_steps: int
    micro_size: int  # sequences per micro-batch
    dist: Dist
    start_step: int = 0
    resume_state: dict | None = None
    run_id: str = ""  # from output_dir's r1zero-run.json: what this run wrote carries it


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)


def setup(cfg: Config, display_print=print) -> Run:
    """Everything a run needs, resumed from a checkpoint where asked."""
    dist = make_dist()
    apply_presets(cfg, log=display_print)
    g, r, m = cfg.grpo, cfg.run, cfg.model
    out = Path(r.output_dir)
    new = False
    if dist.is_main:
        _, new = ckpt.claim(out)  # refuses a folder that is not this run's
        ckpt.clean_temporaries(out)
    dist.barrier()
    run_id = ckpt.run_id(out) or ""
    say = display_print if dist.is_main else _silent
    resume_dir = resume.choose(cfg, out, new=bool(dist.gather(new)[0]), say=say)
    seed_everything(g.seed, r.deterministic)  # same on every rank: identical LoRA init
    device = dist.device() or pick_device()
    if g.tf32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    dtype = pick_dtype(m, g.bf16, device)
    name = m.model_name_or_path
    assert name is not None
    tokenizer = load_tokenizer(name, m)
    model = _load_policy(name, cfg, dist.param_dtype(dtype), device, resume_dir)  # FSDP2: fp32
    ref = load_reference(name, m, dtype, device) if g.beta > 0 else None
    if g.gradient_checkpointing:
        kwargs = g.gradient_checkpointing_kwargs or {"use_reentrant": False}
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if m.use_peft:
            model.enable_input_require_grads()
    if g.torch_compile:
        compile_blocks(model)
        if ref is not None:  # its log-probs are a forward over every token of the step
            compile_blocks(ref)
    model.train()
    engine = (
        g.rollout_engine
        if g.rollout_engine != "auto"
        else ("fast" if device.type == "cuda" and not dist.sharded else "hf")
    )
    d = cfg.data
    template = get_template(
        d.prompt_template, user=d.prompt_user, assistant_prefix=d.assistant_prefix
    )
    policy = Policy(
        model=model,
        tokenizer=tokenizer,
        template=template,
        engine=get_engine(engine),
        device=device,
        eos_token_ids=eos_ids(model, tokenizer),
        ref_model=ref,
    )
    train_rows, test_rows = load_splits(cfg)
    per_micro = prompts_per_micro_step(g)
    per_step = per_micro * g.gradient_accumulation_steps * dist.world
    total = g.max_steps
    if total <= 0:
        total = max(
            1, math.ceil(g.num_train_epochs * len(train_rows) / per_step) * g.num_iterations
        )
    dist.shard_run(policy, dtype)  # FSDP2: shard before the optimizer sees the parameters
    opt = build_optim(model, cfg, total, dist)
    stream = PromptStream(train_rows, per_step, g.seed)
    run = Run(
        cfg=cfg,
        policy=policy,
        opt=opt,
        stream=stream,
        test_rows=test_rows,
        task=countdown(g.reward_funcs),
        output_dir=out,
        total_steps=total,
        micro_size=per_micro * g.num_generations,
        dist=dist,
        run_id=run_id,
    )
    torch.manual_seed(g.seed + 1_000_003 * dist.rank)  # each rank samples its own completions
    if resume_dir is not None:
        _restore(run, resume_dir, say)
    if dist.is_main:
        ckpt.write_new(out / "config.yaml", to_yaml(cfg))
    return run


def _silent(*_: object) -> None:
    pass


def _load_policy(
    name: str, cfg: Config, dtype: torch.dtype, device: torch.device, resume_dir: Path | None
) -> torch.nn.Module:
    if resume_dir is None:
        return load_model(name, cfg.model, dtype, device)
    plain = replace(cfg.model, use_peft=False)
    if cfg.model.use_peft:
        from peft import PeftModel

        return PeftModel.from_pretrained(
            load_model(name, plain, dtype, device), str(resume_dir), is_trainable=True
        )
    return load_model(str(resume_dir), plain, dtype, device)


def _restore(run: Run, resume_dir: Path, say) -> None:
    """Optimizer, schedule, data position and RNG from ``resume_dir``; says so in one line,
    and once per watched key that differs from the run's config.yaml."""
    state = resume.load_state(resume_dir)
    g = run.cfg.grpo
    say(
        f"resuming from {resume_dir.name} (step {state['step']} of {run.total_steps}) in "
        f"{run.output_dir}; {resume.FRESH}"
    )
    for line in resume.config_changes(run.cfg, run.output_dir):
        say(line)
    if state.get("optimizer_sharded"):  # FSDP2: each rank reads its AdamW shard
        from r1zero.train import sharded

        sharded.load_optimizer(
            run.opt.scorer, run.opt.optimizer, resume_dir / sharded.OPTIMIZER_DIR
        )
    else:
        run.opt.optimizer.load_state_dict(state["optimizer"])
    run.opt.scheduler.load_state_dict(state["scheduler"])
    resume.apply_learning_rate(run.opt.scheduler, run.opt.optimizer, g.learning_rate)
    run.stream.load_state_dict(state["stream"])
    rng = state["rng"] if run.dist.rank == 0 else state.get("rng_ranks", {}).get(run.dist.rank)
    if rng is not None:
        ckpt.set_rng_state(rng)
    run.start_step = state["step"]
    run.resume_state = state
