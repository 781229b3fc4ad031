"""The host described in the image vocabulary: canonical ``org.supercontainers.*`` keys.

An image says "built for zen3, CUDA 12.4, sm_90, Open MPI 4.1 (ABI 40.0),
glibc 2.35"; the host says "zen2, driver 550.54.15 runs CUDA <= 12.4, sm_90,
Open MPI 4.1.5, glibc 2.35" under the same keys, so a matcher compares them key
by key. For the host the keys mean what it offers: ``kernel.version`` is the
running kernel, ``host.kernel.modules.expectation`` lists the kernel features
present, ``communication.framework`` the fabric libraries installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpcannotate.model.keynames import (
    COMMUNICATION_FRAMEWORK,
    GLIBC_VERSION,
    HARDWARE_CPU_OPTIMIZED_MODE,
    HARDWARE_CPU_OPTIMIZED_VERSION,
    HARDWARE_GPU_AMD_ARCHITECTURE,
    HARDWARE_GPU_NVIDIA_ARCHITECTURE,
    HARDWARE_GPU_NVIDIA_CUDA_VERSION,
    HARDWARE_GPU_NVIDIA_DRIVER_VERSION,
    HOST_KERNEL_MODULES_EXPECTATION,
    KERNEL_VERSION,
    LIBC_IMPLEMENTATION,
    LIBFABRIC_VERSION,
    MPI_ABI_VERSION,
    MPI_IMPLEMENTATION,
    MPI_VERSION,
    UCX_VERSION,
)

if TYPE_CHECKING:
    from hpcannotate.host import Fingerprint


def host_annotations(fp: Fingerprint) -> dict[str, str]:
    values: dict[str, str | None] = {
        HARDWARE_CPU_OPTIMIZED_VERSION: fp.cpu.target,
        HARDWARE_CPU_OPTIMIZED_MODE: fp.cpu.mode,
    }
    nvidia = fp.gpu.nvidia if fp.gpu else None
    if nvidia:
        values[HARDWARE_GPU_NVIDIA_DRIVER_VERSION] = nvidia.driver_version
        values[HARDWARE_GPU_NVIDIA_CUDA_VERSION] = nvidia.cuda_version
        values[HARDWARE_GPU_NVIDIA_ARCHITECTURE] = ",".join(nvidia.architectures) or None
    amd = fp.gpu.amd if fp.gpu else None
    if amd:
        values[HARDWARE_GPU_AMD_ARCHITECTURE] = ",".join(amd.architectures) or None
    if fp.software.mpi:
        mpi = fp.software.mpi[0]
        values[MPI_IMPLEMENTATION] = mpi.implementation
        values[MPI_VERSION] = mpi.version
        values[MPI_ABI_VERSION] = mpi.abi_version
    net = fp.interconnect
    values[COMMUNICATION_FRAMEWORK] = ",".join(net.frameworks) or None
    values[LIBFABRIC_VERSION] = net.libfabric.version if net.libfabric else None
    values[UCX_VERSION] = net.ucx.version if net.ucx else None
    values[LIBC_IMPLEMENTATION] = fp.os.libc
    values[GLIBC_VERSION] = fp.os.libc_version if fp.os.libc == "glibc" else None
    values[KERNEL_VERSION] = fp.os.kernel_version
    features = (["user-namespaces"] if fp.os.user_namespaces.enabled else []) + list(fp.os.filesystems)
    values[HOST_KERNEL_MODULES_EXPECTATION] = ",".join(features) or None
    return {key: value for key, value in values.items() if value}
