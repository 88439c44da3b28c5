"""Fuzz every reward: seeded completions, none may raise, each call under 10 ms.

    python tests/reliability/fuzz_rewards.py [--n 100000] [--seed 0] [--out benchmarks/results/fuzz-DATE.json]

Each completion goes through every function of ``r1zero.task.rewards.REWARD_FUNCS`` on its
own (one call per completion and function, timed with the garbage collector paused). The
completions mix, by seeded choice:

- near-valid: ``<think>...</think>\\n<answer>EXPR</answer>`` with EXPR a random expression
  over the problem's numbers (correct, or not), then 0-4 mutations: a character inserted,
  deleted or replaced from an alphabet of digits, operators, tags, whitespace, NUL and
  Unicode look-alikes (fullwidth and Arabic-Indic digits, minus sign, x and division
  signs); a span repeated; tags duplicated or swapped; ``**`` powers; deep parentheses;
  huge literals; truncation;
- random text: ASCII, any Unicode code point (lone surrogates included), tag soup;
- large: 100 K to 1 M characters of a near-valid completion repeated;
- other shapes: TRL message lists, ``None``, and rows whose ``nums``/``target`` are odd
  (negative, huge, floats).

A call over 10 ms is timed 3 more times and its fastest time kept, so a pause of the
(shared) machine does not count as slowness of the reward; both the raw and the kept
maxima are reported. Exit status 0 when nothing raised and every kept time is under 10 ms.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

LIMIT_S = 0.010
MAX_CHARS = 1_000_000
"""Largest fuzz completion (the rewards promise a 1 MB completion well under 10 ms; the
bad-input table times 10 MB ones)."""
LOOKALIKES = "０１２３４５６７８９٠١٢٣٤٥٦٧٨٩⁰¹²³−×÷＋－／（）"
ALPHABET = "0123456789+-*/() .\t\n\r\x00" + LOOKALIKES + "<>/athinksw=_e^%!"
TAGS = ("<think>", "</think>", "<answer>", "</answer>", "\n")


def random_expr(rng: random.Random, nums: list[int]) -> str:
    """An expression using each number once, random operators and parentheses."""
    parts = [str(n) for n in rng.sample(nums, len(nums))]
    while len(parts) > 1:
        i = rng.randrange(len(parts) - 1)
        op = rng.choice("+-*/")
        joined = f"{parts[i]} {op} {parts[i + 1]}"
        parts[i : i + 2] = [f"({joined})" if rng.random() < 0.5 else joined]
    return parts[0]


def exact_target(expr: str) -> int | None:
    from r1zero.task.arith import ArithError, evaluate

    try:
        v = evaluate(expr)
    except ArithError:
        return None
    return int(v) if v.denominator == 1 else None


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randrange(5)):
        kind = rng.randrange(9)
        i = rng.randrange(len(text) + 1)
        if kind == 0:
            text = text[:i] + rng.choice(ALPHABET) + text[i:]
        elif kind == 1 and text:
            text = text[:i] + text[i + 1 :]
        elif kind == 2 and text:
            text = text[:i] + rng.choice(ALPHABET) + text[i + 1 :]
        elif kind == 3:
            j = min(len(text), i + rng.randrange(1, 40))
            text = text[:i] + text[i:j] * rng.randrange(2, 50) + text[j:]
        elif kind == 4:
            text = text[:i] + rng.choice(TAGS) + text[i:]
        elif kind == 5:
            text = text[:i] + "**" + str(rng.randrange(100)) + text[i:]
        elif kind == 6:
            d = rng.choice((10, 63, 64, 65, 1000))
            text = text[:i] + "(" * d + "1" + ")" * d + text[i:]
        elif kind == 7:
            text = text[:i] + str(rng.randrange(10 ** rng.randrange(1, 40))) + text[i:]
        else:
            text = text[:i]
    return text


def random_text(rng: random.Random, n: int) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return "".join(chr(rng.randrange(32, 127)) for _ in range(n))
    if kind == 1:
        return "".join(chr(rng.randrange(0x110000)) for _ in range(n))
    return "".join(rng.choice(TAGS + tuple("0123456789+-*/() x")) for _ in range(n))


def near_valid(rng: random.Random, expr: str) -> str:
    think = random_text(rng, rng.randrange(0, 40)) if rng.random() < 0.5 else "let me try"
    if rng.random() < 0.1:
        think = "x" * rng.randrange(990, 1010)  # around the thought-length threshold
    body = f"{think}</think>\n<answer>{expr}</answer>"
    return mutate(rng, body) if rng.random() < 0.7 else body


def make_case(rng: random.Random) -> tuple[Any, list[int], Any]:
    """(completion, nums, target) for one fuzz case."""
    nums = [rng.randrange(1, 100) for _ in range(rng.choice((3, 4)))]
    expr = random_expr(rng, nums)
    expr_target = exact_target(expr)
    target = expr_target if expr_target is not None else rng.randrange(1, 100)
    roll = rng.random()
    if roll < 0.55:
        completion: Any = near_valid(rng, expr)
    elif roll < 0.85:
        completion = random_text(rng, rng.randrange(0, 300))
    elif roll < 0.88:
        unit = near_valid(rng, expr) or "x"
        size = rng.randrange(100_000, MAX_CHARS)
        completion = (unit * (size // len(unit) + 1))[:size]
    elif roll < 0.94:
        completion = [{"role": "assistant", "content": near_valid(rng, expr)}]
    elif roll < 0.95:
        completion = rng.choice([None, 42, [], [{}], {"content": "x"}])
    else:
        completion = near_valid(rng, expr)
        nums = [rng.choice((-5, 0, 10**15, 3)) for _ in range(3)]
        target = rng.choice((-1, 0, 10**30, 16, 2.5, float("inf")))
    return completion, nums, target


def _time_call(fn, completion, nums, target) -> float:
    t0 = time.perf_counter()
    fn([completion], nums=[nums], target=[target])
    return time.perf_counter() - t0


def _shape(completion: Any) -> str:
    if isinstance(completion, str):
        return "str"
    messages = isinstance(completion, list) and completion and isinstance(completion[0], dict)
    return "messages" if messages and "role" in completion[0] else "other"


class Tally:
    """Times, errors and outcomes per reward function."""

    def __init__(self, names: list[str]) -> None:
        self.times: dict[str, list[float]] = {n: [] for n in names}
        self.raw_max = dict.fromkeys(names, 0.0)
        self.ones = dict.fromkeys(names, 0)
        self.errors: list[str] = []
        self.slowest: dict[str, Any] = {"seconds": 0.0}
        self.inputs = {"str": 0, "messages": 0, "other": 0, "chars": 0}

    def score(self, i: int, name: str, fn: Any, completion: Any, nums: Any, target: Any) -> None:
        """One call; a call of 10 ms or more is re-timed (a pause of the machine is not
        the reward's) and its fastest time kept."""
        try:
            t0 = time.perf_counter()
            out = fn([completion], nums=[nums], target=[target])
            dt = time.perf_counter() - t0
        except Exception as e:  # what this script exists to find
            self.errors.append(f"{name}: case {i}: {type(e).__name__}: {e}"[:300])
            return
        if out[0] not in (0.0, 1.0):
            self.errors.append(f"{name}: case {i}: returned {out!r}")
        self.ones[name] += out[0] == 1.0
        self.raw_max[name] = max(self.raw_max[name], dt)
        if dt >= LIMIT_S:
            dt = min([dt] + [_time_call(fn, completion, nums, target) for _ in range(3)])
        self.times[name].append(dt)
        if dt > self.slowest["seconds"]:
            head = repr(completion)[:120]
            self.slowest = {"seconds": dt, "reward": name, "case": i, "chars": len(str(completion)), "head": head}  # fmt: skip


def _stats(ts: list[float]) -> dict[str, float]:
    ts = sorted(ts)
    if not ts:
        return {}
    return {
        "max_ms": round(ts[-1] * 1e3, 4),
        "p99_ms": round(ts[min(len(ts) - 1, int(0.99 * len(ts)))] * 1e3, 4),
        "mean_ms": round(sum(ts) / len(ts) * 1e3, 4),
    }


def fuzz(n: int, seed: int, log=print) -> dict[str, Any]:
    """``n`` seeded cases through every reward; returns the report (``ok`` when it passed)."""
    from r1zero.task.rewards import REWARD_FUNCS

    rng = random.Random(seed)
    tally = Tally(list(REWARD_FUNCS))
    t_start = time.perf_counter()
    gc.disable()  # collect between batches, never inside a timed call
    try:
        for i in range(n):
            completion, nums, target = make_case(rng)
            tally.inputs[_shape(completion)] += 1
            tally.inputs["chars"] += len(completion) if isinstance(completion, str) else 0
            for name, fn in REWARD_FUNCS.items():
                tally.score(i, name, fn, completion, nums, target)
            if i % 1000 == 999:
                gc.collect()
            if log and i % 20_000 == 19_999:
                log(f"{i + 1:,} completions, {len(tally.errors)} errors, {time.perf_counter() - t_start:.0f}s")  # fmt: skip
    finally:
        gc.enable()
    every = [t for ts in tally.times.values() for t in ts]
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "seed": seed,
        "completions": n,
        "calls": len(every),
        "reward_funcs": list(REWARD_FUNCS),
        "errors": len(tally.errors),
        "error_examples": tally.errors[:20],
        "over_10ms": sum(t >= LIMIT_S for t in every),
        **_stats(every),
        "raw_max_ms": round(max(tally.raw_max.values()) * 1e3, 4),
        "per_reward": {
            k: {
                **_stats(v),
                "raw_max_ms": round(tally.raw_max[k] * 1e3, 4),
                "rewarded_1": tally.ones[k],
            }
            for k, v in tally.times.items()
        },  # fmt: skip
        "inputs": tally.inputs,
        "slowest": tally.slowest,
        "seconds": round(time.perf_counter() - t_start, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    result["ok"] = result["errors"] == 0 and result["over_10ms"] == 0
    return result


def summary(r: dict[str, Any]) -> str:
    per = "; ".join(
        f"{k} max {v['max_ms']:.3f} ms, p99 {v['p99_ms']:.4f} ms, 1 for {v['rewarded_1']:,}"
        for k, v in r["per_reward"].items()
    )
    return (
        f"fuzz: {r['completions']:,} completions x {len(r['reward_funcs'])} rewards = {r['calls']:,} calls, "
        f"{r['errors']} raised, {r['over_10ms']} at or over 10 ms; max {r['max_ms']:.3f} ms "
        f"(raw {r['raw_max_ms']:.3f} ms before re-timing), p99 {r['p99_ms']:.4f} ms "
        f"({'PASS' if r['ok'] else 'FAIL'}, {r['seconds']} s)\n  {per}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="Completions to generate.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--out", type=Path, help="JSON path (default benchmarks/results/fuzz-DATE.json)."
    )
    ap.add_argument("--doc", type=Path, help="Markdown file whose fuzz section to replace.")
    a = ap.parse_args(argv)
    r = fuzz(a.n, a.seed)
    out = (
        a.out
        or Path(__file__).resolve().parents[2] / "benchmarks" / "results" / f"fuzz-{r['date']}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=1, ensure_ascii=True))
    print(summary(r))
    print(f"wrote {out}")
    if a.doc:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from r1zero.markdown import replace_section

        rel = out.relative_to(out.parents[2]) if len(out.parents) > 2 else out
        replace_section(a.doc, "<!-- fuzz:begin -->", "<!-- fuzz:end -->", markdown(r, a, rel))
    return 0 if r["ok"] else 1


def markdown(r: dict[str, Any], a: argparse.Namespace, out: Path) -> str:
    lines = [
        f"Generated by `python tests/reliability/fuzz_rewards.py --n {a.n} --seed {a.seed} --doc {a.doc}` on "
        f"{r['date']} ({r['machine']}); raw results in `{out}`; do not edit by hand.",
        "",
        f"{r['completions']:,} completions ({r['inputs']['str']:,} strings, {r['inputs']['messages']:,} "
        f"message lists, {r['inputs']['other']:,} other objects; {r['inputs']['chars'] / 1e6:.0f} M characters) "
        f"x {len(r['reward_funcs'])} rewards = {r['calls']:,} calls: **{r['errors']} raised, "
        f"{r['over_10ms']} took 10 ms or more**; max {r['max_ms']:.3f} ms, p99 {r['p99_ms']:.4f} ms "
        f"({r['seconds']} s in all).",
        "",
        "| reward | max ms | p99 ms | mean ms | raw max ms (before re-timing) | completions rewarded 1 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k, v in r["per_reward"].items():
        lines.append(
            f"| {k} | {v['max_ms']:.3f} | {v['p99_ms']:.4f} | {v['mean_ms']:.4f} | "
            f"{v['raw_max_ms']:.3f} | {v['rewarded_1']:,} |"
        )
    s = r["slowest"]
    if "reward" in s:
        lines += [
            "",
            f"Slowest call: {s['reward']} on case {s['case']} ({s['chars']:,} characters), {s['seconds'] * 1e3:.3f} ms.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
