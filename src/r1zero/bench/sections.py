"""The sections of ``r1zero bench`` for one workload: rollout, train, step, head, lora, trl.

Each builds what it measures (a random-weight model of the shape, the trainer's optimizer,
``Policy``) and runs the trainer's own functions; the only bench-side parts are the random
rewards and :class:`~r1zero.bench.workloads.ForcedLengths` around the engine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import torch

from r1zero.bench import measure as M
from r1zero.bench import model as B
from r1zero.bench import workloads as W
from r1zero.compile import compile_blocks, eager_blocks
from r1zero.config import ModelConfig
from r1zero.models import wrap_lora
from r1zero.rollout.policy import Policy

REFERENCE_ONLY = {
    "train": "the update's MFU on a fixed batch is measured on the reference workload; the "
    "step section times this workload's update",
    "head": "the LM head alone is measured on the reference workload",
}
TRL_COLLAPSE = (
    "TRL's HF generate decodes 4,096 steps for every optimizer step of this workload; a "
    "warm-up and a timed step do not fit one 10-minute device call (try --trl-steps 1)"
)


class WorkloadRun:
    """One workload's sections, in order, into ``bench.result['workloads'][w.name]``."""

    def __init__(self, bench, w: W.Workload) -> None:
        self.bench, self.w, self.args = bench, w, bench.args
        self.device, self.shape = bench.device, bench.shape
        self.slot = bench.result["workloads"][w.name]

    def run(self, sections: list[str]) -> None:
        for name in sections:
            if name in REFERENCE_ONLY and self.w.name != "reference":
                self.slot[name] = {"skipped": REFERENCE_ONLY[name]}
        wanted = set(sections)
        if wanted & {"rollout", "train", "step"}:
            self.full_finetune(wanted)
        if "head" in wanted and self.w.name == "reference":
            chunk = self.cfg().logprob_chunk_size
            self.bench.section(self.w.name, "head", lambda: self.head(chunk))
        if "lora" in wanted:
            self.bench.section(self.w.name, "lora", self.lora)
        if "trl" in wanted:
            self.bench.section(self.w.name, "trl", self.trl)

    def cfg(self):
        return M.grpo_config(self.w, **self.args.grpo_overrides)

    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.device.type == "cuda" else torch.float32

    # ------------------------------------------------------------------ full fine-tune
    def policy(self, model, engine: str, ref) -> Policy:
        eos = M.sampling(self.w, self.shape).eos_token_ids
        forced = W.ForcedLengths(W.make_engine(engine), self.w.lengths)
        return Policy(model, None, None, forced, self.device, eos, ref)

    def full_finetune(self, sections: set[str]) -> None:
        cfg = self.cfg()
        model = B.build_model(self.shape, self.device, self.dtype(), seed=self.args.seed)
        self.bench.result["n_params"] = B.count_params(model)
        if "rollout" in sections:
            self.bench.section(self.w.name, "rollout", lambda: self.rollout(model))
        if "step" not in sections and ("train" not in sections or self.w.name != "reference"):
            return
        ref = B.frozen_copy(model)
        B.enable_training(model, peft=False)
        opt = M.optimizer(model, cfg)
        if "train" in sections and self.w.name == "reference":
            policy = self.policy(model, self.step_engine(), ref)
            self.bench.section(self.w.name, "train", lambda: self.train(policy, opt, cfg))
        if "step" in sections:
            engine = self.step_engine()
            policy = self.policy(model, engine, ref)
            self.bench.section(
                self.w.name, "step", lambda: self.steps(policy, opt, cfg, self.micro(), engine)
            )

    def rollout(self, model) -> dict:
        out = {}
        for spec in self.rollout_specs():
            engine, n = spec.split("@")
            try:
                out[spec] = W.rollout_speed(
                    model,
                    engine,
                    int(n),
                    self.w,
                    self.shape,
                    device=self.device,
                    seed=self.args.seed,
                )
            except Exception as e:
                traceback.print_exc()
                out[spec] = {
                    "engine": engine,
                    "sequences": int(n),
                    "error": f"{type(e).__name__}: {e}"[:500],
                }
            print(
                f"[bench]   {spec}: {out[spec].get('tok_per_s', out[spec].get('error'))}",
                flush=True,
            )
            free(self.device)
        return out

    def rollout_specs(self) -> list[str]:
        if self.args.rollout:
            return self.args.rollout.split(",")
        n = self.w.sequences
        if self.args.quick:
            return [f"hf@{n}", f"fast@{n}"]
        if self.device.type != "cuda":
            return [f"hf@{n}"]
        if self.w.name != "reference":  # HF generate would take minutes per call here
            return [f"fast@{n}"]
        return [f"{e}@{s}" for e in ("hf", "hf_static", "fast") for s in (n, 2 * n)]

    def step_engine(self) -> str:
        if self.args.engine:
            return self.args.engine
        return "fast" if self.device.type == "cuda" else "hf"

    def train(self, policy: Policy, opt, cfg) -> dict:
        sizes = self.args.micro_sizes.split(",") if not self.args.quick else ["4"]
        n_params = B.count_params(policy.model)
        peak = B.peak_flops(self.bench.result["device"])
        out = {"n_params": n_params, "peak_flops": peak, "by_micro": {}}
        for key in sizes:
            set_compiled(policy.model, key.endswith("c"))
            micro = int(key.rstrip("c"))
            r = M.update_speed(
                policy,
                opt,
                cfg,
                self.w,
                micro=micro,
                repeats=max(1, self.args.repeats),
                seed=self.args.seed,
            )
            r["mfu"] = 6 * n_params * r["tokens"] / r["seconds"] / peak
            r["hfu_with_recompute"] = 8 * n_params * r["tokens"] / r["seconds"] / peak
            r["compiled_blocks"] = key.endswith("c")
            out["by_micro"][key] = r
            print(
                f"[bench]   micro {key}: {r['tok_per_s']:.0f} tok/s, MFU {r['mfu']:.3f}", flush=True
            )
            free(self.device)
        return out

    def steps(self, policy: Policy, opt, cfg, micro: int, engine: str) -> dict:
        set_compiled(policy.model, self.compiled())
        if policy.ref_model is not None:  # as r1zero train does under torch_compile: true
            set_compiled(policy.ref_model, self.compiled())
        runs = []
        for i in range(max(1, self.args.steps)):
            runs.append(
                M.grpo_step(
                    policy, opt, cfg, self.w, micro=micro, shape=self.shape, seed=self.args.seed + i
                )
            )
            runs[-1] |= engine_stats(policy.engine.engine)
            r = runs[-1]
            print(
                f"[bench]   step {i}: rollout {r['rollout_s']:.2f} s, logprobs "
                f"{r['logprobs_s']:.2f} s, update {r['update_s']:.2f} s, peak {r['peak_gib']} GiB",
                flush=True,
            )
        timed = runs[1:] or runs
        summary = {
            k: statistics.median(r[k] for r in timed)
            for k in ("rollout_s", "rewards_s", "logprobs_s", "update_s", "step_s")
        }
        peaks = [r["peak_gib"] for r in timed if r["peak_gib"] is not None]
        return summary | {
            "peak_gib": max(peaks) if peaks else None,
            "micro_batch": micro,
            "engine": engine,
            "compiled_blocks": self.compiled(),
            "grpo_overrides": self.args.grpo_overrides,
            "runs": runs,
        }

    def train_result(self) -> dict:
        """The reference workload's train section (this run's or a merged one's)."""
        return self.bench.result["workloads"].get("reference", {}).get("train") or {}

    def micro(self) -> int:
        if self.args.quick and not self.args.micro:
            return 4
        return int(self.best_train_key().rstrip("c"))

    def best_train_key(self) -> str:
        """``--micro`` if given, else the fastest micro-batch key of the train section."""
        if self.args.micro:
            return str(self.args.micro)
        by = self.train_result().get("by_micro", {})
        return max(by, key=lambda k: by[k]["tok_per_s"]) if by else "16"

    def compiled(self) -> bool:
        """Whether the step and LoRA sections train with compiled blocks (the faster in 'train')."""
        return self.best_train_key().endswith("c")

    def head(self, chunk: int) -> dict:
        return M.head_cost(self.shape, self.w, device=self.device, chunk_size=chunk)

    # ------------------------------------------------------------------ LoRA, TRL
    def lora(self) -> dict:
        cap = memory_cap(self.device, self.args.lora_memory_gib)
        try:
            cfg = self.cfg()
            base = B.build_model(self.shape, self.device, self.dtype(), seed=self.args.seed)
            lcfg = ModelConfig(use_peft=True, lora_r=64, lora_alpha=128)
            model = wrap_lora(base, lcfg)
            B.enable_training(model, peft=True)
            opt = M.optimizer(model, cfg)
            engine = self.step_engine()
            out = self.steps(self.policy(model, engine, None), opt, cfg, self.micro(), engine)
        finally:
            if cap:
                memory_cap(self.device, None)
        return out | {
            "lora_r": lcfg.lora_r,
            "lora_alpha": lcfg.lora_alpha,
            "target_modules": "all-linear",
            "trainable_params": B.count_params(model, trainable_only=True),
            "memory_cap_gib": self.args.lora_memory_gib,
        }

    def trl(self) -> dict:
        if importlib.util.find_spec("trl") is None:
            return {"skipped": "trl is not installed (pip install trl==1.16.0 datasets)"}
        steps = self.args.trl_steps or (4 if self.w.name == "reference" else 1)
        if self.w.name == "collapse" and not self.args.trl_steps:
            return {"skipped": TRL_COLLAPSE}
        with tempfile.TemporaryDirectory(prefix="r1zero-trl-") as tmp:
            js = Path(tmp, "trl.json")
            cmd = [sys.executable, "-m", "r1zero.bench.trl_step", "--shape", self.args.shape]
            cmd += ["--device", self.args.device, "--steps", str(steps), "--workdir", tmp]
            cmd += ["--out", str(js), "--seed", str(self.args.seed), "--workload", self.w.name]
            cmd += ["--quick"] if self.args.quick else []
            print("[bench]   " + shlex.join(cmd), flush=True)
            try:
                proc = subprocess.run(cmd, timeout=self.args.trl_timeout, env=os.environ.copy())
            except subprocess.TimeoutExpired:
                return trl_timed_out(js, steps, self.args.trl_timeout)
            if not js.is_file():
                raise RuntimeError(f"TRL run wrote no result (exit code {proc.returncode})")
            return json.loads(js.read_text())


