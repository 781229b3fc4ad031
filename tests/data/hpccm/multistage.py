"""Multi-stage: build with CUDA devel, copy the runtime into a slim CUDA runtime image.

The final image gets Open MPI + UCX + NCCL through Stage0.runtime(), but not
the LLVM in the build stage (excluded), and the app through copy(_from=...).
"""
Stage0 += baseimage(image='nvcr.io/nvidia/cuda:12.4.1-devel-ubuntu22.04', _as='build')
Stage0 += gnu(version='12')
Stage0 += ucx(version='1.15.0', cuda=True)
mpi = openmpi(version='4.1.5', ucx='/usr/local/ucx',
              pmix='/usr/local/pmix')
Stage0 += mpi
Stage0 += pmix(version='4.2.9')
Stage0 += nccl(version='2.18.3-1', cuda='12.4')

Stage1 += baseimage(image='nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04')
Stage1 += Stage0.runtime(_from='build')

# added to the build stage after runtime() ran: reaches the final image only through copy()
Stage0 += generic_cmake(url='https://ftp.gromacs.org/gromacs/gromacs-2023.3.tar.gz', prefix='/usr/local/gromacs',
                        cmake_opts=['-D GMX_MPI=ON', '-D GMX_GPU=CUDA', '-D CMAKE_CUDA_ARCHITECTURES=80;90'])
Stage1 += copy(_from='build', src='/usr/local/gromacs', dest='/usr/local/gromacs')
Stage1 += label(metadata={'maintainer': 'HPC team <hpc@example.org>',
                          'org.supercontainers.mpi.portability.mode': 'mpi_replace'})
