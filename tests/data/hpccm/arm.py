"""An aarch64 base image (by name); hpcx is Open MPI + UCX."""
Stage0 += baseimage(image='nvcr.io/nvidia/cuda-arm64:12.2.0-devel-ubuntu22.04')
Stage0 += hpcx(version='2.16', inbox=True)
Stage0 += gdrcopy(version='2.4.1', annotate=False)
