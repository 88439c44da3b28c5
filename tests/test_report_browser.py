"""The report page as a student uses it (issue 18), in a real headless Chromium: live reloads
that keep the filters, readable axes, a curve per reward function, distinguishable repetition
curves, true rates next to kept-sample counts, a click on any curve opening that step's
samples, your own phrases as curves, smoothing / legend toggles / log scale, small multiples,
the headline panel and a summary table that fits 1280 px."""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from r1zero.report import build_report
from r1zero.report.detectors import detect
from r1zero.report.synthetic import write_synthetic_run
from test_report_cdp import browser, needs_chromium  # noqa: F401 (fixture)

pytestmark = needs_chromium


def _data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1))


def _chart(path: Path, title: str) -> dict:
    return next(c for c in _data(path)["charts"] if c["title"].startswith(title))


CHART_JS = "[...document.querySelectorAll('.chart')].find(c => c.querySelector('h3').textContent.startsWith({t}))"


def _y_labels(browser, title: str) -> list[str]:  # noqa: F811
    el = CHART_JS.format(t=json.dumps(title))
    return browser.eval(
        f"[...{el}.querySelectorAll('text.ax[text-anchor=end]')].map(t => t.textContent)"
    )


def _vertex(browser, page: Path, title: str, label: str, step: int) -> tuple[float, float]:  # noqa: F811
    """Viewport coordinates of series ``label``'s point at ``step`` on chart ``title``."""
    chart = _chart(page, title)
    lines = [
        s for s in chart["series"] if not s["dots"] and not s["hidden"] and len(s["points"]) > 1
    ]
    si = next(i for i, s in enumerate(lines) if s["label"] == label)
    k = [p[0] for p in lines[si]["points"] if p[1] is not None].index(step)
    el = CHART_JS.format(t=json.dumps(title))
    return browser.eval(
        f"(() => {{ const c = {el}; c.scrollIntoView({{block: 'center'}}); const svg = c.querySelector('svg');"
        f"const d = svg.querySelectorAll('path.ln')[{si}].getAttribute('d');"
        f"const n = d.match(/-?[0-9.]+/g).map(Number); const r = svg.getBoundingClientRect();"
        f"return [r.left + n[2 * {k}], r.top + n[2 * {k} + 1]]; }})()"
    )


def _cards(browser) -> list[tuple[int, int]]:  # noqa: F811
    ids = browser.eval("[...document.querySelectorAll('article.sample')].map(a => a.id)")
    return [tuple(map(int, re.match(r"r(\d+)-s(\d+)-i\d+", i).groups())) for i in ids]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    run = write_synthetic_run(root / "run-a", steps=40, num_prompts=4, language="en", seed=3)
    out = root / "report.html"
    stats = build_report([run], out, phrases=["Let's try", "re:not \\d+"])
    return run, out, stats


# ---------------------------------------------------------------- broken items
def test_live_reload_keeps_the_filters(tmp_path, browser):  # noqa: F811
    run = write_synthetic_run(tmp_path / "r", steps=3, done=False)
    out = tmp_path / "live.html"
    build_report([run], out, refresh_s=1)
    browser.open(out, "#flag=correct")
    browser.eval("window.__before_reload = 1")
    browser.wait("window.__before_reload === undefined && document.body.dataset.ready === '1'", 15)
    assert browser.eval("location.hash") == "#flag=correct"
    assert browser.eval("document.getElementById('f-flag').value") == "correct"
    browser.eval("const f = document.getElementById('f-flag'); f.value = 'wrong';"
                 "f.dispatchEvent(new Event('change')); window.__before_reload = 2")  # fmt: skip
    browser.wait("window.__before_reload === undefined && document.body.dataset.ready === '1'", 15)
    assert browser.eval("location.hash") == "#flag=wrong"
    assert browser.eval("document.getElementById('f-flag').value") == "wrong"


def test_loss_axis_labels_zero_as_0(tmp_path, browser):  # noqa: F811
    run = write_synthetic_run(tmp_path / "r", steps=12)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:  # losses spanning -0.3..0.2: summed float ticks gave -2.8e-17 for zero
        if "loss" in r:
            r["loss"] = round(0.25 * math.cos(math.pi * r["step"] / 6) - 0.05, 6)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    build_report([run], tmp_path / "r.html")
    browser.open(tmp_path / "r.html")
    labels = _y_labels(browser, "Loss")
    assert "0" in labels and not any("e-1" in t for t in labels), labels


