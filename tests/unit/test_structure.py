"""The shape of src/certwarden: no import circles, no module past ~500 lines (issue 10).

Import circles are found on grimp's graph (the one import-linter checks its contracts on):
every import counts -- module level, inside a function, and under ``TYPE_CHECKING`` alike,
since each one is a dependency a reader has to follow. A circle is a strongly connected
component of more than one module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "certwarden"
MAX_LINES = 500

# Circles tolerated for now, each as the one import (importer, imported) that closes it.
# Empty: issue 10 removed the last ones; an entry added here must say why and when it goes.
KNOWN_CIRCLES: frozenset[tuple[str, str]] = frozenset()


def _graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("certwarden", cache_dir=None)
    return {m: {i for i in graph.find_modules_directly_imported_by(m)
                if i.startswith("certwarden")}
            for m in graph.modules if m.startswith("certwarden")}


def circles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(edges) + 100))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def test_the_circle_finder_finds_circles() -> None:
    """The finder itself: a circle of three, a self-standing chain, a pair."""
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["f"], "f": ["e"]}
    assert circles(edges) == [["a", "b", "c"], ["e", "f"]]
    assert circles({"a": ["b"], "b": ["c"], "c": []}) == []


def test_no_import_circles_in_src() -> None:
    edges = _graph()
    assert len(edges) > 100  # the whole package was read
    for importer, imported in KNOWN_CIRCLES:
        edges[importer].discard(imported)
    assert circles(edges) == []


def test_known_circles_are_still_there() -> None:
    """An allow-list entry whose import is gone must go too (it would hide a new circle)."""
    edges = _graph()
    gone = sorted((a, b) for a, b in KNOWN_CIRCLES if b not in edges.get(a, set()))
    assert gone == [], "delete these from KNOWN_CIRCLES"


def test_no_module_passes_500_lines() -> None:
    sizes = {p.relative_to(SRC).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
             for p in SRC.rglob("*.py")}
    assert len(sizes) > 100
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}
