r"""
GROMACS built from source for one CPU target: Open MPI + UCX, optional CUDA.

  hpccm --recipe gromacs.py --cpu-target zen3
  hpccm --recipe gromacs.py --cpu-target sapphirerapids --userarg cuda=12.4.1

USERARGs (all optional):
  gromacs=2023.3     GROMACS release (ftp.gromacs.org tarball)
  cuda=12.4.1        CUDA toolkit: build on nvcr.io/nvidia/cuda:<cuda>-devel-ubuntu22.04 with -DGMX_GPU=CUDA
                     (default: CPU only, on ubuntu:22.04)
  cuda_arch=70;80;90 GPU compute capabilities compiled in (GMX_CUDA_TARGET_SM), with cuda= only
  ompi=4.1.6         Open MPI release
  ucx=1.15.0         UCX release

The SIMD level (GMX_SIMD) follows the CPU target given with --cpu-target, so
one image carries one binary set; without --cpu-target the recipe builds for
x86_64_v3 (aarch64 on an Arm host) and says so.
"""

# hpccm execs a recipe with separate globals and locals, so the functions below
# import what they use themselves.
import archspec.cpu  # hpccm's own dependency: the CPU target's family and features
import hpccm

GROMACS_VERSION = USERARG.get('gromacs', '2023.3')
CUDA_VERSION = USERARG.get('cuda', '')
CUDA_ARCH = USERARG.get('cuda_arch', '70;80;90')
OMPI_VERSION = USERARG.get('ompi', '4.1.6')
UCX_VERSION = USERARG.get('ucx', '1.15.0')
GCC = ('12', '12.3.0')  # Ubuntu 22.04's gcc-12 package, and the compiler version it installs

# SVE vector length (bits) of Arm CPUs whose SVE is wider than NEON's 128 bits.
# GROMACS fixes the SVE length at configure time and aborts on a CPU with another
# length, so only these get ARM_SVE; every other aarch64 target gets ARM_NEON_ASIMD.
SVE_BITS = {'a64fx': 512, 'neoverse_v1': 256}


def default_target():
    """The target when hpccm was given none: a portable one for the build host's architecture."""
    import hpccm

    if hpccm.config.g_cpu_arch == hpccm.config.cpu_arch.AARCH64:
        return 'aarch64'
    return 'x86_64_v3'


def gmx_simd(target, cuda, sve_lengths=SVE_BITS):
    """GMX_SIMD (and the SVE length) for an archspec target, as GROMACS's own
    simdSuggested() would pick on that CPU (src/gromacs/hardware/simd_support.cpp):
    AVX-512 CPUs -> AVX_512 (Zen4 included, GROMACS #4715), AVX2 -> AVX2_256
    (Zen1 -> AVX2_128 for CPU-only runs), AVX+FMA4 -> AVX_128_FMA, AVX -> AVX_256,
    SSE4.1 -> SSE4.1, Arm -> ARM_SVE (wide SVE) or ARM_NEON_ASIMD."""
    import archspec.cpu

    uarch = archspec.cpu.TARGETS[target]
    family = uarch.family.name
    if family == 'aarch64':
        # exact names only: a descendant of neoverse_v1 (neoverse_v2, Grace) has 128-bit SVE
        if target in sve_lengths:
            return 'ARM_SVE', sve_lengths[target]
        return 'ARM_NEON_ASIMD', None
    if family != 'x86_64':
        raise RuntimeError('CPU target {} ({}) is not x86_64 or aarch64'.format(target, family))
    features = uarch.features
    if 'avx512er' in features:
        return 'AVX_512_KNL', None
    if 'avx512f' in features:
        return 'AVX_512', None
    if 'avx2' in features:
        zen1 = target == 'zen'
        return ('AVX2_128' if zen1 and not cuda else 'AVX2_256'), None
    if 'avx' in features:
        return ('AVX_128_FMA' if 'fma4' in features else 'AVX_256'), None
    if 'sse4_1' in features:
        return 'SSE4.1', None
    return 'SSE2', None


target = hpccm.config.g_cpu_target
if not target:
    target = default_target()
    hpccm.config.set_cpu_target(target)
family = archspec.cpu.TARGETS[target].family.name
simd, sve_bits = gmx_simd(target, CUDA_VERSION)
flags = hpccm.config.get_cpu_optimization_flags('gcc', GCC[1])

