"""Where an image's manifest, config and layer blobs come from, without a container runtime.

- ``oci:PATH[:tag|@digest]``: an OCI image layout; blobs are read in place.
- ``registry/repo:tag`` (or ``@digest``): the registry, through hpcannotate's own
  client. Every blob (layers and config) is downloaded once into a cache keyed by
  digest (``CACHE/blobs/sha256/<hex>``): it is written while the probe reads it
  (one pass, no second read), kept only when its digest is right, and read from
  there on the next run, which then asks the registry for the manifest alone.
- ``containers-storage:NAME``: an image in buildah's store (a local build). The
  simplest robust way to reach its layers is buildah itself: ``buildah push NAME
  oci:TMP`` with the store options, uncompressed, then the layout is read and removed.

An index (multi-platform, or hpcannotate's one-image-per-target index) is
resolved to the single image for the wanted platform; when several images
share it, the error lists their tags or targets so the user can name one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.files import open_regular, read_bytes
from hpcannotate.image.probe.layers import CHUNK, LayerError
from hpcannotate.oci.layout import BLOB_LIMIT, OciLayout
from hpcannotate.oci.media import INDEX_TYPES, sha256_digest
from hpcannotate.oci.store import Manifest
from hpcannotate.registry.platform import choose_image, parse_platform
from hpcannotate.registry.reference import parse_reference
from hpcannotate.registry.repository import ImageRepository, LayoutRepository, RegistryRepository, manifest_json

STORAGE_PREFIX = "containers-storage:"
NESTING = 4  # indexes of indexes followed at most this deep
BUILDAH_TIMEOUT = 3600


@dataclass(frozen=True)
class LayerRef:
    digest: str
    media_type: str
    size: int


@dataclass
class SourceStats:
    """What reading the image cost: blobs from the registry and from the cache."""

    blobs_fetched: int = 0
    bytes_fetched: int = 0
    blobs_from_cache: int = 0
    registry: dict | None = None  # the client's TransferStats, for a registry source

    def to_json(self) -> dict:
        data = {"blobs_fetched": self.blobs_fetched, "bytes_fetched": self.bytes_fetched,
                "blobs_from_cache": self.blobs_from_cache}
        if self.registry is not None:
            data["registry"] = self.registry
        return data


@dataclass
class ImageSource:
    """One image: its manifest, config and layers, and a way to open each layer blob as stored."""

    reference: str
    manifest_digest: str = ""
    manifest: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    stats: SourceStats = field(default_factory=SourceStats)

    @property
    def layers(self) -> list[LayerRef]:
        return [LayerRef(d["digest"], d.get("mediaType", ""), int(d.get("size", 0)))
                for d in self.manifest.get("layers") or []]

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.manifest.get("annotations") or {})

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.config.get("config") or {}).get("Labels") or {})

    def open_layer(self, layer: LayerRef) -> contextlib.AbstractContextManager[BinaryIO]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds (temporary layouts, connections)."""

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- manifests -------------------------------------------------------------------------------------


def _is_index(manifest: Manifest, body: dict) -> bool:
    return manifest.media_type in INDEX_TYPES or body.get("mediaType") in INDEX_TYPES or (
        "manifests" in body and "layers" not in body)


def resolve_manifest(store: ImageRepository, ref: str, platform: str) -> tuple[Manifest, dict]:
    """The image manifest ``ref`` names, through indexes; returns it and its parsed body."""
    where = store.describe(ref)
    wanted = parse_platform(platform)
    manifest = store.get(ref)
    for _ in range(NESTING):
        body = manifest_json(manifest, where)
        if not _is_index(manifest, body):
            if "config" not in body or "layers" not in body:
                raise InputError(f"{where}: manifest {manifest.digest} has no config or layers (not an image)")
            return manifest, body
        chosen = choose_image(body, wanted, where, take_lone=True)
        manifest = store.get(chosen["digest"])
        where = store.describe(chosen["digest"])
    raise InputError(f"{where}: indexes nested more than {NESTING} deep")


def _config(raw: bytes, where: str) -> dict:
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"{where}: the image config is not JSON ({exc})") from None
    return config if isinstance(config, dict) else {}


