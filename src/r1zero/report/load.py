"""Read run folders (docs/run-folder.md) and reduce each step's completions to stats + candidates.

A step file is read once, every completion goes through the detectors, and only what the page
can show survives: per-step rates for the curves and a few candidate samples for the browser.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from r1zero.report.detectors import FLAGS, detect

FAILURES = ("no_answer", "not_parseable", "wrong_numbers", "wrong_value", "unknown")
"""equation_failure reasons; "unknown" when r1zero.task.rewards is unavailable or raised."""

TIER_BASE, TIER_AHA, TIER_FLAGGED, TIER_REFLECTION, TIER_SAMPLE = range(5)
"""Keep order under the size budget: one sample per reward level, aha candidates, repetition and
mixing, other reflection, then the rest of the stratified sample."""


@dataclass
class Run:
    path: Path
    name: str
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    """Training lines, one per step (the last line of a step wins), sorted by step."""
    evals: list[dict[str, Any]]
    """Eval lines (``eval/...`` keys) from metrics.jsonl and eval/step-*.json, sorted by step."""
    step_files: list[Path]
    done: bool


@dataclass
class StepSummary:
    step: int
    stats: dict[str, float]
    samples: list[dict[str, Any]] = field(default_factory=list)
    """Candidate samples for the browser, each with ``tier`` and ``rank`` (see TIER_*)."""


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line being written right now (live runs)
    except (OSError, EOFError, zlib.error):
        pass  # a gzip file still being written: keep the rows read so far
    return rows


def load_run(path: Path, name: str | None = None) -> Run:
    path = Path(path)
    try:
        config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    train: dict[int, dict] = {}
    evals: dict[int, dict] = {}
    for row in _read_jsonl(path / "metrics.jsonl") if (path / "metrics.jsonl").exists() else []:
        if "step" not in row:
            continue
        ev = {k: v for k, v in row.items() if k.startswith("eval/")}
        rest = {k: v for k, v in row.items() if not k.startswith("eval/") and k != "step"}
        if ev:
            evals.setdefault(row["step"], {"step": row["step"]}).update(ev)
        if rest:
            train[row["step"]] = {"step": row["step"], **rest}
    for f in sorted(path.glob("eval/step-*.json")):
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            step = int(f.stem.split("-")[1])
        except (OSError, ValueError, IndexError):
            continue
        data = {k: v for k, v in data.items() if k not in ("step", "n")}
        flat = {k if k.startswith("eval/") else f"eval/{k}": v for k, v in data.items()}
        nums = {k: v for k, v in flat.items() if isinstance(v, int | float)}
        evals[step] = {**nums, **evals.get(step, {}), "step": step}  # metrics.jsonl wins
    return Run(
        path=path,
        name=name or path.resolve().name,
        config=config,
        metrics=[train[s] for s in sorted(train)],
        evals=[evals[s] for s in sorted(evals)],
        step_files=sorted(path.glob("completions/step-*.jsonl.gz")),
        done=(path / "done").exists(),
    )


def _equation_failure() -> Callable | None:
    try:
        from r1zero.task.rewards import equation_failure
    except ImportError:
        return None
    return equation_failure


def _failure(fn: Callable | None, row: dict, eq: float | None) -> str | None:
    if eq is not None and eq >= 1.0:
        return None
    if fn is None:
        return "unknown"
    try:
        return fn(row.get("completion", ""), row.get("nums", []), row.get("target", 0))
    except Exception:
        return "unknown"


def _stratified(levels: dict[float, list[int]], k: int, seed: int) -> list[int]:
    """Up to k indices, round-robin over reward levels (low to high), random within a level."""
    rng = random.Random(seed)
    queues = [rng.sample(idx, len(idx)) for _, idx in sorted(levels.items())]
    out: list[int] = []
    while len(out) < k and any(queues):
        for q in queues:
            if q and len(out) < k:
                out.append(q.pop())
    return out


def summarize_step(path: Path, max_samples_per_step: int = 12) -> StepSummary:
    """Detector stats over every completion of one step file, plus candidate samples."""
    rows = _read_jsonl(path)
    step = int(rows[0]["step"]) if rows and "step" in rows[0] else int(path.name[5:11])
    fn = _equation_failure()
    flags = Counter()
    reasons = Counter()
    levels: dict[float, list[int]] = defaultdict(list)
    comp, ngram, zh, fmt, lengths, dets, whys = [], [], 0, [], [], [], []
    for i, row in enumerate(rows):
        rewards = row.get("rewards") or {}
        eq = rewards.get("equation")
        why = _failure(fn, row, eq)
        det = detect(
            row.get("completion", ""),
            equation_reward=float(eq if eq is not None else why is None),
            truncated=bool(row.get("truncated", False)),
        )
        dets.append(det)
        whys.append(why)
        flags.update(det.flags)
        if why is not None:
            reasons[why if why in FAILURES else "unknown"] += 1
        if det.rep.compression is not None:
            comp.append(det.rep.compression)
        ngram.append(det.rep.ngram_repeat)
        zh += det.lang.main == "zh"
        if "format" in rewards:
            fmt.append(rewards["format"])
        lengths.append(row.get("length") or 0)
        levels[round(float(row.get("reward", 0.0)), 3)].append(i)
    n = max(len(rows), 1)
    stats = {
        "n": len(rows),
        **{f"rate/{f}": flags[f] / n for f in FLAGS},
        "aha_count": flags["aha"],
    }
    stats |= {f"failure/{r}": reasons[r] / n for r in FAILURES if reasons[r] or r != "unknown"}
    stats["think_zh_share"] = zh / n
    stats["mean_compression"] = sum(comp) / len(comp) if comp else None
    stats["mean_ngram_repeat"] = sum(ngram) / n
    stats["format_rate"] = sum(fmt) / len(fmt) if fmt else None
    stats["mean_length"] = sum(lengths) / n

    # ---- candidates: the stratified sample, then every flagged completion
    tier: dict[int, int] = {}
    strat = _stratified(levels, max_samples_per_step, seed=step)
    first_per_level = {round(float(rows[i].get("reward", 0.0)), 3): i for i in reversed(strat)}
    for i in strat:
        tier[i] = TIER_BASE if i in first_per_level.values() else TIER_SAMPLE
    for i, det in enumerate(dets):
        if "aha" in det.flags:
            tier[i] = min(tier.get(i, TIER_AHA), TIER_AHA)
        elif "repetition" in det.flags or "mixing" in det.flags:
            tier[i] = min(tier.get(i, TIER_FLAGGED), TIER_FLAGGED)
        elif "reflection" in det.flags:
            tier[i] = min(tier.get(i, TIER_REFLECTION), TIER_REFLECTION)
    ranks: Counter = Counter()
    samples = []
    for i in sorted(tier, key=lambda i: (tier[i], strat.index(i) if i in strat else i)):
        row, det = rows[i], dets[i]
        samples.append({
            "s": step, "i": i, "g": row.get("group"), "nums": row.get("nums"),
            "target": row.get("target"), "p": row.get("prompt", ""), "c": row.get("completion", ""),
            "rw": row.get("rewards") or {}, "R": row.get("reward"), "adv": row.get("advantage"),
            "L": row.get("length"), "tr": bool(row.get("truncated", False)), "f": det.flags,
            "why": whys[i], "ph": sorted(set(det.phrases)), "lang": det.lang.main,
            "cr": None if det.rep.compression is None else round(det.rep.compression, 3),
            "ng": round(det.rep.ngram_repeat, 3), "tier": tier[i], "rank": ranks[tier[i]],
        })  # fmt: skip
        ranks[tier[i]] += 1
    return StepSummary(step=step, stats=stats, samples=samples)


def summarize_steps(
    files: list[Path], *, max_samples_per_step: int, workers: int = 2, cache: dict | None = None
) -> list[StepSummary]:
    """summarize_step over many files: cached by (path, mtime, size), in ``workers`` processes."""
    keys = []
    for f in files:
        st = os.stat(f)
        keys.append((str(f), st.st_mtime_ns, st.st_size, max_samples_per_step))
    todo = [f for f, k in zip(files, keys, strict=True) if cache is None or k not in cache]
    if workers > 1 and len(todo) >= 8:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            done = list(
                pool.map(summarize_step, todo, [max_samples_per_step] * len(todo), chunksize=4)
            )
    else:
        done = [summarize_step(f, max_samples_per_step) for f in todo]
    fresh = dict(zip(map(str, todo), done, strict=True))
    out = []
    for f, k in zip(files, keys, strict=True):
        s = fresh.get(str(f)) or cache[k]
        if cache is not None:
            cache[k] = s
        out.append(s)
    return out
