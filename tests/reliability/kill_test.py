"""Kill test: SIGKILL a tiny training run at random moments, resume it, and prove nothing was lost.

    python tests/reliability/kill_test.py --kills 20 --max_steps 12 --seed 0 [--json FILE] [--workdir DIR]

Trains a fast random-init Qwen2 (hidden 32, 2 layers) on 200 generated problems with
``--deterministic true --save_steps 1 --save_total_limit 2``, once without interruption
(plain ``python -m r1zero train``) and once killed ``--kills`` times, restarted after each
kill by the very same command (every other restart: it must resume by itself and say
"resuming from checkpoint-N") or with ``--resume_from_checkpoint true``; at the end the same
command runs once more on the finished run, which must say so and change no file. Kill
moments are seeded and cover:

- ``rollout`` / ``optimizer``: the target step enters that phase, then a random delay;
- ``delay``: a random delay (up to ~1 step) after the target step starts;
- ``checkpoint``: the moment ``.tmp-checkpoint-<step>`` appears on disk, plus 0-20 ms;
- ``mid_prune``: the child deletes one file of the old checkpoint it is pruning, then
  SIGKILLs itself (a kill inside ``shutil.rmtree``, too short to hit from outside);
- ``after_final``: the child SIGKILLs itself after the final model is written (before the
  final evaluation and ``done``); ``closing``: after the final evaluation is logged and the
  logger closed, before ``done``.

The killed run's child is ``python tests/reliability/kill_test.py --child PHASE_FILE -- train ...``:
``r1zero.cli.main`` with hooks that record the phase (rollout, optimizer, checkpoint, ...)
in a small file, so each kill is attributed to the phase it interrupted. After every
kill, each ``checkpoint-*`` on disk must load with ``AutoModelForCausalLM.from_pretrained``,
and each resume must start from the newest complete checkpoint (never a ``.tmp-*``
leftover). At the end the final ``model.safetensors``, every ``metrics.jsonl`` row (through
``deterministic_view``) and every logged completion must equal the uninterrupted run's:
bit-identical on CPU. Exit status 0 when every check passes.

Importable: ``run_kill_test`` (returns the summary dict), ``varied_reward`` (a reward that differs
between random completions, so advantages are non-zero and the weights really move).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from r1zero.tiny.build import random_model_folder

HERE = Path(__file__).resolve()
PHASES = ("startup", "ready", "rollout", "optimizer", "logging", "checkpoint", "final", "closing")
TRIGGERED = ("rollout", "optimizer", "delay", "checkpoint")
CHILD_ENV = {
    "OMP_NUM_THREADS": "1",  # same thread count in every run: same float reductions
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
}


# ---------------------------------------------------------------- tiny model and reward


def varied_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """A deterministic reward that differs between random completions (a random model never
    earns format or equation rewards, and all-zero rewards would leave the weights still)."""
    return [(sum(map(ord, str(c))) % 7) / 6 for c in completions]


def train_args(
    model: Path, data: Path, out: Path, max_steps: int, eval_num_samples: int = 4
) -> list[str]:
    """``r1zero train`` options shared by every run of this test; a small held-out
    evaluation at steps 0, 4, 8, ... and at the end tests the eval files' resume path."""
    sys.path.insert(0, str(HERE.parent))
    from tiny_run import tiny_run_args

    return [
        "train",
        *tiny_run_args(
            model, data, out,
            num_samples=200, eval_num_samples=eval_num_samples, eval_steps=4,
            max_completion_length=16, num_generations=4, max_steps=max_steps,
            learning_rate="1e-3", reward_funcs=f"[format, {HERE}:varied_reward]",
            deterministic="true", save_steps=1, save_total_limit=2,
        ),
    ]  # fmt: skip


# ---------------------------------------------------------------- the child (hooked trainer)


