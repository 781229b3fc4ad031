"""Writing image layers: a directory tree as a gzip-compressed tar, streamed into a layout.

Both digests an image needs come out of one pass: the blob digest (of the
compressed bytes, for the manifest) and the diff ID (of the uncompressed tar,
for the config's ``rootfs``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from hpcannotate.oci.layout import OciLayout
from hpcannotate.oci.media import OCI_LAYER_GZIP


@dataclass(frozen=True)
class Layer:
    digest: str
    diff_id: str
    size: int

    def descriptor(self) -> dict:
        return {"mediaType": OCI_LAYER_GZIP, "digest": self.digest, "size": self.size}


class _HashingGzip:
    """File object for tarfile: hashes the tar stream, then gzips it into the blob writer."""

    def __init__(self, sink, level: int):
        self._gzip = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=level, mtime=0)
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self._gzip.write(data)

    def close(self) -> None:
        self._gzip.close()


def _entries(root: Path):
    """Every path under root, parents before children, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            yield base / name


def directory_layer(root: Path, layout: OciLayout, compresslevel: int = 1) -> Layer:
    """Pack ``root`` as a layer (owners, modes, links and device nodes kept; sockets skipped)."""
    writer = layout.blob_writer()
    try:
        stream = _HashingGzip(writer, compresslevel)
        with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in _entries(root):
                mode = path.lstat().st_mode
                if stat.S_ISSOCK(mode):
                    continue
                info = tar.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                if info.isreg():
                    with path.open("rb") as fh:
                        tar.addfile(info, fh)
                else:
                    tar.addfile(info)
        stream.close()
        diff_id = "sha256:" + stream.hash.hexdigest()
        size = writer.size
        digest = writer.commit()
    except BaseException:
        writer.abort()
        raise
    return Layer(digest, diff_id, size)
