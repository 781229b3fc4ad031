"""Recipe claims against what the image holds: the conflicts a user must hear about.

A recipe that says Open MPI while the image holds only MPICH-ABI libraries
produces images whose annotations lie; ``cross_check`` reports such a claim
loudly (an ``error``), and a claim the probe can only half confirm as a
``warning``. Keys the probe did not read are never a conflict.

With a ``ProbeResult`` (not just its annotations) the libraries found count
too: a recipe claiming ``communication.framework: ucx`` on an image without
``libucp.so`` is a conflict even though the probe sets no framework key.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpcannotate.image.probe.model import Finding
from hpcannotate.image.probe.probe import ProbeResult
from hpcannotate.image.probe.userland import TOOLS
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.keynames import (
    COMMUNICATION_FRAMEWORK,
    HARDWARE_GPU_NVIDIA_CUDA_VERSION,
    MPI_ABI_VERSION,
    MPI_IMPLEMENTATION,
)
from hpcannotate.model.versions import versions_agree
from hpcannotate.recipes.facts import BaseOs, Cuda, Fabric, Fact, Libc, Mpi, Nccl, Python, by_kind

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


def _source(annotations: Annotations, key: str) -> str | None:
    return annotations.entry(key).provenance.describe() if key in annotations else None


def _describe(findings: list[Finding]) -> str:
    return ", ".join(f"{f.name} ({f.path})" for f in findings)


def _mpi(recipe: Annotations, probed: Annotations, findings: list[Finding] | None) -> list[Conflict]:
    key = MPI_IMPLEMENTATION
    claimed = recipe.get(key)
    if not claimed:
        return []

    def conflict(message: str, severity: str = "error", image: str | None = None) -> Conflict:
        return Conflict(key, claimed, image if image is not None else probed.get(key), message, severity,
                        _source(recipe, key), _source(probed, key))

    if findings is None:
        found = probed.get(key)
        if found and found != claimed:
            return [conflict(f"the recipe says {claimed}, the image holds {found}")]
        abi = probed.get(MPI_ABI_VERSION)
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


def _frameworks(recipe: Annotations, findings: list[Finding] | None) -> list[Conflict]:
    key = COMMUNICATION_FRAMEWORK
    claimed = recipe.get(key)
    if not claimed or findings is None:
        return []
    kinds = {f.kind for f in findings}
    result = []
    for item in claimed.split(","):
        library = FRAMEWORK_LIBRARIES.get(item.strip())
        if library and item.strip() not in kinds:
            result.append(Conflict(key, claimed, None, f"the recipe says {item.strip()}, the image holds no {library}",
                                   "error", _source(recipe, key)))
    return result


def _lists(recipe: Annotations, probed: Annotations) -> list[Conflict]:
    result = []
    for short, known in (("shell.implementation", None), ("tools.includes", set(TOOLS))):
        key = P + short
        claimed, found = recipe.get(key), probed.get(key)
        if not claimed or found is None:
            continue
        have = set(found.split(","))
        lacking = [i for i in claimed.split(",") if i not in have and (known is None or i in known)]
        if lacking:
            result.append(Conflict(key, claimed, found, f"the recipe says {', '.join(lacking)}, the image has "
                                   f"{found}", "error", _source(recipe, key), _source(probed, key)))
    return result


def cross_check(recipe: Annotations, probed: Annotations | ProbeResult) -> list[Conflict]:
    """Every claim of ``recipe`` that the image contradicts (``probed``: the probe's annotations or result)."""
    findings = probed.findings if isinstance(probed, ProbeResult) else None
    annotations = probed.annotations if isinstance(probed, ProbeResult) else probed
    conflicts = _mpi(recipe, annotations, findings)
    claims, holds = by_kind(recipe), by_kind(annotations)
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
    conflicts += _frameworks(recipe, findings)
    conflicts += _lists(recipe, annotations)
    if findings is not None:
        key = HARDWARE_GPU_NVIDIA_CUDA_VERSION
        if recipe.get(key) and not any(f.kind == "cuda" for f in findings) and key not in annotations:
            conflicts.append(Conflict(key, recipe.get(key), None, f"the recipe says CUDA {recipe.get(key)}, the "
                                      "image holds no libcudart.so (linked statically?)", "warning",
                                      _source(recipe, key)))
    return conflicts
