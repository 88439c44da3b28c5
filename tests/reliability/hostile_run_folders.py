"""Hostile run folders: what ``r1zero train`` does with a folder it did not make, or one tampered with.

    python tests/reliability/hostile_run_folders.py [--json FILE] [--doc docs/reliability.md] [--workdir DIR]

Run folders get shared: people download a finished run, resume a colleague's checkpoint.
Each case below prepares a folder (from a tiny random-init Qwen2 run of 3 steps), runs
``r1zero train`` through its command-line entry point in this process, and records the exit
status, the line r1zero printed about it, whether every file r1zero must not touch (the
planted files, the files behind planted links) is byte-for-byte unchanged, and the time.
With ``--doc`` the table replaces the section between ``<!-- hostile-run-folders:begin -->``
and ``<!-- hostile-run-folders:end -->``; it is never typed by hand.

``CASES`` and ``run_case`` are imported by tests/test_run_folder.py, which asserts each
case's expectation (``check``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- hostile-run-folders:begin -->", "<!-- hostile-run-folders:end -->"
MAX_STEPS = 3


# ---------------------------------------------------------------- running r1zero train


def train_args(work: Path, out: Path, *extra: str) -> list[str]:
    """One tiny command, the same for every case: 3 steps, a checkpoint every step."""
    sys.path.insert(0, str(HERE))
    from tiny_run import tiny_run_args

    return [
        "train",
        *tiny_run_args(
            work / "model", work / "data.jsonl", out,
            max_steps=MAX_STEPS, save_steps=1, save_total_limit=2,
        ),
        *extra,
    ]  # fmt: skip


def r1zero(argv: list[str]) -> tuple[int, str]:
    """``r1zero ARGV`` through the typer app in this process: (exit status, all output)."""
    from typer.testing import CliRunner

    from r1zero.cli import app

    res = CliRunner(env={"COLUMNS": "2000"}).invoke(app, argv)  # rich: one line per message
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        out = res.output + f"\n{type(res.exception).__name__}: {res.exception}"
        return 1, out
    return res.exit_code, res.output


def prepare(work: Path) -> None:
    """A random tiny model, 60 problems, and the two reference folders every case copies:
    ``interrupted`` (Ctrl-C right after checkpoint-1) and ``finished`` (all 3 steps)."""
    sys.path.insert(0, str(HERE))
    from r1zero.task.data import generate_rows, write_jsonl
    from r1zero.tiny.build import random_model_folder

    if not (work / "model" / "config.json").is_file():
        random_model_folder(work / "model", seed=0)
    write_jsonl(generate_rows(60, seed=3), work / "data.jsonl")
    for name in ("interrupted", "finished", "cases"):
        shutil.rmtree(work / name, ignore_errors=True)
    rc, out = interrupt_after(work, work / "interrupted", step=1)
    assert rc != 0 and (work / "interrupted" / "checkpoint-1").is_dir(), out
    rc, out = r1zero(train_args(work, work / "finished"))
    assert rc == 0 and (work / "finished" / "done").is_file(), out


def interrupt_after(work: Path, out: Path, *, step: int) -> tuple[int, str]:
    """The command, with Ctrl-C (KeyboardInterrupt) right after checkpoint-<step> is saved."""
    from r1zero.train import checkpoint as ckpt

    real = ckpt.save_checkpoint

    def save_then_ctrl_c(output_dir: Path, s: int, **kw: Any) -> Path:
        path = real(output_dir, s, **kw)
        if s == step:
            raise KeyboardInterrupt
        return path

    ckpt.save_checkpoint = save_then_ctrl_c
    try:
        return r1zero(train_args(work, out))
    finally:
        ckpt.save_checkpoint = real


# ---------------------------------------------------------------- what must stay untouched


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (links are recorded, never followed)."""
    if root.is_file():
        return {root.name: hashlib.sha256(root.read_bytes()).hexdigest()}
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link -> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def metric_steps(out: Path, key: str = "step") -> list[Any]:
    """``key`` of each training row of metrics.jsonl (eval rows left out)."""
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x]
    return [r[key] for r in rows if "loss" in r]


# ---------------------------------------------------------------- the cases


@dataclass
class Case:
    name: str
    expect: str  # what r1zero must do, in words (the doc's second column)
    make: Callable[[Path, Path], tuple[Path, list[Path], list[str]]]
    # (work, case dir) -> (output_dir, paths that must stay unchanged, extra options)
    check: Callable[[dict[str, Any]], bool]  # on run_case's record
    show: str = ""  # the output line to show (first one holding this); default: the error


