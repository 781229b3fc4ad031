"""The package's layout is its data flow: a stage imports the stages before it, never one after.

recipe -> facts (recipes/) -> Dockerfile (dockerfile/) -> image (build/, read by image/) -> registry
(registry/, oci/) -> verdict (verdict/, with host/); model/ is under everything, cli/ over everything.
docs/architecture.md draws it. Every import counts, in-function ones included (the graph is
test_import_graph's, which also checks that it has no cycle).
"""

from __future__ import annotations

from tests.test_import_graph import import_graph

# lower imports nothing higher; equal ranks may import each other only within the same package
RANK = {
    "errors": 0,
    "files": 1, "cache": 1, "console": 1, "resources": 1,
    "model": 2,
    "oci": 3,  # layouts, indexes, archives on disk
    "registry": 4,  # the distribution client, which reads and writes layouts too
    "recipes": 5,
    "dockerfile": 6,
    "image": 7,
    "build": 8, "retrofit": 8, "host": 8,
    "verdict": 9,
    "hpccm": 10,  # the API HPCCM recipes import: over the recipe stage
    "cli": 11, "__main__": 12,
}
# The Dockerfile reader and value writer are parsers every stage may use (init reads a Dockerfile
# recipe, a format checks that a value fits a LABEL, templates quote with them); they sit on the model.
LEAVES = {"hpcannotate.dockerfile.reader", "hpcannotate.dockerfile.text"}


def _stage(module: str) -> str:
    return module.split(".")[1]


def test_every_top_level_module_and_package_has_a_rank():
    stages = {_stage(m) for m in import_graph() if m != "hpcannotate"}
    assert stages <= set(RANK), f"give these a place in the data flow: {sorted(stages - set(RANK))}"


def test_no_stage_imports_a_later_one():
    graph = import_graph()
    # importing a leaf runs its package's __init__ first: free as long as that imports nothing
    free = LEAVES | {leaf.rpartition(".")[0] for leaf in LEAVES if not graph[leaf.rpartition(".")[0]]}
    backwards = []
    for module, imports in graph.items():
        if module == "hpcannotate":
            continue
        for imported in imports:
            if imported == "hpcannotate" or imported in free or _stage(imported) == _stage(module):
                continue
            if RANK[_stage(imported)] >= RANK[_stage(module)]:
                backwards.append(f"{module} -> {imported}")
    assert not backwards, "imports against the data flow:\n" + "\n".join(sorted(backwards))


def test_the_leaves_stay_leaves():
    graph = import_graph()
    for leaf in LEAVES:
        heavier = [m for m in graph[leaf] if m != "hpcannotate" and RANK[_stage(m)] > RANK["model"]]
        assert not heavier, f"{leaf} must stay a parser any stage can use; it imports {heavier}"
