"""Facts about versions, MPI ABIs and CUDA architecture spellings that both sides use.

The recipe adapters (what an image was built with) and the host side (``fingerprint``,
``match``: what a node offers) read the same facts; they live here so that neither side
imports the other's code.
"""

from __future__ import annotations

import re

RELEASE_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*(?:[.+~_-]?[A-Za-z0-9]+)*")
COMMIT = re.compile(r"[0-9a-f]{40}")


def is_release_version(version: str | None) -> bool:
    """``4.1.5``, ``5.0.0rc12``, ``2.3.7-1``: a release; not ``git.0123abc=main``, a commit hash or ``develop``."""
    if not version or "=" in version or COMMIT.fullmatch(version):
        return False
    return RELEASE_VERSION.fullmatch(version) is not None


_LEADING_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def _version_tuple(version: str) -> tuple[int, ...] | None:
    """(major, minor, patch) of a release version (``4.1.5``, ``5.0.0rc12``, ``2019.6-088``); None for anything
    else: the digits must be the version itself (``git.0123abc=main``, a commit hash, ``develop`` say nothing)."""
    version = version.strip()
    if not is_release_version(version):
        return None
    return tuple(int(p) for p in _LEADING_NUMBERS.match(version).group(0).split(".")[:3])


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
