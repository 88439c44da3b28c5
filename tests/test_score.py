"""Offline scoring of a JSON-lines file of completions."""

from __future__ import annotations

import json

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
