"""Where manifests live: an OCI layout on disk or a repository in a registry, behind one interface.

Every command that reads or writes manifests (build's index, inspect, annotate,
match) works on either, so "no registry" is never a special case.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from .layout import OciLayout
from .media import ALL_MANIFEST_TYPES, sha256_digest


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    media_type: str
    digest: str

    def json(self) -> dict:
        import json

        return json.loads(self.raw)


class ImageStore(ABC):
    """A place holding manifests and blobs, addressed by tag or digest."""

    @abstractmethod
    def describe(self, ref: str | None = None) -> str:
        """A reference a user can paste (``oci:PATH:tag``, ``registry/repo:tag``)."""

    @abstractmethod
    def get_manifest(self, ref: str) -> Manifest: ...

    @abstractmethod
    def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None) -> str: ...

    @abstractmethod
    def get_blob(self, digest: str) -> bytes: ...


class LayoutStore(ImageStore):
    def __init__(self, layout: OciLayout):
        self.layout = layout

    def describe(self, ref: str | None = None) -> str:
        return f"oci:{self.layout.path}" + (f":{ref}" if ref and not ref.startswith("sha256:") else "")

    def get_manifest(self, ref: str) -> Manifest:
        if ref.startswith("sha256:"):
            raw = self.layout.read_blob(ref)
            import json

            media_type = json.loads(raw).get("mediaType", "")
            return Manifest(raw, media_type, ref)
        desc = self.layout.find(ref)
        raw = self.layout.read_blob(desc["digest"])
        return Manifest(raw, desc.get("mediaType", ""), desc["digest"])

    def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None) -> str:
        if media_type not in ALL_MANIFEST_TYPES:
            raise ValueError(f"not a manifest media type: {media_type}")
        digest = self.layout.put_blob(raw)
        if tag:
            self.layout.set_ref({"mediaType": media_type, "digest": digest, "size": len(raw)}, tag)
        assert digest == sha256_digest(raw)
        return digest

    def get_blob(self, digest: str) -> bytes:
        return self.layout.read_blob(digest)
