"""The project's structure: its modules import each other without cycles.

Pure ``ast`` over the sources of ``icrst_jax/``, ``experiments/`` and
``benchmarks/``: nothing is imported, so this takes well under a second.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("icrst_jax", "experiments", "benchmarks")


def module_files(root: Path) -> dict[str, Path]:
    """Every module under the project's packages by dotted name (a package's ``__init__`` is named like the package)."""
    out = {}
    for top in PACKAGES:
        for f in sorted((root / top).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _resolve(module: str | None, level: int, package: str) -> str:
    """The absolute module of ``from <dots><module> import ...`` in ``package``."""
    if not level:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, at its top or inside functions.

    ``from a.b import c`` is an edge to ``a.b.c`` where that is a module, else to ``a.b``.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    deps = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            deps.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                deps.add(sub if sub in modules else base)
    return {d for d in deps if d in modules and d != name}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return found


def _cycle_path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One import loop through ``component``, e.g. ``a -> b -> a`` (breadth-first back to its first module)."""
    members, first = set(component), component[0]
    came_from = {first: None}
    queue = [first]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == first:
                path = [v]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return " -> ".join(reversed(path)) + f" -> {first}"
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    return " <-> ".join(component)


def test_cycle_finder_sees_a_loop_and_no_loop_in_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _cycle_path({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c"]) == "a -> b -> c -> a"


def test_project_modules_form_no_import_cycle():
    graph = import_graph()
    assert "icrst_jax.config" in graph and "icrst_jax.data.registry" in graph
    found = cycles(graph)
    assert not found, "import cycles between the project's modules:\n" + "\n".join(
        f"  {' <-> '.join(c)} (e.g. {_cycle_path(graph, c)})" for c in found
    )


def test_data_registry_imports_nothing_from_the_project():
    """The registry is what config, models and the loaders share: it must stay a leaf."""
    assert import_graph()["icrst_jax.data.registry"] == set()
