"""``r1zero train``: set up, evaluate, run GRPO steps, checkpoint, evaluate again.

Launch: ``r1zero train [CONFIG.yaml] [--key value ...]``; on several GPUs
``accelerate launch --num_processes N -m r1zero train CONFIG.yaml``. With no model, the
embedded tiny model is built (or taken from the cache) and the run shows R1-Zero on a
CPU in minutes. Departures from TRL: ``per_device_train_batch_size`` counts prompts
(TRL 0.14, as the tutorial's YAML assumed; see ``batch_unit``), and one rollout covers a
whole optimizer step, generated in one batch.
"""

from __future__ import annotations

import json
import os
from typing import Any

from r1zero.config import UNUSED, Config, prompts_per_micro_step
from r1zero.config.defaults import DESCRIPTIONS
from r1zero.config.validate import validate
from r1zero.evaluate import evaluate
from r1zero.task import data as task_data
from r1zero.train import checkpoint as ckpt
from r1zero.train import sharded
from r1zero.train.build import Run, setup
from r1zero.train.display import Display
from r1zero.train.distributed import assert_in_sync, rank_prompts
from r1zero.train.estimate import first_step
from r1zero.train.experience import Experience
from r1zero.train.logs import RunLogger, completion_records
from r1zero.train.optim import precision_summary
from r1zero.train.resume import RunFinished, pack_experience
from r1zero.train.step import grpo_step, optimizer_step, step_metrics


def _save(run: Run, step: int, exp: Experience | None, print_fn) -> None:
    """Rank 0 writes weights and state; every rank's RNG goes into the newest checkpoint."""
    r = run.cfg.run
    rngs = run.dist.gather(ckpt.rng_state()) if not r.save_only_model else []
    assert_in_sync(run.opt.scorer, run.dist)  # DDP: never save one rank's drifted copy
    parts = None
    if run.dist.sharded:  # FSDP2, collective: full weights to rank 0, AdamW shards to disk
        opt = None if r.save_only_model else run.opt.optimizer
        parts = sharded.checkpoint_parts(
            run.policy.model, run.opt.scorer, opt, run.output_dir, step, run.dist
        )
    if not run.dist.is_main:
        run.dist.barrier()
        return
    first = not ckpt.checkpoints(run.output_dir)
    resume = None
    if not r.save_only_model:
        resume = {
            "step": step,
            "optimizer": {} if parts else run.opt.optimizer.state_dict(),
            "optimizer_sharded": parts is not None,
            "scheduler": run.opt.scheduler.state_dict(),
            "stream": run.stream.state_dict(),
            "rng": rngs[0],
            "rng_ranks": dict(enumerate(rngs)),
            "experience": pack_experience(exp)
            if run.cfg.grpo.num_iterations > 1 and run.dist.world == 1
            else None,
        }
    path = ckpt.save_checkpoint(
        run.output_dir,
        step,
        model=run.policy.model,
        tokenizer=run.policy.tokenizer,
        resume_state=resume,
        trainer_state={"global_step": step, "max_steps": run.total_steps},
        total_limit=r.save_total_limit,
        state_dict=parts.state_dict if parts else None,
        extra=parts.move_into if parts else None,
    )
    if first:
        size = ckpt.dir_size(path)
        weights = sum(f.stat().st_size for f in path.glob("*.safetensors"))
        print_fn(
            f"checkpoint size: {size / 2**20:.1f} MiB ({weights / 2**20:.1f} MiB weights); keeping "
            f"{r.save_total_limit or 'all'}, optimizer state only in the newest"
        )
    run.dist.barrier()


def run_eval(run: Run, step: int, print_fn) -> dict[str, Any] | None:
    """Greedy held-out evaluation on rank 0, cached in eval/step-NNNNNN.json. Every rank
    calls it: under FSDP2 all gather the full weights, then rank 0 generates alone."""
    d = run.cfg.data
    if d.eval_num_samples <= 0 or not run.test_rows:
        return None
    with run.dist.full_weights(run.opt.scorer):
        return _eval_rank0(run, step, print_fn) if run.dist.is_main else None


