"""``r1zero bench``: rollout speed, training MFU, the reference GRPO step, memory, TRL beside it.

Launch on a GPU: ``r1zero bench`` (Qwen2.5-3B shape, random weights, nothing downloaded);
``r1zero bench --shape tiny --device cpu --quick`` is the smoke test. Results go to
``benchmarks/results/bench-<date>-<gpu>.json`` and a table is printed last.

Sections (``--sections``): ``rollout`` (generated tok/s per engine), ``train`` (the update
on a fixed experience: tokens/s and MFU = 6 N tokens / time / peak), ``step`` (the whole
step of 16 prompts x 8 completions, 150 + 512 tokens, full fine-tune, beta 0.001, seconds per
stage and peak memory), ``lora`` (the same step with a r=64 LoRA adapter) and ``trl``
(TRL's GRPOTrainer on the same workload, in a subprocess: ``r1zero.bench.trl_step``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import importlib.util
import json
import os
import platform
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
from r1zero.bench.report import headline, print_table
from r1zero.compile import compile_blocks, eager_blocks
from r1zero.config import ModelConfig
from r1zero.train.experience import Policy

SECTIONS = ("rollout", "train", "step", "head", "lora", "trl")
QUICK = M.Workload(prompts=2, num_generations=4, prompt_len=12, completion_len=8)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="r1zero bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--shape",
        default="qwen2.5-3b",
        help=f"one of {', '.join(B.shape_names())} or a config.json path",
    )
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="tiny workload, one repeat (smoke test)")
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="comma-separated subset of " + ",".join(SECTIONS),
    )
    p.add_argument(
        "--rollout", default=None, help="engine@sequences list; default hf,hf_static,fast x 128,256"
    )
    p.add_argument(
        "--micro-sizes",
        default="16,32,32c",
        help="sequences per micro-batch tried in 'train'; a 'c' suffix measures with the "
        "layers' norms and MLPs compiled (torch_compile: true); the step and LoRA sections "
        "use the fastest",
    )
    p.add_argument(
        "--micro",
        type=int,
        default=None,
        help="micro-batch of the step; default: the fastest in 'train', else 16",
    )
    p.add_argument(
        "--engine",
        default=None,
        help="rollout engine of the step; default fast if it runs, else hf_static",
    )
    p.add_argument(
        "--steps", type=int, default=3, help="steps per step measurement; the first is a warm-up"
    )
    p.add_argument(
        "--repeats", type=int, default=2, help="timed updates per micro-batch size in 'train'"
    )
    p.add_argument(
        "--trl-steps", type=int, default=4, help="TRL optimizer steps; the first is a warm-up"
    )
    p.add_argument("--trl-timeout", type=int, default=420)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", default=None, help="JSON path; default benchmarks/results/bench-<date>-<gpu>.json"
    )
    p.add_argument("--also-write", default=None, help="a folder to copy the JSON into (e.g. $OUT)")
    p.add_argument(
        "--note", action="append", default=[], help="a remark stored in the JSON (repeatable)"
    )
    p.add_argument(
        "--merge",
        nargs="*",
        default=None,
        help="earlier result JSONs to merge under this run's (no GPU needed with --sections '')",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.trl_steps = 1, 1, min(args.trl_steps, 2)
    return args


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def environment(args: argparse.Namespace, device: torch.device, argv: list[str]) -> dict:
    import transformers

    return {
        "device": device_name(device),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "command": "r1zero bench " + shlex.join(argv),
        "shape": args.shape,
        "source_sha1": {  # which version of the code ran (others edit it in parallel)
            f: hashlib.sha1(Path(__file__).parents[1].joinpath(f).read_bytes()).hexdigest()[:12]
            for f in ("rollout/fast.py", "train/update.py", "algos/logprobs.py", "train/step.py")
            if Path(__file__).parents[1].joinpath(f).is_file()
        },
    }


class Bench:
    """Runs the chosen sections in order, freeing GPU memory between them, and saves the
    JSON after each (a crash or a timeout keeps what was measured)."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.shape = B.load_shape(args.shape)
        self.w = QUICK if args.quick else M.Workload()
        self.result: dict = {**environment(args, self.device, argv), "errors": {}}
        self.result["notes"] = list(args.note)
        self.result["workload"] = vars(self.w) | {"tokens_per_step": self.w.tokens}
        self.out = Path(args.out) if args.out else default_path(self.result)

    def section(self, name: str, fn) -> None:
        print(f"[bench] {name} ...", flush=True)
        try:
            self.result[name] = fn()
            self.result["errors"].pop(name, None)
        except Exception as e:  # keep going: other sections still measure
            traceback.print_exc()
            self.result["errors"][name] = f"{type(e).__name__}: {e}"[:2000]
        free(self.device)
        self.save()

    def save(self) -> None:
        self.result.update(headline(self.result))
        self.out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.result, indent=1, default=str)
        self.out.write_text(text)
        if self.args.also_write:
            Path(self.args.also_write, self.out.name).write_text(text)

    # ------------------------------------------------------------------ full fine-tune
    def policy(self, model, engine: str, ref) -> Policy:
        eos = M.sampling(self.w, self.shape).eos_token_ids
        engine_obj = M.ForcedLength(M.make_engine(engine))
        return Policy(model, None, None, engine_obj, self.device, eos, ref)

    def rollout(self, model) -> dict:
        out = {}
        for spec in self.rollout_specs():
            engine, n = spec.split("@")
            try:
                out[spec] = M.rollout_speed(
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
            return [f"hf@{n}"]
        engines = ["hf", "hf_static", "fast"] if self.device.type == "cuda" else ["hf"]
        if not importlib.util.find_spec("r1zero.rollout.fast"):
            engines = [e for e in engines if e != "fast"]
        return [f"{e}@{s}" for e in engines for s in (n, 2 * n)]

    def step_engine(self) -> str:
        if self.args.engine:
            return self.args.engine
        roll = self.result.get("rollout", {})
        for e in ("fast", "hf_static", "hf"):
            if any(v.get("engine") == e and "tok_per_s" in v for v in roll.values()):
                return e
        return "fast" if self.device.type == "cuda" else "hf"

    def train(self, policy: Policy, opt, cfg) -> dict:
        sizes = self.args.micro_sizes.split(",") if not self.args.quick else ["4"]
        n_params = B.count_params(policy.model)
        peak = B.peak_flops(self.result["device"])
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
                f"[bench]   micro {key}: {r['tok_per_s']:.0f} tok/s, MFU {r['mfu']:.3f}",
                flush=True,
            )
            free(self.device)
        return out

    def steps(self, policy: Policy, opt, cfg, micro: int, engine: str) -> dict:
        set_compiled(policy.model, self.compiled())
        runs = [
            M.grpo_step(
                policy, opt, cfg, self.w, micro=micro, shape=self.shape, seed=self.args.seed + i
            )
            for i in range(max(1, self.args.steps))
        ]
        timed = runs[1:] or runs
        summary = {
            k: statistics.median(r[k] for r in timed)
            for k in ("rollout_s", "rewards_s", "logprobs_s", "update_s", "step_s")
        }
        peaks = [r["peak_gib"] for r in timed if r["peak_gib"] is not None]
        summary |= {
            "peak_gib": max(peaks) if peaks else None,
            "micro_batch": micro,
            "engine": engine,
            "compiled_blocks": self.compiled(),
            "runs": runs,
        }
        return summary

    def micro(self) -> int:
        if self.args.micro:
            return self.args.micro
        if self.args.quick:
            return 4
        return int(self.best_train_key().rstrip("c"))

    def best_train_key(self) -> str:
        by = self.result.get("train", {}).get("by_micro", {})
        return max(by, key=lambda k: by[k]["tok_per_s"]) if by else "16"

    def compiled(self) -> bool:
        """Whether the step and LoRA sections train with compiled blocks (the faster in 'train')."""
        return self.best_train_key().endswith("c")

    def full_finetune(self, sections: set[str]) -> None:
        cfg = M.grpo_config(self.w)
        model = B.build_model(self.shape, self.device, self.dtype(), seed=self.args.seed)
        self.result["n_params"] = B.count_params(model)
        if "rollout" in sections:
            self.section("rollout", lambda: self.rollout(model))
        if not sections & {"train", "step"}:
            return
        ref = B.frozen_copy(model)
        B.enable_training(model, peft=False)
        opt = M.optimizer(model, cfg)
        if "train" in sections:
            self.section(
                "train", lambda: self.train(self.policy(model, self.step_engine(), ref), opt, cfg)
            )
        if "step" in sections:
            engine = self.step_engine()
            self.section(
                "step",
                lambda: self.steps(self.policy(model, engine, ref), opt, cfg, self.micro(), engine),
            )

    def head(self, chunk: int) -> dict:
        return M.head_cost(self.shape, self.w, device=self.device, chunk_size=chunk)

    def lora(self) -> dict:
        cfg = M.grpo_config(self.w)
        base = B.build_model(self.shape, self.device, self.dtype(), seed=self.args.seed)
        lcfg = ModelConfig(use_peft=True, lora_r=64, lora_alpha=128)
        model = B.wrap_lora(base, lcfg)
        B.enable_training(model, peft=True)
        opt = M.optimizer(model, cfg)
        engine = self.step_engine()
        out = self.steps(self.policy(model, engine, None), opt, cfg, self.micro(), engine)
        out |= {
            "lora_r": lcfg.lora_r,
            "lora_alpha": lcfg.lora_alpha,
            "target_modules": "all-linear",
            "trainable_params": B.count_params(model, trainable_only=True),
        }
        return out

    def trl(self) -> dict:
        if importlib.util.find_spec("trl") is None:
            return {"skipped": "trl is not installed (pip install trl==1.16.0 datasets)"}
        with tempfile.TemporaryDirectory(prefix="r1zero-trl-") as tmp:
            js = Path(tmp, "trl.json")
            cmd = [
                sys.executable,
                "-m",
                "r1zero.bench.trl_step",
                "--shape",
                self.args.shape,
                "--device",
                self.args.device,
                "--steps",
                str(self.args.trl_steps),
                "--workdir",
                tmp,
                "--out",
                str(js),
                "--seed",
                str(self.args.seed),
            ]
            if self.args.quick:
                cmd += ["--quick"]
            print("[bench]   " + shlex.join(cmd), flush=True)
            proc = subprocess.run(cmd, timeout=self.args.trl_timeout, env=os.environ.copy())
            if not js.is_file():
                raise RuntimeError(f"TRL run wrote no result (exit code {proc.returncode})")
            return json.loads(js.read_text())

    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.device.type == "cuda" else torch.float32

    def run(self) -> None:
        sections = {s for s in self.args.sections.split(",") if s}
        unknown = sections - set(SECTIONS)
        if unknown:
            raise SystemExit(
                f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}"
            )
        own_command = self.result["command"]
        for path in self.args.merge or []:
            merge_into(self.result, json.loads(Path(path).read_text()), measuring=bool(sections))
        if self.args.merge and not sections:  # "commands" ran on the GPU; this one merged them
            self.result["command"] = own_command
        if sections & {"rollout", "train", "step"}:
            self.full_finetune(sections)
            free(self.device)
        if "head" in sections:
            chunk = M.grpo_config(self.w).logprob_chunk_size
            self.section(
                "head",
                lambda: self.head(chunk),
            )
        if "lora" in sections:
            self.section("lora", self.lora)
        if "trl" in sections:
            self.section("trl", self.trl)
        self.save()
        print_table(self.result)
        print(f"[bench] wrote {self.out}")


