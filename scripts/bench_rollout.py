"""Rollout throughput (new tokens per second) of the rollout engines, plus GPU correctness checks.

The model is Qwen2.5-3B's shape with random weights in bf16: nothing is downloaded. Completions are
forced to --new-tokens (ignore_eos), so tok/s = batch * new_tokens / seconds, prefill included.
Prompts are random ids, left-padded to --prompt-len (real lengths uniform in [P/2, P]).

    PYTHONPATH=src python3 scripts/bench_rollout.py --out benchmarks/results/rollout.json
    PYTHONPATH=src python3 scripts/bench_rollout.py --tiny   # seconds-long smoke run, CPU is fine

Checks (first batch size): the fast engine's greedy tokens against HF generate with a static cache
(uncompiled) on the same prompts, as the fraction of equal tokens among the first --check-tokens;
a teacher-forced forward over prompt + fast completion must give finite logits; sampling with the
same seed must repeat and with another seed must differ.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time

import torch
import transformers
from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

from r1zero.rollout import get_engine, kv
from r1zero.rollout.base import SamplingParams
from r1zero.rollout.fast import ATTENTION_NAME, FastEngine, attention_implementation, round_up

QWEN25_3B = dict(
    hidden_size=2048,
    intermediate_size=11008,
    num_hidden_layers=36,
    num_attention_heads=16,
    num_key_value_heads=2,
    vocab_size=151936,
    max_position_embeddings=32768,
    rope_theta=1e6,
    tie_word_embeddings=True,
    rms_norm_eps=1e-6,
)
TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=1000,
)
PAD = 151643  # Qwen's <|endoftext|>; any id works for random weights


def build_model(shape: dict, device: str) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(**shape, pad_token_id=PAD % shape["vocab_size"])
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    with torch.device(device):
        return Qwen2ForCausalLM(config).to(dtype).eval()


def make_prompts(B: int, P: int, vocab: int, device: str, seed: int = 0):
    """(B, P) random ids left-padded with PAD, real lengths uniform in [P/2, P]."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (B, P), generator=g)
    lens = torch.randint(P // 2, P + 1, (B,), generator=g)
    mask = (torch.arange(P) >= P - lens[:, None]).long()
    return ids.masked_fill(mask == 0, PAD % vocab).to(device), mask.to(device)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn) -> tuple[float, object]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def engine_named(name: str):
    if name == "fast_nocompile":  # CUDA graph of the eager model step
        return FastEngine(compile=False)
    if name == "fast_greedy":
        return None  # runs on the "fast" engine
    return get_engine(name)


def bench_engine(name, engine, model, prompts, params, repeats: int) -> dict:
    """One warm-up call (compilation, graph capture), then ``repeats`` timed calls."""
    ids, mask = prompts
    if name == "fast_greedy":  # the same engine and compiled step; argmax instead of sampling
        params = SamplingParams(**{**params.__dict__, "do_sample": False})
    warm = params
    if name == "hf":  # nothing to compile; a short warm-up saves device time
        warm = SamplingParams(**{**params.__dict__, "max_new_tokens": 8})
    first_s, _ = timed(lambda: engine.generate(model, ids, mask, warm))
    seconds = []
    for i in range(repeats):
        g = torch.Generator().manual_seed(i)
        s, batch = timed(lambda g=g: engine.generate(model, ids, mask, params, g))
        assert batch.completion_ids.shape == (ids.shape[0], params.max_new_tokens)
        seconds.append(s)
    if name.startswith("fast"):  # prefill + first token alone, to split prefill from decode
        one = SamplingParams(**{**params.__dict__, "max_new_tokens": 1})
        prefill_s = min(timed(lambda: engine.generate(model, ids, mask, one))[0] for _ in range(2))
    median = statistics.median(seconds)
    new_tokens = ids.shape[0] * params.max_new_tokens
    return dict(
        engine=name,
        batch_size=ids.shape[0],
        prompt_len=ids.shape[1],
        new_tokens=params.max_new_tokens,
        first_call_s=round(first_s, 2),
        seconds=[round(s, 3) for s in seconds],
        tok_per_s=round(new_tokens / median),
        **(dict(prefill_s=round(prefill_s, 3)) if name.startswith("fast") else {}),
    )


