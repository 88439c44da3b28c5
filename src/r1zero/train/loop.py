"""``r1zero train``: set up, evaluate, run GRPO steps, checkpoint, evaluate again.

Launch: ``r1zero train [CONFIG.yaml] [--key value ...]``. With no model, the embedded
tiny model is built (or taken from the cache) and the run shows R1-Zero on a CPU in
minutes. Departures from TRL: ``per_device_train_batch_size`` counts prompts (TRL 0.14,
as the tutorial's YAML assumed; see ``batch_unit``) and one rollout covers a whole
optimizer step, generated in one batch.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import get_scheduler

from r1zero.config import Config, prompts_per_micro_step, to_yaml
from r1zero.evaluate import evaluate
from r1zero.rollout import get_engine
from r1zero.task.prompts import get_template
from r1zero.task.rewards import load_reward_funcs
from r1zero.train import checkpoint as ckpt
from r1zero.train.display import Display
from r1zero.train.experience import Experience, Policy
from r1zero.train.logs import RunLogger
from r1zero.train.model import load_model, load_reference, load_tokenizer, pick_device, pick_dtype
from r1zero.train.setup import apply_presets, eos_ids, load_splits
from r1zero.train.step import Optim, grpo_step, optimizer_step, step_metrics
from r1zero.train.stream import PromptStream

log = logging.getLogger("r1zero")


@dataclass
class Run:
    cfg: Config
    policy: Policy
    opt: Optim
    stream: PromptStream
    test_rows: list[dict]
    reward_funcs: list
    output_dir: Path
    total_steps: int
    micro_size: int  # sequences per micro-batch
    start_step: int = 0
    resume_state: dict | None = None


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)


def setup(cfg: Config, display_print=print) -> Run:
    """Everything a run needs, resumed from a checkpoint where asked."""
    apply_presets(cfg, log=display_print)
    g, r, m = cfg.grpo, cfg.run, cfg.model
    out = Path(r.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.clean_temporaries(out)
    resume_dir = _resume_dir(cfg, out)
    seed_everything(g.seed, r.deterministic)
    device = pick_device()
    if g.tf32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    dtype = pick_dtype(m, g.bf16, device)
    name = m.model_name_or_path
    assert name is not None
    tokenizer = load_tokenizer(name, m)
    model = _load_policy(name, cfg, dtype, device, resume_dir)
    ref = load_reference(name, m, dtype, device) if g.beta > 0 else None
    if g.gradient_checkpointing:
        model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs=g.gradient_checkpointing_kwargs
            or {"use_reentrant": False}
        )
        if m.use_peft:
            model.enable_input_require_grads()
    model.train()
    engine_name = (
        g.rollout_engine
        if g.rollout_engine != "auto"
        else ("fast" if device.type == "cuda" else "hf")
    )
    template = get_template(
        cfg.data.prompt_template,
        user=cfg.data.prompt_user,
        assistant_prefix=cfg.data.assistant_prefix,
    )
    policy = Policy(
        model, tokenizer, template, get_engine(engine_name), device, eos_ids(model, tokenizer), ref
    )
    train_rows, test_rows = load_splits(cfg)
    per_micro = prompts_per_micro_step(g)
    per_step = per_micro * g.gradient_accumulation_steps
    total = (
        g.max_steps
        if g.max_steps > 0
        else max(1, math.ceil(g.num_train_epochs * len(train_rows) / per_step) * g.num_iterations)
    )
    opt = _optimizer(model, cfg, total)
    run = Run(
        cfg,
        policy,
        opt,
        PromptStream(train_rows, per_step, g.seed),
        test_rows,
        load_reward_funcs(g.reward_funcs),
        out,
        total,
        per_micro * g.num_generations,
    )
    if resume_dir is not None:
        _restore(run, resume_dir)
    (out / "config.yaml").write_text(to_yaml(cfg), encoding="utf-8")
    return run


def _resume_dir(cfg: Config, out: Path) -> Path | None:
    want = cfg.run.resume_from_checkpoint
    if want in (None, "", "false", "False"):
        return None
    if want in ("true", "True"):
        found = ckpt.latest_resumable(out)
        if found is None:
            log.warning(
                "resume_from_checkpoint: no resumable checkpoint in %s; starting fresh", out
            )
        return found
    p = Path(want)
    if not (p / ckpt.RESUME_FILE).is_file():
        raise ckpt.CheckpointError(
            f"resume_from_checkpoint: {p} is not a resumable checkpoint (no {ckpt.RESUME_FILE})"
        )
    return p


def _load_policy(
    name: str, cfg: Config, dtype: torch.dtype, device: torch.device, resume_dir: Path | None
) -> torch.nn.Module:
    if resume_dir is None:
        return load_model(name, cfg.model, dtype, device)
    if cfg.model.use_peft:
        from peft import PeftModel

        base = load_model(
            name, type(cfg.model)(**{**cfg.model.__dict__, "use_peft": False}), dtype, device
        )
        return PeftModel.from_pretrained(base, str(resume_dir), is_trainable=True)
    return load_model(
        str(resume_dir), type(cfg.model)(**{**cfg.model.__dict__, "use_peft": False}), dtype, device
    )


def _optimizer(model: torch.nn.Module, cfg: Config, total_steps: int) -> Optim:
    g = cfg.grpo
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        params,
        lr=g.learning_rate,
        betas=(g.adam_beta1, g.adam_beta2),
        eps=g.adam_epsilon,
        weight_decay=g.weight_decay,
    )
    warmup = g.warmup_steps or math.ceil(g.warmup_ratio * total_steps)
    scheduler = get_scheduler(
        g.lr_scheduler_type, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
    return Optim(optimizer, scheduler, params)


def _restore(run: Run, resume_dir: Path) -> None:
    state = torch.load(resume_dir / ckpt.RESUME_FILE, weights_only=False)
    run.opt.optimizer.load_state_dict(state["optimizer"])
    run.opt.scheduler.load_state_dict(state["scheduler"])
    run.stream.load_state_dict(state["stream"])
    ckpt.set_rng_state(state["rng"])
    run.start_step = state["step"]
    run.resume_state = state


def _save(run: Run, step: int, exp: Experience | None, print_fn) -> None:
    r = run.cfg.run
    first = not ckpt.checkpoints(run.output_dir)
    resume = (
        None
        if r.save_only_model
        else {
            "step": step,
            "optimizer": run.opt.optimizer.state_dict(),
            "scheduler": run.opt.scheduler.state_dict(),
            "stream": run.stream.state_dict(),
            "rng": ckpt.rng_state(),
            "experience": exp if run.cfg.grpo.num_iterations > 1 else None,
        }
    )
    path = ckpt.save_checkpoint(
        run.output_dir,
        step,
        model=run.policy.model,
        tokenizer=run.policy.tokenizer,
        resume_state=resume,
        trainer_state={"global_step": step, "max_steps": run.total_steps},
        total_limit=r.save_total_limit,
    )
    if first:
        size = ckpt.dir_size(path)
        weights = sum(f.stat().st_size for f in path.glob("*.safetensors"))
        kept = r.save_total_limit or "all"
        print_fn(
            f"checkpoint size: {size / 2**20:.1f} MiB ({weights / 2**20:.1f} MiB weights); keeping {kept}, optimizer state only in the newest"
        )


def run_eval(run: Run, step: int, print_fn) -> dict[str, Any] | None:
    d = run.cfg.data
    if d.eval_num_samples <= 0 or not run.test_rows:
        return None
    path = run.output_dir / "eval" / f"step-{step:06d}.json"
    if path.exists():
        return json.loads(path.read_text())
    rows = run.test_rows[: d.eval_num_samples]
    run.policy.model.eval()
    result, _ = evaluate(run.policy, rows, run.cfg.grpo, k=d.eval_pass_k)
    run.policy.model.train()
    result["step"] = step
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))
    print_fn(
        f"eval step {step}: accuracy {result['accuracy']:.3f}, format {result['format_rate']:.3f}, mean length {result['mean_length']:.1f} on {result['n']} held-out problems"
    )
    return result


def banner(run: Run, print_fn) -> None:
    g = run.cfg.grpo
    prompts = run.stream.per_step
    print_fn(
        f"r1zero: {run.cfg.model.model_name_or_path} on {run.policy.device}, {run.total_steps} steps; "
        f"each optimizer step sees {prompts} prompts x {g.num_generations} completions = {prompts * g.num_generations} "
        f"(micro-batches of {run.micro_size} sequences x {g.gradient_accumulation_steps} accumulation steps). "
        f"TRL 0.14 equivalent: per_device_train_batch_size={prompts_per_micro_step(g)} (prompts), gradient_accumulation_steps={g.gradient_accumulation_steps}, 1 process."
    )
    for key, value in run.cfg.unused.items():
        print_fn(
            f"[yellow]warning[/]: {key}={value!r} is accepted but not used: {_unused_reason(key)}"
        )


def _unused_reason(key: str) -> str:
    from r1zero.config import UNUSED

    return UNUSED[key]


def train(cfg: Config) -> dict[str, Any]:
    """The whole run; returns the held-out evaluation before and after."""
    display = Display(1, 0, live=cfg.run.live, logging_steps=cfg.run.logging_steps)
    run = setup(cfg, display.print)
    display = Display(
        run.total_steps, run.start_step, live=cfg.run.live, logging_steps=cfg.run.logging_steps
    )
    banner(run, display.print)
    g, r = cfg.grpo, cfg.run
    logger = RunLogger(
        run.output_dir,
        r.report_to,
        run_name=r.run_name or run.output_dir.name,
        config=cfg.flat(),
        resume_step=run.start_step,
        project=r.project,
        workspace=r.workspace,
        experiment_name=r.experiment_name,
    )
    before = run_eval(run, 0, display.print)
    if run.start_step == 0:
        _log_eval(logger, 0, before)
    exp = (run.resume_state or {}).get("experience")
    with display:
        for step in range(run.start_step + 1, run.total_steps + 1):
            if (step - 1) % g.num_iterations == 0 or exp is None:
                metrics, exp = grpo_step(
                    run.policy, run.stream, run.opt, g, run.reward_funcs, run.micro_size
                )
            else:  # num_iterations > 1: another update on the same rollouts
                metrics = optimizer_step(
                    run.policy, exp, run.opt, g, run.micro_size
                ) | step_metrics(exp, g)
            logger.log(step, metrics)
            if r.log_completions and (step - 1) % g.num_iterations == 0:
                logger.log_completions(step, exp, g.num_generations)
            display.update(step, metrics)
            if cfg.data.eval_steps and step % cfg.data.eval_steps == 0 and step != run.total_steps:
                _log_eval(logger, step, run_eval(run, step, display.print))
            if r.save_strategy == "steps" and r.save_steps > 0 and step % r.save_steps == 0:
                _save(run, step, exp, display.print)
    ckpt.save_final(run.output_dir, run.policy.model, run.policy.tokenizer)
    after = run_eval(run, run.total_steps, display.print)
    _log_eval(logger, run.total_steps, after)
    logger.close()
    (run.output_dir / "done").write_text("ok\n")
    if before and after:
        display.print(
            f"[bold]held-out accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f}, format rate {before['format_rate']:.3f} -> {after['format_rate']:.3f}[/]"
        )
    return {"before": before, "after": after, "output_dir": str(run.output_dir)}


def _log_eval(logger: RunLogger, step: int, result: dict[str, Any] | None) -> None:
    if result:
        logger.log(
            step,
            {
                f"eval/{k}": v
                for k, v in result.items()
                if k in ("accuracy", "format_rate", "mean_length", "pass_at_k") and v is not None
            },
        )
