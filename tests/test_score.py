"""Offline scoring of a JSON-lines file of completions."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from r1zero.task.score import score_file


def test_score_file(tmp_path):
    rows = [
        {"completion": "ok</think>\n<answer>44 + 19 - 35</answer>", "nums": [44, 19, 35], "target": 28, "id": 1},
        {"completion": "a" * 1001 + "</think>\n<answer>1</answer>", "nums": [1, 2], "target": 3, "id": 2},
    ]  # fmt: skip
    src, dst = tmp_path / "in.jsonl", tmp_path / "out" / "scored.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    summary = score_file(src, dst)
    assert summary == {"rows": 2, "format": 1.0, "equation": 0.5, "thought_len": 0.5}
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [(r["id"], r["format"], r["equation"], r["thought_len"]) for r in out] == [
        (1, 1.0, 1.0, 0.0),
        (2, 1.0, 0.0, 1.0),
    ]


def test_score_file_errors(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "x", "nums": [1, 2]}\n')
    with pytest.raises(ValueError, match=r"in.jsonl:1: missing field\(s\) \['target'\]"):
        score_file(src, tmp_path / "out.jsonl")
    src.write_text('{"completion": "x", "nums": [1, 2], "target": 3}\nnot json\n')
    with pytest.raises(ValueError, match="in.jsonl:2: not JSON"):
        score_file(src, tmp_path / "out.jsonl")
    src.write_text("")
    assert score_file(src, tmp_path / "out.jsonl") == {
        "rows": 0, "format": None, "equation": None, "thought_len": None
    }  # fmt: skip


GOOD = {"completion": "ok</think>\n<answer>44 + 19 - 35</answer>", "nums": [44, 19, 35]}


def test_score_reads_a_runs_gzip_completions(tmp_path):
    """The run's own completions/step-NNNNNN.jsonl.gz (was: 'utf-8' codec can't decode 0x8b)."""
    import gzip

    src = tmp_path / "completions" / "step-000001.jsonl.gz"
    src.parent.mkdir()
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        for t in (28, 29):
            fh.write(
                json.dumps({**GOOD, "target": t, "step": 1, "rewards": {"format": 1.0}}) + "\n"
            )
    summary = score_file(src, tmp_path / "out.jsonl")
    assert summary == {"rows": 2, "format": 1.0, "equation": 0.5, "thought_len": 0.0}


def test_score_reads_the_tutorials_completion_samples(tmp_path):
    """The tutorial appends "\\n\\n==============\\n" + "<think>" + completion per sample."""
    completions = [
        "a\nb</think>\n<answer>1 + 2</answer>",
        "x" * 1001 + "</think>\n<answer>",
        "no tags",
    ]
    src = tmp_path / "completion_samples.txt"
    src.write_text("".join("\n\n==============\n" + "<think>" + c for c in completions))
    summary = score_file(src, tmp_path / "out.jsonl")
    assert summary["rows"] == 3 and summary["equation"] is None
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["completion"] for r in out] == completions
    assert [(r["format"], r["thought_len"], r["equation"]) for r in out] == [
        (1.0, 0.0, None), (0.0, 1.0, None), (0.0, 0.0, None)
    ]  # fmt: skip


@pytest.mark.parametrize(
    "target", ["1e10000000", "1e30000000", "1e-999999999", "1/0", "nan", "inf", None, True, [1]]
)
def test_score_refuses_a_hostile_target_by_line(tmp_path, target):
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({**GOOD, "target": 28}) + "\n" + json.dumps({**GOOD, "target": target}) + "\n"
    )
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"in.jsonl:2: target ") as e:
        score_file(src, tmp_path / "out.jsonl")
    assert time.perf_counter() - t0 < 1.0
    assert "\n" not in str(e.value)


def test_score_refuses_a_huge_integer_target_by_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"completion": "x", "nums": [1, 2], "target": ' + "9" * 5000 + "}\n")
    with pytest.raises(ValueError, match=r"in.jsonl:1: not JSON"):
        score_file(src, tmp_path / "out.jsonl")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "r1zero", "score", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_score_cli_one_line_errors(tmp_path):
    """Hostile target, binary file, plain text: one error line, no traceback."""
    (tmp_path / "zero.jsonl").write_text(json.dumps({**GOOD, "target": "1/0"}) + "\n")
    (tmp_path / "bin.dat").write_bytes(b"\x00\xff\xfe\x80" * 10)
    (tmp_path / "notes.txt").write_text("just some notes\n")
    want = {"zero.jsonl": "zero.jsonl:1: target must be a decimal number, got '1/0'",
            "bin.dat": "not UTF-8 text; r1zero score reads JSON lines",
            "notes.txt": "notes.txt:1: not JSON"}  # fmt: skip
    for name, words in want.items():
        r = _cli(str(tmp_path / name), "--out", str(tmp_path / "o.jsonl"))
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert words in r.stderr, r.stderr