@torch.no_grad()
def greedy_check(model, engine: FastEngine, prompts, n: int) -> dict:
    """Fast greedy vs HF static-cache greedy (uncompiled), and a finite teacher-forced forward."""
    ids, mask = prompts
    params = SamplingParams(max_new_tokens=n, do_sample=False, pad_token_id=PAD % model.vocab_size)
    fast = engine.generate(model, ids, mask, params).completion_ids  # (B, n)
    gen_cfg = GenerationConfig(
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=params.pad_token_id,
        cache_implementation="static",
        disable_compile=True,
    )
    hf = model.generate(input_ids=ids, attention_mask=mask, generation_config=gen_cfg)
    hf = hf[:, ids.shape[1] :]  # (B, n)
    same = fast == hf
    first_diff = torch.where(same.all(-1), n, (~same).int().argmax(-1))  # (B,)
    full = torch.cat([ids, fast], 1)
    full_mask = torch.cat([mask, torch.ones_like(fast)], 1)
    positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=full, attention_mask=full_mask, position_ids=positions, logits_to_keep=n + 1
    ).logits[:, :-1]  # (B, n, V): the positions that predict the completion
    forced = logits.argmax(-1)  # (B, n) teacher-forced greedy
    return dict(
        greedy_tokens_compared=same.numel(),
        greedy_match_vs_hf_static=round(same.float().mean().item(), 4),
        greedy_rows_identical=round(same.all(-1).float().mean().item(), 4),
        greedy_mean_first_mismatch=round(first_diff.float().mean().item(), 2),
        greedy_match_vs_teacher_forced=round((forced == fast).float().mean().item(), 4),
        teacher_forced_logits_finite=bool(torch.isfinite(logits).all()),
    )


def profile_decode(engine: FastEngine, model, prompts, window: int) -> str:
    """Kernel table of ``stop_check_interval`` decode steps, launched eagerly (no graph)."""
    ids, mask = prompts
    params = SamplingParams(
        max_new_tokens=200, pad_token_id=PAD % model.vocab_size, ignore_eos=True
    )
    engine.cuda_graph = False
    try:
        engine.generate(model, ids, mask, params)  # leaves the cache filled to slot P + 200ish
        store, state = engine._store, engine._state
        graphs = engine._graphs_for(model, store, params)
        decode = engine._decoder(graphs, model, store, state, params, ids.shape[0], window)
        sync()
        kind = "cuda" if torch.cuda.is_available() else "cpu"
        activity = getattr(torch.profiler.ProfilerActivity, kind.upper())
        with (
            attention_implementation(model.config, ATTENTION_NAME),
            kv.using_store(store),
            torch.profiler.profile(activities=[activity]) as prof,
        ):
            decode()
            sync()
    finally:
        engine.cuda_graph = None
    return prof.key_averages().table(sort_by=f"{kind}_time_total", row_limit=22)