def test_all_zero_percent_chart_has_a_0_to_positive_axis(tmp_path, browser):  # noqa: F811
    run = write_synthetic_run(tmp_path / "r", steps=5)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    lines = [json.dumps(r | {"clip_ratio": 0.0} if "clip_ratio" in r else r) for r in rows]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    build_report([run], tmp_path / "r.html")
    browser.open(tmp_path / "r.html")
    labels = _y_labels(browser, "Clip fraction")
    assert labels[0] == "0%" and not any(t.startswith("-") for t in labels), labels


def test_every_reward_function_has_a_curve(site, browser):  # noqa: F811
    chart = _chart(site[1], "Reward per function")
    assert {s["label"] for s in chart["series"]} == {"equation", "format", "thought_len"}
    browser.open(site[1])
    el = CHART_JS.format(t=json.dumps("Reward per function"))
    assert browser.eval(f"{el}.querySelectorAll('path.ln').length") == 3


def test_every_legend_entry_has_a_line_and_repetition_curves_differ(tmp_path, browser):  # noqa: F811
    short = write_synthetic_run(tmp_path / "short", steps=4, max_tokens=48)  # no 1 KB completion
    build_report([short], tmp_path / "short.html")
    for chart in _data(tmp_path / "short.html")["charts"]:
        for s in chart["series"]:
            assert any(p[1] is not None for p in s["points"]), (chart["title"], s["label"])
    loops = write_synthetic_run(tmp_path / "loops", steps=30, num_prompts=4, seed=1)
    build_report([loops], tmp_path / "loops.html")
    rep = _chart(tmp_path / "loops.html", "Repetition")["series"]
    assert [s["points"] for s in rep[:1]] != [s["points"] for s in rep[1:2]]
    assert rep[0]["dash"] != rep[1]["dash"]  # one run: dash tells series apart too
    browser.open(tmp_path / "loops.html")
    el = CHART_JS.format(t=json.dumps("Repetition"))
    dashes = browser.eval(
        f"[...{el}.querySelectorAll('path.ln')].map(p => p.getAttribute('stroke-dasharray'))"
    )
    assert len(set(dashes)) == len(dashes) == 2
    assert not any(
        "zlib" in c["title"] + str(c["series"]) for c in _data(tmp_path / "loops.html")["charts"]
    )


def test_flag_filter_says_the_rate_over_every_completion(site, browser):  # noqa: F811
    run, out, _ = site
    hit = n = 0
    for f in sorted(run.glob("completions/*.jsonl.gz")):
        for row in map(json.loads, gzip.open(f, "rt", encoding="utf-8")):
            if 10 <= row["step"] <= 30:
                det = detect(row["completion"], equation_reward=row["rewards"]["equation"],
                             truncated=row["truncated"])  # fmt: skip
                hit += "reflection" in det.flags
                n += 1
    browser.open(out, "#flag=reflection&smin=10&smax=30")
    text = browser.eval("document.getElementById('count').textContent")
    assert f"Of every completion in these steps, {hit} of {n} (" in text, text


# ---------------------------------------------------------------- missing items
def test_click_on_a_curve_opens_that_steps_samples(site, browser):  # noqa: F811
    run, out, _ = site
    browser.open(out)
    for title, label, flag in [
        ("Repetition", "loop + truncated", "loop_truncated"),
        ("Why the equation reward was 0", "wrong value", "fail:wrong_value"),
        ("Accuracy (equation", "train batch", "correct"),
    ]:
        series = next(s for s in _chart(out, title)["series"] if s["label"] == label)
        step = max((p for p in series["points"] if p[1] is not None), key=lambda p: p[1])[0]
        x, y = _vertex(browser, out, title, label, step)
        browser.mouse("mouseMoved", x, y)
        browser.mouse("click", x, y)
        browser.wait(f"location.hash.includes('smin={step}&')")
        assert (
            unquote(browser.eval("location.hash")) == f"#run=0&smin={step}&smax={step}&flag={flag}"
        )
        browser.wait(f"document.getElementById('f-smin').value === '{step}' && "
                     f"document.getElementById('f-flag').value === '{flag}'")  # fmt: skip
        browser.wait("document.querySelectorAll('article.sample').length > 0")
        assert {s for _, s in _cards(browser)} == {step}


