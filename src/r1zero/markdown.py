"""Generated sections of Markdown files (README.md, docs/*.md): the text between two
markers is replaced by what a command measured, so no table is typed by hand.

The one section replacer of every doc generator (``scripts/bench_readme.py`` and the
reliability harnesses' ``--doc``)."""

from __future__ import annotations

from pathlib import Path


def replace_section(doc: Path, begin: str, end: str, body: str) -> None:
    """Put ``body`` between the markers in ``doc`` (appending the markers if absent)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")
