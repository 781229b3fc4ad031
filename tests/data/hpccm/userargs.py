"""USERARG: the MPI is chosen on the command line (--userarg mpi=mpich|openmpi), and is required."""
mpi = USERARG['mpi']
version = USERARG.get('version', '4.1.2')

Stage0 += baseimage(image='ubuntu:22.04')
if mpi == 'mpich':
    Stage0 += mpich(version=version)
elif mpi == 'openmpi':
    Stage0 += openmpi(version=version, cuda=False)
else:
    raise ValueError('unknown mpi ' + mpi)