def sampling_check(model, engine: FastEngine, prompts, n: int) -> dict:
    ids, mask = prompts
    params = SamplingParams(max_new_tokens=n, pad_token_id=PAD % model.vocab_size)

    def run(seed):
        return engine.generate(model, ids, mask, params, torch.Generator().manual_seed(seed))

    a, b, c = run(1), run(1), run(2)
    return dict(
        sampling_same_seed_equal=bool(torch.equal(a.completion_ids, b.completion_ids)),
        sampling_other_seed_differs=not torch.equal(a.completion_ids, c.completion_ids),
        sampling_distinct_tokens=int(a.completion_ids.unique().numel()),
    )


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--engines", nargs="+", default=["fast", "fast_nocompile", "hf_static", "hf"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 256])
    p.add_argument(
        "--hf-batch-sizes",
        nargs="+",
        type=int,
        default=[128],
        help="batch sizes at which the (slow) hf engines run",
    )
    p.add_argument("--prompt-len", type=int, default=150)
    p.add_argument("--new-tokens", type=int, default=512)
    p.add_argument("--repeats", type=int, default=2, help="timed calls per fast engine (hf: 1)")
    p.add_argument("--check-tokens", type=int, default=32)
    p.add_argument("--out", default=None, help="JSON file, rewritten after every measurement")
    p.add_argument("--tiny", action="store_true", help="tiny model and sizes: a smoke run")
    p.add_argument("--profile", action="store_true", help="kernel table of the fast decode step")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.tiny:
        args.batch_sizes, args.hf_batch_sizes = [4, 6], [4]
        args.prompt_len, args.new_tokens, args.check_tokens = 12, 20, 8
    shape = TINY if args.tiny else QWEN25_3B
    model = build_model(shape, device)
    report = dict(
        device=torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        date=datetime.date.today().isoformat(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        python=platform.python_version(),
        command=" ".join(["python3", *sys.argv]),
        model_shape=shape,
        dtype=str(next(model.parameters()).dtype),
        sampling="temperature 1.0, top_p 1.0, top_k 0, ignore_eos",
        results=[],
        checks={},
    )

    def save():
        if args.out:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=1)

    engines = {name: engine_named(name) for name in args.engines}
    params = SamplingParams(
        max_new_tokens=args.new_tokens, pad_token_id=PAD % model.vocab_size, ignore_eos=True
    )
    # fast engines first: the hf baselines are slow, and a timeout should cost them, not ours
    jobs = [(B, n) for B in args.batch_sizes for n in engines if n.startswith("fast")]
    jobs += [(B, n) for n in engines if not n.startswith("fast") for B in args.hf_batch_sizes]
    prompts = {
        B: make_prompts(B, args.prompt_len, model.vocab_size, device) for B in args.batch_sizes
    }
    for B, name in jobs:
        repeats = args.repeats if name.startswith("fast") else 1
        try:
            engine = engines["fast" if name == "fast_greedy" else name]
            result = bench_engine(name, engine, model, prompts[B], params, repeats)
            result["max_memory_gb"] = (
                round(torch.cuda.max_memory_allocated() / 2**30, 1) if device == "cuda" else 0
            )
        except Exception as e:  # keep the other measurements of this (costly) call
            result = dict(engine=name, batch_size=B, error=f"{type(e).__name__}: {e}"[:500])
        print(json.dumps(result), flush=True)
        report["results"].append(result)
        save()
        first_fast = next(n for n in engines if n.startswith("fast"))  # checks run on this one
        if name == first_fast and B == args.batch_sizes[0] and "error" not in result:
            checks = greedy_check(model, engines[name], prompts[B], args.check_tokens)
            checks.update(sampling_check(model, engines[name], prompts[B], args.check_tokens))
            report["checks"] = checks
            print(json.dumps(checks), flush=True)
            save()
            if args.profile:
                window = round_up(args.prompt_len + 200 + 32, 128)
                report["decode_profile"] = profile_decode(engines[name], model, prompts[B], window)
                print(report["decode_profile"], flush=True)
                save()
    print_table(report)
    return report


def print_table(report: dict) -> None:
    print(f"\n{report['device']}  torch {report['torch']}  transformers {report['transformers']}")
    print(f"{'engine':<16}{'B':>5}{'new':>6}{'tok/s':>10}{'first call s':>14}  timed s")
    for r in report["results"]:
        if "error" in r:
            print(f"{r['engine']:<16}{r['batch_size']:>5}  ERROR {r['error'][:120]}")
            continue
        print(
            f"{r['engine']:<16}{r['batch_size']:>5}{r['new_tokens']:>6}{r['tok_per_s']:>10,}"
            f"{r['first_call_s']:>14}  {r['seconds']}"
        )
    for k, v in report["checks"].items():
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
