"""The image probe: system annotations read from an image's own layers, without a container runtime.

``probe_image(ref)`` streams the layers of an OCI layout, a registry image or an
image in buildah's store, keeps only the files ``userland.TABLE`` names, and
infers libc, glibc, OS, python, shells, tools, PATH, MPI, UCX, libfabric, CUDA
and NCCL (provenance layer ``image probe``, each value with its image path).
``cross_check(recipe, result)`` lists where a recipe's claims and the image disagree.
"""

from __future__ import annotations

from hpcannotate.image.probe.crosscheck import Conflict, cross_check
from hpcannotate.image.probe.layers import LayerError
from hpcannotate.image.probe.probe import ProbeResult, probe_image

__all__ = ["Conflict", "LayerError", "ProbeResult", "cross_check", "probe_image"]
