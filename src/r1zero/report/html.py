"""The page: static HTML for tables and layout; report-charts.js and report-samples.js
(one script) draw the charts and the sample browser.

Everything is inline (CSS, JS, data), so the file opens offline, from a phone's downloads, or
as an email attachment. Data travels in ``<script type="application/json">`` blocks.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from html import escape
from importlib.resources import files
from typing import Any

from r1zero.report.detectors import FLAGS, REFLECTION_JS_PATTERN
from r1zero.report.load import FAILURES
from r1zero.report.plots import PALETTE

_PCT_KEYS = {"reflection", "mixing", "repetition", "accuracy", "best eval"}


@dataclass
class Page:
    title: str
    runs: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    config_diff: list[tuple[str, list[str | None]]]
    configs: list[tuple[str, dict[str, str]]]
    charts: list[dict[str, Any]]
    refresh_s: int | None
    max_samples_per_step: int
    headlines: list[dict[str, Any]] = field(default_factory=list)
    counts: list[dict[str, list[int]]] = field(default_factory=list)
    """Per run, per step: completions and flag counts over every completion (summary.step_counts)."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    samples_b64: str = ""
    kept: dict[str, int] = field(default_factory=dict)


def _asset(name: str) -> str:
    return files("r1zero.report").joinpath(name).read_text(encoding="utf-8")


def _json_script(id_: str, data: Any) -> str:
    # "<" escaped so no string inside can close the script element.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return f'<script type="application/json" id="{id_}">{text}</script>'


def _fmt(key: str, v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if key in _PCT_KEYS:
            return f"{100 * v:.1f}%"
        return f"{v:.4g}"
    return escape(str(v))


def _summary(page: Page) -> str:
    if not page.summary:
        return "<p>No runs.</p>"
    keys = list(page.summary[0])
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    rows = []
    for i, row in enumerate(page.summary):
        swatch = f'<i class="sw" style="background:{PALETTE[i % len(PALETTE)]}"></i>'
        cells = [f"<td>{swatch}{escape(str(row['run']))}</td>"]
        cells += [f'<td class="num">{_fmt(k, row[k])}</td>' for k in keys[1:]]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(rows)}</table></div>'


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _duration(seconds: float) -> str:
    h, rest = divmod(round(seconds), 3600)
    return f"{h} h {rest // 60} min" if h else f"{rest // 60} min {rest % 60} s"


def _headline_items(h: dict[str, Any]) -> list[tuple[str, str]]:
    items = []
    if h["eval"]:
        (s0, a0), (s1, a1) = h["eval"]
        text = (
            f"{a0:.3f} (step {s0}; no later eval yet)"
            if s0 == s1
            else (f"{a0:.3f} → <b>{a1:.3f}</b> (step {s0} → {s1})")
        )
        items.append(("held-out accuracy", text))
    if h["train"]:
        items.append(("batch accuracy", f"{_pct(h['train'][0])} → <b>{_pct(h['train'][1])}</b> "
                      "(mean of the first → last 10 steps)"))  # fmt: skip
    for key, what in (("truncation", "truncation peaked"), ("loops", "loop + truncated peaked")):
        p = h[key]
        link = (
            f'<a href="{escape(p["href"])}">step {p["step"]}</a> ({_pct(p["value"])})'
            if p
            else "never"
        )
        items.append((what, link))
    if h["tokens_per_s"] is not None:
        items.append(("throughput", f"{h['tokens_per_s']:,.0f} tokens/s (mean)"))
    if h["wall_s"] is not None:
        items.append(("wall time", f"{_duration(h['wall_s'])} (sum of step times)"))
    return items


def _headline(page: Page) -> str:
    cards = []
    for i, (run, h) in enumerate(zip(page.runs, page.headlines, strict=True)):
        swatch = f'<i class="sw" style="background:{PALETTE[i % len(PALETTE)]}"></i>'
        rows = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in _headline_items(h))
        cards.append(f'<div class="hl"><h3>{swatch}{escape(run["name"])}</h3><dl>{rows}</dl></div>')
    return f'<section id="headline"><h2>At a glance</h2><div class="hls">{"".join(cards)}</div></section>'


