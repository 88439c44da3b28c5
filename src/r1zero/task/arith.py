"""A safe evaluator for Countdown answers: integers, + - * /, parentheses, spaces.

The reference tutorial scored answers with Python ``eval``; its character filter lets
``44**19**35`` through, which never finishes. This module replaces it with an own
tokenizer and recursive-descent parser over a tiny grammar, evaluated with exact
:class:`fractions.Fraction` arithmetic, so every call is linear in the input and bounded:

    expr   := term (("+" | "-") term)*
    term   := factor (("*" | "/") factor)*
    factor := NUMBER | "(" expr ")"
    NUMBER := ASCII digits 0-9, no leading zero unless the literal is "0"

Deliberate refusals (each raises :class:`ArithError`; the reward is then 0):
- unary operators (``-3``, ``+3``): the answer must use the given numbers as written,
  and the tutorial's ``\\d+`` number check would have counted ``-3`` as ``3``;
- decimals (``44.0``, ``.5``), ``**``, ``//``, names, calls, non-ASCII digits (``４``,
  ``٣``) and look-alike operators (``−``, ``×``, ``÷``): none is a Countdown answer;
- leading zeros (``07``): Python rejects them too, and ``07`` is not the number 7 as given;
- more than :data:`MAX_CHARS` characters, :data:`MAX_DEPTH` nested parentheses,
  :data:`MAX_DIGITS` digits in one literal, or an intermediate value whose numerator or
  denominator exceeds :data:`MAX_BITS` bits: they bound time and memory on hostile input
  and no real answer comes near them.

A ``target`` column value goes through :func:`target_value`, bounded the same way: a
hostile target such as ``"1e-999999999"`` would otherwise make ``Fraction`` build a number
of a billion digits.

Whitespace is any of ASCII space, tab, newline, carriage return, form feed, vertical tab.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

MAX_CHARS = 1_000
MAX_DEPTH = 64
MAX_DIGITS = 12
MAX_BITS = 4_096

_DIGITS = frozenset("0123456789")
_SPACE = frozenset(" \t\n\r\f\v")
_OPS = frozenset("+-*/")


class ArithError(ValueError):
    """The expression is not a valid Countdown equation, or has no value (division by zero)."""


@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node


Node = Num | BinOp


def _tokens(expr: str) -> list[str]:
    """Split into literals and single-character operators; one pass, O(len)."""
    if len(expr) > MAX_CHARS:
        raise ArithError(f"expression longer than {MAX_CHARS} characters")
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in _SPACE:
            i += 1
        elif c in _DIGITS:
            j = i
            while j < n and expr[j] in _DIGITS:
                j += 1
            lit = expr[i:j]
            if j - i > MAX_DIGITS:
                raise ArithError(f"number with more than {MAX_DIGITS} digits")
            if len(lit) > 1 and lit[0] == "0":
                raise ArithError(f"number with a leading zero: {lit!r}")
            if j < n and expr[j] == ".":
                raise ArithError("decimal numbers are not allowed")
            out.append(lit)
            i = j
        elif c in _OPS or c in "()":
            if c in "*/" and i + 1 < n and expr[i + 1] == c:
                raise ArithError(f"operator {c * 2!r} is not allowed")
            out.append(c)
            i += 1
        elif c == ".":
            raise ArithError("decimal numbers are not allowed")
        elif c.isdigit():
            raise ArithError(f"non-ASCII digit {c!r}")
        else:
            raise ArithError(f"unexpected character {c!r}")
    return out


class _Parser:
    """Recursive descent; recursion depth is bounded by MAX_DEPTH parentheses."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.tokens[self.pos]
            self.pos += 1
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.peek() in ("*", "/"):
            op = self.tokens[self.pos]
            self.pos += 1
            node = BinOp(op, node, self.factor())
        return node

    def factor(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise ArithError("expression ends too early")
        self.pos += 1
        if tok == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ArithError(f"more than {MAX_DEPTH} nested parentheses")
            node = self.expr()
            if self.peek() != ")":
                raise ArithError("missing ')'")
            self.pos += 1
            self.depth -= 1
            return node
        if tok[0] in _DIGITS:
            return Num(int(tok))
        if tok in ("+", "-"):
            raise ArithError(f"unary {tok!r} is not allowed")
        raise ArithError(f"unexpected {tok!r}")


def parse(expr: str) -> Node:
    """Parse ``expr`` into a tree of :class:`Num` and :class:`BinOp`; raise ArithError."""
    parser = _Parser(_tokens(expr))
    if not parser.tokens:
        raise ArithError("empty expression")
    node = parser.expr()
    if parser.pos != len(parser.tokens):
        raise ArithError(f"unexpected {parser.tokens[parser.pos]!r}")
    return node


def _postorder(node: Node) -> list[Node]:
    """Children before parents, iteratively: a left-leaning chain like 1+1+...+1 is
    hundreds of levels deep without any parentheses, too deep to recurse safely."""
    out: list[Node] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        out.append(cur)
        if isinstance(cur, BinOp):
            stack.append(cur.left)
            stack.append(cur.right)
    out.reverse()
    return out


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        v = a + b
    elif op == "-":
        v = a - b
    elif op == "*":
        v = a * b
    elif b == 0:
        raise ArithError("division by zero")
    else:
        v = a / b
    if v.numerator.bit_length() > MAX_BITS or v.denominator.bit_length() > MAX_BITS:
        raise ArithError(f"intermediate value larger than {MAX_BITS} bits")
    return v


def evaluate(expr: str | Node) -> Fraction:
    """The exact value of ``expr`` (text or parsed tree); raise ArithError."""
    root = parse(expr) if isinstance(expr, str) else expr
    stack: list[Fraction] = []
    for node in _postorder(root):  # reverse Polish: operands are on the stack
        if isinstance(node, Num):
            stack.append(Fraction(node.value))
        else:
            right = stack.pop()
            stack.append(_apply(node.op, stack.pop(), right))
    return stack[0]


def numbers_used(expr: str | Node) -> list[int]:
    """The integer literals of ``expr`` (text or parsed tree), left to right; raise ArithError."""
    root = parse(expr) if isinstance(expr, str) else expr
    return [node.value for node in _postorder(root) if isinstance(node, Num)]


_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?")
MAX_EXPONENT = 1_000
"""Largest |exponent| of a target written as text: 10**1000 already needs 3,322 bits."""


def target_value(target: Any) -> Fraction:
    """The exact value of a ``target`` column entry, or ArithError in one line.

    Accepts ints (and numpy integers) of at most :data:`MAX_BITS` bits, finite floats, and
    decimal text such as ``"24"``, ``"2.5"`` or ``"3e2"`` of at most :data:`MAX_CHARS`
    characters and an exponent within :data:`MAX_EXPONENT`. Everything else (bools, NaN,
    infinities, ``"1/0"``, ``"1e10000000"``, lists) is refused in constant time; no answer
    could equal such a target, and building its value could take minutes."""
    if hasattr(target, "item") and not isinstance(target, str | bytes):
        target = target.item()  # numpy / torch scalars
    if isinstance(target, bool):
        raise ArithError(f"target must be a number, got {target!r}")
    if isinstance(target, int | Fraction):
        value = Fraction(target)
    elif isinstance(target, float):
        if not math.isfinite(target):
            raise ArithError(f"target must be a finite number, got {target!r}")
        value = Fraction(target)
    elif isinstance(target, str):
        value = _decimal_text(target)
    else:
        raise ArithError(f"target must be a number, got {type(target).__name__}")
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        raise ArithError(f"target larger than {MAX_BITS} bits")
    return value


def _decimal_text(text: str) -> Fraction:
    """A decimal literal (optional sign, point and exponent), checked before conversion."""
    s = text.strip()
    short = s if len(s) <= 40 else s[:37] + "..."
    if len(s) > MAX_CHARS:
        raise ArithError(f"target text longer than {MAX_CHARS} characters")
    m = _DECIMAL.fullmatch(s)
    if m is None:
        raise ArithError(f"target must be a decimal number, got {short!r}")
    if m.group(1) is not None and abs(int(m.group(1))) > MAX_EXPONENT:
        raise ArithError(f"target exponent beyond +-{MAX_EXPONENT}: {short!r}")
    return Fraction(s)
