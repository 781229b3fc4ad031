"""The base image's own annotations, carried into the new image as its lowest layer (seed 001).

"The base image might provide some basic annotations": read them (manifest
annotations and config labels) where the builder keeps the base (``builders.buildah.from_buildah``,
``builders.buildx_bases``), with provenance
``base image``. Only what still holds for an image built on top is inherited:
the user land (os, libc, shells, python, tools, PATH), MPI, interconnect, GPU
runtime, compiler and host requirements. The OCI keys, docs, app, build recipe
and CPU target of a base describe the base (an annotated application image
used as a base is not the new application) and are left out, as are keys the
catalogue does not know.
"""

from __future__ import annotations

from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX, catalogue
from hpcannotate.model.provenance import Layer, Provenance

# Catalogue groups that describe the user land a derived image keeps.
INHERITED_GROUPS = frozenset({"system", "mpi", "interconnect", "host"})
# ``extension`` and ``hardware`` keys (short form) that do too; the rest of those groups
# (app.*, docs.build.*, build.recipe.format, platform.features, container.entrypoint.profile,
# hardware.cpu.*) are about the image that was built, not its contents' foundations.
INHERITED_PREFIXES = ("os.", "compiler.", "nccl.", "ucx.", "libfabric.", "hardware.gpu.")


def inheritable(key: str) -> bool:
    """Whether a base image's value for ``key`` also describes an image built FROM it."""
    found = catalogue().resolve(key)
    if found is None:
        return False
    spec = found[0]
    short = spec.key.removeprefix(SUPERCONTAINERS_PREFIX)
    if not spec.key.startswith(SUPERCONTAINERS_PREFIX):
        return False
    return spec.group in INHERITED_GROUPS or short.startswith(INHERITED_PREFIXES)


def _ours(values: dict | None) -> dict[str, str]:
    return {k: v for k, v in (values or {}).items()
            if isinstance(k, str) and isinstance(v, str) and k.startswith(SUPERCONTAINERS_PREFIX) and inheritable(k)}


def from_values(ref: str, manifest_annotations: dict | None, labels: dict | None, where: str) -> Annotations | None:
    """Labels first, manifest annotations over them (they are the more deliberate statement)."""
    values = {**_ours(labels), **_ours(manifest_annotations)}
    if not values:
        return None
    return Annotations.from_mapping(values, Provenance(Layer.BASE_IMAGE, ref, note=where))
