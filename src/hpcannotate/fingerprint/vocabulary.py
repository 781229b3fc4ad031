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

if TYPE_CHECKING:
    from . import Fingerprint

P = "org.supercontainers."


def host_annotations(fp: Fingerprint) -> dict[str, str]:
    values: dict[str, str | None] = {
        P + "hardware.cpu.optimized.version": fp.cpu.target,
        P + "hardware.cpu.optimized.mode": fp.cpu.mode,
    }
    nvidia = fp.gpu.nvidia if fp.gpu else None
    if nvidia:
        values[P + "hardware.gpu.nvidia.driver.version"] = nvidia.driver_version
        values[P + "hardware.gpu.nvidia.cuda.version"] = nvidia.cuda_version
        values[P + "hardware.gpu.nvidia.architecture"] = ",".join(nvidia.architectures) or None
    amd = fp.gpu.amd if fp.gpu else None
    if amd:
        values[P + "hardware.gpu.amd.architecture"] = ",".join(amd.architectures) or None
    if fp.software.mpi:
        mpi = fp.software.mpi[0]
        values[P + "mpi.implementation"] = mpi.implementation
        values[P + "mpi.version"] = mpi.version
        values[P + "mpi.abi.version"] = mpi.abi_version
    net = fp.interconnect
    values[P + "communication.framework"] = ",".join(net.frameworks) or None
    values[P + "libfabric.version"] = net.libfabric.version if net.libfabric else None
    values[P + "ucx.version"] = net.ucx.version if net.ucx else None
    values[P + "libc.implementation"] = fp.os.libc
    values[P + "glibc.version"] = fp.os.libc_version if fp.os.libc == "glibc" else None
    values[P + "kernel.version"] = fp.os.kernel_version
    features = (["user-namespaces"] if fp.os.user_namespaces.enabled else []) + list(fp.os.filesystems)
    values[P + "host.kernel.modules.expectation"] = ",".join(features) or None
    return {key: value for key, value in values.items() if value}
