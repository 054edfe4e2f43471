"""Layers: every ``ampsim`` module imports only downward, and no import circle exists anywhere.

The rule (docs/design.md, "Layers"): a module may import modules of its own layer or of a layer
below it, in this order (lowest first)::

    base -> data and graphs -> engine -> trace -> cells -> batched
         -> protocols / train / theory / viz / adapters -> package API -> CLI

The test reads the package's source with :mod:`ast` (no third-party tool, nothing imported) and
resolves every ``import ampsim...`` and ``from ... import ...`` (absolute or relative) to the
module it names; ``from package import name`` counts as an import of ``package.name`` when that is a
module, else of the package. Imports inside functions count too: a lazy import still ties the two
modules together (it only moves the import to a later moment), so it counts for circles and for the
layer order alike. Two things do not count: the implicit import of a module's parent packages (every
module would otherwise depend on ``ampsim/__init__``); ``importlib.import_module`` with a computed
name (the package API's lazy table and the protocol registry, which look names up by string); and
imports under a module-level ``if __name__ == "__main__":`` (a ``python -m`` alias that hands over to the
CLI: that code runs only when the module is the program, never when another module imports it).

It fails on

* a strongly connected component of more than one module (the circle is printed);
* more than :data:`MAX_UPWARD` imports that go up the layer order, or one whose line has no comment
  saying why (a ``# upward: ...`` comment);
* a module that is not assigned a layer;
* a module of the core (``base`` up to ``batched``) that imports an adapter (PyG, Dask, Parquet): the
  adapters are leaves that only users, the package API and the CLI load.

``python tests/test_layers.py`` prints the graph's summary and every upward import.
"""
from __future__ import annotations

import ast
import pathlib
import sys
from collections import defaultdict

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "ampsim"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # what every layer uses: the version, the error classes, argument checks, file writing,
    # process pools, checkpoint files, run packs and the compiled library
    ("base", ("ampsim._version", "ampsim.engine.errors", "ampsim.validate", "ampsim.fileio", "ampsim.native",
              "ampsim.sweeps", "ampsim.checkpoint", "ampsim.runpack")),
    # the trace records are data: frozen tuples the engine writes and every reader reads
    ("data", ("ampsim.graphs", "ampsim.graph_families", "ampsim.data", "ampsim.trace.records")),
    # the tracers are the sinks the engine writes into (a list, a JSONL file, a tee)
    ("engine", ("ampsim.engine", "ampsim.trace.tracers")),
    ("trace", ("ampsim.trace",)),
    # reactions run a learned cell on the engine and record what each delivery did to it
    ("cells", ("ampsim.cells", "ampsim.trace.reaction")),
    ("batched", ("ampsim.batched",)),
    ("top", ("ampsim.protocols", "ampsim.train", "ampsim.theory", "ampsim.viz", "ampsim.pyg")),
    ("api", ("ampsim",)),
    ("cli", ("ampsim.cli", "ampsim.__main__")),
]
"""Each layer and the modules or packages in it; a module belongs to its longest listed prefix
(``ampsim`` itself is only the package's ``__init__``)."""

ADAPTERS = ("ampsim.pyg", "ampsim.trace.columnar", "ampsim.trace.parquet_")
"""Modules (or name prefixes) that talk to an optional library (PyG, pyarrow/pandas). ``ampsim.sweeps`` imports Dask only
inside :func:`ampsim.sweeps.dask_executor`, so it stays in ``base``."""

CORE = ("base", "data", "engine", "trace", "cells", "batched")
MAX_UPWARD = 3
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(mod: str) -> str | None:
    best, size = None, -1
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if prefix == "ampsim":
                hit = mod == "ampsim"
            else:
                hit = mod == prefix or mod.startswith(prefix + ".")
            if hit and len(prefix) > size:
                best, size = name, len(prefix)
    return best


