"""The architecture, enforced: which subpackage of knowledge/ may import which (lazy imports
inside functions included; imports only for type checking excepted), no import circles between
modules, no UI code in knowledge/ or ingest/, and ingest/ free of knowledge/."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# subpackage -> the subpackages it may import (besides itself); ingest/ is open to all
LAYERS: dict[str, set[str]] = {
    "core": set(),
    "search": {"core"},
    "assistant": {"core", "search"},
    "contracts": {"core", "search", "assistant"},
    "usage": {"core", "search", "assistant"},
    "access": {"core", "search", "assistant"},
    "tools": {"core", "search", "assistant", "contracts", "usage", "access"},
    "desk": {"core", "search", "assistant", "contracts", "usage", "access", "tools"},
    "service": {"core", "search", "assistant", "contracts", "usage", "access", "tools", "desk"},
    "evaluation": {"core", "search", "assistant", "contracts", "usage", "access", "tools", "desk"}
    | {"service"},
    "cli": {"core", "search", "assistant", "contracts", "usage", "access", "tools", "desk"}
    | {"service", "evaluation"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for package in ("knowledge", "ingest")
        for p in (ROOT / package).rglob("*.py")
    }


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, name: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) of every import in the file, lazy ones included, except those
    under ``if TYPE_CHECKING:``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base, node.lineno
            for alias in node.names:  # "from knowledge.core import metrics" names a module
                yield f"{base}.{alias.name}", node.lineno
        stack.extend(ast.iter_child_nodes(node))


def project_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {target for target, _ in imports_of(path, name) if target in modules}
    return graph


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "knowledge" and len(parts) > 2 else None


def wrong_imports(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for source, targets in sorted(graph.items()):
        here = layer(source)
        for target in sorted(targets):
            there = layer(target)
            if source.startswith("ingest") and target.startswith("knowledge"):
                problems.append(f"{source} -> {target}: ingest/ never imports knowledge/")
            elif here and there and there != here and there not in LAYERS[here]:
                problems.append(f"{source} -> {target}: {here} may not import {there}")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt == node or nxt.startswith(node + "."):
                continue  # a package's __init__ is not a circle with its own modules
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_subpackage_has_a_layer_and_a_docstring():
    packages = {p.parent.name for p in (ROOT / "knowledge").glob("*/__init__.py")}
    assert packages == set(LAYERS)
    assert len(packages) >= 6
    for package in packages:
        assert ast.get_docstring(
            ast.parse((ROOT / "knowledge" / package / "__init__.py").read_text())
        )


def test_imports_point_down_the_layers():
    assert wrong_imports(project_graph()) == []


def test_no_import_circles():
    assert cycles(project_graph()) == []


def test_the_checks_catch_a_wrong_import_and_a_circle():
    graph = project_graph()
    graph["knowledge.search.store"] = graph["knowledge.search.store"] | {"knowledge.desk.root"}
    assert any("search may not import desk" in p for p in wrong_imports(graph))
    assert cycles(graph)  # the desk imports the store: now they import each other


def test_no_module_is_a_giant():
    sizes = {n: len(p.read_text().splitlines()) for n, p in project_modules().items()}
    assert {n: s for n, s in sizes.items() if s > 450} == {}


def test_knowledge_and_ingest_never_import_streamlit():
    for name, path in project_modules().items():
        assert not [t for t, _ in imports_of(path, name) if t.split(".")[0] == "streamlit"], name


def _imports_in_a_fresh_process(
    modules: list[str], banned: list[str]
) -> subprocess.CompletedProcess:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"loaded = [b for b in {banned!r} if b in sys.modules]\n"
        "assert not loaded, f'loaded: {loaded}'\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_importing_every_module_loads_no_streamlit():
    modules = [m for m in sorted(project_modules()) if not m.endswith("migrations.env")]
    result = _imports_in_a_fresh_process(modules, ["streamlit"])  # env.py runs under Alembic only
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("package", ["knowledge.access", "knowledge.assistant.personas"])
def test_the_access_layer_does_not_load_the_retrieval_stack(package: str):
    modules = sorted(m for m in project_modules() if m.startswith(package))
    heavy = ["chromadb", "torch", "sentence_transformers", "bm25s", "knowledge.search.retrieval"]
    result = _imports_in_a_fresh_process(modules, heavy)
    assert result.returncode == 0, result.stderr[-2000:]