def _copy(work: Path, case: Path, base: str) -> Path:
    out = case / "run"
    shutil.copytree(work / base, out, symlinks=True)
    return out


def _outside(case: Path) -> Path:
    """A folder outside the run with a file a hostile link points at."""
    d = case / "outside"
    d.mkdir()
    (d / "resume_state.pt").write_bytes(b"someone else's file")
    (d / "notes.txt").write_text("do not touch\n")
    return d


def make_unrelated(work: Path, case: Path):
    out = case / "run"
    for rel, text in {
        "notes.txt": "my notes",
        ".tmp-important/data.csv": "1,2,3",
        "checkpoint-0/thesis.tex": "\\documentclass{article}",
        "checkpoint-5/resume_state.pt": "not r1zero's",
    }.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return out, [out], []


def make_link_checkpoint(work: Path, case: Path):
    out, outside = _copy(work, case, "interrupted"), _outside(case)
    (out / "checkpoint-3").symlink_to(outside, target_is_directory=True)
    return out, [outside], []


def make_link_metrics_tmp(work: Path, case: Path):
    out, outside = _copy(work, case, "interrupted"), _outside(case)
    (out / "metrics.tmp").symlink_to(outside / "notes.txt")
    return out, [outside], []


def make_junk_checkpoint(work: Path, case: Path):
    out = _copy(work, case, "interrupted")
    junk = out / "checkpoint-9"
    junk.mkdir()
    (junk / "thesis.tex").write_text("\\documentclass{article}")
    shutil.copy(out / "checkpoint-1" / "resume_state.pt", junk / "resume_state.pt")
    return out, [junk], []


def make_planted_eval(work: Path, case: Path):
    out = _copy(work, case, "interrupted")
    planted = json.loads((out / "eval" / "step-000000.json").read_text())
    planted.pop("run_id", None)
    planted["accuracy"] = 0.99
    (out / "eval" / "step-000000.json").write_text(json.dumps(planted))
    return out, [], []


PAYLOAD_CANARY = "payload-ran"


class _Payload:
    """Unpickling this calls os.mkdir(canary): stands for any code a pickle can run."""

    def __init__(self, canary: str) -> None:
        self.canary = canary

    def __reduce__(self):
        return (os.mkdir, (self.canary,))


def make_pickle_payload(work: Path, case: Path):
    import torch

    out = _copy(work, case, "interrupted")
    f = out / "checkpoint-1" / "resume_state.pt"
    state = torch.load(f, weights_only=False)  # this script's own file, just written
    state["payload"] = _Payload(str(case / PAYLOAD_CANARY))
    torch.save(state, f)
    return out, [], ["--resume_from_checkpoint", "true"]


def make_legacy_state(work: Path, case: Path):
    """resume_state.pt as r1zero wrote it before this format: numpy's RNG as an ndarray."""
    import numpy as np
    import torch

    out = _copy(work, case, "interrupted")
    f = out / "checkpoint-1" / "resume_state.pt"
    state = torch.load(f, weights_only=False)  # this script's own file, just written
    np.random.seed(0)
    for rng in [state["rng"], *state["rng_ranks"].values()]:
        rng["numpy"] = np.random.get_state()  # ('MT19937', uint32 ndarray, pos, ...)
    torch.save(state, f)
    return out, [], []


def make_same_finished(work: Path, case: Path):
    out = _copy(work, case, "finished")
    return out, [out], []


def make_same_interrupted(work: Path, case: Path):
    return _copy(work, case, "interrupted"), [], []


def make_changed_settings(work: Path, case: Path):
    extra = ["--learning_rate", "2e-4", "--gradient_accumulation_steps", "2"]
    return _copy(work, case, "interrupted"), [], extra


def make_only_model(work: Path, case: Path):
    """Checkpoints without optimizer state, as save_only_model writes them."""
    out = _copy(work, case, "interrupted")
    (out / "checkpoint-1" / "resume_state.pt").unlink()
    return out, [out], []


def make_never_resume(work: Path, case: Path):
    out = _copy(work, case, "interrupted")
    return out, [out], ["--resume_from_checkpoint", "false"]


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= 1e-5 * abs(y) for x, y in zip(a, b, strict=True))


def _refused(r: dict[str, Any], *words: str) -> bool:
    return r["exit"] != 0 and r["error_lines"] == 1 and all(w in r["line"] for w in words)


def _resumed(r: dict[str, Any]) -> bool:
    return (
        r["exit"] == 0
        and "resuming from checkpoint-1 (step 1 of 3)" in r["output"]
        and r["steps"] == [1, 2, 3]
    )


