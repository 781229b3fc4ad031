# GROMACS 2022.5 and Open MPI 4.1.4 from Debian bookworm's own packages (no sources, no compiler).
# The `gromacs` package ships gmx (thread-MPI), gmx_mpi (linked with Open MPI's libmpi.so.40) and
# the double-precision gmx_d / gmx_mpi_d; Debian merged the former gromacs-openmpi package into it
# in 2021.1-2. openmpi-bin adds mpirun. Recommends (cpp, mpi-default-bin) are not needed to run.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gromacs \
      openmpi-bin \
 && rm -rf /var/lib/apt/lists/*
