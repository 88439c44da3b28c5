"""Held-out evaluation: greedy accuracy, format rate, length and pass@k of any model."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from r1zero.config import GRPOConfig, ModelConfig
from r1zero.models import eos_ids, load_model, load_tokenizer, lora_base, pick_device, pick_dtype
from r1zero.progress import phase
from r1zero.rollout import get_engine
from r1zero.rollout.policy import Policy, rollout
from r1zero.task.prompts import get_template
from r1zero.task.rewards import REWARD_FUNCS, score

EVAL_REWARDS = [(n, REWARD_FUNCS[n]) for n in ("format", "equation", "thought_len")]


def _scored(
    policy: Policy, rows: list[dict], cfg: GRPOConfig, *, greedy: bool, n: int, batch_size: int
) -> list[dict]:
    what = (
        f"evaluating on {len(rows)} held-out problems (greedy)"
        if greedy
        else f"sampling {n} completions of each of {len(rows)} held-out problems (pass@{n})"
    )
    with phase(what, total=len(rows)) as advance:
        return _scored_batches(
            policy, rows, cfg, greedy=greedy, n=n, batch_size=batch_size, advance=advance
        )


def _scored_batches(
    policy: Policy,
    rows: list[dict],
    cfg: GRPOConfig,
    *,
    greedy: bool,
    n: int,
    batch_size: int,
    advance: Callable[[int], None],
) -> list[dict]:
    out = []
    for s in range(0, len(rows), batch_size):
        rep_rows, _, batch, completions = rollout(
            policy, rows[s : s + batch_size], cfg, greedy=greedy, n=n
        )
        rewards = score(EVAL_REWARDS, completions, rep_rows)
        lengths, truncated = batch.completion_lengths.tolist(), batch.truncated.tolist()
        for i, (row, c) in enumerate(zip(rep_rows, completions, strict=True)):
            out.append(
                {
                    "completion": c,
                    "nums": row["nums"],
                    "target": row["target"],
                    **{k: float(v[i]) for k, v in rewards.items()},
                    "length": lengths[i],
                    "truncated": truncated[i],
                    "greedy": greedy,
                    "problem": s + i // n,
                }
            )
        advance(len(rep_rows) // n)
    return out


@torch.no_grad()
def evaluate(
    policy: Policy, rows: list[dict], cfg: GRPOConfig, *, k: int = 0, batch_size: int = 64
) -> tuple[dict[str, Any], list[dict]]:
    """Greedy accuracy (equation reward 1), format rate, mean length; pass@k from k samples each."""
    greedy = _scored(policy, rows, cfg, greedy=True, n=1, batch_size=batch_size)
    n = max(len(greedy), 1)
    result: dict[str, Any] = {
        "n": len(greedy),
        "accuracy": sum(s["equation"] for s in greedy) / n,
        "format_rate": sum(s["format"] for s in greedy) / n,
        "mean_length": sum(s["length"] for s in greedy) / n,
        "truncated_rate": sum(s["truncated"] for s in greedy) / n,
        "pass_at_k": None,
        "k": k,
    }
    samples = list(greedy)
    if k > 0:
        sampled = _scored(policy, rows, cfg, greedy=False, n=k, batch_size=max(batch_size // k, 1))
        solved = {s["problem"] for s in sampled if s["equation"] >= 1}
        result["pass_at_k"] = len(solved) / n
        samples += sampled
    return result, samples


def write_eval(
    result: dict[str, Any], samples: list[dict], json_out: Path | None, samples_out: Path | None
) -> None:
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=1))
    if samples_out is not None:
        samples_out.parent.mkdir(parents=True, exist_ok=True)
        with open(samples_out, "w", encoding="utf-8") as fh:
            for s in samples:
                fh.write(json.dumps(s, ensure_ascii=False) + "\n")


def eval_config(cfg: GRPOConfig, max_new_tokens: int | None) -> GRPOConfig:
    return dataclasses.replace(
        cfg, max_completion_length=max_new_tokens or cfg.max_completion_length
    )


def load_for_eval(
    path: str,
    *,
    template: str,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    engine: str = "auto",
) -> tuple[Policy, GRPOConfig]:
    """Any model folder, checkpoint or LoRA adapter (its base found by
    :func:`r1zero.models.lora_base`) as a Policy in eval mode, and the sampling config."""
    random.seed(seed)
    torch.manual_seed(seed)
    device = pick_device()
    mcfg = ModelConfig(model_name_or_path=path)
    dtype = pick_dtype(mcfg, None, device)
    if (Path(path) / "adapter_config.json").is_file():
        from peft import PeftModel

        base_name = lora_base(Path(path))
        model = PeftModel.from_pretrained(load_model(base_name, mcfg, dtype, device), path)
        tok_src = path if (Path(path) / "tokenizer_config.json").is_file() else base_name
    else:
        model = load_model(path, mcfg, dtype, device)
        tok_src = path
    model.eval()
    tokenizer = load_tokenizer(tok_src, mcfg)
    name = engine if engine != "auto" else ("fast" if device.type == "cuda" else "hf")
    policy = Policy(
        model=model,
        tokenizer=tokenizer,
        template=get_template(template),
        engine=get_engine(name),
        device=device,
        eos_token_ids=eos_ids(model, tokenizer),
    )
    cfg = GRPOConfig(
        max_completion_length=max_new_tokens, temperature=temperature, max_prompt_length=None
    )
    return policy, cfg