def trl_timed_out(js: Path, steps: int, timeout: int) -> dict:
    """What a TRL run killed at ``timeout`` measured: the generate calls that finished."""
    progress = Path(str(js) + ".progress")
    done = json.loads(progress.read_text())["generate_s"] if progress.is_file() else []
    why = f"TRL did not finish {steps} step(s) within --trl-timeout {timeout} s"
    if done:
        why += f"; its generate took {', '.join(f'{t:.0f}' for t in done)} s"
    return {
        "skipped": why,
        "generate_s": done,
        "trl_step_s_at_least": max(done) if done else None,
        "timeout_s": timeout,
    }


def engine_stats(engine) -> dict:
    """The fast engine's sub-batches and decode batch sizes of its last call (else nothing)."""
    if not hasattr(engine, "last_batch_sizes"):
        return {}
    sizes = engine.last_batch_sizes
    return {
        "split": list(engine.last_split),
        "rounds_by_batch": {b: sizes.count(b) for b in sorted(set(sizes))},
    }


def memory_cap(device: torch.device, gib: float | None) -> bool:
    """Cap this process's GPU memory at ``gib`` (None: lift the cap); -> whether capped."""
    if device.type != "cuda":
        return False
    total = torch.cuda.get_device_properties(device).total_memory
    fraction = 1.0 if gib is None else min(1.0, gib * 2**30 / total)
    torch.cuda.empty_cache()
    index = device.index if device.index is not None else torch.cuda.current_device()
    torch.cuda.set_per_process_memory_fraction(fraction, index)  # wants an index, not 'cuda'
    return gib is not None


def set_compiled(model: torch.nn.Module, on: bool) -> None:
    """Train with the layers' norms and MLPs compiled (``torch_compile: true``) or eagerly."""
    if on:
        compile_blocks(model)
    else:
        eager_blocks(model)


def free(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
