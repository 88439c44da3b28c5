"""Physical floors of a workload's stages: what the bytes and FLOPs alone would take.

Rollout: every decode step reads the bf16 weights once, and the KV cache of the rows still
decoding (a batch that compacts as rows end reads no finished row), at the GPU's copy
bandwidth; the update 8 N FLOPs a token (forward, backward, recomputation), the reference
log-probs 2 N, at the dense bf16 peak. ``python -m r1zero.bench.floors`` prints them.
"""

from __future__ import annotations

import argparse

from r1zero.bench import model as B
from r1zero.bench import workloads as W

HBM_BYTES_PER_S = {"H200": 4.3e12, "H100": 3.0e12}
"""Device-to-device copy bandwidth: the H200's as measured here (KINDS.md), the H100's as the
issue that set the 47,000 tok/s floor took it."""


def bandwidth(device: str) -> float:
    for key, bw in HBM_BYTES_PER_S.items():
        if key in device:
            return bw
    return HBM_BYTES_PER_S["H100"]


def kv_bytes_per_token(shape: dict) -> int:
    head_dim = shape.get("head_dim") or shape["hidden_size"] // shape["num_attention_heads"]
    return 2 * shape["num_hidden_layers"] * shape["num_key_value_heads"] * head_dim * 2


def rollout_floor_s(shape: dict, lengths: list[int], prompt_len: int, n_params: int, bw: float):
    """Seconds for max(lengths) decode steps, each reading the weights and the live rows' KV."""
    per_token = kv_bytes_per_token(shape)
    steps = max(lengths)
    weights = 2 * n_params * steps
    kv = sum(per_token * (prompt_len * c + c * (c + 1) // 2) for c in lengths)  # live rows only
    return (weights + kv) / bw


def floors(shape: dict, w: dict, n_params: int, device: str) -> dict:
    """Floors of one workload (``w``: a ``Workload.describe()`` dict with its lengths)."""
    seqs = w["prompts"] * w["num_generations"]
    lengths = w.get("lengths") or [w["completion_len"]] * seqs
    peak, bw = B.peak_flops(device), bandwidth(device)
    tokens = sum(w["prompt_len"] + c for c in lengths)
    return {
        "rollout_s": rollout_floor_s(shape, lengths, w["prompt_len"], n_params, bw),
        "rollout_weights_only_s": 2 * n_params * max(lengths) / bw,
        "update_s": 8 * n_params * tokens / peak,
        "logprobs_s": 2 * n_params * tokens / peak,
        "bandwidth": bw,
        "peak_flops": peak,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m r1zero.bench.floors", description=__doc__)
    p.add_argument("--shape", default="qwen2.5-3b")
    p.add_argument("--device", default="NVIDIA H200", help="a GPU name (its bandwidth, peak)")
    a = p.parse_args(argv)
    shape = B.load_shape(a.shape)
    import torch

    n_params = B.count_params(B.build_model(shape, torch.device("meta")))
    for name in W.NAMES:
        f = floors(shape, W.make(name).describe(), n_params, a.device)
        print(
            f"{name}: rollout floor {f['rollout_s']:.2f} s (weights alone "
            f"{f['rollout_weights_only_s']:.2f} s), update {f['update_s']:.2f} s, "
            f"reference logprobs {f['logprobs_s']:.2f} s ({a.device}, {f['bandwidth'] / 1e12:.1f} TB/s)"
        )


if __name__ == "__main__":
    main()
