"""Measure a model on held-out Countdown problems: greedy accuracy and format, sampled
accuracy and pass@k, lengths in tokens. Used to check the tiny model's prior; works on any
model folder.

    python -m r1zero.tiny.probe [MODEL_DIR] [--n 200] [--k 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from r1zero.task import countdown
from r1zero.task.prompts import TEMPLATES, render
from r1zero.task.rewards import equation_reward, format_reward

HELDOUT_SEED = 123_457


@torch.no_grad()
def _generate(
    model, tok, prompts: list[str], *, k: int, sample: bool, max_new_tokens: int, chunk: int = 256
):
    """Decoded completions, ``k`` per prompt (prompt-major), and their token lengths."""
    texts, lengths = [], []
    per = max(1, chunk // k)
    for s in range(0, len(prompts), per):
        enc = tok(prompts[s : s + per], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(model.device)
        out = model.generate(
            **enc,
            do_sample=sample,
            temperature=1.0 if sample else None,
            top_p=None,
            top_k=None,
            num_return_sequences=k,
            max_new_tokens=max_new_tokens,
        )
        comp = out[:, enc["input_ids"].shape[1] :]
        eos = torch.isin(
            comp, torch.tensor(model.generation_config.eos_token_id, device=comp.device)
        )
        has = eos.any(-1)
        lengths += torch.where(has, eos.int().argmax(-1) + 1, comp.shape[1]).tolist()
        texts += tok.batch_decode(comp, skip_special_tokens=True)
    return texts, lengths


def measure(
    folder: Path | str,
    *,
    n: int = 200,
    k: int = 8,
    seed: int = HELDOUT_SEED,
    template: str = "zh",
    max_new_tokens: int = 160,
    data: dict | None = None,
    device: str = "cpu",
) -> dict:
    """Greedy and sampled (temperature 1) scores of the model on ``n`` fresh problems."""
    from r1zero.tiny.build import TINY_DATA

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder).to(device).eval()
    probs = list(countdown.generate(n, seed=seed, **(data or TINY_DATA)))
    prompts = [render(tok, TEMPLATES[template], list(p.nums), p.target) for p in probs]
    nums = [list(p.nums) for p in probs]
    target = [p.target for p in probs]
    out = {
        "n": n,
        "prompt_tokens": sum(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts)
        / n,
    }
    t0 = time.perf_counter()
    greedy, glen = _generate(model, tok, prompts, k=1, sample=False, max_new_tokens=max_new_tokens)
    out["greedy_seconds"] = round(time.perf_counter() - t0, 1)
    out["greedy_accuracy"] = sum(equation_reward(greedy, nums=nums, target=target)) / n
    out["greedy_format"] = sum(format_reward(greedy)) / n
    out["greedy_tokens"] = sum(glen) / n
    t0 = time.perf_counter()
    sampled, slen = _generate(model, tok, prompts, k=k, sample=True, max_new_tokens=max_new_tokens)
    out["sample_seconds"] = round(time.perf_counter() - t0, 1)
    eq = equation_reward(
        sampled,
        nums=[x for x in nums for _ in range(k)],
        target=[t for t in target for _ in range(k)],
    )
    out["sample_accuracy"] = sum(eq) / len(eq)
    out["sample_format"] = sum(format_reward(sampled)) / len(sampled)
    out["sample_tokens"] = sum(slen) / len(slen)
    out[f"pass@{k}"] = sum(any(eq[i * k : (i + 1) * k]) for i in range(n)) / n
    out["examples"] = greedy[:3] + sampled[:3]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "folder", nargs="?", help="model folder (default: build or reuse the tiny model)"
    )
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--template", default="zh", choices=sorted(TEMPLATES))
    args = ap.parse_args()
    if args.folder is None:
        from r1zero.tiny.build import build_tiny

        args.folder = build_tiny()
    for key, value in measure(args.folder, n=args.n, k=args.k, template=args.template).items():
        print(f"{key:16s} {value!r}")


if __name__ == "__main__":
    main()
