# ruff: noqa: B023, E731, E741  (lambdas timed where they are made; I as in the papers)
"""Where a decode step's time goes (device probe): engine per-step time by batch size, the
kernel list of one step, and the floors of its GEMMs and attention under CUDA graphs.

    PYTHONPATH=src python benchmarks/probes/decode_profile.py --out $OUT/probe.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from r1zero.bench.model import build_model, load_shape
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.fast import FastEngine


def graph_ms(fn, reps: int = 20) -> float:
    """Median ms of one replay of a CUDA graph of ``fn``."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def gemm_floors(model, out: dict) -> None:
    cfg = model.config
    H, I, D = cfg.hidden_size, cfg.intermediate_size, 128
    Hq, Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
    n = cfg.num_hidden_layers
    dev, dt = "cuda", torch.bfloat16
    mk = lambda *s: torch.randn(*s, device=dev, dtype=dt) * 0.02  # noqa: E731
    Ws = [
        dict(
            q=mk(Hq * D, H),
            k=mk(Hkv * D, H),
            v=mk(Hkv * D, H),
            o=mk(H, Hq * D),
            g=mk(I, H),
            u=mk(I, H),
            d=mk(H, I),
            qkv=mk((Hq + 2 * Hkv) * D, H),
            gu=mk(2 * I, H),
        )
        for _ in range(n)
    ]
    head = model.get_input_embeddings().weight
    for M in (2, 16, 128):
        x, xi = mk(M, H), mk(M, I)
        sep = lambda: (
            [
                (
                    x @ w["q"].T,
                    x @ w["k"].T,
                    x @ w["v"].T,
                    x @ w["o"].T,
                    x @ w["g"].T,  # noqa: E731
                    x @ w["u"].T,
                    xi @ w["d"].T,
                )
                for w in Ws
            ]
            + [x @ head.T]
        )
        fused = lambda: (
            [
                (x @ w["qkv"].T, x @ w["o"].T, x @ w["gu"].T, xi @ w["d"].T)  # noqa: E731
                for w in Ws
            ]
            + [x @ head.T]
        )
        out[f"gemm_sep_M{M}_ms"] = graph_ms(sep)
        out[f"gemm_fused_M{M}_ms"] = graph_ms(fused)
        print(
            f"M={M}: separate GEMMs {out[f'gemm_sep_M{M}_ms']:.3f} ms, fused {out[f'gemm_fused_M{M}_ms']:.3f} ms",
            flush=True,
        )


def attention_floors(out: dict) -> None:
    from r1zero.rollout import kv

    dev, dt = "cuda", torch.bfloat16
    for b, W in ((2, 4224), (16, 2048), (128, 640), (128, 1280)):
        q = torch.randn(b, 16, 1, 128, device=dev, dtype=dt)
        k = torch.randn(b, 2, W, 128, device=dev, dtype=dt)
        v = torch.randn(b, 2, W, 128, device=dev, dtype=dt)
        mask = torch.zeros(b, 1, 1, W, device=dev, dtype=dt)
        for name, fn in kv.DECODE_ATTENTION.items():
            ms = graph_ms(lambda: [fn(q, k, v, mask, None) for _ in range(36)])
            out[f"attn_{name}_b{b}_W{W}_ms"] = ms
            gbps = 36 * k.numel() * 2 * 2 / ms / 1e6
            print(
                f"attention {name} b={b} W={W}: {ms:.3f} ms per 36 layers ({gbps:.0f} GB/s)",
                flush=True,
            )


def engine_steps(model, out: dict, kw: dict) -> None:
    eng = FastEngine(**kw)
    V = model.config.vocab_size
    for b, lengths in ((128, (256, 768)), (16, (256, 768)), (2, (256, 768)), (2, (2048, 4000))):
        ids = torch.randint(0, V, (b, 150), device="cuda")
        mask = torch.ones_like(ids)
        res = {}
        for L in lengths:
            p = SamplingParams(max_new_tokens=L, ignore_eos=True, eos_token_ids=(151645,))
            eng.generate(model, ids, mask, p)
            torch.cuda.synchronize()
            t = time.perf_counter()
            eng.generate(model, ids, mask, p)
            torch.cuda.synchronize()
            res[L] = time.perf_counter() - t
        lo, hi = lengths
        ms = (res[hi] - res[lo]) / (hi - lo) * 1e3
        out[f"engine_step_b{b}_{lo}-{hi}_ms"] = ms
        print(f"engine {kw} b={b}: {ms:.3f} ms per decode step (tokens {lo}-{hi})", flush=True)


def kernel_table(model, out: dict, graphs: bool, kw: dict) -> None:
    from torch.profiler import ProfilerActivity, profile

    eng = FastEngine(cuda_graph=graphs, **kw)
    ids = torch.randint(0, model.config.vocab_size, (2, 150), device="cuda")
    p = SamplingParams(max_new_tokens=64, ignore_eos=True, eos_token_ids=(151645,))
    eng.generate(model, ids, torch.ones_like(ids), p)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        eng.generate(model, ids, torch.ones_like(ids), p)
        torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if t and e.device_type.name == "CUDA":
            rows.append((t, e.count, e.key[:90]))
    rows.sort(reverse=True)
    tag = "graph" if graphs else "eager"
    total = sum(r[0] for r in rows)
    kernels = sum(r[1] for r in rows)
    out[f"kernels_{tag}"] = [{"us_total": r[0], "count": r[1], "name": r[2]} for r in rows[:60]]
    out[f"kernels_{tag}_total_us_per_step"] = total / 63
    out[f"kernels_{tag}_count_per_step"] = kernels / 63
    print(
        f"[{tag}] kernel time {total / 63:.0f} us/step over {kernels / 63:.0f} kernels/step",
        flush=True,
    )
    for t, c, name in rows[:40]:
        print(f"  {t / 63:8.1f} us/step  {c / 63:6.1f}/step  {name}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--parts", default="gemm,attn,engine,eager,graph")
    ap.add_argument("--hf", action="store_true", help="the engine decodes through HF's forward")
    a = ap.parse_args()
    out: dict = {"torch": torch.__version__, "device": torch.cuda.get_device_name()}
    model = build_model(load_shape("qwen2.5-3b"), torch.device("cuda"))
    model.eval()
    parts = a.parts.split(",")
    kw = {"own_forward": False} if a.hf else {}
    try:
        if "gemm" in parts:
            gemm_floors(model, out)
        if "attn" in parts:
            attention_floors(out)
        if "eager" in parts:
            kernel_table(model, out, graphs=False, kw=kw)
        if "graph" in parts:
            kernel_table(model, out, graphs=True, kw=kw)
        if "engine" in parts:
            engine_steps(model, out, kw)
    finally:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
