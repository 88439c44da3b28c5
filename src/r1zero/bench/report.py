"""Headline figures of a bench result and the table printed at the end."""

from __future__ import annotations

GOALS = {  # key: (target, "min" or "max"), one H100
    "rollout_tok_per_s": (30_000, "min"),
    "train_mfu": (0.45, "min"),
    "step_s": (8.0, "max"),
    "lora_peak_gib": (22.0, "max"),
}


def headline(r: dict) -> dict:
    """Top-level keys (None where a section did not run or failed)."""
    seqs = r.get("workload", {}).get("prompts", 16) * r.get("workload", {}).get(
        "num_generations", 8
    )
    roll = [v for v in r.get("rollout", {}).values() if "tok_per_s" in v and v["sequences"] == seqs]
    best = max(roll, key=lambda v: v["tok_per_s"], default=None)
    by_micro = r.get("train", {}).get("by_micro", {}) or {}
    best_train = max(by_micro.values(), key=lambda v: v["mfu"], default=None)
    step, lora, trl = r.get("step") or {}, r.get("lora") or {}, r.get("trl") or {}
    h = {
        "rollout_tok_per_s": best and best["tok_per_s"],
        "rollout_engine": best and best["engine"],
        "train_mfu": best_train and best_train["mfu"],
        "train_tok_per_s": best_train and best_train["tok_per_s"],
        "step_s": step.get("step_s"),
        "full_peak_gib": step.get("peak_gib"),
        "lora_step_s": lora.get("step_s"),
        "lora_peak_gib": lora.get("peak_gib"),
        "trl_step_s": trl.get("trl_step_s"),
        "trl_peak_gib": trl.get("trl_peak_gib"),
    }
    fast = (r.get("rollout") or {}).get(f"fast@{seqs}", {})
    if step.get("engine") == "fast_eager" and "seconds" in fast:  # derived, not measured
        h["step_s_with_compiled_fast_rollout_est"] = (
            step["step_s"] - step["rollout_s"] + fast["seconds"]
        )
    h["speedup_vs_trl"] = h["trl_step_s"] / h["step_s"] if h["trl_step_s"] and h["step_s"] else None
    h["goals"] = {
        k: {
            "target": t,
            "value": h[k],
            "met": None if h[k] is None else (h[k] >= t if d == "min" else h[k] <= t),
        }
        for k, (t, d) in GOALS.items()
    }
    return h


def _f(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def table_lines(r: dict) -> list[str]:
    w = r.get("workload", {})
    lines = [
        f"r1zero bench | {r.get('device')} | {r.get('date')} | shape {r.get('shape')} | torch {r.get('torch')}, transformers {r.get('transformers')}",
        f"workload: {w.get('prompts')} prompts x {w.get('num_generations')} generations, prompt {w.get('prompt_len')} + completion {w.get('completion_len')} (forced)",
        "",
        "| measurement | value | detail |",
        "| --- | --- | --- |",
    ]
    for spec, v in (r.get("rollout") or {}).items():
        if "tok_per_s" in v:
            detail = f"{v.get('sequences')} x ({v.get('prompt_len')}+{v.get('new_tokens')}) in {_f(v.get('seconds'), '.2f')} s; first call {_f(v.get('first_call_s'), '.1f')} s"
            lines.append(f"| rollout {spec} | {v['tok_per_s']:,.0f} tok/s | {detail} |")
        else:
            lines.append(f"| rollout {spec} | failed | {v.get('error', '')[:80]} |")
    for micro, v in ((r.get("train") or {}).get("by_micro") or {}).items():
        lines.append(
            f"| update, micro-batch {micro} | MFU {v['mfu']:.3f} | {v['tok_per_s']:,.0f} tok/s, {v['seconds']:.2f} s per optimizer step |"
        )
    for name, label in (("step", "GRPO step, full FT"), ("lora", "GRPO step, LoRA r=64")):
        s = r.get(name)
        if s:
            engine = f" ({s['engine']} rollout)" if s.get("engine") else ""
            lines.append(
                f"| {label}{engine} | {_f(s.get('step_s'), '.2f')} s | rollout {_f(s.get('rollout_s'), '.2f')} + logprobs {_f(s.get('logprobs_s'), '.2f')} + update {_f(s.get('update_s'), '.2f')}; peak {_f(s.get('peak_gib'), '.1f')} GiB; micro {s.get('micro_batch')} |"
            )
    hd = r.get("head")
    if hd:
        lines.append(
            f"| LM head alone, {hd['tokens']} tokens | {hd['fwd_bwd_s']:.2f} s fwd+bwd | {hd['fwd_only_s']:.2f} s fwd only (ref logprobs); its 3 matmuls need {hd['matmul_floor_fwd_bwd_s']:.2f} s |"
        )
    fc = (hd or {}).get("fused_candidate")
    if fc:
        lines.append(
            f"| LM head, fused version | {fc['fwd_bwd_s']:.2f} s fwd+bwd | {fc['fwd_only_s']:.2f} s fwd only (a one-function-per-chunk version, since adopted in algos/logprobs.py) |"
        )
    t = r.get("trl")
    if t:
        lines.append(
            f"| TRL {t.get('trl_version')} GRPOTrainer | {_f(t.get('trl_step_s'), '.2f')} s | steps {t.get('timed_steps')}, peak {_f(t.get('trl_peak_gib'), '.1f')} GiB; ours is {_f(r.get('speedup_vs_trl'), '.1f')}x faster |"
        )
    est = r.get("step_s_with_compiled_fast_rollout_est")
    if est:
        lines.append(
            f"| GRPO step, full FT, compiled fast rollout (derived) | {est:.2f} s | the step above with its rollout time replaced by fast@128's |"
        )
    for k, g in (r.get("goals") or {}).items():
        mark = {True: "met", False: "missed", None: "not measured"}[g["met"]]
        lines.append(
            f"| goal {k} {'>=' if GOALS[k][1] == 'min' else '<='} {g['target']} | {_f(g['value'], '.3g')} | {mark} |"
        )
    lines += [f"note: {n}" for n in r.get("notes") or []]
    for k, e in (r.get("errors") or {}).items():
        lines.append(f"| error in {k} | - | {e[:100]} |")
    return lines


def print_table(r: dict) -> None:
    print("\n".join(table_lines(r)), flush=True)
