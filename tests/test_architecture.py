"""The package layout is the pipeline, and the imports say so (issue 14): the import graph
of src/r1zero between packages has no cycle, a lower stage never imports a higher one,
and no module imports a private (underscore) name of another package. The order is
docs/architecture.md's; the test reads it from there, so the drawing stays true."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "r1zero"
DOC = ROOT / "docs" / "architecture.md"

LAYERS = (
    "r1zero",  # src/r1zero/__init__.py: the version
    "config",
    "progress",
    "markdown",
    "compile",
    "task",
    "tiny",
    "rollout",
    "algos",
    "models",
    "evaluate",
    "train",
    "bench",
    "report",
    "cli",
    "__main__",
)
"""Lowest first: a package may import only packages before it."""

LATE_LOOKUPS = {("config/validate.py", p) for p in ("algos", "rollout", "task")}
"""Imports inside a function that may point up: validate() checks a config against the
registries at call time, so that r1zero.config imports alone (no torch)."""


def package(rel: Path) -> str:
    """The top-level package (or module) of a file under src/r1zero."""
    if len(rel.parts) == 1:
        return "r1zero" if rel.stem == "__init__" else rel.stem
    return rel.parts[0]


def target(module: str) -> str | None:
    """The package an absolute ``r1zero...`` module name belongs to."""
    parts = module.split(".")
    if parts[0] != "r1zero":
        return None
    return parts[1] if len(parts) > 1 else "r1zero"


def imports(tree: ast.Module, rel: Path) -> Iterator[tuple[str, ast.AST]]:
    """(imported r1zero module, node) for every import in the file, nested ones too."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolve against the file's own package
                base = ["r1zero", *rel.parts[:-1]][: len(rel.parts) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield module, node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node


def edges() -> dict[tuple[str, str], list[str]]:
    """(from package, to package) -> the files that make the edge."""
    out: dict[tuple[str, str], list[str]] = {}
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC)
        src = package(rel)
        for module, _ in imports(ast.parse(f.read_text(encoding="utf-8")), rel):
            dst = target(module)
            if dst is not None and dst != src and (rel.as_posix(), dst) not in LATE_LOOKUPS:
                out.setdefault((src, dst), []).append(rel.as_posix())
    return out


def test_the_doc_draws_the_layers_the_test_checks():
    """docs/architecture.md's layer line lists exactly LAYERS, lowest first."""
    text = DOC.read_text(encoding="utf-8")
    line = re.search(r"^layers: (.+)$", text, re.M)
    assert line, "docs/architecture.md needs a line 'layers: a < b < ...'"
    assert tuple(x.strip() for x in line.group(1).split("<")) == LAYERS


def test_every_package_is_placed_in_a_layer():
    found = {package(f.relative_to(SRC)) for f in SRC.rglob("*.py")}
    assert found <= set(LAYERS), sorted(found - set(LAYERS))


def test_lower_stages_never_import_higher_ones():
    rank = {p: i for i, p in enumerate(LAYERS)}
    upward = {
        f"{a} -> {b} ({', '.join(files)})"
        for (a, b), files in edges().items()
        if a in rank and b in rank and rank[b] > rank[a]
    }
    assert not upward, sorted(upward)


def test_the_package_import_graph_has_no_cycle():
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, " -> ".join(cycle)


def private_uses(f: Path, root: Path = SRC) -> Iterator[str]:
    """Underscore names this file takes from another package: ``from x import _y`` and
    ``alias._y`` where alias is a module of another package."""
    rel = f.relative_to(root)
    own = package(rel)
    tree = ast.parse(f.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for module, node in imports(tree, rel):
        dst = target(module)
        if dst is None or dst == own:
            continue
        for alias in node.names:
            name = alias.asname or alias.name
            if isinstance(node, ast.ImportFrom) and alias.name.startswith("_"):
                yield f"{rel}: from {module} import {alias.name}"
            aliases[name.split(".")[0]] = module
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            yield f"{rel}: {node.value.id}.{node.attr}"


def test_no_module_uses_a_private_name_of_another_package():
    found = [u for f in sorted(SRC.rglob("*.py")) for u in private_uses(f)]
    assert not found, found


def test_the_checks_see_a_violation(tmp_path):
    """The walkers find what they are for: an upward, private import in a sample file."""
    f = tmp_path / "x.py"
    f.write_text("from r1zero.train.step import _agree\nimport r1zero.bench.measure as M\nM._x\n")
    tree = ast.parse(f.read_text())
    assert [target(m) for m, _ in imports(tree, Path("task/x.py"))] == ["train", "bench"]
    assert len(list(private_uses(f, tmp_path))) == 2
