# PyTorch 1.13.1 from Debian bookworm's own packages (python3-torch 1.13.1+dfsg-4, Python 3.11):
# CPU only (built with USE_CUDA=OFF, USE_NCCL=OFF, USE_MPI=OFF; torch.distributed has the gloo backend).
# libtorch links "libblas.so.3", which without another provider is the slow reference BLAS;
# libopenblas0-pthread registers OpenBLAS for it through update-alternatives (float32 matmul
# measured ~45x faster). Recommends (libtorch-dev, build-essential, ninja-build, pybind11-dev)
# are for building C++ extensions and are left out.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3-torch \
      libopenblas0-pthread \
 && rm -rf /var/lib/apt/lists/*
