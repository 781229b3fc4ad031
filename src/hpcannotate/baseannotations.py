"""The base image's own annotations, carried into the new image as its lowest layer (seed 001).

"The base image might provide some basic annotations": read them (manifest
annotations and config labels) from the builder's store, with provenance
``base image``. Only what still holds for an image built on top is inherited:
the user land (os, libc, shells, python, tools, PATH), MPI, interconnect, GPU
runtime, compiler and host requirements. The OCI keys, docs, app, build recipe
and CPU target of a base describe the base (an annotated application image
used as a base is not the new application) and are left out, as are keys the
catalogue does not know.
"""

from __future__ import annotations

import json
import subprocess

from .annotations import Annotations
from .catalogue import SUPERCONTAINERS_PREFIX, catalogue
from .errors import HpcAnnotateError
from .provenance import Layer, Provenance

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


def buildah_inspect(ref: str, global_args: list[str]) -> dict | None:
    """``buildah inspect --type image`` of ``ref`` as the store holds it; None when it is not there."""
    try:
        proc = subprocess.run([*global_args, "inspect", "--type", "image", ref], capture_output=True, text=True,
                              check=False, timeout=60)
    except subprocess.TimeoutExpired:
        raise HpcAnnotateError(f"base image {ref}: `buildah inspect` did not answer in 60 s") from None
    except OSError as exc:
        raise HpcAnnotateError(f"base image {ref}: cannot run buildah inspect: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        return None
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:
        raise HpcAnnotateError(f"base image {ref}: buildah inspect printed no JSON ({exc})") from None
    if not isinstance(data, dict):
        raise HpcAnnotateError(f"base image {ref}: buildah inspect printed {type(data).__name__}, not an object")
    return data


def _config(data: dict) -> dict:
    config = (data.get("OCIv1") or {}).get("config") or {}
    return config if isinstance(config, dict) else {}


def from_buildah(ref: str, global_args: list[str]) -> Annotations | None:
    """The base as the buildah store holds it (what the build will use); None when it is not there."""
    data = buildah_inspect(ref, global_args)
    if data is None:
        return None
    labels = _config(data).get("Labels")
    annotations = data.get("ImageAnnotations")
    return from_values(ref, annotations if isinstance(annotations, dict) else None,
                       labels if isinstance(labels, dict) else None, "read from the buildah store")


def env_from_buildah(ref: str, global_args: list[str]) -> dict[str, str] | None:
    """The base's environment (config ``Env``) as the buildah store holds it; None when it is not there."""
    data = buildah_inspect(ref, global_args)
    if data is None:
        return None
    env = _config(data).get("Env") or []
    pairs = (str(item).partition("=") for item in env if isinstance(item, str))
    return {name: value for name, _, value in pairs if name}
