"""One repository's manifests and configs, in a registry or in an OCI image layout on disk.

``build`` (its index), ``probe``, ``inspect``, ``annotate`` and ``collection`` read and write
manifests by tag or digest, ask where a tag points now (to notice another writer), and read
image configs; layers go through the client or the layout directly. This module gives them
those few operations over ``RegistryClient`` (a registry repository) and ``OciLayout`` (a
directory), so "no registry" is never a special case. A layout write keeps what the old
``index.json`` entry carried (its platform and other annotations).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.oci.layout import REF_NAME, OciLayout
from hpcannotate.oci.media import ALL_MANIFEST_TYPES, INDEX_TYPES, OCI_INDEX, OCI_MANIFEST, check_shape, sha256_digest
from hpcannotate.oci.store import Manifest
from hpcannotate.registry.auth import RegistryError
from hpcannotate.registry.client import RegistryClient, TransferStats
from hpcannotate.registry.reference import Reference, parse_reference


class ImageRepository(ABC):
    """Manifests of one repository addressed by tag or digest; ``reference`` is what the user named."""

    def __init__(self, reference: Reference):
        self.reference = reference

    @property
    def tag(self) -> str | None:
        return self.reference.tag

    @property
    def stats(self) -> TransferStats | None:
        """Requests and bytes on the wire (None for a layout: nothing goes over a network)."""
        return None

    @abstractmethod
    def describe(self, ref: str | None = None) -> str:
        """A reference a user can paste for ``ref`` (a tag or a digest) in this repository."""

    @abstractmethod
    def get(self, ref: str | None) -> Manifest:
        """The manifest a tag or digest names, bytes as stored; None means the reference's own."""

    @abstractmethod
    def resolve(self, tag: str | None) -> str | None:
        """The digest ``tag`` points at now, or None when the tag does not exist."""

    @abstractmethod
    def exists(self, digest: str) -> bool:
        """True when a manifest with this digest is stored (an index must never point at a missing one)."""

    @abstractmethod
    def put(self, raw: bytes, media_type: str, tag: str | None = None) -> str:
        """Store a manifest by digest, and point ``tag`` at it when given; returns the digest."""

    def put_named(self, raw: bytes, media_type: str) -> str:
        """Store a manifest under the name the user gave: its tag, also in ``repo:tag@digest`` (where
        the digest only pins what the tag must point at before the write); by digest without a tag."""
        return self.put(raw, media_type, self.reference.tag)

    @abstractmethod
    def config(self, digest: str) -> bytes:
        """An image config blob (small JSON); layers are never read through here."""

    @abstractmethod
    def put_config(self, raw: bytes) -> str:
        """Store a small blob (a rewritten image config, ``annotate --labels``); returns its digest."""

    def same_repository(self, other: ImageRepository) -> bool:
        return self.reference.name == other.reference.name

    def close(self) -> None:  # noqa: B027 - a hook: only a registry repository holds connections
        """Release connections (a registry repository); nothing to do for a layout."""


class RegistryRepository(ImageRepository):
    """A repository of a registry, through the native client."""

    def __init__(self, client: RegistryClient, reference: Reference):
        super().__init__(reference)
        self.client = client

    @property
    def stats(self) -> TransferStats:
        return self.client.stats

    def _ref(self, ref: str | None) -> Reference:
        if ref is None:
            return self.reference
        return self.reference.with_digest(ref) if ref.startswith("sha256:") else self.reference.with_tag(ref)

    def describe(self, ref: str | None = None) -> str:
        return str(self._ref(ref))

    def get(self, ref: str | None) -> Manifest:
        raw = self.client.get_manifest(self._ref(ref))
        return Manifest(raw.raw, raw.media_type, raw.digest)

    def resolve(self, tag: str | None) -> str | None:
        head = self.client.head_manifest(self._ref(tag))
        return head.digest if head else None

    def exists(self, digest: str) -> bool:
        return self.client.head_manifest(self.reference.with_digest(digest)) is not None

    def put(self, raw: bytes, media_type: str, tag: str | None = None) -> str:
        target = self.reference.with_tag(tag) if tag else self.reference.with_digest(sha256_digest(raw))
        return self.client.put_manifest(target, raw, media_type)

    def config(self, digest: str) -> bytes:
        return self.client.fetch_blob(self.reference, digest)

    def put_config(self, raw: bytes) -> str:
        return self.client.push_blob(self.reference, raw)

    def close(self) -> None:
        self.client.close()