CASES = [
    Case(
        "a fresh run into a folder of unrelated files",
        "refused in one line; nothing deleted",
        make_unrelated,
        lambda r: _refused(r, "not a run folder r1zero made") and r["untouched"],
    ),
    Case(
        "a run folder with `checkpoint-3` linked to a folder outside",
        "refused in one line; the file behind the link kept",
        make_link_checkpoint,
        lambda r: _refused(r, "checkpoint-3 is a symbolic link") and r["untouched"],
    ),
    Case(
        "a run folder with `metrics.tmp` linked to a file outside",
        "refused in one line; the file behind the link kept",
        make_link_metrics_tmp,
        lambda r: _refused(r, "metrics.tmp is a symbolic link") and r["untouched"],
    ),
    Case(
        "a junk `checkpoint-9` (not written by the run) in the run folder, save_total_limit 2",
        "ignored with a warning: resumes from its own checkpoint-1, prunes only its own",
        make_junk_checkpoint,
        lambda r: (
            _resumed(r)
            and "ignoring" in r["output"]
            and r["checkpoints"] == ["checkpoint-2", "checkpoint-3", "checkpoint-9"]
            and r["untouched"]
        ),
        show="ignoring",
    ),
    Case(
        "a planted `eval/step-000000.json` (accuracy 0.990, not written by the run)",
        "recomputed: the reported accuracy before GRPO is the model's",
        make_planted_eval,
        lambda r: r["exit"] == 0 and "accuracy 0.990" not in r["output"] and r["before"] != 0.99,
        show="held-out accuracy",
    ),
    Case(
        "`resume_state.pt` holding a pickle payload (`os.mkdir` on load)",
        "refused in one line; the payload did not run",
        make_pickle_payload,
        lambda r: _refused(r, "refused the state", "ran nothing") and not r["payload_ran"],
    ),
    Case(
        "`resume_state.pt` of an older r1zero (numpy RNG as an ndarray)",
        "resumed (only numpy's array rebuild is allowed to load)",
        make_legacy_state,
        _resumed,
    ),
    Case(
        "the same command again on a copy of a finished run",
        "says it is finished and how to start fresh; nothing changed",
        make_same_finished,
        lambda r: r["exit"] == 0 and "is a finished run" in r["output"] and r["untouched"],
    ),
    Case(
        "the same command again after Ctrl-C past checkpoint-1",
        "resumes by itself and says so",
        make_same_interrupted,
        _resumed,
    ),
    Case(
        "resuming with a new learning_rate and gradient_accumulation_steps",
        "resumes; one warning line per changed key; steps 2-3 use the new learning rate",
        make_changed_settings,
        lambda r: (
            r["exit"] == 0
            and sum("changed on resume" in ln for ln in r["output"].splitlines()) == 2
            and _close(r["lrs"][1:], [2e-4 * 2 / 3, 2e-4 / 3])  # linear decay over 3 steps
        ),
        show="changed on resume",
    ),
    Case(
        "the same command again on a run with only save_only_model checkpoints",
        "refused in one line (it cannot resume; starting over would replace them)",
        make_only_model,
        lambda r: _refused(r, "cannot resume") and r["untouched"],
    ),
    Case(
        "`--resume_from_checkpoint false` on a run folder with a checkpoint",
        "refused in one line; nothing changed",
        make_never_resume,
        lambda r: _refused(r, "never overwrites") and r["untouched"],
    ),
]


def run_case(case: Case, work: Path) -> dict[str, Any]:
    """Prepare the case's folder, run the command, record what happened."""
    import re

    d = work / "cases" / re.sub(r"[^a-z0-9]+", "-", case.name.lower()).strip("-")[:60]
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    out, keep, extra = case.make(work, d)
    before = {str(p): digest(p) for p in keep}
    t0 = time.perf_counter()
    rc, output = r1zero(train_args(work, out, *extra))
    seconds = time.perf_counter() - t0
    errors = [ln for ln in output.splitlines() if ln.startswith("error:")]
    said = [ln for ln in output.splitlines() if case.show and case.show in ln]
    said += [ln for ln in output.splitlines() if _notable(ln)]
    evals = out / "eval" / "step-000000.json"
    rec = {
        "case": case.name,
        "expect": case.expect,
        "exit": rc,
        "error_lines": len(errors),
        "line": (errors or said or [""])[0].split("\r")[-1],  # after a progress bar
        "output": output,
        "untouched": all(digest(Path(p)) == h for p, h in before.items()),
        "kept_files": sum(len(h) for h in before.values()),
        "steps": metric_steps(out) if (out / "metrics.jsonl").is_file() else [],
        "lrs": metric_steps(out, "learning_rate") if (out / "metrics.jsonl").is_file() else [],
        "step1_rerun": _step1_rerun(work, out),
        "checkpoints": sorted(p.name for p in out.glob("checkpoint-*")),
        "before": json.loads(evals.read_text())["accuracy"] if evals.is_file() else None,
        "payload_ran": (d / PAYLOAD_CANARY).exists(),
        "traceback": "Traceback" in output,
        "seconds": round(seconds, 2),
    }
    rec["ok"] = bool(case.check(rec)) and not rec["traceback"]
    return rec


