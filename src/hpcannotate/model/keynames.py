"""Every key of ``data/keys.yaml`` as a constant: code names keys the catalogue knows.

Why constants and not ``P + "..."`` literals: a misspelt literal is a key nobody reads, a
misspelt constant is an ImportError. The names follow one rule (``constant_name``), and
tests/test_keynames.py checks that this module and the catalogue agree both ways, so adding a
key to keys.yaml means adding its line here (the test prints it).
"""

from __future__ import annotations

SUPERCONTAINERS = "org.supercontainers."
OCI = "org.opencontainers.image."


def constant_name(key: str) -> str:
    """``org.supercontainers.mpi.abi.version`` -> ``MPI_ABI_VERSION``; OCI keys get ``OCI_``."""
    for prefix, head in ((SUPERCONTAINERS, ""), (OCI, "OCI_")):
        if key.startswith(prefix):
            rest = key[len(prefix):]
            return head + "".join(c if c.isalnum() else "_" for c in rest).upper()
    raise ValueError(f"{key}: not a catalogue key")


HARDWARE_CPU_OPTIMIZED_MODE = "org.supercontainers.hardware.cpu.optimized.mode"
HARDWARE_CPU_OPTIMIZED_VERSION = "org.supercontainers.hardware.cpu.optimized.version"
HARDWARE_GPU_NVIDIA_DRIVER_VERSION = "org.supercontainers.hardware.gpu.nvidia.driver.version"
HARDWARE_GPU_NVIDIA_CUDA_VERSION = "org.supercontainers.hardware.gpu.nvidia.cuda.version"
HARDWARE_GPU_NVIDIA_ARCHITECTURE = "org.supercontainers.hardware.gpu.nvidia.architecture"
MPI_IMPLEMENTATION = "org.supercontainers.mpi.implementation"
MPI_VERSION = "org.supercontainers.mpi.version"
MPI_ABI_VERSION = "org.supercontainers.mpi.abi.version"
MPI_PORTABILITY_OPTIMIZATION = "org.supercontainers.mpi.portability.optimization"
MPI_PORTABILITY_MODE = "org.supercontainers.mpi.portability.mode"
PMI_VERSION = "org.supercontainers.pmi.version"
COMMUNICATION_FRAMEWORK = "org.supercontainers.communication.framework"
LIBFABRIC_ABI_VERSION = "org.supercontainers.libfabric.abi.version"
LIBC_IMPLEMENTATION = "org.supercontainers.libc.implementation"
GLIBC_VERSION = "org.supercontainers.glibc.version"
PYTHON_VERSION = "org.supercontainers.python.version"
SHELL_IMPLEMENTATION = "org.supercontainers.shell.implementation"
TOOLS_INCLUDES = "org.supercontainers.tools.includes"
PATH_EXTRA = "org.supercontainers.path.extra"
KERNEL_VERSION = "org.supercontainers.kernel.version"
HOST_KERNEL_VERSION_MIN = "org.supercontainers.host.kernel.version.min"
HOST_KERNEL_MODULES_EXPECTATION = "org.supercontainers.host.kernel.modules.expectation"
DOCS_QUICKSTART_LINK = "org.supercontainers.docs.quickstart.link"
DOCS_QUICKSTART_BASE64 = "org.supercontainers.docs.quickstart.base64"
DOCS_BENCHMARK_LINK = "org.supercontainers.docs.benchmark.link"
DOCS_BENCHMARK_BASE64 = "org.supercontainers.docs.benchmark.base64"
DOCS_BUILD_DOCKERFILE = "org.supercontainers.docs.build.dockerfile"
DOCS_BUILD_SPACK_ENV = "org.supercontainers.docs.build.spack.env"
DOCS_BUILD_QUICKSTART_LINK = "org.supercontainers.docs.build.quickstart.link"
DOCS_BUILD_QUICKSTART_BASE64 = "org.supercontainers.docs.build.quickstart.base64"
OCI_TITLE = "org.opencontainers.image.title"
OCI_DESCRIPTION = "org.opencontainers.image.description"
OCI_VERSION = "org.opencontainers.image.version"
OCI_CREATED = "org.opencontainers.image.created"
OCI_AUTHORS = "org.opencontainers.image.authors"
OCI_URL = "org.opencontainers.image.url"
OCI_DOCUMENTATION = "org.opencontainers.image.documentation"
OCI_SOURCE = "org.opencontainers.image.source"
OCI_REVISION = "org.opencontainers.image.revision"
OCI_VENDOR = "org.opencontainers.image.vendor"
OCI_LICENSES = "org.opencontainers.image.licenses"
OCI_REF_NAME = "org.opencontainers.image.ref.name"
OCI_BASE_NAME = "org.opencontainers.image.base.name"
OCI_BASE_DIGEST = "org.opencontainers.image.base.digest"
APP_NAME = "org.supercontainers.app.name"
APP_VERSION = "org.supercontainers.app.version"
COMPILER_IMPLEMENTATION = "org.supercontainers.compiler.implementation"
COMPILER_VERSION = "org.supercontainers.compiler.version"
NCCL_VERSION = "org.supercontainers.nccl.version"
UCX_VERSION = "org.supercontainers.ucx.version"
LIBFABRIC_VERSION = "org.supercontainers.libfabric.version"
HARDWARE_GPU_AMD_ARCHITECTURE = "org.supercontainers.hardware.gpu.amd.architecture"
OS_NAME = "org.supercontainers.os.name"
OS_VERSION = "org.supercontainers.os.version"
BUILD_RECIPE_FORMAT = "org.supercontainers.build.recipe.format"
DOCS_BUILD_EASYCONFIG = "org.supercontainers.docs.build.easyconfig"
DOCS_BUILD_HPCCM_RECIPE = "org.supercontainers.docs.build.hpccm.recipe"
PLATFORM_FEATURES = "org.supercontainers.platform.features"
INDEX_COMPLETE = "org.supercontainers.index.complete"
CONTAINER_ENTRYPOINT_PROFILE = "org.supercontainers.container.entrypoint.profile"
