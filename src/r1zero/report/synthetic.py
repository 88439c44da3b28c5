"""A synthetic run folder (docs/run-folder.md) for tests, demos and report benchmarks.

The curves mimic the reference experiment: format learned in the first few percent of steps,
accuracy creeping up, a bout of "repeat until truncated" loops mid-run, some reflection and
language mixing. Rewards and metrics are computed from the generated completions, so they agree.

    python -m r1zero.report.synthetic OUT_DIR --steps 450 --num-prompts 16
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import statistics
from pathlib import Path
from typing import Any

import yaml

_EN = {
    "try": "Let's try {a} {op} {b} = {r}.",
    "miss": "That gives {r}, which is not {t}.",
    "plan": "Maybe I can combine {a} and {b} first, then use the rest.",
    "reflect": "Wait, let me check that again: {a} {op} {b} = {r}. ",
    "foreign": "这样不对, ",
    "guess": "\nI think the answer is ",
    "loop": "Let's try {a} {op} {b} = {r}. That is not {t}. ",
}
_ZH = {
    "try": "我们试试 {a} {op} {b} = {r}。",
    "miss": "得到 {r}，不等于 {t}。",
    "plan": "也许可以先把 {a} 和 {b} 组合起来，再用剩下的数字。",
    "reflect": "等等，让我检查一下：{a} {op} {b} = {r}。",
    "foreign": "let me try another way, ",
    "guess": "\n我认为答案是 ",
    "loop": "我们试试 {a} {op} {b} = {r}。不等于 {t}。",
}
_PROMPT = {
    "en": "<|im_start|>user\nUsing the numbers {nums}, create an equation that equals {t}.<|im_end|>\n"
    "<|im_start|>assistant\nLet me solve this step by step.\n<think>",
    "zh": "<|im_start|>user\n使用给定的数字 {nums},创建一个等于 {t} 的方程。<|im_end|>\n"
    "<|im_start|>assistant\n让我们逐步解决这个问题。\n<think>",
}


def _tokens(text: str) -> int:
    """Rough token count: ~4 UTF-8 bytes per token (English ~4 chars, Chinese ~1.4 chars)."""
    return max(1, len(text.encode("utf-8")) // 4)


def _problem(rng: random.Random) -> tuple[list[int], int, str]:
    nums = [rng.randint(1, 99) for _ in range(rng.choice((3, 4)))]
    expr, value = str(nums[0]), nums[0]
    for n in nums[1:]:
        op = rng.choice("+-*" if value < 100 else "+-")
        value = value + n if op == "+" else value - n if op == "-" else value * n
        expr = f"({expr} {op} {n})"
    return nums, value, expr[1:-1] if expr.startswith("(") else expr


def _completion(rng: random.Random, p: float, lang: str, nums, target, expr, max_tokens: int):
    """Return (completion, format_ok, equation_ok, truncated); p is training progress in [0, 1]."""
    t = _EN if lang == "en" else _ZH
    fmt_ok = rng.random() < 1.0 - 0.7 * math.exp(-p * 40)
    correct = fmt_ok and rng.random() < 0.05 + 0.45 * p
    loop = rng.random() < 0.02 + 0.2 * math.exp(-(((p - 0.35) / 0.1) ** 2))
    want = int(rng.uniform(0.5, 1.5) * (120 + 500 * p))

    def fill(key: str) -> str:
        a, b = rng.sample(nums, 2)
        return t[key].format(a=a, b=b, op=rng.choice("+-*"), r=rng.randint(1, 300), t=target)

    parts = [fill("plan")]
    size = len(parts[0].encode("utf-8"))
    while size < 4 * want:
        parts.append(fill(rng.choice(("try", "try", "miss"))))
        size += len(parts[-1].encode("utf-8"))
    if rng.random() < 0.1 + 0.3 * p:
        parts.insert(rng.randrange(1, len(parts) + 1), fill("reflect"))
    if rng.random() < 0.08:
        parts.insert(rng.randrange(1, len(parts) + 1), t["foreign"])
    if loop:
        unit = fill("loop")
        reps = max_tokens * 4 // len(unit.encode("utf-8")) + 1
        text = ("".join(parts) + unit * reps).encode("utf-8")[: max_tokens * 4]
        return text.decode("utf-8", errors="ignore"), False, False, True
    think = "".join(parts)
    if not fmt_ok:
        return think + t["guess"] + expr, False, False, False
    answer = expr if correct else expr.replace("+", "-", 1) if "+" in expr else expr + " + 1"
    return f"{think}\n</think>\n<answer>{answer}</answer>", True, correct, False


def _step_rows(rng, step: int, p: float, *, lang, num_prompts, num_generations, max_tokens):
    rows = []
    for group in range(num_prompts):
        nums, target, expr = _problem(rng)
        prompt = _PROMPT[lang].format(nums=nums, t=target)
        g = []
        for _ in range(num_generations):
            text, fmt, eq, trunc = _completion(rng, p, lang, nums, target, expr, max_tokens)
            think = text.split("</think>", 1)[0]
            rewards = {
                "format": float(fmt),
                "equation": float(eq),
                "thought_len": float(len(think.strip()) > 1000),
            }
            g.append(
                {
                    "step": step,
                    "group": group,
                    "nums": nums,
                    "target": target,
                    "prompt": prompt,
                    "completion": text,
                    "rewards": rewards,
                    "reward": sum(rewards.values()),
                    "length": min(_tokens(text), max_tokens),
                    "truncated": trunc,
                }
            )
        mean = statistics.fmean(r["reward"] for r in g)
        std = statistics.pstdev(r["reward"] for r in g)
        for r in g:
            r["advantage"] = round((r["reward"] - mean) / (std + 1e-4), 4)
        rows.extend(g)
    return rows


def _metrics(rng, rows, step: int, steps: int, *, num_generations: int, lr: float) -> dict:
    rewards = [r["reward"] for r in rows]
    lengths = sorted(r["length"] for r in rows)
    groups = [rewards[i : i + num_generations] for i in range(0, len(rows), num_generations)]
    warm = max(1, int(0.03 * steps))
    lr_now = lr * (step / warm if step < warm else 0.5 * (1 + math.cos(math.pi * step / steps)))
    t_roll = 2 + sum(lengths) / 4000 * rng.uniform(0.9, 1.1)
    stages = {
        "time/rollout": t_roll,
        "time/rewards": 0.05,
        "time/logprobs": t_roll / 5,
        "time/update": t_roll / 3,
    }
    out = {
        "step": step,
        "reward": statistics.fmean(rewards),
        "reward_std": statistics.pstdev(rewards),
        **{
            f"rewards/{k}": statistics.fmean(r["rewards"][k] for r in rows)
            for k in rows[0]["rewards"]
        },
        "accuracy": statistics.fmean(r["rewards"]["equation"] for r in rows),
        "format_rate": statistics.fmean(r["rewards"]["format"] for r in rows),
        "completions/mean_length": statistics.fmean(lengths),
        "completions/p90_length": lengths[int(0.9 * (len(lengths) - 1))],
        "completions/max_length": lengths[-1],
        "completions/min_length": lengths[0],
        "completions/clipped_ratio": statistics.fmean(r["truncated"] for r in rows),
        "kl": 0.0005 * step * rng.uniform(0.8, 1.2),
        "entropy": 0.9 - 0.4 * step / steps + rng.uniform(-0.03, 0.03),
        "clip_ratio": rng.uniform(0.0, 0.01),
        "loss": rng.uniform(-0.02, 0.02),
        "grad_norm": rng.uniform(0.1, 0.6),
        "learning_rate": lr_now,
        "frac_reward_zero_std": statistics.fmean(len(set(g)) == 1 for g in groups),
        **stages,
        "step_time": sum(stages.values()),
        "num_prompts": len(groups),
        "num_completions": len(rows),
    }
    out["tokens_per_s"] = (sum(lengths) + 60 * len(rows)) / out["step_time"]
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in out.items()}


def write_synthetic_run(
    run_dir: Path,
    *,
    steps: int = 6,
    num_prompts: int = 2,
    num_generations: int = 8,
    language: str = "en",
    max_tokens: int = 4096,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    done: bool = True,
    compresslevel: int = 6,
) -> Path:
    """Write a complete synthetic run folder; ``config`` entries override the default config.yaml."""
    rng = random.Random(seed)
    run_dir = Path(run_dir)
    (run_dir / "completions").mkdir(parents=True, exist_ok=True)
    (run_dir / "eval").mkdir(exist_ok=True)
    cfg = {
        "model_name_or_path": "Qwen/Qwen2.5-3B-Instruct",
        "prompt_template": language,
        "seed": seed,
        "grpo": {
            "learning_rate": 5e-7,
            "beta": 0.001,
            "num_generations": num_generations,
            "max_completion_length": max_tokens,
            "max_steps": steps,
        },
        "reward_funcs": ["format", "equation", "thought_len"],
    }
    for key, value in (config or {}).items():
        node = cfg
        *path, leaf = key.split(".")
        for name in path:
            node = node.setdefault(name, {})
        node[leaf] = value
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    lr = float(cfg["grpo"]["learning_rate"])
    with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as metrics:
        for step in range(0, steps + 1):
            if step in (0, steps):
                acc = round(0.05 + 0.4 * step / steps + rng.uniform(-0.02, 0.02), 4)
                ev = {
                    "eval/accuracy": acc,
                    "eval/format_rate": min(1.0, 0.3 + step / steps),
                    "eval/mean_length": 200 + step,
                    "eval/pass_at_k": min(1.0, acc * 2),
                }
                metrics.write(json.dumps({"step": step, **ev}) + "\n")
                (run_dir / "eval" / f"step-{step:06d}.json").write_text(json.dumps(ev))
            if step == 0:
                continue
            rows = _step_rows(
                rng,
                step,
                step / steps,
                lang=language,
                num_prompts=num_prompts,
                num_generations=num_generations,
                max_tokens=max_tokens,
            )
            path = run_dir / "completions" / f"step-{step:06d}.jsonl.gz"
            with gzip.open(path, "wt", encoding="utf-8", compresslevel=compresslevel) as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            m = _metrics(rng, rows, step, steps, num_generations=num_generations, lr=lr)
            metrics.write(json.dumps(m) + "\n")
    if done:
        (run_dir / "done").write_text("")
    return run_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--steps", type=int, default=450)
    ap.add_argument("--num-prompts", type=int, default=16)
    ap.add_argument("--num-generations", type=int, default=8)
    ap.add_argument("--language", choices=("en", "zh"), default="zh")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    write_synthetic_run(
        a.out,
        steps=a.steps,
        num_prompts=a.num_prompts,
        num_generations=a.num_generations,
        language=a.language,
        seed=a.seed,
    )


if __name__ == "__main__":
    main()
