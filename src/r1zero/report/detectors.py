"""Behaviour detectors run on every completion: reflection ("aha"), language mixing, repetition.

Each detector is a pure function of the completion text (and, for "aha", its rewards); the
precise definitions, thresholds and lexicons are in ``docs/report.md`` and must stay in step
with the constants here. The completion starts inside ``<think>`` (the prompt opened it).
"""

from __future__ import annotations

import math
import re
import string
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# ---------------------------------------------------------------- lexicons
REFLECTION_EN: tuple[str, ...] = (
    "wait",
    "let me check",
    "let's check",
    "let me recheck",
    "recheck",
    "re-check",
    "re-evaluate",
    "reevaluate",
    "re-examine",
    "double-check",
    "double check",
    "let's verify",
    "let me verify",
    "verify",
    "reconsider",
    "on second thought",
    "i made a mistake",
    "that's not right",
    "that is not right",
    "aha",
    "oops",
)
REFLECTION_ZH: tuple[str, ...] = (
    "等等",
    "等一下",
    "等一等",
    "检查一下",
    "再检查",
    "重新",
    "验证",
    "核实",
    "反思",
    "不对",
    "我错了",
    "搞错",
    "啊哈",
    "再想想",
)


REFLECTION_PHRASES: tuple[str, ...] = REFLECTION_EN + REFLECTION_ZH


def _js_pattern(phrase: str) -> str:
    """JavaScript regex source matching ``phrase`` the way :func:`reflection_phrases` does."""
    body = "".join(
        "['\u2019]" if ch == "'" else "\\" + ch if ch in ".-()?" else ch for ch in phrase
    )
    return rf"\b{body}\b" if phrase.isascii() else body


REFLECTION_JS_PATTERN: str = "|".join(
    _js_pattern(p) for p in sorted(REFLECTION_PHRASES, key=len, reverse=True)
)
"""For the page's highlighter (flags ``gi``); ``\\b`` is ASCII-only in JavaScript, as here."""


