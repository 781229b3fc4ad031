"""A manifest as stored: its exact bytes, media type and digest.

Where manifests live (an OCI layout or a registry repository, behind one interface) is
``registry.repository.ImageRepository``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    media_type: str
    digest: str

    def json(self) -> dict:
        import json

        return json.loads(self.raw)