# -- OCI layouts -----------------------------------------------------------------------------------


class LayoutSource(ImageSource):
    def __init__(self, path: Path, ref: str | None, platform: str, shown: str | None = None,
                 archive: str | None = None):
        layout = OciLayout.open(path, archive)  # an archive read through its unpacked layout is named as given
        store = LayoutRepository(layout, replace(parse_reference(f"oci:{layout.path}"), archive=archive))
        if ref is None:
            ref = layout.find(None)["digest"]
        super().__init__(shown or store.describe(ref))
        manifest, self.manifest = resolve_manifest(store, ref, platform)
        self.manifest_digest = manifest.digest
        self.layout = layout
        config = self.manifest["config"]["digest"]
        self.config = _config(layout.read_blob(config), f"{self.reference}: config {config}")

    @contextlib.contextmanager
    def open_layer(self, layer: LayerRef) -> Iterator[BinaryIO]:
        path = self.layout.blob_path(layer.digest)
        if not os.path.lexists(path):
            raise LayerError(f"{self.reference}: layer {layer.digest} is missing from the layout")
        try:
            fh = open_regular(path, "layer blob")
        except InputError as exc:
            raise LayerError(str(exc)) from None
        with fh:
            yield fh


# -- registries and the blob cache -----------------------------------------------------------------


class BlobCache:
    """Blobs by digest under ``root/blobs/sha256/<hex>``; a file there always has the right content."""

    def __init__(self, root: Path):
        self.dir = root / "blobs" / "sha256"

    def path(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
            raise InputError(f"unsupported or malformed blob digest {digest!r}")
        return self.dir / hexdigest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, digest: str, data: bytes) -> None:
        if sha256_digest(data) != digest:
            raise InputError(f"blob {digest}: its content has another digest")
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)

    def discard(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)


class _Tee:
    """A readable stream over a blob download that writes every chunk into the cache as it passes."""

    def __init__(self, chunks: Iterator[bytes], cache: BlobCache, digest: str, stats: SourceStats):
        self._chunks = chunks
        self._cache = cache
        self._digest = digest
        self._stats = stats
        target = cache.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        self._out = os.fdopen(fd, "wb")
        self._buffer = b""
        self.done = False

    def read(self, size: int = -1) -> bytes:
        while not self.done and (size < 0 or len(self._buffer) < size):
            try:
                chunk = next(self._chunks)
            except StopIteration:  # the client checked the digest before stopping
                self.done = True
                break
            self._out.write(chunk)
            self._stats.bytes_fetched += len(chunk)
            self._buffer += chunk
            if size < 0:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def finish(self, ok: bool) -> None:
        self._out.close()
        if ok and self.done:
            os.replace(self._tmp, self._cache.path(self._digest))
        else:
            Path(self._tmp).unlink(missing_ok=True)
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class RegistrySource(ImageSource):
    def __init__(self, ref: str, platform: str, cache: Path, options: object | None = None):
        from hpcannotate.registry.client import RegistryClient

        reference = parse_reference(ref)
        self.client = RegistryClient(authfile=getattr(options, "authfile", None),
                                     insecure=not getattr(options, "tls_verify", True),
                                     plain_http=getattr(options, "plain_http", None))
        self.store = RegistryRepository(self.client, reference)
        self.cache = BlobCache(cache)
        super().__init__(str(reference))
        try:
            manifest, self.manifest = resolve_manifest(self.store, reference.manifest_ref, platform)
            self.manifest_digest = manifest.digest
            self.reference = str(reference.with_digest(manifest.digest)) if not reference.digest else str(reference)
            self.config = _config(self._small_blob(self.manifest["config"]["digest"]), f"{ref}: config")
        except BaseException:
            self.close()
            raise
        self.stats.registry = self.client.stats.as_dict()

    def _small_blob(self, digest: str) -> bytes:
        """A config: from the cache, else fetched (digest-checked by the client) and cached."""
        path = self.cache.path(digest)
        if path.is_file():
            data = read_bytes(path, "cached config blob", BLOB_LIMIT)
            if sha256_digest(data) == digest:
                self.stats.blobs_from_cache += 1
                return data
            self.cache.discard(digest)
        data = self.store.config(digest)
        self.stats.blobs_fetched += 1
        self.stats.bytes_fetched += len(data)
        self.cache.put(digest, data)
        return data

    @contextlib.contextmanager
    def open_layer(self, layer: LayerRef) -> Iterator[BinaryIO]:
        path = self.cache.path(layer.digest)
        if path.is_file():
            self.stats.blobs_from_cache += 1
            try:
                with open_regular(path, "cached layer blob") as fh:
                    yield fh
            except LayerError:
                # a cached blob that does not read right is dropped, so the next run downloads it again
                self.cache.discard(layer.digest)
                raise
            return
        self.stats.blobs_fetched += 1
        tee = _Tee(iter(self.client.get_blob(self.store.reference, layer.digest, CHUNK)), self.cache, layer.digest,
                   self.stats)
        ok = False
        try:
            yield tee  # type: ignore[misc]
            ok = True
        finally:
            tee.finish(ok)
            self.stats.registry = self.client.stats.as_dict()

    def close(self) -> None:
        self.stats.registry = self.client.stats.as_dict()
        self.client.close()


