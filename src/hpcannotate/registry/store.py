"""A registry repository as an ``ImageStore``: the same interface as an OCI layout."""

from __future__ import annotations

from pathlib import Path

from ..oci.store import ImageStore, Manifest
from .client import RegistryClient
from .reference import Reference, parse_reference


class RegistryStore(ImageStore):
    def __init__(self, client: RegistryClient, reference: Reference):
        self.client = client
        self.reference = reference

    @classmethod
    def for_reference(cls, ref: str, *, tls_verify: bool = True, authfile: Path | None = None,
                      plain_http: bool | None = None) -> RegistryStore:
        reference = parse_reference(ref)
        client = RegistryClient(authfile=authfile, insecure=not tls_verify, plain_http=plain_http)
        return cls(client, reference)

    def _ref(self, ref: str) -> Reference:
        return self.reference.with_digest(ref) if ref.startswith("sha256:") else self.reference.with_tag(ref)

    def describe(self, ref: str | None = None) -> str:
        return str(self._ref(ref)) if ref else str(self.reference)

    def get_manifest(self, ref: str) -> Manifest:
        raw = self.client.get_manifest(self._ref(ref))
        return Manifest(raw.raw, raw.media_type, raw.digest)

    def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None) -> str:
        from ..oci.media import sha256_digest

        target = self.reference.with_tag(tag) if tag else self.reference.with_digest(sha256_digest(raw))
        return self.client.put_manifest(target, raw, media_type)

    def get_blob(self, digest: str) -> bytes:
        return self.client.fetch_blob(self.reference, digest)