def imports(mod: str, path: pathlib.Path, known: set[str]) -> list[tuple[str, int, str]]:
    """``(imported module, line, source line)`` for every ``ampsim`` import in ``path``."""
    source = path.read_text()
    lines = source.splitlines()
    is_package = path.name == "__init__.py"
    package = mod if is_package else mod.rpartition(".")[0]
    out = []
    seen = set()

    def add(target: str, node: ast.stmt) -> None:
        while target and target not in known:  # an attribute of a module: the module
            target = target.rpartition(".")[0]
        if target and target != mod:
            # the statement's own lines: a comment may sit on any of them
            text = "\n".join(lines[node.lineno - 1: node.end_lineno])
            if (target, node.lineno) not in seen:
                seen.add((target, node.lineno))
                out.append((target, node.lineno, text))

    tree = ast.parse(source, str(path))
    tree.body = [n for n in tree.body if not _main_guard(n)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "ampsim" or alias.name.startswith("ampsim."):
                    add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            if not (origin == "ampsim" or origin.startswith("ampsim.")):
                continue
            for alias in node.names:
                sub = f"{origin}.{alias.name}"
                add(sub if sub in known else origin, node)
    return out


def _main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` at module level."""
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def graph() -> tuple[dict[str, pathlib.Path], dict[str, list[tuple[str, int, str]]]]:
    mods = modules()
    known = set(mods)
    return mods, {m: imports(m, p, known) for m, p in mods.items()}


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def cycle_in(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One circle through the component's first module (breadth-first: a shortest one)."""
    members = set(component)
    start = component[0]
    parent = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(edges[node] & members):
            if child == start:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1] + [start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return component


def upward() -> list[tuple[str, str, int, str]]:
    """``(importer, imported, line, source)`` for every import that goes up the layer order."""
    mods, deps = graph()
    out = []
    for mod, found in deps.items():
        for target, line, text in found:
            a, b = layer_of(mod), layer_of(target)
            if a is not None and b is not None and RANK[b] > RANK[a]:
                out.append((mod, target, line, text))
    return sorted(out)


def test_every_module_has_a_layer():
    missing = sorted(m for m in modules() if layer_of(m) is None)
    assert not missing, f"modules with no layer (add them to LAYERS): {missing}"


def test_no_import_circle():
    _, deps = graph()
    edges = {m: {t for t, _, _ in found} for m, found in deps.items()}
    components = strongly_connected(edges)
    report = [
        f"{len(c)} modules: {', '.join(c)}\n  circle: {' -> '.join(cycle_in(c, edges))}" for c in components
    ]
    assert not components, "import circles:\n" + "\n".join(report)


def test_at_most_three_upward_imports_each_with_a_reason():
    found = upward()
    listing = "\n".join(f"  {m}:{line} -> {t}   [{layer_of(m)} -> {layer_of(t)}]" for m, t, line, _ in found)
    assert len(found) <= MAX_UPWARD, f"{len(found)} upward imports (at most {MAX_UPWARD}):\n{listing}"
    silent = [f"{m}:{line}" for m, _, line, text in found if "# upward:" not in text]
    assert not silent, f"upward imports without a '# upward: why' comment: {silent}"


def test_the_core_does_not_import_an_adapter():
    _, deps = graph()
    bad = [
        f"{m}:{line} -> {t}"
        for m, found in deps.items()
        if layer_of(m) in CORE and not m.startswith(ADAPTERS)
        for t, line, _ in found
        if t.startswith(ADAPTERS)
    ]
    assert not bad, f"the core imports an adapter: {bad}"


def test_the_checker_sees_each_kind_of_import(tmp_path):
    """Relative, absolute, function-local and ``from package import module`` imports all resolve."""
    src = (
        "from . import validate as V\n"
        "from ..engine.errors import GraphError\n"
        "import ampsim.trace.records\n"
        "def f():\n"
        "    from ..cells import models  # upward: test\n"
        "if __name__ == '__main__':\n"
        "    from ampsim.cli import alias\n"
    )
    known = {"ampsim", "ampsim.validate", "ampsim.engine", "ampsim.engine.errors", "ampsim.trace",
             "ampsim.trace.records", "ampsim.cells", "ampsim.cells.models", "ampsim.data",
             "ampsim.data.tasks", "ampsim.data.validate"}
    fake = tmp_path / "tasks.py"  # read as ampsim.data.tasks: a module, not a package
    fake.write_text(src)
    found = [t for t, _, _ in imports("ampsim.data.tasks", fake, known)]
    # `from . import validate` inside ampsim.data resolves to ampsim.data.validate
    assert found == ["ampsim.data.validate", "ampsim.engine.errors", "ampsim.trace.records", "ampsim.cells.models"]
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert cycle_in(["a", "b", "c"], edges) == ["a", "b", "c", "a"]


if __name__ == "__main__":
    mods, deps = graph()
    edges = {m: {t for t, _, _ in found} for m, found in deps.items()}
    print(f"{len(mods)} modules, {sum(map(len, edges.values()))} import edges")
    for c in strongly_connected(edges):
        print(f"circle of {len(c)}: {' -> '.join(cycle_in(c, edges))}\n   members: {c}")
    for m, t, line, text in upward():
        print(f"upward {m}:{line} -> {t} [{layer_of(m)} -> {layer_of(t)}] {text.strip()[:100]}")
    missing = sorted(m for m in mods if layer_of(m) is None)
    if missing:
        print("no layer:", missing)
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
