"""The layering contract of DESIGN.md, read off the source with ``ast``.

core owns the rules and imports no edge; the pure parts of core (the domain, iTIP
reading and building, iMIP composition, feed parsing) touch no database, event loop or
network, not even through another module; the two edges that face the outside world,
``web`` and ``mailagent``, do not import each other; and no module imports itself back
through others. Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "mailagent", "web", "caldav_bridge", "parley")
EDGES = ("mailagent", "web", "caldav_bridge", "parley")
PURE = ("core.domain", "core.itip", "core.imip", "core.feeds")
# Top-level modules a pure module may not reach: a database, an event loop, the network.
IMPURE = frozenset(
    {
        "sqlalchemy", "psycopg", "psycopg_pool", "alembic", "sqlite3", "asyncio",
        "socket", "ssl", "http", "urllib", "httpx", "niquests", "requests", "aiohttp",
        "smtplib", "imaplib", "aiosmtpd", "aioimaplib", "dns", "starlette", "uvicorn",
        "radicale", "caldav", "a2wsgi", "threading", "subprocess",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target as seen from ``source``."""

    source: str
    target: str
    line: int


@cache
def modules() -> dict[str, Path]:
    """Every module of Parley's packages by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _owner(name: str) -> str | None:
    """The project module that defines ``name`` (a module or an attribute of one)."""
    known = modules()
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _base(module: str, level: int) -> str:
    is_package = modules()[module].name == "__init__.py"
    parts = module.split(".")
    keep = len(parts) - level + (1 if is_package else 0)
    return ".".join(parts[:keep])


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    origin = node.module or ""
    if node.level:
        base = _base(module, node.level)
        origin = f"{base}.{origin}" if node.module else base
    for alias in node.names:
        # ``from pkg import sub`` depends on the submodule; ``from pkg import name`` on pkg.
        submodule = f"{origin}.{alias.name}"
        yield submodule if submodule in modules() else origin


@cache
def imports() -> tuple[Import, ...]:
    """Every import in the project, third-party ones by their top-level name."""
    found: list[Import] = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, node):
                    owner = _owner(target)
                    name = owner if owner is not None else target.partition(".")[0]
                    if name != module:
                        found.append(Import(module, name, node.lineno))
    return tuple(found)


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    for imp in imports():
        if imp.target in graph:
            graph[imp.source].add(imp.target)
    return graph


def _where(imp: Import) -> str:
    path = modules()[imp.source].relative_to(ROOT)
    return f"{path}:{imp.line} imports {imp.target}"


def test_core_imports_no_edge() -> None:
    uphill = [
        _where(i)
        for i in imports()
        if _inside(i.source, "core") and any(_inside(i.target, e) for e in EDGES)
    ]
    assert uphill == []


@pytest.mark.parametrize("edge,other", [("web", "mailagent"), ("mailagent", "web")])
def test_edges_do_not_import_each_other(edge: str, other: str) -> None:
    sideways = [
        _where(i) for i in imports() if _inside(i.source, edge) and _inside(i.target, other)
    ]
    assert sideways == []


@pytest.mark.parametrize("package", PURE)
def test_pure_core_reaches_no_database_loop_or_network(package: str) -> None:
    graph = _graph()
    reached: dict[str, str] = {}  # module -> the pure module it was reached from
    todo = [m for m in modules() if _inside(m, package)]
    for start in todo:
        reached.setdefault(start, start)
    while todo:
        module = todo.pop()
        for target in graph[module]:
            if target not in reached:
                reached[target] = reached[module]
                todo.append(target)
    impure = [
        f"{_where(i)} (reached from {reached[i.source]})"
        for i in imports()
        if i.source in reached and i.target.partition(".")[0] in IMPURE
    ]
    assert impure == []


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checks_see_a_violation() -> None:
    # The scanner itself: a cycle and a lazy uphill import in made-up modules are found.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from mailagent.mime import parse_message\n")
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert [_owner(t) for t in _targets("core.services.inbound", node)] == ["mailagent.mime"]
