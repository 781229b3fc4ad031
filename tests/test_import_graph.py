"""No import cycles among hpcannotate's modules, counting in-function imports as well as module-level
ones: an import inside a function hides an edge of the graph but not the dependency.

Only imports under ``if TYPE_CHECKING:`` are left out: they never run, and annotations may name
a module above. Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` too, so those
package edges count as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hpcannotate

ROOT = Path(hpcannotate.__file__).parent
PACKAGE = "hpcannotate"
# Cycles allowed for now (none): each would be listed here with its reason, and the second test fails
# once a listed one is gone, so an exception cannot outlive its cycle.
KNOWN: set[frozenset[str]] = set()


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: dict) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module.split(".") if is_package else module.split(".")[:-1]
        origin = ".".join([*base[: len(base) - node.level + 1], *([node.module] if node.module else [])]) \
            if node.level else node.module
        names = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin for a in node.names]
    result = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        # importing a.b.c runs the packages above it first
        parts = name.split(".")
        result += [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in known]
    return [n for n in result if n.startswith(PACKAGE)]


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip:
                for target in _targets(name, path.name == "__init__.py", node, known):
                    # a package importing its own submodules is how packages work, not a cycle
                    if target != name and not name.startswith(target + "."):
                        graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_the_graph_sees_in_function_imports():
    graph = import_graph()
    # annotations.validate imports validation inside the method
    assert "hpcannotate.model.validation" in graph["hpcannotate.model.annotations"]
    assert "hpcannotate.verdict.check_dockerfile" not in graph["hpcannotate.verdict.check"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycles():
    found = [c for c in cycles(import_graph()) if frozenset(c) not in KNOWN]
    assert not found, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_the_known_cycle_is_still_there():
    """When it is broken, delete it from KNOWN."""
    found = {frozenset(c) for c in cycles(import_graph())}
    assert found >= KNOWN, f"no longer a cycle, remove from KNOWN: {KNOWN - found}"
