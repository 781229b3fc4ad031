"""Domain facts shared by every adapter: package names of MPIs, compilers and fabrics.

Each recipe format spells the same software differently (Spack ``intel-oneapi-mpi``,
EasyBuild ``impi``, HPCCM ``intel_mpi``); adapters map their spelling through
these tables instead of keeping their own copies.
"""

from __future__ import annotations

import re

# package / building-block name (lower case) -> mpi.implementation
MPI_PACKAGES: dict[str, str] = {
    "openmpi": "openmpi",
    "open-mpi": "openmpi",
    "hpcx": "openmpi",
    "hpcx-mpi": "openmpi",
    "mpich": "mpich",
    "mvapich2": "mvapich2",
    "mvapich2_gdr": "mvapich2",
    "mvapich2-gdr": "mvapich2",
    "mvapich": "mvapich2",
    "intel_mpi": "intelmpi",
    "intel-mpi": "intelmpi",
    "intel-oneapi-mpi": "intelmpi",
    "impi": "intelmpi",
    "cray-mpich": "cray-mpich",
}

# package name (lower case) -> compiler.implementation
COMPILER_PACKAGES: dict[str, str] = {
    "gcc": "gcc",
    "gnu": "gcc",
    "gcccore": "gcc",
    "llvm": "llvm",
    "llvm-compilers": "llvm",
    "clang": "llvm",
    "intel": "intel",
    "iccifort": "intel",
    "icc": "intel",
    "ifort": "intel",
    "acfl": "armclang",
    "intel-compilers": "oneapi",
    "intel-oneapi-compilers": "oneapi",
    "oneapi": "oneapi",
    "nvhpc": "nvhpc",
    "pgi": "nvhpc",
    "aocc": "aocc",
    "cce": "cce",
    "arm": "armclang",
    "armclang": "armclang",
    "fujitsu": "fujitsu",
    "xl": "xl",
}

# package name (lower case) -> communication.framework item
FABRIC_PACKAGES: dict[str, str] = {
    "ucx": "ucx",
    "libfabric": "libfabric",
    "rdma-core": "verbs",
    "psm2": "psm2",
    "opa-psm2": "psm2",
}


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", version.split("-")[0])
    return tuple(int(p) for p in parts[:3])


def mpi_abi_version(implementation: str, version: str | None) -> str | None:
    """The MPI ABI version the library exposes, only where it is certain.

    MPICH 3.1+, MVAPICH2 2.0+, Intel MPI 5.0+ and Cray MPICH 7+ share the MPICH
    ABI (libmpi.so.12); Open MPI 3.0 and newer ship libmpi.so.40.
    """
    if not version:
        return None
    v = _version_tuple(version)
    if not v:
        return None
    minimum = {"mpich": (3, 1), "mvapich2": (2, 0), "intelmpi": (5, 0), "cray-mpich": (7, 0)}
    if implementation in minimum:
        return "12.0" if v >= minimum[implementation] else None
    if implementation == "openmpi":
        return "40.0" if v >= (3, 0) else None
    return None


def cuda_arch_to_sm(value: str) -> list[str]:
    """``80`` / ``8.0`` / ``sm_80`` / ``80,90`` -> ``['sm_80', 'sm_90']`` (Spack cuda_arch, EasyBuild capabilities)."""
    result = []
    for item in re.split(r"[,;\s]+", value.strip()):
        item = item.strip().lower().removeprefix("sm_")
        if not item or item == "none":
            continue
        if "." in item:
            major, _, minor = item.partition(".")
            item = f"{major}{minor}"
        if re.fullmatch(r"\d{2,3}[af]?", item):
            sm = f"sm_{item}"
            if sm not in result:
                result.append(sm)
    return result


def major_minor(version: str) -> str:
    """``12.4.1`` -> ``12.4``: CUDA is annotated as major.minor, as the seeds write it."""
    parts = version.split(".")
    return ".".join(parts[:2])
