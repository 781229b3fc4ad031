"""Includes a shared part, like NVIDIA's osu_benchmarks recipe does."""
hpccm.include('include_part.py')
Stage0 += openmpi(version='5.0.3')
