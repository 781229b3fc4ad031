"""Stage0.runtime(exclude=...): the excluded MPI and the nvhpc block (no redist=, copies nothing) stay behind."""
Stage0 += baseimage(image='nvcr.io/nvidia/cuda:12.4.1-devel-ubuntu22.04', _as='build')
Stage0 += gnu(version='12')
compiler = nvhpc(eula=True, version='24.5', cuda='12.4')
Stage0 += compiler
Stage0 += mpich(version='4.2.1')
Stage0 += generic_autotools(url='https://example.org/stream-5.10.tar.gz', prefix='/opt/stream',
                            toolchain=compiler.toolchain)

Stage1 += baseimage(image='ubuntu:22.04')
Stage1 += Stage0.runtime(_from='build', exclude=['mpich'])
