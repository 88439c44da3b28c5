"""``r1zero bench``: rollout speed, training MFU, the GRPO step, memory, TRL beside it.

Launch on a GPU: ``r1zero bench`` (Qwen2.5-3B shape, random weights, nothing downloaded);
``r1zero bench --shape tiny --device cpu --quick`` is the smoke test. Results go to
``benchmarks/results/bench-<date>-<gpu>.json`` and a table is printed last.

Workloads (``--workload``, all three by default; see :mod:`r1zero.bench.workloads`):
``reference`` (every completion 512 tokens), ``tutorial`` (the tutorial's long-tailed
lengths, cap 4,096), ``collapse`` (every completion 4,096). Sections (``--sections``), run for
each workload: ``rollout`` (generated tok/s per engine), ``train`` (the update on a fixed
experience: tokens/s and MFU; reference only), ``step`` (the whole step of 16 prompts x 8
completions, full fine-tune, beta 0.001, seconds per stage and peak memory), ``head`` (the LM
head alone; reference only), ``lora`` (the same step with a r=64 LoRA adapter) and ``trl``
(TRL's GRPOTrainer on the same lengths, in a subprocess: ``r1zero.bench.trl_step``). A device
call of 10 minutes holds one workload and a few sections: ``--merge`` folds the JSONs of
several calls into one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import platform
import re
import shlex
import sys
import traceback
from pathlib import Path

import torch
import yaml

from r1zero.bench import model as B
from r1zero.bench import workloads as W
from r1zero.bench.merge import SECTIONS, merge_into
from r1zero.bench.report import headline, print_table
from r1zero.bench.sections import WorkloadRun

__all__ = ["SECTIONS", "main", "merge_into"]


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
        "--workload",
        default=",".join(W.NAMES),
        help="comma-separated subset of " + ",".join(W.NAMES),
    )
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="comma-separated subset of " + ",".join(SECTIONS),
    )
    p.add_argument(
        "--rollout",
        default=None,
        help="engine@sequences list (engines: hf, hf_static, fast, fast_eager, fast_nocompact, "
        "fast_mm, fast_sdpa, fast_hf); "
        "default hf,hf_static,fast x 128,256 for reference, fast@128 for the long workloads",
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
        default=None,
        help="micro-batch of the step and LoRA sections, e.g. 32 or 32c (compiled blocks); "
        "default: the fastest in 'train' (this run's or a merged one's), else 16",
    )
    p.add_argument("--engine", default=None, help="rollout engine of the step; default fast")
    p.add_argument(
        "--grpo",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a GRPOConfig override for the step and LoRA sections (repeatable), e.g. "
        "padding_free=true",
    )
    p.add_argument(
        "--lora-memory-gib",
        type=float,
        default=None,
        help="cap the LoRA section's GPU memory (set_per_process_memory_fraction), as on a "
        "24 GB card: 22; the engine then splits its rollout by itself",
    )
    p.add_argument(
        "--steps", type=int, default=3, help="steps per step measurement; the first is a warm-up"
    )
    p.add_argument(
        "--repeats", type=int, default=2, help="timed updates per micro-batch size in 'train'"
    )
    p.add_argument(
        "--trl-steps",
        type=int,
        default=None,
        help="TRL optimizer steps, the first a warm-up; default 4 (reference), 1 (tutorial)",
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
        args.steps, args.repeats = 1, 1
        args.trl_steps = min(args.trl_steps or 2, 2)
    args.grpo_overrides = grpo_overrides(args.grpo)
    if args.micro and not re.fullmatch(r"[1-9]\d*c?", args.micro):
        raise SystemExit(f"--micro {args.micro!r}: write a number of sequences, e.g. 32 or 32c")
    return args


def grpo_overrides(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings -> a dict, each value read as YAML (``true``, ``16384``, ``dapo``)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--grpo {pair!r}: write KEY=VALUE, e.g. --grpo padding_free=true")
        out[key.strip()] = yaml.safe_load(value)
    return out


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
            for f in (
                "rollout/fast.py",
                "rollout/decode.py",
                "rollout/kv.py",
                "train/update.py",
                "algos/logprobs.py",
                "train/step.py",
            )
            if Path(__file__).parents[1].joinpath(f).is_file()
        },
    }


class Bench:
    """Runs the chosen sections of each chosen workload, freeing GPU memory between them, and
    saves the JSON after each (a crash or a timeout keeps what was measured)."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args = args
        self.device = torch.device(args.device)
        self.shape = B.load_shape(args.shape)
        self.result: dict = {**environment(args, self.device, argv), "errors": {}}
        self.result["notes"] = list(args.note)
        self.result["workloads"] = {}
        self.out = Path(args.out) if args.out else default_path(self.result)

    def save(self) -> None:
        self.result.update(headline(self.result))
        self.out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.result, indent=1, default=str)
        self.out.write_text(text)
        if self.args.also_write:
            Path(self.args.also_write, self.out.name).write_text(text)

    def section(self, workload: str, name: str, fn) -> None:
        """Run one section of one workload into ``workloads.<workload>.<name>``."""
        print(f"[bench] {workload}: {name} ...", flush=True)
        key = f"{workload}/{name}"
        try:
            self.result["workloads"][workload][name] = fn()
            self.result["errors"].pop(key, None)
        except Exception as e:  # keep going: other sections still measure
            traceback.print_exc()
            self.result["errors"][key] = f"{type(e).__name__}: {e}"[:2000]
        free(self.device)
        self.save()

    def run(self) -> None:
        sections = [s for s in SECTIONS if s in set(self.args.sections.split(","))]
        unknown = {s for s in self.args.sections.split(",") if s} - set(SECTIONS)
        if unknown:
            raise SystemExit(
                f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}"
            )
        names = [n for n in self.args.workload.split(",") if n]
        loads = [W.make(n, self.args.quick) for n in names]  # unknown names fail here
        own_command = self.result["command"]
        for path in self.args.merge or []:
            merge_into(self.result, json.loads(Path(path).read_text()), measuring=bool(sections))
        if self.args.merge and not sections:  # "commands" ran on the GPU; this one merged them
            self.result["command"] = own_command
        for w in loads if sections else []:
            slot = self.result["workloads"].setdefault(w.name, {})
            slot["workload"] = w.describe()
            WorkloadRun(self, w).run(sections)
            free(self.device)
        self.save()
        print_table(self.result)
        print(f"[bench] wrote {self.out}")


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
