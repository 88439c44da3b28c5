"""Read run folders (docs/run-folder.md) and reduce each step's completions to stats + candidates.

A step file is read once, every completion goes through the detectors, and only what the page
can show survives: per-step rates for the curves and a few candidate samples for the browser.
"""

from __future__ import annotations

import os
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from r1zero.report.detectors import FLAGS, REFLECTION_PHRASES, detect
from r1zero.report.rows import Skipped, completion_row, metrics_row, parse_line, read_rows

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
    skipped: Skipped = field(default_factory=Skipped)
    """Malformed metrics.jsonl lines and eval files, skipped."""


@dataclass
class StepSummary:
    step: int
    stats: dict[str, float]
    samples: list[dict[str, Any]] = field(default_factory=list)
    """Candidate samples for the browser, each with ``tier`` and ``rank`` (see TIER_*)."""
    skipped: Skipped = field(default_factory=Skipped)
    """Malformed rows of the step file, skipped (counted on the page)."""


def _eval_file(f: Path, skipped: Skipped) -> tuple[int, dict[str, float]] | None:
    """eval/step-N.json: its numeric values under ``eval/`` keys; None if unreadable."""
    try:
        step = int(f.stem.split("-")[1])
        data = metrics_row({**parse_line(f.read_text(encoding="utf-8")), "step": step})
    except (OSError, UnicodeDecodeError, ValueError, IndexError, TypeError) as e:
        skipped.add(f.name, str(e) or type(e).__name__)
        return None
    data = {k: v for k, v in data.items() if k not in ("step", "n")}
    return step, {k if k.startswith("eval/") else f"eval/{k}": v for k, v in data.items()}