def _eval_rank0(run: Run, step: int, print_fn) -> dict[str, Any] | None:
    d = run.cfg.data
    path = run.output_dir / "eval" / f"step-{step:06d}.json"
    cached = _cached_eval(run, path)
    if cached is not None:
        return cached
    rows = run.test_rows[: d.eval_num_samples]
    heldout = run.output_dir / "eval" / "heldout.jsonl"
    if not heldout.exists():  # the very problems, for `r1zero eval CHECKPOINT --data` later
        task_data.write_jsonl(rows, heldout.with_suffix(".tmp")).replace(heldout)
    run.policy.model.eval()
    result, _ = evaluate(run.policy, rows, run.cfg.grpo, k=d.eval_pass_k)
    run.policy.model.train()
    result["step"] = step
    result["run_id"] = run.run_id  # a cached result counts only if this run wrote it
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_new(path.with_suffix(".tmp"), json.dumps(result, indent=1)).replace(path)
    print_fn(
        f"eval step {step}: accuracy {result['accuracy']:.3f}, format {result['format_rate']:.3f}, "
        f"mean length {result['mean_length']:.1f} on {result['n']} held-out problems"
    )
    return result


def _cached_eval(run: Run, path) -> dict[str, Any] | None:
    """The evaluation this run already made at that step (a resumed run repeats none); a
    file it did not write (no or another run_id) is recomputed, never reported."""
    try:
        cached = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
    except (OSError, ValueError):
        return None
    ok = isinstance(cached, dict) and run.run_id and cached.get("run_id") == run.run_id
    return cached if ok else None


def banner(run: Run, print_fn) -> None:
    g = run.cfg.grpo
    prompts = run.stream.per_step
    print_fn(
        f"r1zero: {run.cfg.model.model_name_or_path} on {run.policy.device} x {run.dist.world}, "
        f"{run.total_steps} steps. Each optimizer step sees {prompts} prompts x {g.num_generations} "
        f"completions = {prompts * g.num_generations} (micro-batches of {run.micro_size} sequences, "
        f"{g.gradient_accumulation_steps} accumulation steps, {run.dist.world} process(es)); in TRL 0.14 "
        f"terms per_device_train_batch_size={prompts_per_micro_step(g)} prompts. The tutorial's 2 processes x "
        f"1 prompt x 8 accumulation steps = 16 prompts per step."
    )
    print_fn(precision_summary(run.policy.model, run.opt.optimizer))
    if run.dist.describe():
        print_fn(run.dist.describe())
    print_fn(semantics_summary(run.cfg))
    for key, value in run.cfg.unused.items():
        print_fn(f"[yellow]warning[/]: {key}={value!r} is accepted but not used: {UNUSED[key]}")


def semantics_summary(cfg: Config) -> str:
    """Which defaults filled the keys the config left out, and the ones that matter most."""
    g = cfg.grpo
    name = g.defaults
    text = (
        f"defaults: {name} ({DESCRIPTIONS[name]}): loss_type {g.loss_type}, temperature "
        f"{g.temperature} (scored at {g.scoring_temperature}), reward_funcs {','.join(g.reward_funcs)}"
    )
    if name == "r1zero" and any(k in cfg.unused for k in ("use_vllm", "vllm_device")):
        text += "; this looks like a TRL 0.14 file: add defaults: trl-0.14 (or datawhale-r1) to run it as TRL 0.14 did"
    return text


def _gathered_metrics(run: Run, metrics: dict[str, float]) -> dict[str, float]:
    """Mean over ranks (sums for counts), so rank 0 logs the global step."""
    every = run.dist.gather(metrics)
    if len(every) == 1:
        return metrics
    summed = ("num_prompts", "num_completions", "tokens")
    return {
        k: (sum if k in summed else lambda v: sum(v) / len(v))([m[k] for m in every])
        for k in metrics
    }


def _one_step(
    run: Run, step: int, exp: Experience | None, prompts
) -> tuple[dict[str, float], Experience, bool]:
    g = run.cfg.grpo
    fresh = (step - 1) % g.num_iterations == 0 or exp is None
    if fresh:
        metrics, exp = grpo_step(run.policy, prompts, run.opt, g, run.task, run.micro_size)
    else:  # num_iterations > 1: another update on the same rollouts
        metrics = optimizer_step(exp, run.opt, g, run.micro_size) | step_metrics(exp, g, run.task)
    return _gathered_metrics(run, metrics), exp, fresh


