"""Library use: the recipe labels its own image with hpcannotate's annotations() (run with `hpccm --recipe`)."""
from hpcannotate.hpccm import annotations

Stage0 += baseimage(image='nvcr.io/nvidia/cuda:12.4.1-devel-ubuntu22.04', _as='build')
Stage0 += gnu(version='12')
Stage0 += ucx(version='1.15.0', cuda=True)
Stage0 += openmpi(version='4.1.5', ucx='/usr/local/ucx')
Stage0 += generic_cmake(url='https://example.org/downloads/myapp-1.2.3.tar.gz', prefix='/usr/local/myapp',
                        cmake_opts=['-D CMAKE_CUDA_ARCHITECTURES=80;90'])

Stage1 += baseimage(image='nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04')
Stage1 += Stage0.runtime(_from='build')
Stage1 += annotations(Stage1, target=USERARG.get('target', 'zen3'),
                      mpi_portability_mode='mpi_replace',
                      **{'org.opencontainers.image.description': "myapp with Open MPI, it's $fast"})
