"""The base image's own annotations, carried into the new image as its lowest layer (seed 001).

"The base image might provide some basic annotations": read them (manifest
annotations and config labels, ``org.supercontainers.*`` only, since the OCI
keys of a base describe the base, not the new image) from the builder's store,
with provenance ``base image``.
"""

from __future__ import annotations

import json
import subprocess

from .annotations import Annotations
from .catalogue import SUPERCONTAINERS_PREFIX
from .provenance import Layer, Provenance


def _ours(values: dict | None) -> dict[str, str]:
    return {k: v for k, v in (values or {}).items() if isinstance(v, str) and k.startswith(SUPERCONTAINERS_PREFIX)}


def from_values(ref: str, manifest_annotations: dict | None, labels: dict | None, where: str) -> Annotations | None:
    """Labels first, manifest annotations over them (they are the more deliberate statement)."""
    values = {**_ours(labels), **_ours(manifest_annotations)}
    if not values:
        return None
    return Annotations.from_mapping(values, Provenance(Layer.BASE_IMAGE, ref, note=where))


def from_buildah(ref: str, global_args: list[str]) -> Annotations | None:
    """The base as the buildah store holds it (what the build will use)."""
    proc = subprocess.run([*global_args, "inspect", "--type", "image", ref], capture_output=True, text=True,
                          check=False, timeout=60)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    labels = (data.get("OCIv1") or {}).get("config", {}).get("Labels")
    return from_values(ref, data.get("ImageAnnotations"), labels, "read from the buildah store")