def _is_word(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


_CJK_LEAD_BYTES = [bytes([b]) for b in range(0xE3, 0xEA)]
_ASCII_LETTERS = string.ascii_letters.encode()
_LATIN_WORD_RE = re.compile("[A-Za-z]{2,}")

# ---------------------------------------------------------------- thresholds (see docs/report.md)
NGRAM_N = 6
"""Whitespace-separated tokens per n-gram for the loop detector."""
NGRAM_WINDOW = 256
"""The loop detector looks at the last this-many tokens of the completion."""
NGRAM_MIN = 32
"""Fewer n-grams than this in the window: no loop verdict (too short)."""
LOOP_THRESHOLD = 0.5
"""Flag a loop when at least this fraction of the window's n-grams repeat an earlier one."""
COMPRESSION_MIN_BYTES = 1024
"""Shorter completions get no compression ratio (zlib's header dominates)."""
COMPRESSION_THRESHOLD = 0.1
"""Flag repetition when zlib (level 1, for speed) shrinks the completion to under this fraction."""
FORMAT_STABLE_THRESHOLD = 0.9


@dataclass(frozen=True)
class Parts:
    think: str
    """Text before the first ``</think>`` (all of it when the tag never closes)."""
    answer: str | None
    """Content of the first ``<answer>...</answer>``, or None."""


def first_answer(completion: str) -> str | None:
    """Content of the first ``<answer>...</answer>``: what ``re.search(r"<answer>(.*?)</answer>",
    completion, re.DOTALL)`` finds, in linear time. The regex retries at every ``<answer>`` and
    scans to the end each time, quadratic on a loop of ``<answer>`` that never closes. If the
    first opening tag has no closing tag after it, no later one has either."""
    start = completion.find("<answer>")
    if start < 0:
        return None
    end = completion.find("</answer>", start + len("<answer>"))
    return None if end < 0 else completion[start + len("<answer>") : end]


def split_completion(completion: str) -> Parts:
    think = completion.split("</think>", 1)[0]
    if think.lstrip().startswith("<think>"):
        think = think.lstrip()[len("<think>") :]
    return Parts(think=think, answer=first_answer(completion))


def reflection_phrases(text: str) -> list[str]:
    """The lexicon entries found in ``text``, in order of appearance, overlapping matches dropped.

    Case-insensitive literal match (a curly apostrophe counts as ``'``); an English phrase must
    not touch an ASCII letter, digit or underscore on either side (JavaScript's ``\\b``).
    Plain ``str.find`` per phrase: ~10x faster than one big regex alternation.
    """
    low = text.lower().replace("\u2019", "'")
    spans = []
    for phrase in REFLECTION_EN if low.isascii() else REFLECTION_PHRASES:
        ascii_phrase = phrase.isascii()
        i = low.find(phrase)
        while i >= 0:
            j = i + len(phrase)
            if not ascii_phrase or (
                (i == 0 or not _is_word(low[i - 1])) and (j == len(low) or not _is_word(low[j]))
            ):
                spans.append((i, -j, phrase))
            i = low.find(phrase, i + 1)
    spans.sort()
    out, end = [], -1
    for i, neg_j, phrase in spans:
        if i >= end:
            out.append(phrase)
            end = -neg_j
    return out


@dataclass(frozen=True)
class Language:
    main: str | None
    """"zh" when CJK characters outnumber Latin letters, "en" otherwise; None if neither occurs."""
    cjk: int
    """Code points U+3000..U+9FFF: CJK punctuation, kana, CJK ideographs (with Extension A)."""
    latin_letters: int
    foreign: int
    """Latin words (2+ ASCII letters) inside "zh" reasoning, or CJK characters inside "en" one."""

    @property
    def mixing(self) -> bool:
        return self.foreign > 0


def language(think: str) -> Language:
    raw = think.encode("utf-8")
    # UTF-8 lead bytes E3..E9 start exactly the code points U+3000..U+9FFF; ASCII bytes never
    # occur inside a multi-byte sequence. Counting bytes in C is ~20x faster than a regex.
    cjk = 0 if think.isascii() else sum(raw.count(b) for b in _CJK_LEAD_BYTES)
    latin = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
    if cjk == 0 and latin == 0:
        return Language(None, 0, 0, 0)
    if cjk > latin:
        words = len(_LATIN_WORD_RE.findall(think)) if latin > 1 else 0
        return Language("zh", cjk, latin, words)
    return Language("en", cjk, latin, cjk)


@dataclass(frozen=True)
class Repetition:
    ngram_repeat: float
    """Fraction of the window's n-grams that already occurred earlier in the window (0 if short)."""
    compression: float | None
    """zlib-compressed bytes / raw UTF-8 bytes; None below COMPRESSION_MIN_BYTES."""

    @property
    def loop(self) -> bool:
        return self.ngram_repeat >= LOOP_THRESHOLD

    @property
    def flagged(self) -> bool:
        return self.loop or (
            self.compression is not None and self.compression < COMPRESSION_THRESHOLD
        )


def repetition(text: str) -> Repetition:
    # Whitespace tokens (str.split is C-fast); unspaced Chinese gives clause-sized tokens, and a
    # loop without any space is left to the compression ratio.
    tokens = text[-NGRAM_WINDOW * 16 :].split()[-NGRAM_WINDOW:]
    total = len(tokens) - NGRAM_N + 1
    repeat = 0.0
    if total >= NGRAM_MIN:
        # Hashes, not tuples, in the set: same count (64-bit collisions aside), 2-3x faster.
        grams = set(map(hash, zip(*(tokens[i:] for i in range(NGRAM_N)), strict=False)))
        repeat = 1.0 - len(grams) / total
    raw = text.encode("utf-8")
    comp = len(zlib.compress(raw, 1)) / len(raw) if len(raw) >= COMPRESSION_MIN_BYTES else None
    return Repetition(ngram_repeat=repeat, compression=comp)


@dataclass
class Detection:
    """Everything the report needs to know about one completion."""

    phrases: list[str] = field(default_factory=list)
    lang: Language = field(default_factory=lambda: Language(None, 0, 0, 0))
    rep: Repetition = field(default_factory=lambda: Repetition(0.0, None))
    flags: list[str] = field(default_factory=list)
    """Subset of FLAGS, in FLAGS order."""


FLAGS: tuple[str, ...] = (
    "aha",
    "reflection",
    "mixing",
    "repetition",
    "loop_truncated",
    "truncated",
)


def detect(completion: str, *, equation_reward: float, truncated: bool) -> Detection:
    """Run all detectors on one completion.

    ``aha`` = a reflection phrase in the think part, a correct equation, and no repetition flag.
    ``loop_truncated`` = the repetition flag on a completion cut at the length limit.
    """
    parts = split_completion(completion)
    phrases = reflection_phrases(parts.think)
    lang = language(parts.think)
    rep = repetition(completion)
    on = {
        "aha": bool(phrases) and equation_reward >= 1.0 and not rep.flagged,
        "reflection": bool(phrases),
        "mixing": lang.mixing,
        "repetition": rep.flagged,
        "loop_truncated": rep.flagged and truncated,
        "truncated": truncated,
    }
    return Detection(phrases, lang, rep, [f for f in FLAGS if on[f]])


def first_stable_step(
    steps: Sequence[int], rates: Iterable[float | None], threshold: float = FORMAT_STABLE_THRESHOLD
) -> int | None:
    """The first step from which every later logged rate is >= threshold (missing rates skipped).

    None when the last logged rate is below the threshold or nothing was logged.
    """
    first = None
    for step, rate in reversed(list(zip(steps, rates, strict=True))):
        if rate is None or (isinstance(rate, float) and math.isnan(rate)):
            continue
        if rate < threshold:
            break
        first = step
    return first
