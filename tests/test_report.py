"""The run report: detectors on hand-written samples (English and Chinese), the HTML file,
the sample browser in a real headless Chromium, live rebuilds, and the 60,000-sample budget."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from r1zero.report import build_report, watch
from r1zero.report import load as report_load
from r1zero.report.detectors import (
    detect,
    first_stable_step,
    language,
    reflection_phrases,
    repetition,
    split_completion,
)
from r1zero.report.synthetic import write_synthetic_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
)

EN_THINK = "Let's try 44 + 19 = 63. 63 - 5 = 58, not 70. "
ZH_THINK = "我们试试 44 + 19 = 63。63 - 5 = 58，不等于 70。"


# ---------------------------------------------------------------- reflection / aha
@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        ("Wait, 44 + 19 is 63.", ["wait"]),
        ("Let me check: 63 - 5 = 58. Let's verify once more.", ["let me check", "let's verify"]),
        ("Let\u2019s verify the result.", ["let's verify"]),  # curly apostrophe
        ("I should re-evaluate, then double-check.", ["re-evaluate", "double-check"]),
        ("等等，44 + 19 = 63。让我检查一下。", ["等等", "检查一下"]),
        ("重新计算：我们需要验证结果。", ["重新", "验证"]),
        ("我们wait一下", ["wait"]),  # CJK next to an English phrase is a word boundary
    ],
)
def test_reflection_phrases_found(text, phrases):
    assert reflection_phrases(text) == phrases


@pytest.mark.parametrize(
    "text",
    [
        "We await the result; waiting is fine. 44 + 19 = 63.",  # inside other words
        "Checking 44 + 19 = 63 gives the answer.",
        "我们试试 44 + 19 = 63，然后减去 5 得到 58。",
        "",
    ],
)
def test_reflection_phrases_negatives(text):
    assert reflection_phrases(text) == []


def test_overlapping_phrases_counted_once():
    assert reflection_phrases("Let me recheck.") == ["let me recheck"]


def test_aha_needs_reflection_and_a_correct_equation():
    text = (
        EN_THINK + "Wait, let me check: (44 + 19) + 7 = 70.</think>\n<answer>44 + 19 + 7</answer>"
    )
    assert "aha" in detect(text, equation_reward=1.0, truncated=False).flags
    wrong = detect(text, equation_reward=0.0, truncated=False).flags
    assert "aha" not in wrong and "reflection" in wrong
    plain = EN_THINK + "</think>\n<answer>44 + 19 + 7</answer>"
    assert detect(plain, equation_reward=1.0, truncated=False).flags == []


def test_reflection_only_in_the_think_part():
    text = EN_THINK + "</think>\n<answer>44 + 19 + 7</answer> wait"
    assert "reflection" not in detect(text, equation_reward=1.0, truncated=False).flags


# ---------------------------------------------------------------- language mixing
def test_chinese_reasoning_with_english_words_is_mixing():
    lang = language(ZH_THINK + "let me try 另一种方法。")
    assert lang.main == "zh" and lang.foreign == 3 and lang.mixing


def test_english_reasoning_with_chinese_is_mixing():
    lang = language(EN_THINK + "等等, that is wrong.")
    assert lang.main == "en" and lang.foreign == 2 and lang.mixing


@pytest.mark.parametrize("think", [ZH_THINK * 3, EN_THINK * 3, "44 + 19 = 63", ""])
def test_single_language_reasoning_is_not_mixing(think):
    assert not language(think).mixing


def test_main_language_by_character_counts():
    assert language("我们先试试这个方法吧 ok").main == "zh"  # 10 CJK > 2 letters
    assert language("try this approach now 好").main == "en"
    assert language("12 + 3 = 15").main is None


def test_mixing_flag_reads_the_think_part_only():
    text = ZH_THINK + "</think>\n<answer>44 + 19 + 7</answer>"
    assert "mixing" not in detect(text, equation_reward=1.0, truncated=False).flags


# ---------------------------------------------------------------- repetition
def test_english_loop_until_truncated():
    text = EN_THINK + "Let's try 44 + 19 = 63. That is not 70. " * 300
    rep = repetition(text)
    assert rep.loop and rep.flagged and rep.compression < 0.1
    flags = detect(text, equation_reward=0.0, truncated=True).flags
    assert {"repetition", "loop_truncated", "truncated"} <= set(flags)


def test_chinese_loop_without_spaces_caught_by_compression():
    text = ZH_THINK + "我们再试一次，还是不对。" * 400
    rep = repetition(text)
    assert rep.compression is not None and rep.compression < 0.1 and rep.flagged and not rep.loop


def test_varied_reasoning_is_not_repetition():
    import random

    rng = random.Random(0)
    lines = []
    for _ in range(120):
        a, b, c = rng.randint(1, 99), rng.randint(1, 99), rng.randint(1, 99)
        op = rng.choice("+-*")
        lines.append(
            f"Try {a} {op} {b}, then combine with {c}: gives {rng.randint(1, 999)}, target missed."
        )
    rep = repetition(" ".join(lines))
    assert rep.ngram_repeat < 0.2 and not rep.flagged
    assert "repetition" not in detect(" ".join(lines), equation_reward=0.0, truncated=False).flags


def test_short_text_has_no_repetition_verdict():
    rep = repetition("Wait. Wait. Wait.")
    assert rep.compression is None and rep.ngram_repeat == 0.0 and not rep.flagged


# ---------------------------------------------------------------- parts and format stability
def test_split_completion():
    parts = split_completion(" 3 + 5 = 8\n</think>\n<answer>(3 + 5) * 2</answer>")
    assert parts.think == " 3 + 5 = 8\n" and parts.answer == "(3 + 5) * 2"
    assert split_completion("still thinking").answer is None


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ([0.1, 0.5, 0.95, 0.8, 0.91, 0.97, 1.0], 5),
        ([0.95, 0.96, 0.99], 1),
        ([0.95, 0.96, 0.5], None),
        ([0.2, None, 0.92, None, 0.93], 3),
        ([], None),
    ],
)
def test_first_stable_step(rates, expected):
    assert first_stable_step(list(range(1, len(rates) + 1)), rates) == expected


# ---------------------------------------------------------------- the HTML file
def _data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1))


def _payload(html: str) -> dict:
    b64 = re.search(r'id="samples-data">([^<]*)</script>', html).group(1)
    return json.loads(gzip.decompress(base64.b64decode(b64)))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    a = write_synthetic_run(root / "run-a", steps=12, num_prompts=3, language="zh", seed=0)
    b = write_synthetic_run(
        root / "run-b", steps=8, num_prompts=3, language="en", seed=1,
        config={"grpo.learning_rate": 1e-6, "grpo.beta": 0.04},
    )  # fmt: skip
    out = root / "report.html"
    stats = build_report([a, b], out, max_samples_per_step=4)
    return a, b, out, stats


def test_report_overlays_two_runs_with_config_diff(two_runs):
    a, b, out, stats = two_runs
    html = out.read_text(encoding="utf-8")
    assert stats["steps"] == [12, 8] and stats["completions"] == (12 + 8) * 3 * 8
    assert '<meta name="viewport"' in html
    diff = re.search(r'<table id="config-diff">.*?</table>', html, re.S).group(0)
    for key in ("grpo.learning_rate", "grpo.beta", "prompt_template", "seed"):
        assert f"<td>{key}</td>" in diff
    assert "grpo.num_generations" not in diff
    charts = json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))[
        "charts"
    ]
    reward = next(c for c in charts if c["title"] == "Total reward")
    assert {s["label"] for s in reward["series"]} >= {"run-a · mean", "run-b · mean"}
    titles = {c["title"] for c in charts}
    assert {
        "Language mixing",
        "Repetition",
        "Accuracy (equation reward 1)",
        "Seconds per stage",
    } <= titles


def test_report_is_self_contained(two_runs):
    html = two_runs[2].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and "fetch(" not in html


def test_every_flagged_completion_is_kept_when_it_fits(two_runs):
    a, b, out, stats = two_runs
    keep = {"aha", "reflection", "mixing", "repetition"}
    flagged = 0
    for run in (a, b):
        for f in sorted(run.glob("completions/*.jsonl.gz")):
            for row in map(json.loads, gzip.open(f, "rt", encoding="utf-8")):
                det = detect(
                    row["completion"],
                    equation_reward=row["rewards"]["equation"],
                    truncated=row["truncated"],
                )
                flagged += bool(keep & set(det.flags))
    samples = _payload(out.read_text(encoding="utf-8"))["samples"]
    assert stats["samples"]["dropped_flagged"] == 0
    assert (
        sum(1 for x in samples if {"aha", "reflection", "mixing", "repetition"} & set(x["f"]))
        == flagged
    )
    per_step = {}
    for x in samples:
        per_step.setdefault((x["r"], x["s"]), set()).add(x["R"])
    assert len(per_step) == 12 + 8  # every step has samples


def test_equation_failure_reasons(tmp_path, monkeypatch):
    run = write_synthetic_run(tmp_path / "r", steps=2, num_prompts=2)
    s = report_load.summarize_step(run / "completions" / "step-000001.jsonl.gz")
    unformatted = [x for x in s.samples if "<answer>" not in x["c"]]
    assert unformatted and all(x["why"] == "no_answer" for x in unformatted)
    monkeypatch.setattr(report_load, "_equation_failure", lambda: None)
    s = report_load.summarize_step(run / "completions" / "step-000001.jsonl.gz")
    assert {x["why"] for x in s.samples if x["rw"]["equation"] < 1} == {"unknown"}


def test_size_budget_drops_samples_and_says_so(tmp_path):
    run = write_synthetic_run(tmp_path / "r", steps=6, num_prompts=4)
    full = build_report([run], tmp_path / "full.html")
    assert full["samples"]["dropped_flagged"] + full["samples"]["dropped_stratified"] == 0
    limit = 0.8 * full["bytes"] / 1e6
    stats = build_report([run], tmp_path / "small.html", max_mb=limit)
    html = (tmp_path / "small.html").read_text(encoding="utf-8")
    assert stats["bytes"] <= limit * 1e6
    assert stats["samples"]["dropped_flagged"] + stats["samples"]["dropped_stratified"] > 0
    assert "were left out" in html


def test_report_from_partial_runs(tmp_path):
    """A run that logged metrics but no completions yet, and one with nothing at all."""
    run = write_synthetic_run(tmp_path / "r", steps=3, done=False)
    shutil.rmtree(run / "completions")
    empty = tmp_path / "empty"
    empty.mkdir()
    stats = build_report([run, empty], tmp_path / "partial.html")
    assert stats["steps"] == [0, 0] and stats["samples_kept"] == 0 and stats["charts"] > 5
    if Path(CHROMIUM).exists():
        dom, log = _dom(tmp_path / "partial.html", "", tmp_path)
        assert 'data-ready="1"' in dom and "data-errors" not in dom, log[-2000:]
        assert 'data-count="0"' in dom


def test_watch_rebuilds_until_done(tmp_path):
    run = write_synthetic_run(tmp_path / "r", steps=3, done=False)
    out = tmp_path / "live.html"
    assert watch(run, out, interval_s=0.01, max_iterations=3) == 1  # nothing changed after build 1
    assert _data(out)["refresh"] == 1  # live: the page reloads itself (report-samples.js)
    (run / "done").write_text("ok\n")
    assert watch(run, out, interval_s=0.01, max_iterations=100) == 1  # built once, then stopped
    assert _data(out)["refresh"] == 0


# ---------------------------------------------------------------- in a real browser
def _dom(html: Path, fragment: str, tmp_path: Path) -> tuple[str, str]:
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=15000", "--dump-dom", html.resolve().as_uri() + fragment,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return proc.stdout, proc.stderr


def _expected_matches(html: Path, query: str) -> int:
    payload = _payload(html.read_text(encoding="utf-8"))
    q = query.lower()
    return sum(
        q in (payload["prompts"][x["p"]] + "\n" + x["c"]).lower() for x in payload["samples"]
    )


@needs_chromium
@pytest.mark.parametrize("query", ["wait", "等等", "zzz-no-such-text"])
def test_browser_search_filters_samples(two_runs, tmp_path, query):
    out = two_runs[2]
    dom, log = _dom(out, "#q=" + quote(query), tmp_path)
    assert 'data-ready="1"' in dom, log[-2000:]
    assert "data-errors" not in dom
    assert [ln for ln in log.splitlines() if "CONSOLE" in ln] == []
    expected = _expected_matches(out, query)
    total = len(_payload(out.read_text(encoding="utf-8"))["samples"])
    assert expected < total
    assert f'data-count="{expected}"' in dom
    assert len(re.findall(r'<article class="sample" id="r\d', dom)) == min(expected, 25)
    assert f"{expected} of {total} kept samples match" in dom


@needs_chromium
def test_browser_aha_marker_links_to_its_samples(two_runs, tmp_path):
    out = two_runs[2]
    charts = json.loads(
        re.search(r'id="report-data">(.*?)</script>', out.read_text(), re.S).group(1)
    )["charts"]
    markers = next(c for c in charts if c["title"].startswith("Reflection"))["markers"]
    assert markers
    dom, log = _dom(out, markers[0]["href"], tmp_path)
    assert 'data-ready="1"' in dom and "data-errors" not in dom, log[-2000:]
    cards = re.findall(r'<article class="sample" id="r(\d+)-s(\d+)-i\d+"', dom)
    step = str(markers[0]["x"])
    assert cards and all(s == step for _, s in cards)
    assert dom.count('<span class="chip flag aha">') == len(cards)
    assert '<mark class="refl">' in dom.split('id="results"', 1)[1]


@needs_chromium
def test_browser_draws_every_chart(two_runs, tmp_path):
    dom, log = _dom(two_runs[2], "", tmp_path)
    n_charts = two_runs[3]["charts"]
    assert (
        len(re.findall(r"<svg width=\"\d+\" height=\"\d+\" role=\"img\"", dom)) == n_charts
        and "data-errors" not in dom
    ), log[-2000:]


# ---------------------------------------------------------------- scale
@pytest.mark.slow
def test_60k_sample_report_is_small_and_fast(tmp_path):
    """450 steps x 128 completions: under 20 MB, built in under 60 s with 2 workers, and loaded
    in Chromium (charts drawn, samples unpacked) in under 5 s. Prints the figures with the
    machine's load average, since the build shares its cores."""
    run = write_synthetic_run(
        tmp_path / "big", steps=450, num_prompts=16, num_generations=8, language="zh"
    )
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    stats = build_report([run], tmp_path / "big.html", workers=2)
    seconds = time.perf_counter() - t0
    load_s = None
    if Path(CHROMIUM).exists():
        from test_report_cdp import Browser

        b = Browser(tmp_path / "profile")
        try:
            load_s = b.open(tmp_path / "big.html")
            assert b.errors() == []
        finally:
            b.close()
    figures = {
        k: stats[k] for k in ("bytes", "seconds", "detect_seconds", "completions", "samples_kept")
    }
    print(json.dumps(figures | {"chromium_load_s": load_s, "loadavg_1min": load_before}))
    assert stats["completions"] == 450 * 128
    assert stats["bytes"] < 20e6
    assert seconds < 60
    assert load_s is None or load_s < 5


def test_headline_with_one_eval_says_no_later_eval(tmp_path):
    run = write_synthetic_run(tmp_path / "r", steps=4, done=False)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(
        "\n".join(ln for ln in lines if '"step": 4, "eval/' not in ln) + "\n"
    )
    (run / "eval" / "step-000004.json").unlink()
    build_report([run], tmp_path / "r.html")
    head = re.search(
        r'<section id="headline">.*?</section>', (tmp_path / "r.html").read_text(), re.S
    )
    assert (
        "(step 0; no later eval yet)" in head.group(0)
        and "→ <b>" not in head.group(0).split("batch")[0]
    )
