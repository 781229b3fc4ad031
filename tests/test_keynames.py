"""The key constants and the catalogue name the same keys, spelled by one rule; code names keys by them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import hpcannotate
import hpcannotate.model.keynames as keynames
from hpcannotate.model.catalogue import catalogue


def _constants() -> dict[str, str]:
    return {name: value for name, value in vars(keynames).items()
            if name.isupper() and name not in ("SUPERCONTAINERS", "OCI")}


def test_every_catalogue_key_has_its_constant():
    missing = [f'{keynames.constant_name(k)} = "{k}"' for k in (s.key for s in catalogue())
               if getattr(keynames, keynames.constant_name(k), None) != k]
    assert not missing, "add to keynames.py:\n" + "\n".join(missing)


def test_every_constant_is_a_catalogue_key_named_by_the_rule():
    known = {s.key for s in catalogue()}
    for name, value in _constants().items():
        assert value in known, f"{name} = {value!r} is not in keys.yaml"
        assert keynames.constant_name(value) == name


SRC = Path(hpcannotate.__file__).parent


def _key_literals(source: str) -> Iterator[tuple[int, str, str]]:
    """(line, literal, full key) of every key spelled as a literal: a short ``"mpi.version"``, a full
    ``"org.opencontainers.image.title"``, or an ``OCI_PREFIX + "title"``."""
    full = set(_constants().values())
    short = {key.removeprefix(keynames.SUPERCONTAINERS): key for key in full
             if key.startswith(keynames.SUPERCONTAINERS)}
    oci = {key.removeprefix(keynames.OCI): key for key in full if key.startswith(keynames.OCI)}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in full or node.value in short:
                yield node.lineno, node.value, short.get(node.value, node.value)
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and isinstance(node.right, ast.Constant)
              and node.right.value in oci and "OCI" in ast.unparse(node.left)):
            yield node.lineno, ast.unparse(node), oci[node.right.value]


def _literals_by_file() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "model/keynames.py":
            continue
        for line, literal, key in sorted(_key_literals(path.read_text(encoding="utf-8"))):
            found.setdefault(rel, []).append(f"{rel}:{line}: {literal!r} -> keynames.{keynames.constant_name(key)}")
    return found


def test_the_literal_finder_finds_each_spelling():
    source = 'a = "mpi.version"\nb = OCI_PREFIX + "title"\nc = "org.supercontainers.app.name"\nd = "mpi"\n'
    assert [(line, key) for line, _, key in _key_literals(source)] == [
        (1, keynames.MPI_VERSION), (2, keynames.OCI_TITLE), (3, keynames.APP_NAME)]


def test_code_names_keys_by_constant_not_by_literal():
    found = _literals_by_file()
    lines = [line for hits in found.values() for line in hits]
    assert not lines, "use the keynames constant:\n" + "\n".join(lines)

