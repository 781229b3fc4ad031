"""Facts about versions, MPI ABIs and CUDA architecture spellings that both sides use.

The recipe adapters (what an image was built with) and the host side (``fingerprint``,
``match``: what a node offers) read the same facts; they live here so that neither side
imports the other's code.
"""

from __future__ import annotations

import re

from hpcannotate.model.versions import COMMIT, RELEASE_VERSION, is_release_version, release_key, version_key  # noqa: F401 - the adapters read them here


def mpi_abi_version(implementation: str, version: str | None) -> str | None:
    """The MPI ABI version the library exposes, only where it is certain.

    MPICH 3.1+, MVAPICH2 2.0+, Intel MPI 5.0+ and Cray MPICH 7+ share the MPICH
    ABI (libmpi.so.12); Open MPI 3.0 and newer ship libmpi.so.40.
    """
    if not version:
        return None
    v = release_key(version, 3)  # (major, minor, patch): only the digits of a release say anything
    if not v:
        return None
    minimum = {"mpich": "3.1", "mvapich2": "2.0", "intelmpi": "5.0", "cray-mpich": "7.0"}
    if implementation in minimum:
        return "12.0" if v >= version_key(minimum[implementation]) else None
    if implementation == "openmpi":
        return "40.0" if v >= version_key("3.0") else None
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
