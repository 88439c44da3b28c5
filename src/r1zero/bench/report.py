"""Headline figures of a bench result (per workload and overall) and the table printed at the end."""

from __future__ import annotations

WORKLOAD_NAMES = ("reference", "tutorial", "collapse")  # as r1zero.bench.workloads.NAMES

GOALS = {  # key: (target, "min" or "max"), one H100; the reference workload
    "rollout_tok_per_s": (30_000, "min"),
    "train_mfu": (0.45, "min"),
    "step_s": (8.0, "max"),
    "lora_peak_gib": (22.0, "max"),
}
WORKLOAD_GOALS = {  # issue 15, one H200: (workload, key): (target, "max")
    ("tutorial", "rollout_s"): (7.0, "max"),
    ("collapse", "rollout_s"): (25.0, "max"),
    ("reference", "rollout_s"): (3.2, "max"),
    ("tutorial", "lora_peak_gib"): (22.0, "max"),
    ("tutorial", "peak_gib"): (80.0, "max"),
}
SUMMARY_KEYS = (
    "rollout_s",
    "logprobs_s",
    "update_s",
    "step_s",
    "peak_gib",
    "lora_step_s",
    "lora_peak_gib",
    "trl_step_s",
)


def best_rollout(slot: dict) -> dict | None:
    """The fastest successful rollout spec at the workload's own number of sequences."""
    w = slot.get("workload") or {}
    seqs = w.get("prompts", 16) * w.get("num_generations", 8)
    roll = [
        v
        for v in (slot.get("rollout") or {}).values()
        if "tok_per_s" in v and v["sequences"] == seqs
    ]
    return max(roll, key=lambda v: v["tok_per_s"], default=None)


def workload_summary(slot: dict) -> dict:
    """The issue's keys of one workload: the step's stages, peaks, LoRA, TRL (None if absent).
    ``rollout_s`` is the step's rollout; without a step, the fastest rollout section's."""
    step, lora, trl = slot.get("step") or {}, slot.get("lora") or {}, slot.get("trl") or {}
    best = best_rollout(slot)
    s = {
        "rollout_s": step.get("rollout_s", best and best.get("seconds")),
        "logprobs_s": step.get("logprobs_s"),
        "update_s": step.get("update_s"),
        "step_s": step.get("step_s"),
        "peak_gib": step.get("peak_gib"),
        "lora_step_s": lora.get("step_s"),
        "lora_peak_gib": lora.get("peak_gib"),
        "trl_step_s": trl.get("trl_step_s"),
        "trl_peak_gib": trl.get("trl_peak_gib"),
        "rollout_tok_per_s": best and best["tok_per_s"],
        "rollout_engine": best and best["engine"],
    }
    if s["trl_step_s"] is None:
        s["trl_not_run"] = trl.get("skipped") or trl.get("error") or "the trl section did not run"
    s["speedup_vs_trl"] = s["trl_step_s"] / s["step_s"] if s["trl_step_s"] and s["step_s"] else None
    return s


def headline(r: dict) -> dict:
    """Top-level keys: the reference workload's figures (as before workloads) and the goals.
    Also writes each workload's summary keys into ``r['workloads'][name]``."""
    loads = r.get("workloads") or {}
    for slot in loads.values():
        slot.update(workload_summary(slot))
    ref = loads.get("reference") or {}
    by_micro = (ref.get("train") or {}).get("by_micro", {}) or {}
    best_train = max(by_micro.values(), key=lambda v: v["mfu"], default=None)
    h = {k: ref.get(k) for k in ("rollout_tok_per_s", "rollout_engine", "step_s")}
    h |= {
        "train_mfu": best_train and best_train["mfu"],
        "train_tok_per_s": best_train and best_train["tok_per_s"],
        "full_peak_gib": ref.get("peak_gib"),
        "lora_step_s": ref.get("lora_step_s"),
        "lora_peak_gib": ref.get("lora_peak_gib"),
        "trl_step_s": ref.get("trl_step_s"),
        "trl_peak_gib": ref.get("trl_peak_gib"),
        "speedup_vs_trl": ref.get("speedup_vs_trl"),
    }
    h["goals"] = {k: goal(h[k], t, d) for k, (t, d) in GOALS.items()}
    h["workload_goals"] = {
        f"{name} {key}": goal((loads.get(name) or {}).get(key), t, d)
        for (name, key), (t, d) in WORKLOAD_GOALS.items()
    }
    return h


def goal(value, target: float, direction: str) -> dict:
    met = None if value is None else (value >= target if direction == "min" else value <= target)
    return {"target": target, "value": value, "met": met, "direction": direction}


