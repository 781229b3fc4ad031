r"""
PyTorch built from source for one CPU target: CUDA + cuDNN + NCCL, Open MPI + UCX
(the torch.distributed MPI backend, and mpirun for launching), or CPU only.
NCCL and cuDNN are the ones NVIDIA's CUDA image ships (USE_SYSTEM_NCCL=1).

  hpccm --recipe pytorch.py --cpu-target sapphirerapids --userarg cuda=12.4.1
  hpccm --recipe pytorch.py --cpu-target zen4

USERARGs (all optional):
  pytorch=2.4.1        PyTorch release (git tag v<pytorch>)
  cuda=12.4.1          CUDA toolkit: build on nvcr.io/nvidia/cuda:<cuda>-cudnn-devel-ubuntu22.04
                       (default: CPU only, on ubuntu:22.04)
  cuda_arch=8.0;9.0    TORCH_CUDA_ARCH_LIST (compute capabilities compiled in), with cuda= only
  ompi=4.1.6           Open MPI release
  ucx=1.15.0           UCX release

A wheel from pypi.org is compiled for the x86-64 baseline whatever the host;
building from source is what makes one image per CPU target meaningful: the
C++ code gets the target's -march/-mcpu flags (hpccm's --cpu-target, through
archspec). Without --cpu-target the recipe builds for x86_64_v3 (aarch64 on an
Arm host) and says so.
"""

# hpccm execs a recipe with separate globals and locals, so the functions below
# import what they use themselves.
import archspec.cpu  # hpccm's own dependency: the CPU target's family
import hpccm

PYTORCH_VERSION = USERARG.get('pytorch', '2.4.1')
CUDA_VERSION = USERARG.get('cuda', '')
CUDA_ARCH = USERARG.get('cuda_arch', '8.0;9.0')
OMPI_VERSION = USERARG.get('ompi', '4.1.6')
UCX_VERSION = USERARG.get('ucx', '1.15.0')
GCC = ('12', '12.3.0')  # Ubuntu 22.04's gcc-12 package, and the compiler version it installs
# NCCL in NVIDIA's CUDA images (its NCCL_VERSION variable), per CUDA release; others are not labelled.
# 12.4.1: libnccl2 2.21.5-1+cuda12.4 (NV_LIBNCCL_PACKAGE of nvcr.io/nvidia/cuda:12.4.1-*-ubuntu22.04).
IMAGE_NCCL = {'12.4.1': '2.21.5'}


def default_target():
    """The target when hpccm was given none: a portable one for the build host's architecture."""
    import hpccm

    if hpccm.config.g_cpu_arch == hpccm.config.cpu_arch.AARCH64:
        return 'aarch64'
    return 'x86_64_v3'


def sm_list(arch_list):
    """TORCH_CUDA_ARCH_LIST ('8.0;9.0', '9.0+PTX') -> 'sm_80,sm_90' (+PTX also embeds compute_NN)."""
    found = []
    for item in arch_list.replace(',', ';').replace(' ', ';').split(';'):
        if not item:
            continue
        number = item.split('+')[0].replace('.', '')
        found.append('sm_' + number)
        if item.endswith('+PTX'):
            found.append('compute_' + number)
    return ','.join(found)


target = hpccm.config.g_cpu_target
if not target:
    target = default_target()
    hpccm.config.set_cpu_target(target)
family = archspec.cpu.TARGETS[target].family.name
flags = hpccm.config.get_cpu_optimization_flags('gcc', GCC[1])

if CUDA_VERSION:
    build_image = 'nvcr.io/nvidia/cuda:{}-cudnn-devel-ubuntu22.04'.format(CUDA_VERSION)
    runtime_image = 'nvcr.io/nvidia/cuda:{}-cudnn-runtime-ubuntu22.04'.format(CUDA_VERSION)
else:
    build_image = runtime_image = 'ubuntu:22.04'

