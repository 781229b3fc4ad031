"""Making an image's blobs present in another repository, as cheaply as the two ends allow.

An index can only point at manifests of its own repository, so ``collection apply`` has to
make each listed image's config and layers present where the collection's index goes. In
order of preference: already there (nothing sent); same registry (a cross-repository mount:
the registry links the blob, no bytes move); otherwise the blob is streamed across through a
temporary file, never held in memory. ``annotate`` never calls this: a retrofit stays in
its repository and moves manifests only.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hpcannotate.errors import HpcAnnotateError
from hpcannotate.files import open_regular
from hpcannotate.registry.auth import DigestMismatchError, push_scope
from hpcannotate.registry.repository import ImageRepository, LayoutRepository, RegistryRepository

log = logging.getLogger("hpcannotate.registry")


@dataclass
class TransferReport:
    """How each blob reached the target: found there, mounted (no bytes), or copied (bytes counted)."""

    present: int = 0
    mounted: int = 0
    copied: int = 0
    bytes_copied: int = 0

    def add(self, other: TransferReport) -> None:
        self.present += other.present
        self.mounted += other.mounted
        self.copied += other.copied
        self.bytes_copied += other.bytes_copied

    def to_dict(self) -> dict:
        return {"present": self.present, "mounted": self.mounted, "copied": self.copied,
                "bytes_copied": self.bytes_copied}


def ensure_blobs(source: ImageRepository, target: ImageRepository, blobs: list[tuple[str, int]]) -> TransferReport:
    """Make every (digest, size) blob of ``source`` present in ``target``."""
    report = TransferReport()
    if source.same_repository(target):
        report.present += len(blobs)
        return report
    for digest, _size in blobs:
        if _has_blob(target, digest):
            report.present += 1
        elif _mount(source, target, digest):
            report.mounted += 1
        else:
            report.bytes_copied += _copy(source, target, digest)
            report.copied += 1
    return report


def _has_blob(repo: ImageRepository, digest: str) -> bool:
    if isinstance(repo, RegistryRepository):
        return repo.client.blob_exists(repo.reference, digest)
    assert isinstance(repo, LayoutRepository)
    return repo.layout.has_blob(digest)


def _mount(source: ImageRepository, target: ImageRepository, digest: str) -> bool:
    """A cross-repository mount on one registry; False (and the upload it opened cancelled) if refused."""
    if not (isinstance(source, RegistryRepository) and isinstance(target, RegistryRepository)):
        return False
    if source.reference.registry != target.reference.registry:
        return False
    client = target.client
    # The client's upload start speaks the mount protocol; a refused mount opens a plain upload.
    location = client._start_upload(target.reference, digest, source.reference)
    if location is None:
        return True
    try:
        client._request("DELETE", target.reference, location, [push_scope(target.reference.repository)],
                        ok=(200, 202, 204), missing_ok=True, what="upload cancel")
    except HpcAnnotateError as exc:  # the registry expires abandoned uploads anyway
        log.debug("cancelling an unused upload failed: %s", exc)
    return False


def _copy(source: ImageRepository, target: ImageRepository, digest: str) -> int:
    """Stream one blob across through a temporary file; returns its size."""
    with tempfile.TemporaryDirectory(prefix="hpcannotate-blob-") as tmp:
        return put_file(target, _local_copy(source, digest, Path(tmp) / "blob"), digest)


def put_file(target: ImageRepository, path: Path, digest: str) -> int:
    """Store the blob in file ``path`` (of digest ``digest``) in ``target`` unless it is there: the bytes sent."""
    if _has_blob(target, digest):
        return 0
    open_regular(path, "blob").close()  # a FIFO or device in a layout's blobs/ would block or never end
    size = path.stat().st_size
    if isinstance(target, RegistryRepository):
        target.client.push_blob(target.reference, path, digest=digest)
    else:
        assert isinstance(target, LayoutRepository)
        writer = target.layout.blob_writer()
        try:
            with open_regular(path, "blob") as fh:
                shutil.copyfileobj(fh, writer)
            got = writer.commit()
        except BaseException:
            writer.abort()
            raise
        if got != digest:
            raise DigestMismatchError(f"{target.describe()}: blob {digest} arrived with digest {got}")
    return size


def _local_copy(source: ImageRepository, digest: str, path: Path) -> Path:
    """A file holding the blob: the layout's own file, or the registry's bytes streamed to ``path``."""
    if isinstance(source, LayoutRepository):
        if not source.layout.has_blob(digest):
            raise HpcAnnotateError(f"{source.describe()}: blob {digest} is missing from the layout")
        return source.layout.blob_path(digest)
    assert isinstance(source, RegistryRepository)
    with path.open("wb") as fh:
        for chunk in source.client.get_blob(source.reference, digest):  # digest-checked at the end
            fh.write(chunk)
    return path
