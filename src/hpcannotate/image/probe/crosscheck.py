"""Recipe claims against what the image holds: the conflicts a user must hear about.

A recipe that says Open MPI while the image holds only MPICH-ABI libraries
produces images whose annotations lie; ``cross_check`` reports such a claim
loudly (an ``error``), and a claim the probe can only half confirm as a
``warning``. Keys the probe did not read are never a conflict.

With a ``ProbeResult`` (not just its annotations) the libraries found count
too: a recipe claiming ``communication.framework: ucx`` on an image without
``libucp.so`` is a conflict even though the probe sets no framework key.

Both sides are compared as typed facts (``facts.by_kind`` of the recipe's and
the image's annotations: ``Mpi.implementation``, ``Tools.includes``), each value
with its source, so a conflict names where each side's value came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpcannotate.image.probe.model import Finding
from hpcannotate.image.probe.probe import ProbeResult
from hpcannotate.image.probe.userland import TOOLS
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.versions import versions_agree
from hpcannotate.recipes.facts import (
    BaseOs,
    Cuda,
    Fabric,
    Fact,
    Libc,
    Mpi,
    Nccl,
    Python,
    Shell,
    Sourced,
    Tools,
    by_kind,
)

MPICH_FAMILY = ("mpich", "mvapich2", "intelmpi", "cray-mpich")
NO_MPI = ("none", "threadmpi")
# facts whose values are compared as they are (versions: up to the shorter one's precision), in this order
COMPARED: tuple[tuple[type[Fact], str], ...] = (
    (Libc, "implementation"),
    (Libc, "glibc_version"),
    (Python, "version"),
    (BaseOs, "name"),
    (BaseOs, "version"),
    (Mpi, "version"),
    (Mpi, "abi_version"),
    (Fabric, "ucx_version"),
    (Fabric, "libfabric_version"),
    (Fabric, "libfabric_abi_version"),
    (Cuda, "version"),
    (Nccl, "version"),
)
FRAMEWORK_LIBRARIES = {"ucx": "libucp.so", "libfabric": "libfabric.so", "verbs": "libibverbs.so",
                       "psm2": "libpsm2.so"}


@dataclass(frozen=True)
class Conflict:
    key: str
    recipe: str | None
    image: str | None
    message: str
    severity: str = "error"  # error | warning
    recipe_source: str | None = None
    image_source: str | None = None

    def __str__(self) -> str:
        return f"{self.key.removeprefix(P)}: {self.message}"

    def to_json(self) -> dict:
        return {"key": self.key, "severity": self.severity, "recipe": self.recipe, "image": self.image,
                "message": self.message, "recipe_source": self.recipe_source, "image_source": self.image_source}


Facts = dict[type[Fact], Fact]


def _value(facts: Facts, kind: type[Fact], name: str) -> Sourced | None:
    """The value of one field of the fact of ``kind`` in ``facts`` (by kind), or None."""
    return getattr(facts.get(kind), name, None)


def _text(sourced: Sourced | None) -> str | None:
    return sourced.value if sourced is not None else None


def _source(sourced: Sourced | None) -> str | None:
    return sourced.provenance.describe() if sourced is not None else None


def _describe(findings: list[Finding]) -> str:
    return ", ".join(f"{f.name} ({f.path})" for f in findings)


def _mpi(claims: Facts, holds: Facts, findings: list[Finding] | None) -> list[Conflict]:
    key = Mpi.KEYS["implementation"]
    claim, held = _value(claims, Mpi, "implementation"), _value(holds, Mpi, "implementation")
    claimed = _text(claim)
    if not claimed:
        return []

    def conflict(message: str, severity: str = "error", image: str | None = None) -> Conflict:
        return Conflict(key, claimed, image if image is not None else _text(held), message, severity,
                        _source(claim), _source(held))

    if findings is None:
        found = _text(held)
        if found and found != claimed:
            return [conflict(f"the recipe says {claimed}, the image holds {found}")]
        abi = _text(_value(holds, Mpi, "abi_version"))
        expected = "40" if claimed == "openmpi" else "12" if claimed in MPICH_FAMILY else None
        if abi and expected and abi.split(".")[0] != expected:
            return [conflict(f"the recipe says {claimed} (libmpi.so.{expected}), the image's MPI has ABI {abi}")]
        return []
    mpis = [f for f in findings if f.kind == "mpi"]
    names = {f.name for f in mpis}
    if claimed in NO_MPI:
        if mpis:
            return [conflict(f"the recipe says {claimed}, yet the image holds MPI libraries: {_describe(mpis)}",
                             "warning", ",".join(sorted(names)))]
        return []
    if not mpis:
        return [conflict(f"the recipe says {claimed}, the image holds no libmpi.so", image="")]
    if claimed == "openmpi" and "openmpi" not in names:
        return [conflict(f"the recipe says openmpi, the image holds only {_describe(mpis)}",
                         image=",".join(sorted(names)))]
    if claimed in MPICH_FAMILY:
        abi_family = [f for f in mpis if f.name in (*MPICH_FAMILY, "mpich-abi")]
        if not abi_family:
            return [conflict(f"the recipe says {claimed} (MPICH ABI), the image holds only {_describe(mpis)}",
                             image=",".join(sorted(names)))]
        told = {f.name for f in abi_family} - {"mpich-abi"}
        if claimed not in told and told and "mpich-abi" not in names:
            return [conflict(f"the recipe says {claimed}; the image's MPICH-ABI library looks like "
                             f"{_describe(abi_family)}", "warning", ",".join(sorted(told)))]
    return []


def _frameworks(claims: Facts, findings: list[Finding] | None) -> list[Conflict]:
    claim = _value(claims, Fabric, "framework")
    claimed = _text(claim)
    if not claimed or findings is None:
        return []
    kinds = {f.kind for f in findings}
    result = []
    for item in claimed.split(","):
        library = FRAMEWORK_LIBRARIES.get(item.strip())
        if library and item.strip() not in kinds:
            result.append(Conflict(Fabric.KEYS["framework"], claimed, None,
                                   f"the recipe says {item.strip()}, the image holds no {library}", "error",
                                   _source(claim)))
    return result


# list facts whose every item the recipe claims must be in the image (None: any item; else only those known)
LISTS: tuple[tuple[type[Fact], str, frozenset[str] | None], ...] = (
    (Shell, "implementation", None),
    (Tools, "includes", frozenset(TOOLS)),
)


def _lists(claims: Facts, holds: Facts) -> list[Conflict]:
    result = []
    for kind, name, known in LISTS:
        claim, held = _value(claims, kind, name), _value(holds, kind, name)
        if claim is None or not claim.value or held is None:
            continue
        claimed, found = claim.value, held.value
        have = set(found.split(","))
        lacking = [i for i in claimed.split(",") if i not in have and (known is None or i in known)]
        if lacking:
            result.append(Conflict(kind.KEYS[name], claimed, found, f"the recipe says {', '.join(lacking)}, the "
                                   f"image has {found}", "error", _source(claim), _source(held)))
    return result


def cross_check(recipe: Annotations, probed: Annotations | ProbeResult) -> list[Conflict]:
    """Every claim of ``recipe`` that the image contradicts (``probed``: the probe's annotations or result)."""
    findings = probed.findings if isinstance(probed, ProbeResult) else None
    annotations = probed.annotations if isinstance(probed, ProbeResult) else probed
    claims, holds = by_kind(recipe), by_kind(annotations)  # both sides as typed facts, with their sources
    conflicts = _mpi(claims, holds, findings)
    for kind, name in COMPARED:
        claimed, found = getattr(claims.get(kind), name, None), getattr(holds.get(kind), name, None)
        if claimed is None or found is None:
            continue
        agree = (versions_agree(claimed.value, found.value) if name.endswith("version")
                 else claimed.value == found.value)
        if not agree:
            conflicts.append(Conflict(kind.KEYS[name], claimed.value, found.value,
                                      f"the recipe says {claimed.value}, the image holds {found.value}", "error",
                                      claimed.provenance.describe(), found.provenance.describe()))
    conflicts += _frameworks(claims, findings)
    conflicts += _lists(claims, holds)
    cuda = _value(claims, Cuda, "version")
    if (findings is not None and cuda is not None and cuda.value and not any(f.kind == "cuda" for f in findings)
            and _value(holds, Cuda, "version") is None):
        conflicts.append(Conflict(Cuda.KEYS["version"], cuda.value, None, f"the recipe says CUDA {cuda.value}, "
                                  "the image holds no libcudart.so (linked statically?)", "warning", _source(cuda)))
    return conflicts
