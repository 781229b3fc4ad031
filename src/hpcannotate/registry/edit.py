"""Editing manifests without touching what they point at: annotations, and Docker -> OCI media types.

A retrofit changes one field of a manifest (``annotations``) and, for Docker v2 schema 2
images that cannot carry annotations, the media types; config and layer digests and sizes,
and every other field, are copied as they are, so the new manifest needs no blob upload.
Pure functions on parsed JSON: the retrofit and the collection builder share them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hpcannotate.errors import InputError
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX, catalogue
from hpcannotate.oci.media import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
    OCI_MANIFEST,
    canonical_json,
)

DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

# Docker v2 schema 2 media type -> its OCI equivalent (same bytes, same digest for blobs).
DOCKER_TO_OCI = {
    DOCKER_MANIFEST: OCI_MANIFEST,
    DOCKER_LIST: OCI_INDEX,
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_TAR: OCI_LAYER_TAR,
    DOCKER_FOREIGN_LAYER: OCI_NONDISTRIBUTABLE,
}
DOCKER_TYPES = (DOCKER_MANIFEST, DOCKER_LIST)


@dataclass(frozen=True)
class KeyChange:
    """One key of one annotation set: absent -> value (added), value -> absent (removed), or changed."""

    key: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"

    def to_dict(self) -> dict:
        return {"key": self.key, "old": self.old, "new": self.new, "change": self.kind}


@dataclass
class AnnotationChange:
    """What a curator asked for: keys to set (canonical spelling) and keys to remove.

    ``apply`` keeps every key not named, in its place and spelling; a named key is replaced in
    whatever spelling the image carries (an alias such as ``mpi.provider`` gives way to the
    canonical ``mpi.implementation``), so one key never ends up with two values. A key the image
    already has with the asked value (in any spelling) is left as it is: applying twice changes
    nothing the second time.
    """

    set: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    aliases: bool = False  # also write the seeds' spellings (``--aliases``), kept in step with the canonical key

    def __post_init__(self) -> None:
        both = sorted(set(self.set) & set(self.unset))
        if both:
            raise InputError(f"{both[0]}: both set and unset; name each key once")

    @property
    def named(self) -> frozenset[str]:
        return frozenset(self.set) | frozenset(self.unset)

    def is_empty(self) -> bool:
        return not self.set and not self.unset

    def apply(self, existing: Mapping[str, str]) -> dict[str, str]:
        already = self._already(existing)
        named = self.named - already
        result: dict[str, str] = {}
        placed: set[str] = set(already)
        for key, value in existing.items():
            canonical = canonical_key(key)
            if canonical not in named:
                result[key] = value
            elif canonical in self.set and canonical not in placed:
                result[canonical] = self.set[canonical]
                placed.add(canonical)
        for key, value in self.set.items():
            if key not in placed:
                result[key] = value
        return with_alias_spellings(result) if self.aliases else result

    def _already(self, existing: Mapping[str, str]) -> set[str]:
        """Keys to set that the image already carries with that value, in whatever spelling: left alone."""
        spelled: dict[str, set[str]] = {}
        for key, value in existing.items():
            spelled.setdefault(canonical_key(key), set()).add(value)
        return {key for key, value in self.set.items() if spelled.get(key) == {value}}

    def restricted(self, keys: Iterable[str]) -> AnnotationChange:
        """The part of this change that concerns ``keys`` (in any spelling): to keep copies in step."""
        present = {canonical_key(k) for k in keys}
        return AnnotationChange({k: v for k, v in self.set.items() if k in present},
                                tuple(k for k in self.unset if k in present), self.sources, self.aliases)

    def to_dict(self) -> dict:
        return {"set": dict(self.set), "unset": list(self.unset), "sources": list(self.sources),
                "aliases": self.aliases}


def canonical_key(key: str) -> str:
    return catalogue().canonical(key)


def with_alias_spellings(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` with every catalogue key in its canonical spelling and every alias spelling of it
    (``mpi.provider`` beside ``mpi.implementation``, ``openmpi.version`` beside ``mpi.version`` of an
    Open MPI image), all equal to the canonical value; an alias spelling whose condition does not
    hold (``openmpi.version`` of an image that says mpich) is dropped, so no spelling states a
    wrong value. Where the image has both spellings, the canonical one's value wins."""
    cat = catalogue()
    canonical: dict[str, str] = {}
    result: dict[str, str] = {}
    for key, value in values.items():
        found = cat.resolve(key)
        if found is None or not key.startswith(SUPERCONTAINERS_PREFIX):
            result[key] = value  # other tools' keys, unknown keys: as they are
        elif found[1] is None:
            canonical[found[0].key] = value
        else:
            canonical.setdefault(found[0].key, value)
    for key, value in canonical.items():
        result[key] = value
        for alias in cat.specs[key].aliases:
            if alias.applies_to(canonical):
                result[alias.key] = value
    return result


def diff(old: Mapping[str, str], new: Mapping[str, str]) -> list[KeyChange]:
    """Every key that differs, in the order of the new set then the removed keys."""
    changes = [KeyChange(k, old.get(k), v) for k, v in new.items() if old.get(k) != v]
    changes += [KeyChange(k, v, None) for k, v in old.items() if k not in new]
    return changes


def annotations_of(data: Mapping, where: str) -> dict[str, str]:
    """A manifest's or descriptor's annotations; values that are not text are refused (not silently lost)."""
    found = data.get("annotations") or {}
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise InputError(f"{where}: annotations are not a mapping of text to text")
    return dict(found)


def with_annotations(data: dict, annotations: Mapping[str, str]) -> dict:
    """A copy of ``data`` whose annotations are ``annotations`` (the field dropped when empty)."""
    result = dict(data)
    if annotations:
        result["annotations"] = dict(annotations)
    else:
        result.pop("annotations", None)
    return result


def is_docker(media_type: str) -> bool:
    return media_type in DOCKER_TYPES


def docker_to_oci(data: dict, media_type: str, where: str) -> tuple[dict, str]:
    """The OCI form of a Docker v2 schema 2 manifest or list: media types only, same blobs and digests."""
    if media_type not in DOCKER_TO_OCI:
        return data, media_type
    result = dict(data)
    result["mediaType"] = DOCKER_TO_OCI[media_type]
    if media_type == DOCKER_MANIFEST:
        result["config"] = _oci_descriptor(data.get("config") or {}, f"{where}: config")
        result["layers"] = [_oci_descriptor(layer, f"{where}: layer {n}")
                            for n, layer in enumerate(data.get("layers") or [])]
    return result, DOCKER_TO_OCI[media_type]


def _oci_descriptor(desc: dict, where: str) -> dict:
    media_type = desc.get("mediaType")
    if media_type in DOCKER_TO_OCI:
        return {**desc, "mediaType": DOCKER_TO_OCI[media_type]}
    if isinstance(media_type, str) and media_type.startswith("application/vnd.oci."):
        return desc
    raise InputError(f"{where}: media type {media_type!r} has no OCI equivalent; cannot convert")


def serialise(data: dict) -> bytes:
    """The bytes of a rewritten manifest (compact, key order kept, UTF-8)."""
    return canonical_json(data)


def blobs_of(data: Mapping) -> list[tuple[str, int]]:
    """(digest, size) of an image manifest's config and layers, to check they did not change."""
    found = []
    for desc in [data.get("config") or {}, *(data.get("layers") or [])]:
        if isinstance(desc, dict) and desc.get("digest"):
            found.append((desc["digest"], int(desc.get("size") or 0)))
    return found
