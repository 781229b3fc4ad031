"""A recipe that branches on the CPU target given with --target (hpccm's cpu_target)."""
import hpccm

Stage0 += baseimage(image='ubuntu:22.04')
if hpccm.config.g_cpu_target == 'zen3':
    Stage0 += intel_mpi(eula=True, version='2021.10.0-49371')
else:
    Stage0 += mpich(version='3.4.3')
Stage0 += label(metadata={'built.for': hpccm.config.g_cpu_target or 'generic'})
