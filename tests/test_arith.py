"""The safe evaluator: hand-picked values and refusals, bounds, and agreement with a
reference evaluator on random expression trees."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1zero.task.arith import (
    MAX_CHARS,
    MAX_DEPTH,
    MAX_DIGITS,
    ArithError,
    BinOp,
    Num,
    evaluate,
    numbers_used,
    parse,
)


@pytest.mark.parametrize(
    "expr, value, used",
    [
        ("1", 1, [1]),
        ("0", 0, [0]),
        ("1 + 2 * 3", 7, [1, 2, 3]),
        ("(1 + 2) * 3", 9, [1, 2, 3]),
        ("(1 + 2) / 3", 1, [1, 2, 3]),
        ("8 - 3 - 2", 3, [8, 3, 2]),  # left associative
        ("8 / 4 / 2", 1, [8, 4, 2]),
        ("8 - (3 - 2)", 7, [8, 3, 2]),
        ("2 * (3 + 4) - 5 / 7", Fraction(93, 7), [2, 3, 4, 5, 7]),
        ("1 / 3 + 1 / 6", Fraction(1, 2), [1, 3, 1, 6]),
        ("3 - 5", -2, [3, 5]),
        (" \t(\n1\r+\f2\v) ", 3, [1, 2]),
        ("((((7))))", 7, [7]),
        ("999999999999 * 999999999999", 999999999999**2, [999999999999] * 2),
    ],
)
def test_values(expr, value, used):
    assert evaluate(expr) == value
    assert numbers_used(expr) == used


@pytest.mark.parametrize(
    "expr, reason",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("-3 + 5", "unary"),
        ("+3 + 5", "unary"),
        ("3 * -5", "unary"),
        ("44**19**35", "'**'"),
        ("44 // 3", "'//'"),
        ("44.0", "decimal"),
        (".5 + 1", "decimal"),
        ("07 + 1", "leading zero"),
        ("４４", "non-ASCII digit"),
        ("٣ + 1", "non-ASCII digit"),
        ("44 − 3", "unexpected character"),
        ("44 × 3", "unexpected character"),
        ("44 ÷ 3", "unexpected character"),
        ("1\x00+ 2", "unexpected character"),
        ("1\u00a0+ 2", "unexpected character"),
        ("x + 1", "unexpected character"),
        ("abs(1)", "unexpected character"),
        ("1 = 1", "unexpected character"),
        ("1 +", "ends too early"),
        ("(1 + 2", "missing ')'"),
        ("1 + 2)", "unexpected ')'"),
        ("2(3)", "unexpected '('"),
        ("1 2", "unexpected '2'"),
        ("()", "unexpected ')'"),
        ("1 / 0", "division by zero"),
        ("5 / (3 - 3)", "division by zero"),
    ],
)
def test_refusals(expr, reason):
    with pytest.raises(ArithError) as e:
        evaluate(expr)
    assert reason in str(e.value)


def test_bounds():
    assert evaluate("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH) == 1
    with pytest.raises(ArithError, match="nested"):
        parse("(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1))
    assert evaluate("9" * MAX_DIGITS) == int("9" * MAX_DIGITS)
    with pytest.raises(ArithError, match="digits"):
        parse("9" * (MAX_DIGITS + 1))
    chain = "+".join(["1"] * ((MAX_CHARS + 1) // 2))  # 999 chars, a 500-deep tree
    assert len(chain) <= MAX_CHARS and evaluate(chain) == (MAX_CHARS + 1) // 2
    with pytest.raises(ArithError, match="longer"):
        parse(chain + "+1")


@pytest.mark.parametrize(
    "expr",
    ["(" * 10_000 + "1" + ")" * 10_000, "1+" * 500_000 + "1", "44**19**35", "9" * 1_000_000],
)
def test_hostile_input_is_fast(expr):
    start = time.perf_counter()
    with pytest.raises(ArithError):
        evaluate(expr)
    assert time.perf_counter() - start < 0.1


# ---- reference evaluator on random trees ------------------------------------------------

_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}

literals = st.one_of(st.integers(0, 20), st.integers(0, 10**MAX_DIGITS - 1))
trees = st.recursive(
    literals.map(Num),
    lambda sub: st.builds(BinOp, st.sampled_from("+-*/"), sub, sub),
    max_leaves=12,
)


def reference(node) -> Fraction | None:
    """Direct recursion on the tree; None for division by zero."""
    if isinstance(node, Num):
        return Fraction(node.value)
    a, b = reference(node.left), reference(node.right)
    if a is None or b is None or (node.op == "/" and b == 0):
        return None
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[node.op]


def render(node, space: str, minimal: bool) -> str:
    """Text for the tree: fully parenthesized, or with only the parentheses precedence and
    left associativity need (which exercises the parser's precedence rules)."""
    if isinstance(node, Num):
        return str(node.value)
    left, right = render(node.left, space, minimal), render(node.right, space, minimal)
    if not minimal:
        return f"({left}{space}{node.op}{space}{right})"
    p = _PREC[node.op]
    if isinstance(node.left, BinOp) and _PREC[node.left.op] < p:
        left = f"({left})"
    if isinstance(node.right, BinOp) and (
        _PREC[node.right.op] < p or (_PREC[node.right.op] == p and node.op in "-/")
    ):
        right = f"({right})"
    return f"{left}{space}{node.op}{space}{right}"


def leaves(node) -> list[int]:
    return [node.value] if isinstance(node, Num) else leaves(node.left) + leaves(node.right)


@settings(max_examples=400, deadline=None)
@given(trees, st.sampled_from(["", " ", "  ", "\t", "\n"]), st.booleans())
def test_evaluate_agrees_with_reference(tree, space, minimal):
    text = render(tree, space, minimal)
    want = reference(tree)
    assert numbers_used(text) == leaves(tree)
    if want is None:
        with pytest.raises(ArithError, match="division by zero"):
            evaluate(text)
    else:
        assert evaluate(text) == want
        assert evaluate(parse(text)) == want


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789+-*/(). \n٣４−x"), max_size=60) | st.text())
def test_parse_only_raises_arith_error(text):
    try:
        value = evaluate(text)
    except ArithError:
        return
    assert isinstance(value, Fraction)
