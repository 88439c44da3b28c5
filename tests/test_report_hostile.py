"""The report on run folders from someone else (issue 21): no script runs in the page, a bad
row is skipped and counted instead of stopping the build, the build stays linear, and the
output never replaces a run's own file."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from r1zero.report import build_report
from r1zero.report.detectors import detect, split_completion
from r1zero.report.hostile import BAD_LINES, encoded
from r1zero.report.synthetic import write_synthetic_run
from test_report_cdp import browser, needs_chromium  # noqa: F401 (fixture)

PWN = "document.documentElement.dataset.pwned='1'"
XSS = f'<img src=x onerror="{PWN}">'


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]


def _write_lines(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


@pytest.fixture
def run(tmp_path) -> Path:
    return write_synthetic_run(tmp_path / "run", steps=3, num_prompts=2)


def _hover_every_chart(browser) -> None:  # noqa: F811
    boxes = browser.eval(
        "[...document.querySelectorAll('.chart svg')].map(s => {"
        "s.scrollIntoView(); const r = s.getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height]; })"
    )
    for i in range(len(boxes)):
        browser.eval(f"document.querySelectorAll('.chart svg')[{i}].scrollIntoView()")
        x, y, w, h = browser.eval(
            f"(r => [r.left, r.top, r.width, r.height])"
            f"(document.querySelectorAll('.chart svg')[{i}].getBoundingClientRect())"
        )
        for frac in (0.1, 0.5, 0.9):
            browser.mouse("mouseMoved", x + frac * w, y + h / 2)


# ---------------------------------------------------------------- script in the page
@needs_chromium
def test_group_field_runs_no_script(run, tmp_path, browser):  # noqa: F811
    f = run / "completions" / "step-000002.jsonl.gz"
    rows = _rows(f)
    rows[0]["group"] = XSS
    _write_lines(f, [json.dumps(r, ensure_ascii=False) for r in rows])
    out = tmp_path / "r.html"
    stats = build_report([run], out)
    browser.open(out, "#smin=2&smax=2")
    browser.wait("document.querySelectorAll('article.sample').length > 0")
    assert browser.eval("document.documentElement.dataset.pwned") is None
    assert stats["skipped"][0]["rows"] == 1  # a string group is no group: skipped, counted
    assert "group is str, not an integer" in browser.eval(
        "document.getElementById('skipped').textContent"
    )


@needs_chromium
def test_metrics_step_runs_no_script_on_hover(run, tmp_path, browser):  # noqa: F811
    lines = (run / "metrics.jsonl").read_text().splitlines()
    hostile = [json.dumps(json.loads(line) | {"step": f"{XSS}{i}"}) for i, line in enumerate(lines)]
    (run / "metrics.jsonl").write_text("\n".join(hostile) + "\n")
    for f in (run / "eval").glob("*.json"):
        f.unlink()
    out = tmp_path / "r.html"
    build_report([run], out)
    browser.open(out)
    _hover_every_chart(browser)
    assert browser.eval("document.querySelectorAll('.tip:not([hidden])').length") >= 0
    assert browser.eval("document.documentElement.dataset.pwned") is None
    assert browser.errors() == []


# ---------------------------------------------------------------- bad rows
@needs_chromium
def test_nan_rewards_become_null_and_the_samples_load(run, tmp_path, browser):  # noqa: F811
    f = run / "completions" / "step-000001.jsonl.gz"
    lines = [json.dumps(r, ensure_ascii=False) for r in _rows(f)]
    lines[0] = lines[0].replace('"advantage": ', '"advantage": NaN, "x": ', 1)
    lines[1] = lines[1].replace('"reward": ', '"reward": Infinity, "y": ', 1)
    lines[2] = lines[2].replace('"format": ', '"format": -Infinity, "z": ', 1)
    _write_lines(f, lines)
    out = tmp_path / "r.html"
    stats = build_report([run], out)
    browser.open(out)
    text = browser.eval("document.getElementById('count').textContent")
    assert "kept samples match" in text and "Could not load" not in text, text
    assert browser.errors() == []
    assert stats["skipped"][0]["rows"] == 0


def test_malformed_rows_are_skipped_and_counted(run, tmp_path):
    f = run / "completions" / "step-000002.jsonl.gz"
    good = [json.dumps(r, ensure_ascii=False) for r in _rows(f)]
    raw = b"".join(encoded(name) + b"\n" for name in BAD_LINES)
    with gzip.open(f, "wb") as g:
        g.write(raw + "".join(line + "\n" for line in good).encode())
    (run / "metrics.jsonl").open("a").write('{"step": "x"}\n[]\n{"step": 1e999}\n')
    t0 = time.perf_counter()
    stats = build_report([run], tmp_path / "r.html", workers=1)
    assert time.perf_counter() - t0 < 10
    assert stats["skipped"][0]["rows"] == len(BAD_LINES)
    assert stats["skipped"][0]["metrics"] == 3
    assert stats["completions"] == 3 * 2 * 8  # every good row still counts
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"{len(BAD_LINES)} malformed completion rows skipped" in html


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_each_bad_line_alone_is_skipped(run, tmp_path, name):
    f = run / "completions" / "step-000001.jsonl.gz"
    with gzip.open(f, "ab") as g:
        g.write(encoded(name) + b"\n")
    stats = build_report([run], tmp_path / "r.html", workers=1)
    assert stats["skipped"][0]["rows"] == 1, name


# ---------------------------------------------------------------- linear time
def test_answer_search_is_linear_on_unclosed_tags():
    loop = "<answer>44 + 19 " * 64_000  # 1 MB of answers that never close
    t0 = time.perf_counter()
    assert split_completion(loop).answer is None
    assert split_completion(loop + "</answer>").answer == loop[8:]
    detect(loop, equation_reward=0.0, truncated=True)
    assert time.perf_counter() - t0 < 1.0  # the regex took 40 s on 200 KB


def test_looping_answer_step_builds_fast(tmp_path):
    run = write_synthetic_run(tmp_path / "run", steps=1, num_prompts=1)
    f = run / "completions" / "step-000001.jsonl.gz"
    row = _rows(f)[0]
    row["completion"] = "<answer>44 + 19 = 63 " * 800  # ~16 KB, as a repetition loop writes
    _write_lines(f, [json.dumps(row)] * 128)
    t0 = time.perf_counter()
    build_report([run], tmp_path / "r.html", workers=1)
    assert time.perf_counter() - t0 < 5  # was 12.6 s


# ---------------------------------------------------------------- the output file
def test_output_never_replaces_a_run_file(run, tmp_path):
    from r1zero.cli import app

    before = (run / "metrics.jsonl").read_bytes()
    res = CliRunner().invoke(app, ["report", str(run), "-o", str(run / "metrics.jsonl")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "not an HTML report; refusing to overwrite" in res.output
    assert (run / "metrics.jsonl").read_bytes() == before


def test_output_folder_is_one_line_and_leaves_nothing(run, tmp_path):
    from r1zero.cli import app

    res = CliRunner().invoke(app, ["report", str(run), "-o", str(run)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "is a folder; give a file name" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.tmp")) and not list(run.parent.glob(".*tmp"))


def test_report_overwrites_its_own_previous_page(run, tmp_path):
    out = tmp_path / "r.html"
    build_report([run], out)
    build_report([run], out)  # a report may replace a report
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------- properties of the parsers
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from r1zero.report.detectors import first_answer  # noqa: E402
from r1zero.report.rows import BadRow, completion_row, parse_line  # noqa: E402

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_ROW_KEYS = ["completion", "prompt", "step", "group", "nums", "target", "rewards", "reward",
             "advantage", "length", "truncated"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_ROW_KEYS), _JSON, max_size=11) | _JSON)
def test_any_json_row_is_typed_or_rejected_with_a_reason(obj):
    line = json.dumps(obj, allow_nan=True)
    try:
        row = completion_row(parse_line(line))
    except BadRow as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(row["completion"], str) and isinstance(row["prompt"], str)
    for key in ("step", "group", "target", "length"):
        assert row[key] is None or (type(row[key]) is int and abs(row[key]) <= 10**15)
    for key in ("reward", "advantage", *row["rewards"]):
        v = row.get(key, row["rewards"].get(key))
        assert v is None or (isinstance(v, float) and v == v and abs(v) != float("inf"))
    json.loads(json.dumps(row, allow_nan=False))  # the page's JSON always parses


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["<answer>", "</answer>", "a", "\n", "<", ">"]), max_size=40).map(
        "".join
    )
)
def test_first_answer_equals_the_regex(text):
    import re

    m = re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)
    assert first_answer(text) == (m.group(1) if m else None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_any_bytes_never_stop_the_parser(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        parse_line(text)
    except BadRow:
        pass