def test_phrase_curve_counts_every_completion_and_opens_its_samples(site, browser):  # noqa: F811
    run, out, _ = site
    chart = _chart(out, "Your phrases")
    rates = {s["label"]: dict(map(tuple, s["points"])) for s in chart["series"]}
    f = run / "completions" / "step-000005.jsonl.gz"
    rows = list(map(json.loads, gzip.open(f, "rt", encoding="utf-8")))
    want = sum("let's try" in r["completion"].lower() for r in rows) / len(rows)
    assert rates["Let's try"][5] == pytest.approx(want, abs=1e-5)
    want = sum(bool(re.search(r"not \d+", r["completion"], re.I)) for r in rows) / len(rows)
    assert rates["re:not \\d+"][5] == pytest.approx(want, abs=1e-5)
    browser.open(out)
    x, y = _vertex(browser, out, "Your phrases", "Let's try", 5)
    browser.mouse("click", x, y)
    assert browser.wait("document.getElementById('f-q').value") == "Let's try"
    assert browser.eval("location.hash") == "#run=0&smin=5&smax=5&q=Let%27s%20try"


def test_cli_phrase_and_bad_regex(site, tmp_path):
    from typer.testing import CliRunner

    from r1zero.cli import app

    res = CliRunner().invoke(app, ["report", str(site[0]), "-o", str(tmp_path / "p.html"),
                                   "--phrase", "guess", "--phrase", "等等"])  # fmt: skip
    assert res.exit_code == 0, res.output
    labels = {s["label"] for s in _chart(tmp_path / "p.html", "Your phrases")["series"]}
    assert labels == {"guess", "等等"}
    res = CliRunner().invoke(app, ["report", str(site[0]), "-o", str(tmp_path / "q.html"),
                                   "--phrase", "re:(unclosed"])  # fmt: skip
    assert (
        res.exit_code == 2
        and "is not a valid regex" in res.output
        and "Traceback" not in res.output
    )


def test_reflection_by_phrase_and_accuracy_with_reflection(site):
    out = site[1]
    by_phrase = _chart(out, "Reflection by phrase")
    assert {"wait", "let me check"} <= {s["label"] for s in by_phrase["series"]}
    acc = _chart(out, "Accuracy with and without reflection")
    assert [s["label"] for s in acc["series"]] == ["with reflection", "without"]


def test_smoothing_legend_toggle_and_log_scale(site, browser):  # noqa: F811
    out = site[1]
    browser.open(out)
    el = CHART_JS.format(t=json.dumps("Total reward"))
    raw = browser.eval(f"{el}.querySelector('path.ln').getAttribute('d')")
    browser.eval(
        "const s = document.getElementById('smooth'); s.value = '0.9'; s.dispatchEvent(new Event('input'))"
    )
    assert browser.eval(f"{el}.querySelectorAll('path.ln.raw').length") == 2  # raw kept faint
    assert browser.eval(f"{el}.querySelectorAll('path.ln:not(.raw)')[0].getAttribute('d')") != raw
    browser.eval(f"{el}.querySelector('.legend .lg').click()")
    assert browser.eval(f"{el}.querySelectorAll('path.ln:not(.raw)').length") == 1
    length = CHART_JS.format(t=json.dumps("Completion length"))
    assert (
        browser.eval(f"{length}.querySelectorAll('.legend .lg.off').length") == 1
    )  # max starts hidden
    before = _y_labels(browser, "Completion length")
    browser.eval(f"{length}.querySelector('.logbtn').click()")
    assert browser.eval(f"{length}.querySelector('.logbtn').getAttribute('aria-pressed')") == "true"
    assert _y_labels(browser, "Completion length") != before
    assert browser.errors() == []


def test_aha_markers_are_thinned(tmp_path):
    from r1zero.report.plots import MAX_MARKERS

    run = write_synthetic_run(tmp_path / "r", steps=120, num_prompts=2, seed=2)
    stats = build_report([run], tmp_path / "r.html", max_samples_per_step=2)
    markers = _chart(tmp_path / "r.html", "Reflection and")["markers"]
    assert 0 < len(markers) <= MAX_MARKERS
    covered = [
        range(int(m["href"].split("smin=")[1].split("&")[0]), int(m["href"].split("smax=")[1]) + 1)
        for m in markers
    ]
    assert sum(len(r) for r in covered) >= len(markers) and stats["charts"] > 10


def test_three_runs_get_one_panel_each(tmp_path, browser):  # noqa: F811
    runs = [write_synthetic_run(tmp_path / f"r{i}", steps=4, seed=i) for i in range(3)]
    build_report(runs, tmp_path / "three.html")
    browser.open(tmp_path / "three.html")
    el = CHART_JS.format(t=json.dumps("Total reward"))
    assert browser.eval(f"{el}.querySelectorAll('.panel svg').length") == 3
    assert browser.errors() == []