# -- buildah's store -------------------------------------------------------------------------------


def buildah_args(options: object | None) -> list[str]:
    args = ["buildah"]
    for flag, name in (("--root", "root"), ("--runroot", "runroot"), ("--storage-driver", "storage_driver")):
        value = getattr(options, name, None)
        if value:
            args += [flag, str(value)]
    return args


def push_failure(name: str, stderr: str, stdout: str = "") -> str:
    """The one line to show when ``buildah push NAME oci:TMP`` fails.

    A missing image is said in the user's terms (buildah's own message names the temporary
    layout, which means nothing to them); any other failure keeps buildah's last line.
    """
    output = stderr.strip() or stdout.strip()
    if "image not known" in output.lower():
        return (f"{STORAGE_PREFIX}{name}: no such image in buildah's store "
                "(--root/--runroot/--storage-driver say which store)")
    tail = output.splitlines()[-1:] or ["no output"]
    return f"{STORAGE_PREFIX}{name}: buildah cannot read it from its store: {tail[0]}"


class BuildahSource(LayoutSource):
    """An image in buildah's store, pushed uncompressed to a temporary layout and read from there."""

    def __init__(self, name: str, platform: str, options: object | None, scratch_parent: Path | None = None):
        if not name or name.startswith("-"):
            raise InputError(f"{STORAGE_PREFIX}{name}: not an image name")
        if shutil.which("buildah") is None:
            raise HpcAnnotateError(f"{STORAGE_PREFIX}{name}: buildah is not installed (apt-get install buildah)")
        if scratch_parent is not None:
            scratch_parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="hpcannotate-probe-", dir=scratch_parent))
        layout = self._tmp / "layout"
        argv = [*buildah_args(options), "push", "--quiet", "--disable-compression", "--format", "oci",
                name, f"oci:{layout}:probe"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=BUILDAH_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            self.close()
            raise HpcAnnotateError(f"{STORAGE_PREFIX}{name}: buildah push did not finish in {BUILDAH_TIMEOUT} s") \
                from None
        if proc.returncode != 0:
            self.close()
            raise InputError(push_failure(name, proc.stderr, proc.stdout))
        try:
            super().__init__(layout, "probe", platform, shown=f"{STORAGE_PREFIX}{name}")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


def open_source(ref: str, *, platform: str, cache: Path, options: object | None = None) -> ImageSource:
    """The source a reference names: ``oci:PATH[:tag]``, ``containers-storage:NAME`` or a registry image."""
    if ref.startswith(STORAGE_PREFIX):
        return BuildahSource(ref[len(STORAGE_PREFIX):], platform, options, cache / "scratch")
    parsed = parse_reference(ref)
    if parsed.is_layout:
        assert parsed.layout_path is not None
        return LayoutSource(parsed.layout_path, parsed.digest or parsed.tag, platform,
                            str(parsed) if parsed.archive else None, parsed.archive)
    return RegistrySource(ref, platform, cache, options)
