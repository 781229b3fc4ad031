"""What the probe's rules produce: typed facts with the file that says so, libraries found, keys not read.

Shared by the user-land rules (``userland.py``) and the library rules (``libraries.py``). Every value a
rule reads is a field of a fact of ``recipes/facts.py`` (``Libc.glibc_version``, ``Mpi.abi_version``),
its provenance layer ``image probe`` with the image path it came from, the words of that file and the
rule; ``probe.py`` turns them into annotations with ``facts.to_annotations``, as the recipe adapters do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hpcannotate.image.probe.tree import DIR, FILE, ImageTree
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.model.values import check_value
from hpcannotate.recipes.facts import Fact, Sourced


@dataclass(frozen=True)
class Evidence:
    """One inferred value and the file that says so."""

    key: str  # canonical key
    value: str
    file: str  # image path (or "config" for the image config)
    fragment: str | None = None  # what the file says
    rule: str | None = None


@dataclass(frozen=True)
class Finding:
    """A library or tool found, whether or not it became an annotation (cross-checks use these)."""

    kind: str  # mpi, ucx, libfabric, verbs, psm2, cuda, nccl, libc
    name: str  # openmpi, mpich, mvapich2, intelmpi, cray-mpich, mpich-abi, unknown, ...
    path: str
    detail: str = ""

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "path": self.path, "detail": self.detail}


def in_image(value: str, file: str, fragment: str | None = None, rule: str | None = None) -> Sourced:
    """A value read from the image: ``file`` is the image path (or ``config``), ``fragment`` what it says,
    ``rule`` the rule that read it (the provenance's note)."""
    return Sourced(value, Provenance(Layer.PROBE, file, fragment=fragment, note=rule))


@dataclass
class Userland:
    facts: list[Fact] = field(default_factory=list)  # in the order the rules found them
    findings: list[Finding] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # full key -> why the image does not tell it

    def add(self, fact: Fact) -> None:
        """Record ``fact``; a value the catalogue refuses is left out, and ``missing`` says which file gave it."""
        refused = []
        for key, sourced in fact.items():
            reason = check_value(catalogue()[key], sourced.value)
            if reason:
                self.missing[key] = (f"{sourced.provenance.file} says {sourced.value!r}, which is not a valid value: "
                                     f"{reason}")
                refused.append(key)
            else:
                self.missing.pop(key, None)
        if refused:
            fact = fact.without(refused)
        if next(fact.items(), None) is not None:
            self.facts.append(fact)

    def miss(self, key: str, reason: str) -> None:
        """Record why ``key`` (a full key) is not read, unless a rule read it."""
        if self.get(key) is None:
            self.missing.setdefault(key, reason)

    def get(self, key: str) -> str | None:
        """The first value read for ``key`` (a full key, or short as the rules used to write it)."""
        key = key if key.startswith("org.") else P + key
        return next((s.value for f in self.facts for name, s in f.items() if name == key), None)

    @property
    def evidence(self) -> list[Evidence]:
        """Every value read, with the file that says so, in the order found."""
        return [Evidence(key, s.value, s.provenance.file or "", s.provenance.fragment, s.provenance.note)
                for fact in self.facts for key, s in fact.items()]


# -- helpers ---------------------------------------------------------------------------------------


def abs_path(path: str) -> str:
    """An image path as users write it (``/usr/bin/sh``)."""
    return "/" + path


class Index:
    """Recorded non-directories by file name, built once per probe."""

    def __init__(self, tree: ImageTree):
        self.tree = tree
        self.by_name: dict[str, list[str]] = {}
        for path, node in tree.walk():
            if node.kind != DIR:
                self.by_name.setdefault(path.rpartition("/")[2], []).append(path)

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return sorted(p for name, paths in self.by_name.items() if regex.fullmatch(name) for p in paths)

    def existing(self, pattern: str) -> list[tuple[str, str]]:
        """(path, real file) for names matching ``pattern`` whose links end at a file, one per real file."""
        seen: dict[str, str] = {}
        for path in self.matching(pattern):
            real = self.tree.resolve(path)
            if real is not None and self.tree.nodes[real].kind == FILE:
                seen.setdefault(real, path)
        return sorted((path, real) for real, path in seen.items())