def test_headline_panel_and_its_links(site, browser):  # noqa: F811
    run, out, stats = site
    evals = [json.loads((run / "eval" / f"step-{s:06d}.json").read_text()) for s in (0, 40)]
    browser.open(out)
    text = browser.eval("document.getElementById('headline').textContent")
    assert f"{evals[0]['eval/accuracy']:.3f} → {evals[1]['eval/accuracy']:.3f}" in text
    assert "tokens/s" in text and "wall time" in text
    href = browser.eval(
        "[...document.querySelectorAll('#headline a')].find(a => a.href.includes('loop_truncated')).getAttribute('href')"
    )
    step = int(href.split("smin=")[1].split("&")[0])
    browser.eval(f"document.querySelector('#headline a[href=\"{href}\"]').click()")
    browser.wait(f"document.getElementById('f-smin').value === '{step}'")
    browser.wait("document.querySelectorAll('article.sample').length > 0")
    assert {s for _, s in _cards(browser)} == {step}


def test_summary_table_fits_1280_px(tmp_path, browser):  # noqa: F811
    runs = [
        write_synthetic_run(tmp_path / f"a-long-run-name-{i}", steps=3, seed=i) for i in range(2)
    ]
    build_report(runs, tmp_path / "s.html")
    browser.open(tmp_path / "s.html")
    widths = browser.eval(
        "(s => [s.scrollWidth, s.clientWidth])(document.querySelector('#summary .scroll'))"
    )
    assert widths[0] <= widths[1], widths


def test_small_learning_rates_on_axis_and_tooltip(tmp_path, browser):  # noqa: F811
    """A cosine schedule at 5e-7 (metrics now keep 6 significant digits): distinct tick labels
    in e-notation, and the tooltip shows the logged value."""
    run = write_synthetic_run(tmp_path / "r", steps=30)
    lr = {s: v for s, v in _chart_points(run, "learning_rate")}
    build_report([run], tmp_path / "lr.html")
    browser.open(tmp_path / "lr.html")
    labels = _y_labels(browser, "Learning rate")
    assert len(set(labels)) == len(labels) >= 3 and all(t == "0" or "e-7" in t for t in labels), (
        labels
    )
    x, y = _vertex(browser, tmp_path / "lr.html", "Learning rate", "lr", 10)
    browser.mouse("mouseMoved", x, y)
    el = CHART_JS.format(t=json.dumps("Learning rate"))
    tip = browser.wait(f"(t => !t.hidden && t.textContent)({el}.querySelector('.tip'))")
    assert f"lr: {float(f'{lr[10]:.3g}'):g}".replace("e-07", "e-7") in tip, tip


def _chart_points(run: Path, key: str) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r[key]) for r in rows if key in r]


def test_phrase_typed_in_the_page_is_plotted_over_kept_samples(site, browser):  # noqa: F811
    out = site[1]
    text = out.read_text(encoding="utf-8")
    b64 = re.search(r'id="samples-data">([^<]*)</script>', text).group(1)
    payload = json.loads(gzip.decompress(__import__("base64").b64decode(b64)))
    at5 = [x for x in payload["samples"] if x["s"] == 5]
    hay = [(payload["prompts"][x["p"]] + "\n" + x["c"]).lower() for x in at5]
    want = sum("wait" in h for h in hay) / len(hay)
    browser.open(out)
    browser.eval("document.getElementById('phrase-in').value = 'Wait';"
                 "document.getElementById('phrase-go').click()")  # fmt: skip
    el = CHART_JS.format(t=json.dumps("“Wait” in the kept samples"))
    assert browser.wait(f"{el} && {el}.querySelectorAll('path.ln').length") == 1
    browser.eval(f"{el}.scrollIntoView({{block: 'center'}})")
    d = browser.eval(f"{el}.querySelector('path.ln').getAttribute('d')")
    assert d.startswith("M")
    steps = sorted({x["s"] for x in payload["samples"]})
    x0, y0 = browser.eval(
        f"(r => [r.left, r.top])({el}.querySelector('svg').getBoundingClientRect())"
    )
    nums = list(map(float, re.findall(r"-?[0-9.]+", d)))
    k = steps.index(5)
    browser.mouse("mouseMoved", x0 + nums[2 * k], y0 + nums[2 * k + 1])
    tip = browser.wait(f"(t => !t.hidden && t.textContent)({el}.querySelector('.tip'))")
    shown = float(re.search(r"Wait: ([0-9.]+)%", tip).group(1)) / 100
    assert shown == pytest.approx(want, abs=0.006), tip
    assert browser.errors() == []