class _Tracker:
    """In the child: writes ``<phase> <step> <start step>`` to the phase file as training
    moves, and SIGKILLs the process itself at the point ``KILL_TEST_SELF`` names."""

    def __init__(self, phase_file: str, self_kill: str) -> None:
        self.fd = os.open(phase_file, os.O_RDWR | os.O_CREAT, 0o644)
        self.self_kill = self_kill
        self.start = self.done = self.step = 0
        self.ready = False

    def mark(self, phase: str, step: int | None = None) -> None:
        self.step = step if step is not None else self.start + self.done + 1
        os.pwrite(self.fd, f"{phase} {self.step} {self.start}".ljust(64).encode(), 0)

    def hook(self, owner: Any, name: str, phase: str, after: str = "logging") -> None:
        """Mark ``phase`` while ``owner.name`` runs, ``after`` once it returns."""
        fn = getattr(owner, name)

        def wrapped(*a: Any, **k: Any) -> Any:
            self.mark(phase, a[1] if phase == "checkpoint" else None)  # save_checkpoint(dir, step)
            out = fn(*a, **k)
            if phase == "optimizer":
                self.done += 1
                self.mark(after, self.step - 1)
            elif (phase, self.self_kill) in (("final", "after_final"), ("closing", "closing")):
                os.kill(os.getpid(), signal.SIGKILL)
            else:
                self.mark(after, self.step if phase != "checkpoint" else None)
            return out

        setattr(owner, name, wrapped)

    def hook_logger(self, logs: Any) -> None:
        """The run logger is made once setup (and any resume) is done: training starts next."""
        init = logs.RunLogger.__init__

        def wrapped(logger: Any, *a: Any, **k: Any) -> None:
            init(logger, *a, **k)
            self.start, self.ready = k.get("resume_step", 0), True
            self.mark("ready", self.start)

        logs.RunLogger.__init__ = wrapped

    def hook_rmtree(self, shutil: Any) -> None:
        """mid_prune: delete the weights of a checkpoint being pruned, then die."""
        rmtree = shutil.rmtree

        def wrapped(path: Any, *a: Any, **k: Any) -> None:
            p = Path(path)
            pruning = self.ready and p.is_dir() and not p.name.startswith(".tmp-checkpoint-")
            if self.self_kill == "mid_prune" and pruning and (p / "model.safetensors").is_file():
                self.mark("checkpoint")
                (p / "model.safetensors").unlink()
                os.kill(os.getpid(), signal.SIGKILL)
            rmtree(path, *a, **k)

        shutil.rmtree = wrapped


def _child(phase_file: str, argv: list[str]) -> None:
    """``r1zero train`` (``r1zero.cli.main``) with the tracker's hooks installed."""
    import shutil

    import r1zero.train.checkpoint as ckpt
    import r1zero.train.logs as logs
    import r1zero.train.step as step_mod
    from r1zero.cli import main

    t = _Tracker(phase_file, os.environ.get("KILL_TEST_SELF", ""))
    t.hook_logger(logs)
    t.hook(step_mod, "collect", "rollout")
    t.hook(step_mod, "optimizer_step", "optimizer")
    t.hook(ckpt, "save_checkpoint", "checkpoint")
    t.hook(ckpt, "save_final", "final", after="closing")
    t.hook(logs.RunLogger, "close", "closing")
    t.hook_rmtree(shutil)
    t.mark("startup", 0)
    sys.argv = ["r1zero", *argv]
    main()


# ---------------------------------------------------------------- fork server


class _Forked:
    """A trainer forked by the zygote: ``poll``/``wait``/``send_signal`` like Popen's. The
    zygote ignores SIGCHLD, so a dead child vanishes; it writes ``<phase file>.rc`` on a
    normal exit, so a vanished child without one died by a signal."""

    def __init__(self, pid: int, rc_file: Path) -> None:
        self.pid, self.rc_file, self.returncode = pid, rc_file, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
                return None
            except ProcessLookupError:
                rc = self.rc_file.read_text().strip() if self.rc_file.exists() else ""
                self.returncode = int(rc) if rc else -signal.SIGKILL
        return self.returncode

    def wait(self) -> int:
        while self.poll() is None:
            time.sleep(0.01)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass


class Zygote:
    """A process that imported torch, transformers and r1zero once and forks a fresh trainer
    per run, so 20 restarts do not pay 20 interpreter start-ups (10-30 s each on a busy
    2-core machine). Each fork runs ``r1zero.cli.main`` like ``python -m r1zero``; nothing
    else has run in the zygote, so every fork starts from the same pristine state."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "--zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **CHILD_ENV},
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the fork server did not start")

    def start(self, args: list[str], *, env: dict, phase_file: Path, log: Path) -> _Forked:
        rc_file = phase_file.with_suffix(".rc")
        rc_file.unlink(missing_ok=True)
        req = {"args": args, "env": env, "phase_file": str(phase_file), "log": str(log)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return _Forked(int(self.proc.stdout.readline()), rc_file)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def _zygote() -> None:
    """Import everything, then fork one trainer per request line on stdin."""
    import r1zero.cli  # noqa: F401
    import r1zero.train.loop  # noqa: F401
    from r1zero.task import data  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _forked_child(req)
        print(pid, flush=True)


def _forked_child(req: dict) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.environ.update(req["env"])
    fd = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    code = 1
    try:
        _child(req["phase_file"], req["args"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        Path(req["phase_file"]).with_suffix(".rc").write_text(str(code))
        os._exit(code)


# ---------------------------------------------------------------- the parent


def _read_phase(path: Path) -> tuple[str, int, int]:
    try:
        phase, step, start = path.read_text().split()
        return phase, int(step), int(start)
    except (OSError, ValueError):
        return "startup", 0, 0


def _ckpt_steps(out: Path) -> list[int]:
    from r1zero.train import checkpoint as ckpt

    return [s for s, _ in ckpt.checkpoints(out)]


def _resumable_step(out: Path) -> int:
    from r1zero.train import checkpoint as ckpt

    p = ckpt.latest_resumable(out)
    return int(p.name.split("-")[1]) if p else 0


def _unreadable(out: Path) -> list[str]:
    """Every ``checkpoint-*`` on disk that ``from_pretrained`` cannot load."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    bad = []
    for p in sorted(out.glob("checkpoint-*")):
        try:
            AutoModelForCausalLM.from_pretrained(p)
        except Exception as e:  # any failure to load is what this test counts
            bad.append(f"{p.name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    return bad


def _kill_plan(kills: int, rng: random.Random) -> list[str]:
    """Modes for each kill: rollout of step 1 (before any checkpoint), the triggered ones
    shuffled with one mid_prune in the middle, then after_final and closing."""
    body = [TRIGGERED[i % len(TRIGGERED)] for i in range(kills - 4)]
    rng.shuffle(body)
    half = len(body) // 2
    return ["rollout", *body[:half], "mid_prune", *body[half:], "after_final", "closing"]


def _wait_and_kill(
    proc: subprocess.Popen,
    *,
    mode: str,
    target: int,
    phase_file: Path,
    out: Path,
    rng: random.Random,
    step_time: float,
    first: bool = False,
) -> str | None:
    """Kill ``proc`` at the moment ``mode`` asks for in step ``target``; None if it ended first."""
    tmp = out / f".tmp-checkpoint-{target}"
    delay = {
        "checkpoint": rng.uniform(0, 0.02),
        "delay": rng.uniform(0, step_time),
        "rollout": rng.uniform(0, 0.3 * step_time),
    }.get(mode, rng.uniform(0, 0.02))  # drawn once: the kill plan must not depend on timing
    if first:
        delay = min(delay, 0.02)  # inside step 1, before the first checkpoint
    saw = 0.0
    while proc.poll() is None:
        phase, step, _ = _read_phase(phase_file)
        if mode == "checkpoint":  # a .tmp-* left by the last kill counts once setup cleared it
            started = phase not in ("startup", "ready")
            hit = started and (tmp.exists() or step > target or phase in ("final", "closing"))
        elif mode == "delay":
            hit = step >= target and phase not in ("startup", "ready")
        else:
            hit = (phase == mode and step == target) or step > target or phase == "final"
        if hit:
            if not saw:
                saw = time.monotonic() + delay
            if time.monotonic() >= saw:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return _read_phase(phase_file)[0]
        time.sleep(0.0005 if step >= target or saw else 0.005)  # fine-grained near the target
    return None


def _choose(
    plan: list[str], n_done: int, *, out: Path, max_steps: int, kills: int, rng: random.Random
) -> tuple[str, int]:
    """(mode, target step) of the next kill: the plan's mode where it can happen, a target
    step paced so that the kills spread over the whole run."""
    done_steps, before = _resumable_step(out), _ckpt_steps(out)
    mode = plan[n_done]
    if mode == "mid_prune" and len(before) < 2:
        mode = rng.choice(TRIGGERED)  # nothing to prune yet
    if done_steps >= max_steps and mode not in ("after_final", "closing"):
        mode = "after_final"  # every step is done: only the end is left to interrupt
    pace = max(0.0, (max_steps - done_steps) / max(1, kills - n_done - 2) - 0.15)
    target = min(max_steps, done_steps + 1 + int(pace) + (rng.random() < pace % 1))
    if mode == "mid_prune" or n_done == 0:
        target = done_steps + 1
    return mode, target


def _launch(
    args: list[str], *, mode: str, phase_file: Path, log: Path, zygote: Zygote | None
) -> tuple[Any, bool]:
    """The hooked trainer, forked by the zygote or spawned; True when it is to SIGKILL itself."""
    self_kill = mode in ("mid_prune", "after_final", "closing")
    env = {**CHILD_ENV, "KILL_TEST_SELF": mode if self_kill else ""}
    phase_file.write_text("startup 0 0")
    if zygote is not None:
        return zygote.start(args, env=env, phase_file=phase_file, log=log), self_kill
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(HERE), "--child", str(phase_file), "--", *args],
            env={**os.environ, **env},
            stdout=fh,
            stderr=fh,
        )
    return proc, self_kill