def _skipped_note(page: Page) -> str:
    notes = []
    for s in page.skipped:
        for key, what in (("rows", "completion rows"), ("metrics", "metrics/eval lines")):
            if s[key]:
                notes.append(
                    f"{s['run']}: {s[key]:,} malformed {what} skipped (first: {s[key + '_first']})"
                )
    if not notes:
        return ""
    return '<p class="note bad" id="skipped">' + escape("; ".join(notes)) + ".</p>"


def _config(page: Page) -> str:
    names = [n for n, _ in page.configs]
    out = []
    if len(page.configs) > 1:
        if page.config_diff:
            head = "<th>key</th>" + "".join(f"<th>{escape(n)}</th>" for n in names)
            rows = "".join(
                f"<tr><td>{escape(k)}</td>"
                + "".join(f"<td>{escape(v or '–')}</td>" for v in vals)
                + "</tr>"
                for k, vals in page.config_diff
            )
            out.append(
                f'<div class="scroll"><table id="config-diff"><tr>{head}</tr>{rows}</table></div>'
            )
        else:
            out.append('<p id="config-diff">The runs have identical configs.</p>')
    for name, flat in page.configs:
        rows = "".join(
            f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in flat.items()
        )
        body = (
            f'<div class="scroll"><table>{rows}</table></div>' if rows else "<p>No config.yaml.</p>"
        )
        out.append(f"<details><summary>Full config: {escape(name)}</summary>{body}</details>")
    return "".join(out)


def _charts(page: Page) -> tuple[str, list[str]]:
    sections: dict[str, list[str]] = {}
    for c in page.charts:
        div = f'<div class="chart" id="chart-{c["id"]}"><h3>{escape(c["title"])}</h3></div>'
        sections.setdefault(c["section"], []).append(div)
    out = [
        '<div id="chart-tools"><label>Smoothing <input type="range" id="smooth" min="0" max="0.99" '
        'step="0.01" value="0"> <output id="smooth-v">0</output></label></div>'
    ]
    phrase_form = (
        '<form id="phrase-form" onsubmit="return false"><label>Plot a phrase over the kept samples '
        '<input type="search" id="phrase-in" placeholder="e.g. guess" autocomplete="off"></label> '
        '<button type="button" id="phrase-go">Plot</button> <span class="note">(a share of the '
        "browser's samples, which favour flagged ones; <code>r1zero report --phrase</code> counts "
        "every completion)</span></form>"
    )
    for i, (name, divs) in enumerate(sections.items()):
        extra = phrase_form if name.startswith("Behaviour") else ""
        out.append(
            f'<section id="sec-{i}"><h2>{escape(name)}</h2>{extra}'
            f'<div class="grid">{"".join(divs)}</div></section>'
        )
    return "".join(out), list(sections)


def _filters(page: Page) -> str:
    runs = "".join(
        f'<option value="{i}">{escape(r["name"])}</option>' for i, r in enumerate(page.runs)
    )
    flags = "".join(f'<option value="{f}">{f.replace("_", " ")}</option>' for f in FLAGS)
    fails = "".join(
        f'<option value="fail:{r}">equation 0: {r.replace("_", " ")}</option>' for r in FAILURES
    )
    hidden = " hidden" if len(page.runs) < 2 else ""
    return f"""<form id="filters" onsubmit="return false">
<label class="wide">Search text<input type="search" id="f-q" placeholder="e.g. wait, 等等, 44 + 19" autocomplete="off"></label>
<label>Regex<input type="search" id="f-rx" placeholder="e.g. gu+ess" autocomplete="off"></label>
<label{hidden}>Run<select id="f-run"><option value="">all</option>{runs}</select></label>
<label>Steps from<input type="number" id="f-smin" inputmode="numeric"></label>
<label>to<input type="number" id="f-smax" inputmode="numeric"></label>
<label>Total reward<select id="f-reward"><option value="">any</option></select></label>
<label>Flag<select id="f-flag"><option value="">any</option><option value="correct">equation correct</option><option value="wrong">equation wrong</option>{flags}{fails}</select></label>
<label>Length from<input type="number" id="f-lmin" inputmode="numeric"></label>
<label>to (tokens)<input type="number" id="f-lmax" inputmode="numeric"></label>
<button type="button" id="f-clear">Clear</button>
</form>"""