if CUDA_VERSION:
    build_image = 'nvcr.io/nvidia/cuda:{}-devel-ubuntu22.04'.format(CUDA_VERSION)
    runtime_image = 'nvcr.io/nvidia/cuda:{}-runtime-ubuntu22.04'.format(CUDA_VERSION)
else:
    build_image = runtime_image = 'ubuntu:22.04'

######
# Build stage
######
Stage0 += comment('GROMACS {} for CPU target {} (GMX_SIMD={}{}){}'.format(
    GROMACS_VERSION, target, simd, ', SVE {} bits'.format(sve_bits) if sve_bits else '',
    ', CUDA ' + CUDA_VERSION if CUDA_VERSION else ', CPU only'))
Stage0 += baseimage(image=build_image, _as='build', arch=family)

compiler = gnu(version=GCC[0], fortran=False)
# hpccm fills CFLAGS/CXXFLAGS with archspec's flags for the newest gcc; use those gcc-12 accepts
# (none for a CPU newer than gcc-12, e.g. zen5: then only GROMACS's SIMD kernels are tuned).
compiler.toolchain.CFLAGS = compiler.toolchain.CXXFLAGS = flags
Stage0 += compiler
if not flags:
    Stage0 += comment('gcc {} has no -march for {}: only the GROMACS SIMD kernels ({}) are tuned'.format(
        GCC[1], target, simd))
Stage0 += packages(ospackages=['ca-certificates', 'cmake', 'file', 'libhwloc-dev', 'make', 'python3', 'wget',
                               'xz-utils'])
Stage0 += ofed()  # the distribution's verbs / rdmacm libraries, for UCX's InfiniBand and RoCE transports

if CUDA_VERSION:
    Stage0 += gdrcopy(version='2.4.1', prefix='/usr/local/gdrcopy', toolchain=compiler.toolchain)

Stage0 += ucx(version=UCX_VERSION, prefix='/usr/local/ucx', toolchain=compiler.toolchain,
              cuda='/usr/local/cuda' if CUDA_VERSION else False,
              gdrcopy='/usr/local/gdrcopy' if CUDA_VERSION else False,
              knem=False, ofed=True, enable_mt=True)

Stage0 += openmpi(version=OMPI_VERSION, prefix='/usr/local/openmpi', toolchain=compiler.toolchain,
                  cuda=bool(CUDA_VERSION), infiniband=False, ucx='/usr/local/ucx')

cmake_opts = [
    '-D CMAKE_BUILD_TYPE=Release',
    '-D GMX_MPI=ON',
    '-D GMX_OPENMP=ON',
    '-D GMX_SIMD={}'.format(simd),
    '-D GMX_BUILD_OWN_FFTW=ON',
    '-D GMX_HWLOC=ON',
    '-D GMXAPI=OFF',
    '-D GMX_INSTALL_NBLIB_API=OFF',
    '-D BUILD_TESTING=OFF',
    '-D REGRESSIONTEST_DOWNLOAD=OFF',
]
if sve_bits:
    cmake_opts.append('-D GMX_SIMD_ARM_SVE_LENGTH={}'.format(sve_bits))
if CUDA_VERSION:
    cmake_opts.append('-D GMX_GPU=CUDA')
    cmake_opts.append('-D GMX_CUDA_TARGET_SM="{}"'.format(CUDA_ARCH))

gromacs = generic_cmake(
    url='https://ftp.gromacs.org/gromacs/gromacs-{}.tar.gz'.format(GROMACS_VERSION),
    prefix='/usr/local/gromacs',
    cmake_opts=cmake_opts,
    toolchain=compiler.toolchain,
    # GMX_MPI=ON installs gmx_mpi only; `gmx` (what users type, and `IMAGE gmx mdrun ...`) runs the same binary
    postinstall=['ln -s gmx_mpi /usr/local/gromacs/bin/gmx'],
    devel_environment={'PATH': '/usr/local/gromacs/bin:$PATH'},
    runtime_environment={'PATH': '/usr/local/gromacs/bin:$PATH'})
Stage0 += gromacs

######
# Runtime stage: the libraries and binaries only, no compilers or sources
######
Stage1 += baseimage(image=runtime_image, arch=family)
Stage1 += Stage0.runtime(_from='build')