def _public(r: dict[str, Any]) -> dict[str, Any]:
    return {k: _short(v) if k == "line" else v for k, v in r.items() if k != "output"}


def _step1_rerun(work: Path, out: Path) -> bool:
    """True when step 1 ran again: its metrics row (wall-clock fields included) is neither
    reference folder's, so the run started over instead of resuming."""

    def row(folder: Path) -> str | None:
        f = folder / "metrics.jsonl"
        lines = f.read_text().splitlines() if f.is_file() and not f.is_symlink() else []
        return next((x for x in lines if x.startswith('{"step": 1,')), None)

    mine = row(out)
    return mine is not None and mine not in (row(work / "interrupted"), row(work / "finished"))


def _notable(line: str) -> bool:
    keys = ("resuming from", "is a finished run", "warning", "ignoring", "interrupted")
    return any(k in line for k in keys)


def _before(r: dict[str, Any] | None) -> str:
    """What the code before this work did in the same case, from its record."""
    if r is None:
        return "-"
    bits = [f"exit {r['exit']}"]
    if r["kept_files"]:
        bits.append("protected files kept" if r["untouched"] else "**protected files changed**")
    if r["payload_ran"]:
        bits.append("**the payload ran**")
    if r["before"] == 0.99:
        bits.append("**reported the planted 0.990**")
    if r.get("step1_rerun"):
        bits.append("started over at step 1")
    return "; ".join(bits)


def markdown(
    records: list[dict[str, Any]], cmd: str, before: list[dict[str, Any]] | None = None
) -> str:
    import platform

    ok = sum(r["ok"] for r in records)
    lines = [
        f"Generated by `{cmd}` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, "
        f"{os.cpu_count()} cores, CPU); do not edit by hand. {ok} of {len(records)} cases as "
        "expected. Each runs `r1zero train` (3 steps of a random-init tiny Qwen2, a checkpoint "
        "every step) through the CLI on a prepared folder; *untouched* counts the protected "
        "files (planted ones, those behind planted links, and the whole run folder where "
        "nothing may change) that are byte-for-byte the same afterwards.",
        "",
        "| case | expected | as expected | exit | what r1zero said (first line) | untouched | s | before this work |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    old = {r["case"]: r for r in before or []}
    for r in records:
        line = r["line"].replace("|", "\\|").replace(str(Path(tempfile.gettempdir())), "/tmp")
        kept = f"{r['kept_files']} of {r['kept_files']}" if r["untouched"] else "NO"
        lines.append(
            f"| {r['case']} | {r['expect']} | {'yes' if r['ok'] else 'NO'} | {r['exit']} | "
            f"`{_short(line)}` | {kept if r['kept_files'] else '-'} | {r['seconds']:.1f} | "
            f"{_before(old.get(r['case']))} |"
        )
    return "\n".join(lines)


def _short(line: str, n: int = 400) -> str:
    import re

    line = re.sub(r"/\S*/cases/[^/\s]+/", "…/", line)
    return line if len(line) <= n else line[: n - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, help="Keep the folders here (default: a temp dir).")
    ap.add_argument("--json", type=Path, help="Write every case's record here.")
    ap.add_argument("--doc", type=Path, help="Markdown file whose section to replace.")
    ap.add_argument(
        "--before",
        type=Path,
        help="--json of this script run on the code before the run-folder work (PYTHONPATH "
        "set to an export of that commit's src/): shown as the last column.",
    )
    a = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        work = a.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepare(work)
        records = [run_case(c, work) for c in CASES]
    for r in records:
        print(f"{'ok ' if r['ok'] else 'BAD'} {r['seconds']:5.1f}s {r['case']}: {r['line'][:150]}")
    if a.json:  # without the full logs, which hold this machine's temporary paths
        a.json.write_text(json.dumps([_public(r) for r in records], indent=1) + "\n")
    if a.doc:
        from r1zero.markdown import replace_section

        cmd = f"python tests/reliability/hostile_run_folders.py --doc {a.doc}"
        before = json.loads(a.before.read_text()) if a.before else None
        if a.before:
            cmd += f" --before {a.before}"
        replace_section(a.doc, BEGIN, END, markdown(records, cmd, before))
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
