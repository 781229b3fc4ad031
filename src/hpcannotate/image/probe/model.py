"""What the probe's rules produce: values with the file that says so, libraries found, keys not read.

Shared by the user-land rules (``userland.py``) and the library rules (``libraries.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hpcannotate.image.probe.tree import DIR, FILE, ImageTree
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.values import check_value


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


@dataclass
class Userland:
    evidence: list[Evidence] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, value: str, file: str, fragment: str | None = None, rule: str | None = None) -> None:
        key = P + key
        reason = check_value(catalogue()[key], value)
        if reason:
            self.missing[key] = f"{file} says {value!r}, which is not a valid value: {reason}"
            return
        self.evidence.append(Evidence(key, value, file, fragment, rule))
        self.missing.pop(key, None)

    def miss(self, key: str, reason: str) -> None:
        key = P + key
        if not any(e.key == key for e in self.evidence):
            self.missing.setdefault(key, reason)

    def get(self, key: str) -> str | None:
        return next((e.value for e in self.evidence if e.key == P + key), None)


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