def _f(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def summary_lines(r: dict) -> list[str]:
    """One row per workload: the stages of its step, its peaks, LoRA and TRL."""
    lines = [
        "| workload | completions (mean / max) | rollout | ref logprobs | update | step | peak | LoRA step | LoRA peak | TRL step |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    loads = r.get("workloads") or {}
    for name in [*WORKLOAD_NAMES, *(n for n in loads if n not in WORKLOAD_NAMES)]:
        if name not in loads:
            lines.append(f"| {name} | not measured |" + " |" * 8)
            continue
        s = loads[name]
        w = s.get("workload") or {}
        lengths = f"{w.get('prompts', 0) * w.get('num_generations', 0)} x {_f(w.get('completion_mean'), '.0f')} / {w.get('completion_max')}"
        trl = f"{_f(s.get('trl_step_s'), '.2f')} s" if s.get("trl_step_s") else "not run"
        lines.append(
            f"| {name} | {lengths} | {_f(s.get('rollout_s'), '.2f')} s | {_f(s.get('logprobs_s'), '.2f')} s | {_f(s.get('update_s'), '.2f')} s | {_f(s.get('step_s'), '.2f')} s | {_f(s.get('peak_gib'), '.1f')} GiB | {_f(s.get('lora_step_s'), '.2f')} s | {_f(s.get('lora_peak_gib'), '.1f')} GiB | {trl} |"
        )
    return lines


def workload_lines(name: str, s: dict) -> list[str]:
    """The detail rows of one workload: rollout engines, update, step, head, LoRA, TRL."""
    lines = []
    for spec, v in (s.get("rollout") or {}).items():
        if "tok_per_s" in v:
            detail = f"{v.get('sequences')} x ({v.get('prompt_len')}+{v.get('decode_steps', v.get('new_tokens'))} steps) in {_f(v.get('seconds'), '.2f')} s; first call {_f(v.get('first_call_s'), '.1f')} s"
            lines.append(f"| {name}: rollout {spec} | {v['tok_per_s']:,.0f} tok/s | {detail} |")
        else:
            lines.append(f"| {name}: rollout {spec} | failed | {v.get('error', '')[:80]} |")
    for micro, v in ((s.get("train") or {}).get("by_micro") or {}).items():
        lines.append(
            f"| {name}: update, micro-batch {micro} | MFU {v['mfu']:.3f} | {v['tok_per_s']:,.0f} tok/s, {v['seconds']:.2f} s per optimizer step |"
        )
    for key, label in (("step", "GRPO step, full FT"), ("lora", "GRPO step, LoRA r=64")):
        st = s.get(key)
        if st and "step_s" in st:
            engine = f" ({st['engine']} rollout)" if st.get("engine") else ""
            lines.append(
                f"| {name}: {label}{engine} | {_f(st.get('step_s'), '.2f')} s | rollout {_f(st.get('rollout_s'), '.2f')} + logprobs {_f(st.get('logprobs_s'), '.2f')} + update {_f(st.get('update_s'), '.2f')}; peak {_f(st.get('peak_gib'), '.1f')} GiB; micro {st.get('micro_batch')} |"
            )
    hd = s.get("head")
    if hd and "fwd_bwd_s" in hd:
        lines.append(
            f"| {name}: LM head alone, {hd['tokens']} tokens | {hd['fwd_bwd_s']:.2f} s fwd+bwd | {hd['fwd_only_s']:.2f} s fwd only (ref logprobs); its 3 matmuls need {hd['matmul_floor_fwd_bwd_s']:.2f} s |"
        )
    t = s.get("trl")
    if t and t.get("trl_step_s"):
        lines.append(
            f"| {name}: TRL {t.get('trl_version')} GRPOTrainer | {_f(t.get('trl_step_s'), '.2f')} s | steps {t.get('timed_steps')}, peak {_f(t.get('trl_peak_gib'), '.1f')} GiB; ours is {_f(s.get('speedup_vs_trl'), '.1f')}x faster |"
        )
    elif t and t.get("skipped"):
        lines.append(f"| {name}: TRL | not run | {t['skipped']} |")
    return lines


def goal_lines(r: dict) -> list[str]:
    lines = []
    goals = [(f"goal {k}", g) for k, g in (r.get("goals") or {}).items()]
    goals += [(f"goal {k}", g) for k, g in (r.get("workload_goals") or {}).items()]
    for label, g in goals:
        mark = {True: "met", False: "missed", None: "not measured"}[g["met"]]
        op = ">=" if g.get("direction") == "min" else "<="
        lines.append(f"| {label} {op} {g['target']} | {_f(g['value'], '.3g')} | {mark} |")
    return lines


def workloads_line(r: dict) -> str:
    """What each workload forces, from its own description in the JSON."""
    parts, shape = [], ""
    for name, s in (r.get("workloads") or {}).items():
        w = s.get("workload") or {}
        shape = f"{w.get('prompts')} prompts x {w.get('num_generations')} generations, prompt {w.get('prompt_len')}"
        if w.get("lengths"):
            parts.append(
                f"{name}: lengths mean {_f(w.get('completion_mean'), '.0f')}, median {_f(w.get('completion_median'), '.0f')}, p90 {w.get('completion_p90')}, max {w.get('completion_max')} ({w.get('at_cap')} at the cap)"
            )
        else:
            parts.append(f"{name}: every completion {w.get('completion_len')}")
    return f"workloads ({shape}; completions forced): " + "; ".join(parts)


def table_lines(r: dict) -> list[str]:
    lines = [
        f"r1zero bench | {r.get('device')} | {r.get('date')} | shape {r.get('shape')} | torch {r.get('torch')}, transformers {r.get('transformers')}",
        workloads_line(r),
        "",
        *summary_lines(r),
        "",
        "| measurement | value | detail |",
        "| --- | --- | --- |",
    ]
    for name, s in (r.get("workloads") or {}).items():
        lines += workload_lines(name, s)
    lines += goal_lines(r)
    lines += [f"note: {n}" for n in r.get("notes") or []]
    for k, e in (r.get("errors") or {}).items():
        lines.append(f"| error in {k} | - | {e[:100]} |")
    return lines


def print_table(r: dict) -> None:
    print("\n".join(table_lines(r)), flush=True)