def train(cfg: Config) -> dict[str, Any]:
    """The whole run; returns the held-out evaluation before and after. A finished run is
    left as it is; Ctrl-C says in one line what is saved and how to resume. The config
    is validated first (ConfigError), as ``r1zero train`` would."""
    validate(cfg)
    at: dict[str, Any] = {}
    try:
        return _train(cfg, at)
    except RunFinished as e:
        if os.environ.get("RANK", "0") == "0":
            print(e, flush=True)
        return {"before": None, "after": None, "output_dir": cfg.run.output_dir, "finished": True}
    except KeyboardInterrupt:
        if "run" not in at or at["run"].dist.is_main:
            print(interrupted(at.get("run"), at.get("step", 0)), flush=True)
        raise


def interrupted(run: Run | None, step: int) -> str:
    """What Ctrl-C leaves: the checkpoint the same command resumes from, or nothing."""
    if run is None:
        return "interrupted while starting: no step ran"
    last = ckpt.latest_resumable(run.output_dir)
    where = f"interrupted in step {step} of {run.total_steps}"
    if last is not None:
        return (
            f"{where}: {last.name} in {run.output_dir} is saved with its optimizer state; "
            "run the same command again to resume from it"
        )
    every = run.cfg.run.save_steps if run.cfg.run.save_strategy == "steps" else "no"
    return (
        f"{where}, before any resumable checkpoint (save_steps {every}): nothing to resume; "
        "the same command starts this run again at step 0"
    )


def _train(cfg: Config, at: dict[str, Any]) -> dict[str, Any]:
    quiet = Display(1, 0, live=False, logging_steps=1)
    run = at["run"] = setup(cfg, quiet.print)
    at["step"] = at["first"] = run.start_step + 1
    main = run.dist.is_main
    g, r = cfg.grpo, cfg.run
    display = Display(
        run.total_steps, run.start_step, live=r.live and main, logging_steps=r.logging_steps
    )
    logger = None
    if main:
        banner(run, display.print)
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
    if logger and run.start_step == 0:
        _log_eval(logger, 0, before)
    exp = (run.resume_state or {}).get("experience")
    prompts = rank_prompts(run.stream, run.dist)
    with display if main else _Null():
        for step in range(run.start_step + 1, run.total_steps + 1):
            at["step"] = step
            with first_step(run, step, display.print) if step == at["first"] else _Null():
                metrics, exp, fresh = _one_step(run, step, exp, prompts)
            if step == run.start_step + 1:
                assert_in_sync(run.opt.scorer, run.dist)  # DDP: the ranks' replicas agree
            records = (
                completion_records(step, exp, g.num_generations)
                if r.log_completions and fresh
                else []
            )
            records = [x for part in run.dist.gather(records) for x in part]
            if logger:
                logger.log(step, metrics)
                if records:
                    logger.write_completions(step, records)
                display.update(step, metrics)
            if cfg.data.eval_steps and step % cfg.data.eval_steps == 0 and step != run.total_steps:
                result = run_eval(run, step, display.print)  # every rank: FSDP2 gathers
                if logger:
                    _log_eval(logger, step, result)
            if r.save_strategy == "steps" and r.save_steps > 0 and step % r.save_steps == 0:
                _save(run, step, exp, display.print)
    return _finish(run, logger, display, before)


def _finish(
    run: Run, logger: RunLogger | None, display: Display, before: dict | None
) -> dict[str, Any]:
    full = sharded.full_state_dict(run.policy.model) if run.dist.sharded else None  # collective
    if logger is not None:
        ckpt.save_final(run.output_dir, run.policy.model, run.policy.tokenizer, full)
    after = run_eval(run, run.total_steps, display.print)  # every rank: FSDP2 gathers
    if logger is not None:
        _log_eval(logger, run.total_steps, after)
        logger.close()
        (run.output_dir / "done").write_text("ok\n")
        if before and after:
            display.print(
                f"[bold]held-out accuracy {before['accuracy']:.3f} -> {after['accuracy']:.3f}, "
                f"format rate {before['format_rate']:.3f} -> {after['format_rate']:.3f}[/]"
            )
    run.dist.barrier()
    return {"before": before, "after": after, "output_dir": str(run.output_dir)}


def _log_eval(logger: RunLogger, step: int, result: dict[str, Any] | None) -> None:
    keys = ("accuracy", "format_rate", "mean_length", "pass_at_k")
    if result:
        logger.log(step, {f"eval/{k}": v for k, v in result.items() if k in keys and v is not None})


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
