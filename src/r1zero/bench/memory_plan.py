"""Per-GPU memory of a full fine-tune under r1zero's FSDP2, computed from the model's shape.

Not a measurement: byte counts of what each GPU holds in each phase of a GRPO step, so
that a user can tell before renting GPUs whether a shape fits (``r1zero bench`` prints it
beside what it measures; ``python -m r1zero.bench.memory_plan --shape qwen2.5-7b``).

What r1zero's FSDP2 keeps (see :mod:`r1zero.train.sharded`), with P parameters over N GPUs:

- sharded state, always: fp32 weights 4P/N, fp32 gradients 4P/N, AdamW moments 8P/N;
  the reference model (beta > 0) in bf16, 2P/N;
- training: the root unit (embeddings, final norm, LM head) gathered in bf16 for the whole
  forward and backward with its bf16 gradient; two decoder layers gathered (the one
  computing and the next, prefetched) with their gradients before the reduce-scatter;
  activations of one micro-batch: with gradient checkpointing each layer's bf16 input,
  plus one layer recomputed; the LM head's fp32 logits for one chunk of tokens;
- rollout: the full bf16 weights (:func:`sharded.gathered`) and the KV cache of this
  rank's completions at full length.

The peak is the larger phase. Allocator fragmentation and CUDA context (about 1 GiB) are
left out: add a margin.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class Workload:
    """The reference experiment's step (Datawhale-R1): 16 prompts x 8 completions per step,
    1 prompt (8 sequences) per micro-batch, prompt 256 + completion 4096 tokens at most."""

    prompts_per_step: int = 16
    num_generations: int = 8
    prompts_per_micro_step: int = 1
    prompt_tokens: int = 256
    completion_tokens: int = 4096
    gradient_checkpointing: bool = True
    logprob_chunk_size: int = 1024
    beta: float = 0.001


def count_params(shape: dict) -> dict[str, int]:
    """Parameters of a Qwen2/Llama-style decoder from its config fields."""
    h, i, v, n = (
        shape[k] for k in ("hidden_size", "intermediate_size", "vocab_size", "num_hidden_layers")
    )
    heads = shape["num_attention_heads"]
    kv = shape.get("num_key_value_heads", heads) * shape.get("head_dim", h // heads)
    bias = shape.get("model_type") == "qwen2"  # q, k, v projections carry biases
    attn = h * h + 2 * h * kv + h * h + (h + 2 * kv if bias else 0)
    layer = attn + 3 * h * i + 2 * h
    embed = v * h
    head = 0 if shape.get("tie_word_embeddings") else v * h
    return {
        "layer": layer,
        "layers": n * layer,
        "root": embed + head + h,
        "total": n * layer + embed + head + h,
    }


def plan(shape: dict, world: int, w: Workload = Workload()) -> dict[str, float]:
    """Bytes per GPU, by part, for ``world`` GPUs (the global batch stays the same)."""
    p = count_params(shape)
    h, n = shape["hidden_size"], shape["num_hidden_layers"]
    heads = shape["num_attention_heads"]
    kv = shape.get("num_key_value_heads", heads) * shape.get("head_dim", h // heads)
    seq = w.prompt_tokens + w.completion_tokens
    sharded = {
        "weights fp32 (sharded)": 4 * p["total"] / world,
        "grads fp32 (sharded)": 4 * p["total"] / world,
        "AdamW moments (sharded)": 8 * p["total"] / world,
        "reference bf16 (sharded)": (2 * p["total"] / world) if w.beta > 0 else 0.0,
    }
    tokens = w.prompts_per_micro_step * w.num_generations * seq
    per_token_layer = (4 * h + 3 * shape["intermediate_size"]) * 2  # q,k,v,o + gate,up,act in bf16
    if w.gradient_checkpointing:
        acts = tokens * h * 2 * n + 2 * tokens * per_token_layer  # inputs kept, one layer live
    else:
        acts = 2 * tokens * per_token_layer * n
    train = {
        "root unit gathered, bf16 + grad": 2 * 2 * p["root"],
        "2 layers gathered, bf16 + grads": 2 * 2 * 2 * p["layer"],
        "activations (one micro-batch)": acts,
        "logits chunk fp32 (x3)": 3 * 4 * w.logprob_chunk_size * shape["vocab_size"],
    }
    sequences = w.prompts_per_step * w.num_generations / world
    rollout = {
        "full weights bf16 (gathered)": 2 * p["total"],
        "KV cache bf16": sequences * seq * 2 * n * kv * 2,
    }
    state = sum(sharded.values())
    return {
        **sharded,
        **train,
        **rollout,
        "peak training": state + sum(train.values()),
        "peak rollout": state + sum(rollout.values()),
        "peak": state + max(sum(train.values()), sum(rollout.values())),
        "params": float(p["total"]),
    }


def plan_table(
    shape: dict, name: str, worlds: tuple[int, ...] = (2, 4, 8), w: Workload = Workload()
) -> str:
    """A markdown table: one row per part, one column per GPU count, GiB per GPU."""
    plans = [plan(shape, n, w) for n in worlds]
    head = f"| {name}, {plans[0]['params'] / 1e9:.2f}B params, full FT, FSDP2 | " + " | ".join(
        f"{n} GPUs" for n in worlds
    )
    lines = [head + " |", "| --- |" + " --- |" * len(worlds)]
    for key in plans[0]:
        if key == "params":
            continue
        cells = " | ".join(f"{pl[key] / GIB:.1f}" for pl in plans)
        label = f"**{key}**" if key == "peak" else key
        lines.append(f"| {label} (GiB) | {cells} |")
    lines.append(
        f"\nWorkload: {w.prompts_per_step} prompts x {w.num_generations} completions per step, "
        f"{w.prompts_per_micro_step * w.num_generations} sequences per micro-batch, "
        f"{w.prompt_tokens} + {w.completion_tokens} tokens, gradient checkpointing "
        f"{'on' if w.gradient_checkpointing else 'off'}, beta {w.beta}. Computed from the "
        "shape, not measured; CUDA context and fragmentation not included."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from r1zero.bench.model import load_shape

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="qwen2.5-7b")
    ap.add_argument("--gpus", default="2,4,8")
    ap.add_argument("--completion-tokens", type=int, default=Workload.completion_tokens)
    args = ap.parse_args(argv)
    worlds = tuple(int(x) for x in args.gpus.split(","))
    w = Workload(completion_tokens=args.completion_tokens)
    print(plan_table(load_shape(args.shape), args.shape, worlds, w))


if __name__ == "__main__":
    main()
