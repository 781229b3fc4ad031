"""Domain facts shared by every adapter: package names of MPIs, compilers and fabrics.

Each recipe format spells the same software differently (Spack ``intel-oneapi-mpi``,
EasyBuild ``impi``, HPCCM ``intel_mpi``); adapters map their spelling through
these tables instead of keeping their own copies.
"""

from __future__ import annotations

from hpcannotate.model.domain import (  # noqa: F401 - shared with the host side; re-exported for the adapters
    COMMIT,
    RELEASE_VERSION,
    cuda_arch_to_sm,
    is_release_version,
    mpi_abi_version,
)

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

def bundled_mpi_reason(package: str, version: str | None = None) -> str | None:
    """Why the version of ``package`` is not its MPI's version (HPC-X), or None for a plain MPI package."""
    bundle = BUNDLED_MPI.get(package.lower())
    if bundle is None:
        return None
    said = f" {version}" if version else ""
    return f"{bundle}{said} bundles Open MPI; its version is not the Open MPI version, which the recipe does not say"


def major_minor(version: str) -> str:
    """``12.4.1`` -> ``12.4``: CUDA is annotated as major.minor, as the seeds write it."""
    parts = version.split(".")
    return ".".join(parts[:2])
