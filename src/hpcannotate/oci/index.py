"""Assembling an OCI image index whose descriptors say which image is which.

``platform.features`` is reserved by the OCI spec, so what tells two amd64
images apart (their CPU target, MPI, CUDA) goes into each descriptor's
annotations, where a client reads it with the index alone.
"""

from __future__ import annotations

from .media import OCI_INDEX, canonical_json
from .store import Manifest

# Per-descriptor annotations stay small: no embedded documents, no long values.
MAX_DESCRIPTOR_VALUE = 512


def descriptor_annotations(annotations: dict[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in annotations.items()
        if ".docs." not in k and len(v) <= MAX_DESCRIPTOR_VALUE and k != "org.opencontainers.image.ref.name"
    }


def _platform(text: str) -> dict[str, str]:
    os_name, _, rest = text.partition("/")
    arch, _, variant = rest.partition("/")
    platform = {"architecture": arch, "os": os_name}
    if variant:
        platform["variant"] = variant
    return platform


def build_index(entries: list[tuple[Manifest, str, dict[str, str]]], annotations: dict[str, str]) -> bytes:
    """The raw index for (manifest, "os/arch[/variant]", descriptor annotations) entries."""
    manifests = []
    for manifest, platform, desc_annotations in entries:
        desc = {
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": len(manifest.raw),
            "platform": _platform(platform),
        }
        if desc_annotations:
            desc["annotations"] = dict(sorted(desc_annotations.items()))
        manifests.append(desc)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    if annotations:
        index["annotations"] = dict(sorted(annotations.items()))
    return canonical_json(index)