######
# Build stage
######
Stage0 += comment('PyTorch {} for CPU target {}{}'.format(
    PYTORCH_VERSION, target,
    ', CUDA {} (TORCH_CUDA_ARCH_LIST={})'.format(CUDA_VERSION, CUDA_ARCH) if CUDA_VERSION else ', CPU only'))
Stage0 += baseimage(image=build_image, _as='build', arch=family)

compiler = gnu(version=GCC[0], fortran=False)
# hpccm fills CFLAGS/CXXFLAGS with archspec's flags for the newest gcc; use those gcc-12 accepts.
compiler.toolchain.CFLAGS = compiler.toolchain.CXXFLAGS = flags
Stage0 += compiler
if not flags:
    Stage0 += comment('gcc {} has no -march/-mcpu for {}: built with the baseline flags'.format(GCC[1], target))
Stage0 += packages(ospackages=['ca-certificates', 'git', 'libopenblas-dev', 'make', 'python3-dev', 'python3-pip',
                               'python3-venv', 'wget'])
Stage0 += ofed()  # the distribution's verbs / rdmacm libraries, for UCX's InfiniBand and RoCE transports

Stage0 += ucx(version=UCX_VERSION, prefix='/usr/local/ucx', toolchain=compiler.toolchain,
              cuda='/usr/local/cuda' if CUDA_VERSION else False, gdrcopy=False,
              knem=False, ofed=True, enable_mt=True)

Stage0 += openmpi(version=OMPI_VERSION, prefix='/usr/local/openmpi', toolchain=compiler.toolchain,
                  cuda=bool(CUDA_VERSION), infiniband=False, ucx='/usr/local/ucx')

build_env = ['MAX_JOBS=$(nproc)', 'BUILD_TEST=0', 'USE_DISTRIBUTED=1', 'USE_MPI=1', 'USE_GLOO=1',
             'BLAS=OpenBLAS', 'USE_MKLDNN=1']
if flags:
    build_env += ["CFLAGS='{}'".format(flags), "CXXFLAGS='{}'".format(flags)]
if CUDA_VERSION:
    build_env += ['USE_CUDA=1', 'USE_CUDNN=1', 'USE_NCCL=1', 'USE_SYSTEM_NCCL=1',
                  'TORCH_CUDA_ARCH_LIST="{}"'.format(CUDA_ARCH)]
else:
    build_env += ['USE_CUDA=0', 'USE_NCCL=0']

Stage0 += generic_build(
    repository='https://github.com/pytorch/pytorch.git',
    branch='v{}'.format(PYTORCH_VERSION),
    recursive=True,
    prefix='/opt/pytorch',
    build=['python3 -m venv /opt/pytorch',
           '/opt/pytorch/bin/pip install --no-cache-dir --upgrade pip setuptools wheel',
           '/opt/pytorch/bin/pip install --no-cache-dir -r requirements.txt',
           'env {} /opt/pytorch/bin/python setup.py bdist_wheel'.format(' '.join(build_env))],
    install=['/opt/pytorch/bin/pip install --no-cache-dir dist/torch-*.whl'],
    devel_environment={'PATH': '/opt/pytorch/bin:$PATH'},
    runtime_environment={'PATH': '/opt/pytorch/bin:$PATH'})

######
# Runtime stage: the venv with torch, the libraries it links, no compilers or sources
######
Stage1 += baseimage(image=runtime_image, arch=family)
Stage1 += packages(ospackages=['libnuma1', 'libopenblas0', 'python3'])  # what torch links beyond the blocks' runtimes
Stage1 += Stage0.runtime(_from='build')
if CUDA_VERSION:
    # What the build used but no building block says: the GPU architectures (TORCH_CUDA_ARCH_LIST is
    # an environment variable of the build) and the base image's NCCL. The recipe states them itself.
    stated = {'org.supercontainers.hardware.gpu.nvidia.architecture': sm_list(CUDA_ARCH)}
    if CUDA_VERSION in IMAGE_NCCL:
        stated['org.supercontainers.nccl.version'] = IMAGE_NCCL[CUDA_VERSION]
    Stage1 += label(metadata=stated)