def merge_into(result: dict, earlier: dict, *, measuring: bool) -> None:
    """Fold an earlier result in: its sections (later files win, and sections this run
    measures replace them); its device, date and versions when this run measures nothing."""
    commands = result.get("commands", []) + earlier.get("commands", [earlier.get("command")])
    for key, value in earlier.items():
        if key == "errors":
            result["errors"] = {**result.get("errors", {}), **value}
        elif key in ("rollout", "notes") and isinstance(result.get(key), dict | list):
            result[key] = {**result[key], **value} if key == "rollout" else result[key] + value
        elif key in SECTIONS or key not in result or not measuring:
            result[key] = value
    for name in SECTIONS:  # an error is stale once a later file measured the section
        if name in earlier and name not in earlier.get("errors", {}):
            result["errors"].pop(name, None)
    result["commands"] = [c for c in commands if c]


def set_compiled(model: torch.nn.Module, on: bool) -> None:
    """Train with the layers' norms and MLPs compiled (``torch_compile: true``) or eagerly."""
    if on:
        compile_blocks(model)
    else:
        eager_blocks(model)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def default_path(result: dict) -> Path:
    gpu = "".join(c if c.isalnum() else "-" for c in result["device"].lower()).strip("-")
    gpu = "-".join(p for p in gpu.split("-") if p and p != "nvidia")[:40]
    return Path("benchmarks/results") / f"bench-{result['date'][:10]}-{gpu}.json"


def main(argv: list[str]) -> None:
    args = parse(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "no CUDA device; run with --device cpu (and --shape tiny --quick) for a smoke test"
        )
    Bench(args, argv).run()


if __name__ == "__main__":
    main(sys.argv[1:])