def load_run(path: Path, name: str | None = None) -> Run:
    path = Path(path)
    try:
        config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    skipped = Skipped()
    train: dict[int, dict] = {}
    evals: dict[int, dict] = {}
    for _, row in read_rows(path / "metrics.jsonl", metrics_row, skipped):
        step = row["step"]
        ev = {k: v for k, v in row.items() if k.startswith("eval/")}
        rest = {k: v for k, v in row.items() if not k.startswith("eval/") and k != "step"}
        if ev:
            evals.setdefault(step, {"step": step}).update(ev)
        if rest:
            train[step] = {"step": step, **rest}
    for f in sorted(path.glob("eval/step-*.json")):
        got = _eval_file(f, skipped)
        if got is not None:
            step, flat = got
            evals[step] = {**flat, **evals.get(step, {}), "step": step}  # metrics.jsonl wins
    return Run(
        path=path,
        name=name or path.resolve().name,
        config=config,
        metrics=[train[s] for s in sorted(train)],
        evals=[evals[s] for s in sorted(evals)],
        step_files=sorted(path.glob("completions/step-*.jsonl.gz")),
        done=(path / "done").exists(),
        skipped=skipped,
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
    if fn is None or row["nums"] is None or row["target"] is None:
        return "unknown"
    try:  # typed at load: a bounded integer target and integer numbers, so this is fast
        return fn(row["completion"], row["nums"], row["target"])
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


Phrase = tuple[str, "re.Pattern[str]"]
"""A user phrase for ``--phrase``: its label and its case-insensitive pattern."""


def user_phrase(text: str) -> Phrase:
    """``--phrase`` value -> (label, pattern): a literal substring, or a regex after ``re:``.

    Raises ValueError with a one-line message for an empty phrase or a regex that does not compile.
    """
    if not text or text == "re:":
        raise ValueError("--phrase needs a non-empty phrase (or re:REGEX)")
    if text.startswith("re:"):
        try:
            return text, re.compile(text[3:], re.IGNORECASE)
        except re.error as e:
            raise ValueError(f"--phrase {text!r} is not a valid regex: {e}") from None
    return text, re.compile(re.escape(text), re.IGNORECASE)


@dataclass
class _Scan:
    """Per-completion detector results of one step, and the counts the curves need."""

    dets: list = field(default_factory=list)
    whys: list = field(default_factory=list)
    flags: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    phrases: Counter = field(default_factory=Counter)
    user: Counter = field(default_factory=Counter)
    correct_by_reflection: Counter = field(default_factory=Counter)
    levels: dict = field(default_factory=lambda: defaultdict(list))
    ngram: float = 0.0
    zh: int = 0
    fmt: list = field(default_factory=list)
    lengths: int = 0
    rep_finished: int = 0


def _scan(rows: list[dict], user_phrases: tuple[Phrase, ...]) -> _Scan:
    fn = _equation_failure()
    sc = _Scan()
    for i, row in enumerate(rows):
        rewards = row["rewards"]
        eq = rewards.get("equation")
        why = _failure(fn, row, eq)
        det = detect(row["completion"], equation_reward=float(eq if eq is not None else why is None),
                     truncated=row["truncated"])  # fmt: skip
        sc.dets.append(det)
        sc.whys.append(why)
        sc.flags.update(det.flags)
        sc.phrases.update(set(det.phrases))
        sc.user.update(label for label, pat in user_phrases if pat.search(row["completion"]))
        reflected = "reflection" in det.flags
        sc.correct_by_reflection[(reflected, "n")] += 1
        sc.correct_by_reflection[(reflected, "ok")] += why is None
        if why is not None:
            sc.reasons[why if why in FAILURES else "unknown"] += 1
        sc.rep_finished += "repetition" in det.flags and not row["truncated"]
        sc.ngram += det.rep.ngram_repeat
        sc.zh += det.lang.main == "zh"
        if rewards.get("format") is not None:
            sc.fmt.append(rewards["format"])
        sc.lengths += row["length"] or 0
        sc.levels[round(row["reward"] or 0.0, 3)].append(i)
    return sc


def _stats(sc: _Scan, n_rows: int, user_phrases: tuple[Phrase, ...]) -> dict[str, Any]:
    n = max(n_rows, 1)
    stats: dict[str, Any] = {"n": n_rows, **{f"rate/{f}": sc.flags[f] / n for f in FLAGS}}
    stats["aha_count"] = sc.flags["aha"]
    stats["rate/repetition_finished"] = sc.rep_finished / n
    stats |= {
        f"failure/{r}": sc.reasons[r] / n for r in FAILURES if sc.reasons[r] or r != "unknown"
    }
    stats |= {f"phrase/{p}": sc.phrases[p] / n for p in REFLECTION_PHRASES if sc.phrases[p]}
    stats |= {f"user/{label}": sc.user[label] / n for label, _ in user_phrases}
    for reflected, key in ((True, "acc/reflection"), (False, "acc/no_reflection")):
        k = sc.correct_by_reflection[(reflected, "n")]
        stats[key] = sc.correct_by_reflection[(reflected, "ok")] / k if k else None
    stats["think_zh_share"] = sc.zh / n
    stats["mean_ngram_repeat"] = sc.ngram / n
    stats["format_rate"] = sum(sc.fmt) / len(sc.fmt) if sc.fmt else None
    stats["mean_length"] = sc.lengths / n
    return stats


def _candidates(rows: list[dict], sc: _Scan, step: int, k: int) -> list[dict[str, Any]]:
    """The stratified sample, then every flagged completion, each with its tier and rank."""
    tier: dict[int, int] = {}
    strat = _stratified(sc.levels, k, seed=step)
    first_per_level = {round(rows[i]["reward"] or 0.0, 3): i for i in reversed(strat)}
    for i in strat:
        tier[i] = TIER_BASE if i in first_per_level.values() else TIER_SAMPLE
    for i, det in enumerate(sc.dets):
        if "aha" in det.flags:
            tier[i] = min(tier.get(i, TIER_AHA), TIER_AHA)
        elif "repetition" in det.flags or "mixing" in det.flags:
            tier[i] = min(tier.get(i, TIER_FLAGGED), TIER_FLAGGED)
        elif "reflection" in det.flags:
            tier[i] = min(tier.get(i, TIER_REFLECTION), TIER_REFLECTION)
    ranks: Counter = Counter()
    pos = {i: j for j, i in enumerate(strat)}
    samples = []
    for i in sorted(tier, key=lambda i: (tier[i], pos.get(i, i))):
        row, det = rows[i], sc.dets[i]
        samples.append({
            "s": step, "i": row["i"], "g": row["group"], "nums": row["nums"],
            "target": row["target"], "p": row["prompt"], "c": row["completion"],
            "rw": row["rewards"], "R": row["reward"], "adv": row["advantage"],
            "L": row["length"], "tr": row["truncated"], "f": det.flags,
            "why": sc.whys[i], "ph": sorted(set(det.phrases)), "lang": det.lang.main,
            "cr": None if det.rep.compression is None else round(det.rep.compression, 3),
            "ng": round(det.rep.ngram_repeat, 3), "tier": tier[i], "rank": ranks[tier[i]],
        })  # fmt: skip
        ranks[tier[i]] += 1
    return samples


def summarize_step(
    path: Path, max_samples_per_step: int = 12, user_phrases: tuple[Phrase, ...] = ()
) -> StepSummary:
    """Detector stats over every completion of one step file, plus candidate samples."""
    skipped = Skipped()
    rows = [row | {"i": i} for i, row in read_rows(path, completion_row, skipped)]
    step = next((r["step"] for r in rows if r["step"] is not None), None)
    if step is None:
        step = int(path.name[5:11])
    sc = _scan(rows, user_phrases)
    stats = _stats(sc, len(rows), user_phrases)
    stats["bad_rows"] = skipped.count
    samples = _candidates(rows, sc, step, max_samples_per_step)
    return StepSummary(step=step, stats=stats, samples=samples, skipped=skipped)


def _summarize(args: tuple) -> StepSummary:
    return summarize_step(*args)


def summarize_steps(
    files: list[Path],
    *,
    max_samples_per_step: int,
    workers: int = 2,
    cache: dict | None = None,
    user_phrases: tuple[Phrase, ...] = (),
) -> list[StepSummary]:
    """summarize_step over many files: cached by (path, mtime, size), in ``workers`` processes."""
    labels = tuple(label for label, _ in user_phrases)
    keys = []
    for f in files:
        st = os.stat(f)
        keys.append((str(f), st.st_mtime_ns, st.st_size, max_samples_per_step, labels))
    todo = [f for f, k in zip(files, keys, strict=True) if cache is None or k not in cache]
    args = [(f, max_samples_per_step, user_phrases) for f in todo]
    if workers > 1 and len(todo) >= 8:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(_summarize, args, chunksize=4))
    else:
        done = [_summarize(a) for a in args]
    fresh = dict(zip(map(str, todo), done, strict=True))
    out = []
    for f, k in zip(files, keys, strict=True):
        s = fresh.get(str(f)) or cache[k]
        if cache is not None:
            cache[k] = s
        out.append(s)
    return out
