"""OCI image layouts on disk (``oci-layout``, ``index.json``, ``blobs/sha256/``).

The layout is hpcannotate's embedded default output: no registry and no daemon
needed, and buildah, skopeo, crane and buildx all read it. Writes go to a
temporary file first and are renamed into place, so an interrupted write never
leaves a half blob or a half ``index.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError
from .media import OCI_INDEX, canonical_json, check_shape, sha256_digest

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class BlobWriter:
    """Stream a large blob into the layout while hashing it; ``commit()`` names it by digest."""

    def __init__(self, layout: OciLayout):
        self._layout = layout
        self._dir = layout.path / "blobs" / "sha256"
        self._dir.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")
        self._fh = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._fh.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._fh.flush()

    def commit(self) -> str:
        self._fh.close()
        digest = "sha256:" + self._hash.hexdigest()
        os.replace(self._tmp, self._layout.blob_path(digest))
        return digest

    def abort(self) -> None:
        self._fh.close()
        Path(self._tmp).unlink(missing_ok=True)


class OciLayout:
    def __init__(self, path: str | Path, label: str | None = None):
        self.path = Path(path)
        # how messages name the layout: an archive read through a cached layout names the archive
        self.label = label or f"oci:{self.path}"

    # -- lifecycle ------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path) -> OciLayout:
        layout = cls(path)
        layout.path.mkdir(parents=True, exist_ok=True)
        if not (layout.path / "oci-layout").exists():
            _atomic_write(layout.path / "oci-layout", json.dumps(LAYOUT_FILE).encode())
        if not (layout.path / "index.json").exists():
            layout.write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        return layout

    @classmethod
    def open(cls, path: str | Path, label: str | None = None) -> OciLayout:
        layout = cls(path, label)
        if not (layout.path / "oci-layout").is_file() or not (layout.path / "index.json").is_file():
            raise InputError(f"oci:{path}: not an OCI image layout (oci-layout or index.json missing)")
        return layout

    # -- blobs ----------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise InputError(f"{self.label}: unsupported or malformed digest {digest!r}")
        return self.path / "blobs" / "sha256" / hexdigest

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.exists():
            _atomic_write(path, data)
        return digest

    def blob_writer(self) -> BlobWriter:
        return BlobWriter(self)

    def read_blob(self, digest: str, verify: bool = True) -> bytes:
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise InputError(f"{self.label}: blob {digest} is missing") from None
        if verify and sha256_digest(data) != digest:
            raise InputError(f"{self.label}: blob {digest} is corrupt (its content has another digest)")
        return data

    def read_json(self, digest: str) -> dict:
        try:
            return json.loads(self.read_blob(digest))
        except json.JSONDecodeError as exc:
            raise InputError(f"{self.label}: blob {digest} is not JSON: {exc.msg}") from None

    # -- index ----------------------------------------------------------
    def index(self) -> dict:
        where = f"{self.label}: index.json"
        try:
            index = json.loads((self.path / "index.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{where}: unreadable: {exc}") from None
        if not isinstance(index, dict):
            raise InputError(f"{where}: not a JSON object")
        check_shape(index, where)
        return index

    def write_index(self, index: dict) -> None:
        _atomic_write(self.path / "index.json", json.dumps(index, indent=2).encode())

    def descriptors(self) -> Iterator[dict]:
        yield from self.index().get("manifests") or []

    def find(self, ref: str | None) -> dict:
        """The descriptor of ``ref`` (a tag in ``org.opencontainers.image.ref.name`` or a digest)."""
        manifests = list(self.descriptors())
        if ref is None:
            if len(manifests) == 1:
                return manifests[0]
            names = sorted({(d.get("annotations") or {}).get(REF_NAME, d["digest"]) for d in manifests})
            raise InputError(f"{self.label}: holds {len(manifests)} images; name one of: {', '.join(names)}")
        for desc in manifests:
            if desc["digest"] == ref or (desc.get("annotations") or {}).get(REF_NAME) == ref:
                return desc
        raise InputError(f"{self.label}: no image named {ref!r}")

    def set_ref(self, descriptor: dict, ref: str | None) -> None:
        """Point ``ref`` at ``descriptor``, replacing only the entry ``ref`` named; other names of the
        same digest stay. Without ``ref``: one unnamed entry per digest."""
        desc = dict(descriptor)
        if ref:
            desc["annotations"] = {**desc.get("annotations", {}), REF_NAME: ref}

        def replaced(entry: dict) -> bool:
            named = (entry.get("annotations") or {}).get(REF_NAME)
            return named == ref if ref else (named is None and entry.get("digest") == desc["digest"])

        index = self.index()
        kept = [d for d in index.get("manifests", []) if not replaced(d)]
        index["manifests"] = [*kept, desc]
        index.setdefault("mediaType", OCI_INDEX)
        self.write_index(index)

    def put_manifest(self, manifest: dict, media_type: str, ref: str | None = None, **desc_extra) -> dict:
        """Store a manifest or index blob, optionally naming it; returns its descriptor."""
        data = canonical_json(manifest)
        digest = self.put_blob(data)
        desc = {"mediaType": media_type, "digest": digest, "size": len(data)}
        desc.update({k: v for k, v in desc_extra.items() if v})
        if ref is not None:
            self.set_ref(desc, ref)
        return desc
