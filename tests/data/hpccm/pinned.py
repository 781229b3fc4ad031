"""A recipe that pins its own CPU target (so --target must not win) and branches on it."""
import hpccm

hpccm.config.set_cpu_target('neoverse_v2')

Stage0 += baseimage(image='nvcr.io/nvidia/cuda:12.4.1-devel-ubuntu22.04', _arch='aarch64')
if hpccm.config.g_cpu_target == 'neoverse_v2':
    Stage0 += nvhpc(eula=True, version='24.5', cuda='12.4', mpi=False)
    Stage0 += mvapich2(version='2.3.7')