def _record(n: int, mode: str, phase: str, *, out: Path, phase_file: Path, before: dict) -> dict:
    """What one kill left on disk, and whether every checkpoint still loads."""
    _, at_step, started = _read_phase(phase_file)
    return {
        "kill": n,
        "mode": mode,
        "phase": phase,
        "step": at_step,
        "resumed_from": started,
        **before,
        "checkpoints_after": _ckpt_steps(out),
        "tmp_after": sorted(p.name for p in out.glob(".tmp-*")),
        "unreadable": _unreadable(out),
    }


def _kill_series(
    *,
    model: Path,
    data: Path,
    out: Path,
    max_steps: int,
    kills: int,
    seed: int,
    log: Any,
    zygote: Zygote | None,
) -> list[dict]:
    """Start, kill, resume ``kills`` times, then let the last resume finish."""
    rng = random.Random(seed)
    plan = _kill_plan(kills, rng)
    records: list[dict] = []
    phase_file = out.parent / f"{out.name}.phase"
    run_log = out.parent / f"{out.name}.log"
    args = train_args(model, data, out, max_steps)
    for attempt in range(3 * kills):
        if len(records) == kills:
            break
        mode, target = _choose(plan, len(records), out=out, max_steps=max_steps, kills=kills, rng=rng)  # fmt: skip
        before = {
            "expected_resume": _resumable_step(out),
            "leftovers_at_start": sorted(p.name for p in out.glob(".tmp-*")),
            "checkpoints_before": _ckpt_steps(out),
        }
        # every other restart is the very same command (it must resume by itself)
        resume = ["--resume_from_checkpoint", "true"] if attempt % 2 else []
        log_at = run_log.stat().st_size if run_log.exists() else 0
        proc, self_kill = _launch(
            args + resume, mode=mode, phase_file=phase_file, log=run_log, zygote=zygote
        )
        steps = [r["step_time"] for r in _metrics(out) if "step_time" in r] or [0.3]
        if self_kill:
            proc.wait()
            phase = _read_phase(phase_file)[0] if proc.returncode == -signal.SIGKILL else None
        else:
            phase = _wait_and_kill(
                proc,
                mode=mode,
                target=target,
                phase_file=phase_file,
                out=out,
                rng=rng,
                step_time=statistics.median(steps),
                first=not records,
            )
        if phase is None:  # finished before the kill moment: the next one resumes a done run
            if proc.returncode != 0:
                raise RuntimeError(f"training exited with {proc.returncode}; see {run_log}")
            continue
        rec = _record(len(records) + 1, mode, phase, out=out, phase_file=phase_file, before=before)
        rec["command"] = "first run" if not attempt else ("resume key" if resume else "same")
        rec["said_resuming"] = _said_resuming(run_log, log_at, rec["resumed_from"])
        records.append(rec)
        log(
            f"kill {rec['kill']:2d}: {mode:11s} phase {phase:10s} step {rec['step']:3d} "
            f"(resumed from {rec['resumed_from']}); checkpoints {rec['checkpoints_after']}, "
            f"leftovers {rec['tmp_after']}, unreadable {len(rec['unreadable'])}"
        )
    proc, _ = _launch(args, mode="", phase_file=phase_file, log=run_log, zygote=zygote)
    if proc.wait() != 0:
        raise RuntimeError(f"the last resume exited with {proc.returncode}; see {run_log}")
    return records


