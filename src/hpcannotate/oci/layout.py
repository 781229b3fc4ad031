"""OCI image layouts on disk (``oci-layout``, ``index.json``, ``blobs/sha256/``).

The layout is hpcannotate's embedded default output: no registry and no daemon
needed, and buildah, skopeo, crane and buildx all read it. Writes go to a
temporary file first and are renamed into place, so an interrupted write never
leaves a half blob or a half ``index.json``. ``mkstemp`` makes its files 0600;
they are given the mode ``open()`` would have given them (0666 less the umask,
0644 under 022), as buildah and skopeo do: layouts live on shared file systems
and other users' skopeo, umoci or Charliecloud must read them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.files import kind_of, os_reason, read_bytes, read_text
from hpcannotate.model.keynames import OCI_REF_NAME
from hpcannotate.oci.media import OCI_INDEX, canonical_json, check_shape, sha256_digest

REF_NAME = OCI_REF_NAME
LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}
BLOB_LIMIT = 64 * 1024 * 1024  # manifests and configs read whole; the registry client allows configs this large


def current_umask() -> int:
    """The process umask, read without changing it where Linux tells it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # older kernels: set and restore (not thread-safe, hence the last resort)
    os.umask(old)
    return old


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would create: 0666 less the umask."""
    return 0o666 & ~current_umask()


def _mkstemp(directory: Path, mode: int) -> tuple[int, str]:
    """A temporary file in ``directory`` with ``mode`` (an ordinary new file's, not mkstemp's 0600)."""
    import tempfile  # only when writing a layout: it pulls in random and shutil

    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _mkstemp(path.parent, mode)
    except OSError as exc:  # /proc, a read-only mount, a file where a directory belongs
        raise InputError(f"{path.parent}: cannot write an OCI layout file here ({os_reason(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(f"{path}: cannot write ({os_reason(exc)})") from None
        raise


class BlobWriter:
    """Stream a large blob into the layout while hashing it; ``commit()`` names it by digest."""

    def __init__(self, layout: OciLayout):
        self._layout = layout
        self._dir = layout.path / "blobs" / "sha256"
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = _mkstemp(self._dir, layout.mode)
        except OSError as exc:
            raise InputError(f"{self._dir}: cannot write a blob here ({os_reason(exc)})") from None
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
        self.mode = file_mode()  # once per layout: reading the umask costs more than a small blob's write
        # how messages name the layout: an archive read through a cached layout names the archive
        self.label = label or f"oci:{self.path}"

    # -- lifecycle ------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path) -> OciLayout:
        layout = cls(path)
        try:
            layout.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"oci:{path}: cannot create an OCI layout here ({os_reason(exc)})") from None
        if not (layout.path / "oci-layout").exists():
            _atomic_write(layout.path / "oci-layout", json.dumps(LAYOUT_FILE).encode(), layout.mode)
        if not (layout.path / "index.json").exists():
            layout.write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        return layout

    @classmethod
    def open(cls, path: str | Path, label: str | None = None) -> OciLayout:
        layout = cls(path, label)
        for name in ("oci-layout", "index.json"):
            file = layout.path / name
            if not file.is_file():
                kind = kind_of(file.stat().st_mode) if file.exists() else None
                why = f"{name} is {kind}" if kind else "oci-layout or index.json missing"
                raise InputError(f"{layout.label}: not an OCI image layout ({why})")
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
            _atomic_write(path, data, self.mode)
        return digest

    def blob_writer(self) -> BlobWriter:
        return BlobWriter(self)

    def read_blob(self, digest: str, verify: bool = True, limit: int = BLOB_LIMIT) -> bytes:
        """A manifest, index or config blob (never a layer: those are streamed), at most ``limit`` bytes."""
        path = self.blob_path(digest)
        if not os.path.lexists(path):
            raise InputError(f"{self.label}: blob {digest} is missing")
        data = read_bytes(path, "manifest or config blob", limit)
        if verify and sha256_digest(data) != digest:
            raise InputError(f"{self.label}: blob {digest} is corrupt (its content has another digest)")
        return data

    def read_json(self, digest: str) -> dict:
        try:
            return json.loads(self.read_blob(digest))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.label}: blob {digest} is not JSON: {getattr(exc, 'msg', exc.reason)}") from None
        except RecursionError:
            raise InputError(f"{self.label}: blob {digest} is JSON nested too deeply") from None

    # -- index ----------------------------------------------------------
    def index(self) -> dict:
        where = f"{self.label}: index.json"
        text = read_text(self.path / "index.json", "layout index")
        try:
            index = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not JSON: {exc.msg} (line {exc.lineno})") from None
        except RecursionError:
            raise InputError(f"{where}: JSON nested too deeply") from None
        if not isinstance(index, dict):
            raise InputError(f"{where}: not a JSON object")
        check_shape(index, where)
        return index

    def write_index(self, index: dict) -> None:
        _atomic_write(self.path / "index.json", json.dumps(index, indent=2).encode(), self.mode)

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
