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

# packages whose own version is that of a bundle, not of the MPI inside it: HPC-X 2.17.1 ships an
# Open MPI whose version the package name does not say. name -> what the bundle is called.
BUNDLED_MPI: dict[str, str] = {
    "hpcx": "HPC-X",
    "hpcx-mpi": "HPC-X",
}

# package name (lower case) -> communication.framework item
FABRIC_PACKAGES: dict[str, str] = {
    "ucx": "ucx",
    "libfabric": "libfabric",
    "rdma-core": "verbs",
    "psm2": "psm2",
    "opa-psm2": "psm2",
}


# Roots that are part of the stack rather than the application an image is for (Spack package names;
# the HPCCM adapter compares the names of what generic blocks build, lower-cased, with the same set).
INFRASTRUCTURE = frozenset(
    {*MPI_PACKAGES, *COMPILER_PACKAGES, "intel-oneapi-compilers-classic", "gcc-runtime", "compiler-wrapper",
     "glibc", "musl", "cuda", "cudnn", "nccl", "ucx", "ucc", "libfabric", "rdma-core", "pmix", "hwloc",
     "libevent", "slurm", "python", "python-venv", "cmake", "gmake", "ninja", "binutils", "git", "llvm-amdgpu",
     "hip", "rocm-core", "hpcx", "hcoll", "xpmem", "knem", "numactl", "openssh"}
)

RELEASE_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*(?:[.+~_-]?[A-Za-z0-9]+)*")
COMMIT = re.compile(r"[0-9a-f]{40}")


def is_release_version(version: str | None) -> bool:
    """``4.1.5``, ``5.0.0rc12``, ``2.3.7-1``: a release; not ``git.0123abc=main``, a commit hash or ``develop``."""
    if not version or "=" in version or COMMIT.fullmatch(version):
        return False
    return RELEASE_VERSION.fullmatch(version) is not None


def bundled_mpi_reason(package: str, version: str | None = None) -> str | None:
    """Why the version of ``package`` is not its MPI's version (HPC-X), or None for a plain MPI package."""
    bundle = BUNDLED_MPI.get(package.lower())
    if bundle is None:
        return None
    said = f" {version}" if version else ""
    return f"{bundle}{said} bundles Open MPI; its version is not the Open MPI version, which the recipe does not say"


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


def major_minor(version: str) -> str:
    """``12.4.1`` -> ``12.4``: CUDA is annotated as major.minor, as the seeds write it."""
    parts = version.split(".")
    return ".".join(parts[:2])