def _said_resuming(log: Path, start: int, step: int) -> bool:
    """The restart's output says which checkpoint it resumed from (nothing to say at 0)."""
    if step == 0:
        return True
    with open(log, "rb") as fh:
        fh.seek(start)
        return f"resuming from checkpoint-{step} ".encode() in fh.read()


def rerun_finished(args: list[str], out: Path, log: Path, zygote: Zygote | None) -> dict:
    """The same command once more on the finished run: exit 0, says it is finished, and
    every file in the run folder stays byte-for-byte as it was."""
    import hashlib

    def digest() -> dict[str, str]:
        return {
            str(f.relative_to(out)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(out.rglob("*"))
            if f.is_file()
        }

    before, start = digest(), log.stat().st_size
    proc, _ = _launch(args, mode="", phase_file=out.parent / "rerun.phase", log=log, zygote=zygote)
    rc = proc.wait()
    after = digest()
    said = log.read_bytes()[start:].decode(errors="replace")
    return {
        "exit": rc,
        "said_finished": "is a finished run" in said,
        "files": len(before),
        "files_changed": sum(before.get(k) != after.get(k) for k in set(before) | set(after)),
    }


def _metrics(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass  # a line cut by the kill
    return rows


def _completions(out: Path) -> dict[str, list[str]]:
    """Logged completions per step file, decompressed (gzip headers carry a timestamp)."""
    return {
        f.name: gzip.decompress(f.read_bytes()).decode().splitlines()
        for f in sorted((out / "completions").glob("step-*.jsonl.gz"))
    }


def compare(reference: Path, killed: Path) -> dict[str, Any]:
    """Final weights, metrics rows and completions of two run folders."""
    from safetensors.torch import load_file

    from r1zero.train.logs import deterministic_view

    a, b = load_file(reference / "model.safetensors"), load_file(killed / "model.safetensors")
    same_keys = sorted(a) == sorted(b)
    max_diff = max(((a[k].double() - b[k].double()).abs().max().item() for k in a), default=0.0)
    identical = same_keys and all(a[k].dtype == b[k].dtype and a[k].equal(b[k]) for k in a)
    ra = [deterministic_view(r) for r in _metrics(reference)]
    rb = [deterministic_view(r) for r in _metrics(killed)]
    differing = sum(x != y for x, y in zip(ra, rb, strict=False)) + abs(len(ra) - len(rb))
    ca, cb = _completions(reference), _completions(killed)
    init = load_file(reference.parent / "model" / "model.safetensors")
    moved = max((a[k].double() - init[k].double()).abs().max().item() for k in a if k in init)
    return {
        "weights_bit_identical": identical,
        "max_abs_weight_diff": max_diff,
        "weights_moved_from_init": moved,
        "metrics_rows": len(ra),
        "metrics_rows_killed_run": len(rb),
        "metrics_rows_differing": differing,
        "completion_files": len(ca),
        "completion_files_differing": sum(ca.get(k) != cb.get(k) for k in set(ca) | set(cb)),
        "done": (killed / "done").is_file(),
        "leftovers_at_end": sorted(p.name for p in killed.glob(".tmp-*")),
    }


def _inputs(workdir: Path, model: Path | None, seed: int) -> tuple[Path, Path]:
    """The model folder (a copy of ``model``, or a random tiny one) and 200 problems."""
    model_dir = workdir / "model"
    if model is not None:
        import shutil

        shutil.copytree(model, model_dir, dirs_exist_ok=True)
    elif not (model_dir / "config.json").is_file():
        random_model_folder(model_dir, seed=seed)
    data = workdir / "data.jsonl"
    subprocess.run(
        [sys.executable, "-m", "r1zero", "data", "--n", "200", "--seed", "1", "--out", str(data)],
        env={**os.environ, **CHILD_ENV},
        check=True,
        capture_output=True,
    )
    return model_dir, data


def _summarize(records: list[dict], cmp: dict[str, Any], kills: int) -> dict[str, Any]:
    unreadable = sorted({u.split(":")[0] for r in records for u in r["unreadable"]})
    wrong_resume = [r["kill"] for r in records if r["resumed_from"] != r["expected_resume"]]
    by = {k: dict(sorted(Counter(r[k] for r in records).items())) for k in ("phase", "mode")}
    s = {
        "kills": len(records),
        "kills_by_phase": by["phase"],
        "kills_by_mode": by["mode"],
        "unreadable_checkpoints": len(unreadable),
        "unreadable_detail": sorted({u for r in records for u in r["unreadable"]}),
        "resumes_not_from_newest_checkpoint": wrong_resume,
        "leftovers_seen_after_kills": sum(bool(r["tmp_after"]) for r in records),
        "restarts_by_same_command": sum(r.get("command") == "same" for r in records),
        "resumes_not_announced": [r["kill"] for r in records if not r.get("said_resuming", True)],
        **cmp,
    }
    s["ok"] = (
        len(records) >= kills
        and not unreadable
        and not wrong_resume
        and cmp["weights_bit_identical"]
        and cmp["metrics_rows_differing"] == 0
        and cmp["completion_files_differing"] == 0
        and cmp["done"]
        and not cmp["leftovers_at_end"]
        and cmp["weights_moved_from_init"] > 0
        and not s["resumes_not_announced"]
        and cmp["rerun_finished"]["exit"] == 0
        and cmp["rerun_finished"]["said_finished"]
        and cmp["rerun_finished"]["files_changed"] == 0
    )
    return s


def run_kill_test(
    workdir: Path,
    *,
    kills: int = 20,
    max_steps: int = 12,
    seed: int = 0,
    model: Path | None = None,
    spawn: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """The whole test in ``workdir``; returns the summary (``summary["ok"]`` says if it passed).
    Trainers are forked by a :class:`Zygote`, or with ``spawn`` started as fresh interpreters
    (``python tests/reliability/kill_test.py --child``), the slow but literal way."""
    t0 = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    model_dir, data = _inputs(workdir, model, seed)
    ref_out, killed_out = workdir / "reference", workdir / "killed"
    with open(workdir / "reference.log", "wb") as fh:  # runs alongside the kill series
        reference = subprocess.Popen(
            [sys.executable, "-m", "r1zero", *train_args(model_dir, data, ref_out, max_steps)],
            env={**os.environ, **CHILD_ENV},
            stdout=fh,
            stderr=fh,
        )
    zygote = None if spawn else Zygote()
    try:
        records = _kill_series(
            model=model_dir,
            data=data,
            out=killed_out,
            max_steps=max_steps,
            kills=kills,
            seed=seed,
            log=log,
            zygote=zygote,
        )
        args = train_args(model_dir, data, killed_out, max_steps)
        rerun = rerun_finished(args, killed_out, workdir / "killed.log", zygote)
    finally:
        if zygote is not None:
            zygote.close()
    if reference.wait() != 0:
        raise RuntimeError(f"the uninterrupted run failed; see {workdir / 'reference.log'}")
    return {
        **_summarize(records, compare(ref_out, killed_out) | {"rerun_finished": rerun}, kills),
        "max_steps": max_steps,
        "seed": seed,
        "start": "spawn" if spawn else "fork",
        "seconds": round(time.perf_counter() - t0, 1),
        "records": records,
    }


def format_summary(s: dict[str, Any]) -> str:
    rr = s["rerun_finished"]
    phases = ", ".join(f"{k} {v}" for k, v in s["kills_by_phase"].items())
    return "\n".join(
        [
            f"kills survived: {s['kills']} of {s['kills']} ({'PASS' if s['ok'] else 'FAIL'}), {s['max_steps']} steps, seed {s['seed']}, {s['seconds']} s",
            f"kills by phase: {phases}",
            f"unreadable checkpoints: {s['unreadable_checkpoints']}; resumes not from the newest checkpoint: {len(s['resumes_not_from_newest_checkpoint'])}; kills that left a .tmp-* folder: {s['leftovers_seen_after_kills']} (none taken for a checkpoint)",
            f"final weights: bit-identical {s['weights_bit_identical']}, max abs diff {s['max_abs_weight_diff']:.3g} (weights moved {s['weights_moved_from_init']:.3g} from init)",
            f"metrics rows differing: {s['metrics_rows_differing']} of {s['metrics_rows']}; completion files differing: {s['completion_files_differing']} of {s['completion_files']}; done: {s['done']}",
            f"restarts with the same command (no resume key): {s['restarts_by_same_command']} of {s['kills']}; resumes that did not say 'resuming from checkpoint-N': {len(s['resumes_not_announced'])}",
            f"the same command on the finished run: exit {rr['exit']}, said finished {rr['said_finished']}, files changed {rr['files_changed']} of {rr['files']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        _child(argv[1], argv[3:])  # --child PHASE_FILE -- train ...
        return 0
    if argv[:1] == ["--zygote"]:
        _zygote()
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs to deliver (>= 5).")
    ap.add_argument("--max_steps", type=int, default=12, help="Optimizer steps of the run.")
    ap.add_argument("--seed", type=int, default=0, help="Seeds kill moments and the model.")
    ap.add_argument("--model", type=Path, help="Model folder (default: a random-init tiny Qwen2).")
    ap.add_argument(
        "--spawn",
        action="store_true",
        help="Start every trainer as a fresh interpreter instead of forking it from a process "
        "that imported everything once (same code path, 10-30 s more per kill).",
    )
    ap.add_argument("--workdir", type=Path, help="Keep the runs here (default: a temp folder).")
    ap.add_argument("--json", type=Path, help="Write the summary JSON here.")
    ap.add_argument("--doc", type=Path, help="Markdown file whose kill-test section to replace.")
    a = ap.parse_args(argv)
    if a.kills < 5:
        ap.error("--kills must be at least 5")
    with tempfile.TemporaryDirectory(prefix="kill-test-") as tmp:
        s = run_kill_test(
            a.workdir or Path(tmp),
            kills=a.kills,
            max_steps=a.max_steps,
            seed=a.seed,
            model=a.model,
            spawn=a.spawn,
        )
    print(format_summary(s))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(s, indent=1))
    if a.doc:
        from r1zero.markdown import replace_section

        spawn = " --spawn" if a.spawn else ""
        cmd = f"python tests/reliability/kill_test.py --kills {a.kills} --max_steps {a.max_steps} --seed {a.seed}{spawn} --doc {a.doc}"
        replace_section(
            a.doc, "<!-- kill-test:begin -->", "<!-- kill-test:end -->", markdown(s, cmd)
        )
    return 0 if s["ok"] else 1


def markdown(s: dict[str, Any], cmd: str) -> str:
    """The doc section: the summary, then one row per kill."""
    import platform

    lines = [
        f"Generated by `{cmd}` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, "
        f"{os.cpu_count()} cores, CPU, single-threaded torch); do not edit by hand.",
        "",
        "```",
        format_summary(s),
        "```",
        "",
        "| kill | started by | mode | phase at death | step | resumed from | `.tmp-*` left behind | checkpoints after | unreadable |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in s["records"]:
        lines.append(
            f"| {r['kill']} | {r.get('command', '-')} | {r['mode']} | {r['phase']} | {r['step']} | {r['resumed_from']} | "
            f"{', '.join(r['tmp_after']) or '-'} | {r['checkpoints_after']} | {len(r['unreadable'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
