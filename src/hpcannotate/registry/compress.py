"""Compress the uncompressed layers of an image before it is pushed: gzip by default, zstd on request.

Builders write uncompressed layers into OCI layouts (buildah does, for speed); pushed as they
are, a GROMACS image sends 787 MB where gzip sends 335 MB. Here each plain-tar layer of a
manifest is compressed once into a scratch directory and the manifest rewritten to name the
compressed blob (media type, digest, size). The config is untouched: its ``rootfs.diff_ids``
are the digests of the uncompressed tars, which stay the same whatever the compression.

gzip uses Debian's ``pigz`` when it is on PATH (``-n``: no file name or time in the header),
streamed through a pipe with the digest and size computed as the bytes come out: it uses every
core, and its output does not depend on how many (``-p``), so the same layer gives the same blob
on every machine that has pigz. Without pigz (or with ``HPCANNOTATE_PIGZ=0``) Python's zlib at
the same level, on one core; its blob is as valid but not byte-identical to pigz's (a layer pushed
from two such machines is stored twice). Measured in ``bench/compress.py``.
zstd uses the ``zstandard`` module when installed, else the ``zstd`` command (Debian's
``zstd``); Docker v2 manifests have no zstd media type and are refused for it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.oci.media import DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD

COMPRESSIONS = ("gzip", "zstd", "none")
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
PLAIN = {OCI_LAYER_TAR: "oci", DOCKER_LAYER_TAR: "docker"}
MEDIA = {("oci", "gzip"): OCI_LAYER_GZIP, ("oci", "zstd"): OCI_LAYER_ZSTD, ("docker", "gzip"): DOCKER_LAYER_GZIP}
# level 4: on the 128 MB Debian layer 50.0 MB (skopeo's parallel gzip: 51.3 MB, level 6: 48.9 MB)
# at well under half level 6's time (bench/compress.py prints the figures beside skopeo's)
GZIP_LEVEL = 4
ZSTD_LEVEL = 3
CHUNK = 1024 * 1024


@dataclass
class Compressed:
    """The compressed blobs made for a push: digest -> file, and the sizes before and after."""

    directory: Path
    files: dict[str, Path] = field(default_factory=dict)
    bytes_before: int = 0
    bytes_after: int = 0
    made: dict[tuple[str, str], dict] = field(default_factory=dict)  # (layer, compression) -> new descriptor

    @classmethod
    def create(cls) -> Compressed:
        """A scratch directory in hpcannotate's cache (layers can be large: not /tmp's tmpfs)."""
        from hpcannotate.cache import cache_dir

        scratch = cache_dir() / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        return cls(Path(tempfile.mkdtemp(prefix="compress-", dir=scratch)))

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class _Digesting:
    """A file writer that hashes and counts what passes through."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.fh.flush()


def pigz() -> str | None:
    """The pigz command to use, or None (not installed, or turned off with ``HPCANNOTATE_PIGZ=0``)."""
    if os.environ.get("HPCANNOTATE_PIGZ", "1") in ("0", "no", "false"):
        return None
    return shutil.which("pigz")


def _gzip(src: BinaryIO, out: _Digesting) -> None:
    exe = pigz()
    if exe is not None:
        _pipe([exe, "-n", "-c", f"-{GZIP_LEVEL}"], src, out, "pigz")
        return
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz:  # type: ignore[arg-type]
        shutil.copyfileobj(src, gz, CHUNK)


def _zstd(src: BinaryIO, out: _Digesting) -> None:
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        zstandard = None
    if zstandard is not None:
        writer = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(out, closefd=False)  # type: ignore[arg-type]
        shutil.copyfileobj(src, writer, CHUNK)
        writer.close()
        return
    exe = shutil.which("zstd")
    if exe is None:
        raise HpcAnnotateError("--compression zstd needs the zstd command (apt-get install zstd) or "
                               "`pip install zstandard`")
    _pipe([exe, "-q", "-c", f"-{ZSTD_LEVEL}", "-"], src, out, "zstd")


def _pipe(argv: list[str], src: BinaryIO, out: _Digesting, name: str) -> None:
    """Stream ``src`` through a compressor; ``out`` hashes and counts what comes out.

    A real file is the compressor's stdin directly; any other stream is fed by a thread, so the
    pipe never deadlocks whatever the sizes.
    """
    try:
        src.fileno()
        direct = True
    except (AttributeError, OSError, io.UnsupportedOperation):
        direct = False
    proc = subprocess.Popen(argv, stdin=src if direct else subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    feeder = None
    if not direct:
        def feed() -> None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError), proc.stdin:
                shutil.copyfileobj(src, proc.stdin, CHUNK)

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
    try:
        while chunk := proc.stdout.read(CHUNK):
            out.write(chunk)
    finally:
        if feeder is not None:
            feeder.join()
        err = proc.stderr.read().decode(errors="replace").strip()
        code = proc.wait()
    if code != 0:
        raise HpcAnnotateError(f"{name} failed (exit {code}): {err.splitlines()[-1] if err else 'no message'}")


def compress_layers(data: dict, compression: str, open_blob: Callable[[str], BinaryIO],
                    store: Compressed, where: str) -> tuple[dict, bool]:
    """``data`` (an image manifest) with each uncompressed layer replaced by its compressed blob.

    ``open_blob(digest)`` opens a layer as stored. Returns the new manifest data and whether
    anything changed; the blobs are in ``store``.
    """
    if compression == "none":
        return data, False
    if compression not in COMPRESSIONS:
        raise InputError(f"--compression {compression}: one of {', '.join(COMPRESSIONS)}")
    layers = data.get("layers") or []
    changed = False
    new_layers = []
    for desc in layers:
        family = PLAIN.get(desc.get("mediaType", ""))
        if family is None:
            new_layers.append(desc)
            continue
        target = MEDIA.get((family, compression))
        if target is None:
            raise InputError(f"{where}: a Docker v2 image has no media type for {compression} layers; "
                             "use --compression gzip, or --convert-to-oci")
        done = store.made.get((desc["digest"], compression))
        if done is not None:  # a layer several images share (the base) is compressed once
            new_layers.append({**desc, **done})
            changed = True
            continue
        fd, name = tempfile.mkstemp(prefix="layer-", dir=store.directory)
        with open(fd, "wb") as fh, open_blob(desc["digest"]) as src:
            out = _Digesting(fh)
            (_gzip if compression == "gzip" else _zstd)(src, out)
        digest = "sha256:" + out.sha.hexdigest()
        path = store.directory / digest.replace(":", "-")
        Path(name).replace(path)
        store.files[digest] = path
        store.bytes_before += int(desc.get("size") or 0)
        store.bytes_after += out.size
        store.made[(desc["digest"], compression)] = {"mediaType": target, "digest": digest, "size": out.size}
        new_layers.append({**desc, "mediaType": target, "digest": digest, "size": out.size})
        changed = True
    return ({**data, "layers": new_layers} if changed else data), changed
