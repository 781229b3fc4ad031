"""Media types and digests of the OCI image spec (and the Docker v2 formats registries still serve)."""

from __future__ import annotations

import hashlib
import json

from hpcannotate.errors import InputError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ALL_MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)

# Registries reject manifests above 4 MiB; annotations (base64 docs) count towards it.
MANIFEST_LIMIT = 4 * 1024 * 1024
MANIFEST_WARN = 256 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj: object) -> bytes:
    """Manifests we write: compact, key order kept, UTF-8, so the digest is stable."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    desc = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    desc.update({k: v for k, v in extra.items() if v})
    return desc


def is_index(media_type: str | None) -> bool:
    return media_type in INDEX_TYPES


def check_shape(data: dict, where: str) -> None:
    """Refuse, in one line, the descriptor shapes every reader below relies on (so none of them trips on
    a string where an object belongs): ``config``, ``layers``, ``manifests``, annotations, platforms."""
    if "config" in data and not isinstance(data["config"], dict):
        raise InputError(f"{where}: config is not a descriptor object")
    descriptors = [("config", data["config"])] if "config" in data else []
    for field_name in ("layers", "manifests"):
        listed = data.get(field_name)
        if listed is None:
            continue
        if not isinstance(listed, list):
            raise InputError(f"{where}: {field_name} is not a list")
        descriptors += [(f"{field_name}[{n}]", desc) for n, desc in enumerate(listed)]
    for name, desc in descriptors:
        if not isinstance(desc, dict):
            raise InputError(f"{where}: {name} is not a descriptor object")
        if not isinstance(desc.get("digest"), str) or not isinstance(desc.get("size", 0), int):
            raise InputError(f"{where}: {name} has no text digest or no integer size")
        for part in ("platform", "annotations"):
            if desc.get(part) is not None and not isinstance(desc[part], dict):
                raise InputError(f"{where}: {name}.{part} is not an object")
    if data.get("annotations") is not None and not isinstance(data["annotations"], dict):
        raise InputError(f"{where}: annotations is not an object")