def _sample_note(page: Page) -> str:
    k = page.kept
    if not k:
        return ""
    kept = k.get("flagged", 0) + k.get("stratified", 0)
    dropped = k.get("dropped_flagged", 0) + k.get("dropped_stratified", 0)
    note = (
        f"The browser holds {kept:,} of the runs' {k.get('total', 0):,} completions: per step, up to "
        f"{page.max_samples_per_step} drawn at random across total-reward levels, plus every flagged "
        "completion (aha, repetition, mixing, reflection, in that priority)."
    )
    if dropped:
        note += (
            f" To keep the file small, {k.get('dropped_flagged', 0):,} flagged and "
            f"{k.get('dropped_stratified', 0):,} sampled completions were left out (spread evenly over steps)."
        )
    return note + " Detector rates on the curves count every completion."


def render(page: Page) -> str:
    charts, sections = _charts(page)
    nav = "".join(
        f'<a href="#sec-{i}">{escape(s.split(" (")[0])}</a>' for i, s in enumerate(sections)
    )
    when = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    live_note = f" · live: reloads every {int(page.refresh_s)} s" if page.refresh_s else ""
    runs = ", ".join(
        f"{escape(r['name'])} ({'done' if r['done'] else 'running'})" for r in page.runs
    )
    data = {
        "runs": [
            {"name": r["name"], "color": PALETTE[i % len(PALETTE)]} for i, r in enumerate(page.runs)
        ],
        "charts": page.charts,
        "reflection": REFLECTION_JS_PATTERN,
        "counts": page.counts,
        "refresh": int(page.refresh_s) if page.refresh_s else 0,
    }
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="r1zero report">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(page.title)}</title>
<style>{_asset("report.css")}</style>
<script>window.addEventListener("error",function(e){{document.documentElement.dataset.errors=(document.documentElement.dataset.errors||"")+e.message+"\\n"}});
window.addEventListener("unhandledrejection",function(e){{document.documentElement.dataset.errors=(document.documentElement.dataset.errors||"")+e.reason+"\\n"}});</script>
</head><body>
<main>
<header class="top"><h1>{escape(page.title)}</h1>
<p class="sub">Generated {when}{live_note} · {runs}</p></header>
<nav><a href="#headline">At a glance</a><a href="#summary">Summary</a><a href="#config">Config</a>{nav}<a href="#samples">Samples</a></nav>
{_headline(page)}
<section id="summary"><h2>Summary</h2>{_summary(page)}{_skipped_note(page)}</section>
<section id="config"><h2>Config{" differences" if len(page.runs) > 1 else ""}</h2>{_config(page)}</section>
{charts}
<section id="samples"><h2>Samples</h2>
<p class="note">{escape(_sample_note(page))}</p>
{_filters(page)}
<p id="count" aria-live="polite">Loading samples…</p>
<div id="results"></div>
<button type="button" id="more" hidden>Show more</button>
</section>
<footer><p>Detectors (reflection, aha, language mixing, repetition, format stability) are defined in
<code>docs/report.md</code> of r1zero. Hover or tap a chart for values; click it to open that step's samples
(filtered by what the curve counts); click a legend entry to hide or show its curve.</p></footer>
</main>
{_json_script("report-data", data)}
<script type="application/octet-stream" id="samples-data">{page.samples_b64}</script>
<script>(function () {{
"use strict";
{_asset("report-charts.js")}
{_asset("report-samples.js")}
}})();</script>
</body></html>
"""