class LayoutRepository(ImageRepository):
    """An OCI image layout; tags are ``org.opencontainers.image.ref.name`` entries of ``index.json``."""

    def __init__(self, layout: OciLayout, reference: Reference):
        super().__init__(reference)
        self.layout = layout

    def describe(self, ref: str | None = None) -> str:
        base = self.reference.name
        if ref is None:
            return str(self.reference)
        return f"{base}@{ref}" if ref.startswith("sha256:") else f"{base}:{ref}"

    def _entry(self, tag: str | None) -> dict | None:
        """The ``index.json`` entry of ``tag``; without a tag, the only entry of a one-image layout."""
        manifests = list(self.layout.descriptors())
        if tag is None:
            if len(manifests) == 1:
                return manifests[0]
            if not manifests:
                return None
            self.layout.find(None)  # raises, naming the images the layout holds
        for desc in manifests:
            if (desc.get("annotations") or {}).get(REF_NAME) == tag:
                return desc
        return None

    def get(self, ref: str | None) -> Manifest:
        if ref is None:
            ref = self.reference.digest or self.reference.tag
        if ref is not None and ref.startswith("sha256:"):
            raw = self.layout.read_blob(ref)
            return Manifest(raw, _media_type_of(raw, str(self.describe(ref))), ref)
        entry = self._entry(ref)
        if entry is None:
            raise InputError(f"{self.describe(ref)}: no image named {ref!r} in the layout")
        raw = self.layout.read_blob(entry["digest"])
        media_type = entry.get("mediaType") or _media_type_of(raw, self.describe(ref))
        return Manifest(raw, media_type, entry["digest"])

    def resolve(self, tag: str | None) -> str | None:
        entry = self._entry(tag)
        return entry["digest"] if entry else None

    def exists(self, digest: str) -> bool:
        return self.layout.has_blob(digest)

    def put(self, raw: bytes, media_type: str, tag: str | None = None) -> str:
        if media_type not in ALL_MANIFEST_TYPES:
            raise InputError(f"{self.describe()}: {media_type!r} is not a manifest media type")
        digest = self.layout.put_blob(raw)
        if tag is not None:
            self._repoint(tag, {"mediaType": media_type, "digest": digest, "size": len(raw)})
        return digest

    def put_named(self, raw: bytes, media_type: str) -> str:
        """As for a registry; a layout's only, unnamed entry (``oci:PATH`` with no tag) is repointed too."""
        if self.reference.tag is None and self.reference.digest is None:
            if media_type not in ALL_MANIFEST_TYPES:
                raise InputError(f"{self.describe()}: {media_type!r} is not a manifest media type")
            digest = self.layout.put_blob(raw)
            self._repoint(None, {"mediaType": media_type, "digest": digest, "size": len(raw)})
            return digest
        return super().put_named(raw, media_type)

    def _repoint(self, tag: str | None, desc: dict) -> None:
        """Point ``tag`` at ``desc``, keeping the fields the old entry had (platform, other annotations)."""
        index = self.layout.index()
        manifests = list(index.get("manifests", []))
        for n, old in enumerate(manifests):
            named = (old.get("annotations") or {}).get(REF_NAME)
            if named == tag or (tag is None and len(manifests) == 1):
                manifests[n] = {**old, **desc}
                break
        else:
            manifests.append({**desc, "annotations": {REF_NAME: tag}} if tag else desc)
        index["manifests"] = manifests
        index.setdefault("schemaVersion", 2)
        index.setdefault("mediaType", OCI_INDEX)
        self.layout.write_index(index)

    def config(self, digest: str) -> bytes:
        return self.layout.read_blob(digest)

    def put_config(self, raw: bytes) -> str:
        return self.layout.put_blob(raw)


def _media_type_of(raw: bytes, where: str) -> str:
    """A stored manifest's media type from its own ``mediaType`` (OCI makes it optional: guess by shape)."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise InputError(f"{where}: not a JSON manifest") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: not a JSON manifest")
    media_type = data.get("mediaType")
    if media_type in ALL_MANIFEST_TYPES:
        return media_type
    if media_type is None:
        return OCI_INDEX if "manifests" in data else OCI_MANIFEST
    raise InputError(f"{where}: unsupported manifest media type {media_type!r}")


def open_repository(
    ref: str | Reference,
    *,
    client: RegistryClient | None = None,
    authfile: str | Path | None = None,
    tls_verify: bool = True,
    plain_http: bool | None = None,
    create: bool = False,
) -> ImageRepository:
    """The repository ``ref`` names: ``oci:PATH[:tag]`` is a layout (made when ``create``), else a registry.

    ``client`` lets callers share one client (its credentials, retry policy and statistics).
    """
    reference = parse_reference(ref) if isinstance(ref, str) else ref
    if reference.is_layout:
        assert reference.layout_path is not None
        if create and reference.archive:
            raise InputError(f"{reference}: an archive is read-only here (write to oci:DIR, then skopeo copy it)")
        layout = OciLayout.create(reference.layout_path) if create else \
            OciLayout.open(reference.layout_path, reference.archive)
        return LayoutRepository(layout, reference)
    client = client or RegistryClient(authfile=authfile, insecure=not tls_verify, plain_http=plain_http)
    return RegistryRepository(client, reference)


def is_index(manifest: Manifest) -> bool:
    return manifest.media_type in INDEX_TYPES


def manifest_json(manifest: Manifest, where: str) -> dict:
    """The parsed manifest, or a one-line error naming where it came from."""
    try:
        data = json.loads(manifest.raw)
    except ValueError:
        raise RegistryError(f"{where}: the manifest is not JSON") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{where}: the manifest is not a JSON object")
    check_shape(data, where)
    return data

