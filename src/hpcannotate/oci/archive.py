"""``oci-archive:PATH[:ref]`` and ``docker-archive:PATH[:ref|@N]`` (skopeo's transports), read as OCI layouts.

An archive is unpacked once into hpcannotate's cache and then read like ``oci:DIR``: every reader
(inspect, probe, match, check) gets it for free, and the ``Reference`` keeps the user's spelling so
every output names the archive, never the cache. ``PATH@sha256:...`` names one image by digest
(how ``match`` and ``inspect`` name the images of an index held in an archive).

- ``oci-archive``: a tar of an OCI image layout (``skopeo copy ... oci-archive:x.tar``,
  ``podman save --format oci-archive``). ``:ref`` is the ``org.opencontainers.image.ref.name``.
- ``docker-archive``: ``docker save``'s format (``manifest.json`` listing each image's config,
  layer files and RepoTags). Each image becomes a Docker v2 manifest in the layout, tagged with
  its RepoTags; ``:name:tag`` picks one by RepoTag, ``:@N`` by position, as skopeo does. The
  layers stay as stored (their digests are the digests of the files).

The cache is bounded: an entry is keyed by the archive's path, inode, size, mtime and ctime (a
rewritten archive gets a new entry; ctime cannot be set back by ``touch`` or ``cp -p``), each use
marks it, and after an unpack the least recently used entries beyond ``HPCANNOTATE_ARCHIVE_CACHE``
bytes (default 4 GiB; the entry just made always stays) are removed, as are unpack directories a
killed process left behind. Unpacking the 128 MB Debian base takes well under a second, a second
read none (see the report of issue 12).

An archive is untrusted input. Only regular files at plain relative paths are written (no
absolute paths, no ``..``, no devices, FIFOs or links: a link inside the archive becomes a hard
link to the regular file it names inside the unpack directory, anything else is skipped). The
bytes written are at most ``EXPANSION`` times the archive's size (a gzip bomb, a sparse member
declaring terabytes) and never eat into the last ``FREE_RESERVE`` bytes of the file system; at
most ``MAX_MEMBERS`` entries are read (a tar bomb of empty files); ``manifest.json`` and configs
are read into memory only below ``MAX_JSON`` bytes. A bad archive is one ``InputError`` naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath

from hpcannotate.errors import InputError
from hpcannotate.model.keynames import OCI_REF_NAME
from hpcannotate.oci.media import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_INDEX, canonical_json

OCI_ARCHIVE = "oci-archive:"
DOCKER_ARCHIVE = "docker-archive:"
PREFIXES = (OCI_ARCHIVE, DOCKER_ARCHIVE)
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
REF_NAME = OCI_REF_NAME
INDEX_KEY = "io.hpcannotate.archive.index"
CHUNK = 1024 * 1024
MAX_MEMBERS = 100_000  # entries read from one archive (docker save of 100 images holds ~1000)
EXPANSION = 16  # bytes written per byte of archive, at most (an uncompressed tar: 1, plus padding)
EXPANSION_FLOOR = 64 * 1024 * 1024  # a tiny archive may still unpack to this much
FREE_RESERVE = 1024 * 1024 * 1024  # never fill the cache's file system below this
MAX_JSON = 16 * 1024 * 1024  # manifest.json and image configs are a few KiB
CACHE_BUDGET = 4 * 1024 ** 3  # default of HPCANNOTATE_ARCHIVE_CACHE (bytes kept besides the newest)
STALE_UNPACK = 24 * 3600  # an unpack directory untouched this long belongs to a killed process


def is_archive(text: str) -> bool:
    return text.startswith(PREFIXES)


def split_archive(text: str) -> tuple[str, str, str | None]:
    """(prefix, archive path as typed, reference or None): the path is the longest prefix that is a file.

    The reference is what follows ``:`` (a name, or ``@N`` for docker archives) or ``@sha256:...``.
    """
    prefix = next(p for p in PREFIXES if text.startswith(p))
    body = text[len(prefix):]
    if not body:
        raise InputError(f"{text}: no archive path after '{prefix}'")
    if Path(body).is_file():
        return prefix, body, None
    head, at, digest = body.rpartition("@")
    if at and digest.startswith("sha256:") and Path(head).is_file():
        return prefix, head, f"@{digest}"
    head, colon, tail = body.partition(":")
    while colon:
        if Path(head).is_file():
            if not tail:
                raise InputError(f"{text}: empty image name after the archive path")
            return prefix, head, tail
        more, colon, tail = tail.partition(":")
        head = f"{head}:{more}"
    raise InputError(f"{text}: no such archive file")


def archive_target(text: str) -> dict:
    """What a ``Reference`` to an archive holds: the unpacked layout it is read through, the archive
    and the whole reference as the user typed them, and the tag or digest it names (if any).

    ``registry.reference.parse_reference`` builds the ``Reference`` (and checks a digest's form),
    so this module needs nothing from the registry side.
    """
    prefix, typed, ref = split_archive(text)
    layout = _unpacked(prefix, Path(typed), text)
    target: dict = {"layout_path": layout, "archive": f"{prefix}{typed}", "shown": text}
    if ref is None:
        return target
    if ref.startswith("@sha256:"):
        return {**target, "digest": ref[1:]}
    if prefix == DOCKER_ARCHIVE:
        return {**target, "digest": _docker_pick(layout, ref, text)}
    return {**target, "tag": ref}


def _cache_key(prefix: str, path: Path) -> str:
    stat = path.stat()
    text = (f"{prefix}{path.resolve()}\0{stat.st_dev}\0{stat.st_ino}\0{stat.st_size}\0"
            f"{stat.st_mtime_ns}\0{stat.st_ctime_ns}")
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _unpacked(prefix: str, path: Path, text: str) -> Path:
    from hpcannotate.cache import cache_dir

    root = cache_dir() / "archives"
    root.mkdir(parents=True, exist_ok=True)
    done = root / _cache_key(prefix, path)
    if (done / "oci-layout").is_file():
        _touch(done)
        return done
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        limit = Budget(path, root, text)
        if prefix == OCI_ARCHIVE:
            _extract(path, work, text, limit)
            if not (work / "oci-layout").is_file() or not (work / "index.json").is_file():
                raise InputError(f"{text}: not an OCI archive (no oci-layout and index.json in it)")
        else:
            raw = work / "raw"
            _extract(path, raw, text, limit)
            _docker_to_layout(raw, work, text)
            shutil.rmtree(raw)
        try:
            os.replace(work, done)
        except OSError:  # another process unpacked it meanwhile
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    evict(root, keep=done)
    return done


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def evict(root: Path, keep: Path, budget: int | None = None) -> list[Path]:
    """Remove the least recently used unpacked archives beyond ``budget`` bytes (``keep`` stays),
    and unpack directories older than ``STALE_UNPACK``; returns what was removed."""
    if budget is None:
        try:
            budget = int(os.environ.get("HPCANNOTATE_ARCHIVE_CACHE") or CACHE_BUDGET)
        except ValueError:
            raise InputError(f"HPCANNOTATE_ARCHIVE_CACHE={os.environ['HPCANNOTATE_ARCHIVE_CACHE']!r}: "
                             "not a number of bytes") from None
    now = time.time()
    entries = []
    removed = []
    for entry in root.iterdir():
        try:
            mtime = entry.lstat().st_mtime
        except OSError:
            continue
        if entry.name.startswith(".unpack-"):
            if now - mtime > STALE_UNPACK:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        elif entry != keep and entry.is_dir() and not entry.is_symlink():
            entries.append((mtime, entry))
    used = _tree_size(keep)
    for _mtime, entry in sorted(entries, reverse=True):  # newest first: they stay while they fit
        size = _tree_size(entry)
        if used + size <= budget:
            used += size
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


class Budget:
    """How much one unpack may write: bounded by the archive's size and the free space left."""

    def __init__(self, archive: Path, root: Path, text: str):
        self.text = text
        size = archive.stat().st_size
        free = shutil.disk_usage(root).free - FREE_RESERVE
        self.limit = max(0, min(max(size * EXPANSION, EXPANSION_FLOOR), free))
        self.why = ("more than the free space of the cache allows" if free < size * EXPANSION
                    else f"more than {EXPANSION} times its size (a compression bomb or a sparse member?)")
        self.written = 0
        self.members = 0

    def member(self) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise InputError(f"{self.text}: holds more than {MAX_MEMBERS} entries (not an image archive)")

    def take(self, size: int) -> None:
        self.written += size
        if self.written > self.limit:
            raise InputError(f"{self.text}: unpacks to {self.why}; not unpacked")


def _extract(path: Path, dest: Path, text: str, budget: Budget) -> None:
    """Regular files at plain relative paths only; links become hard links; anything else is skipped."""
    dest.mkdir(parents=True, exist_ok=True)
    links: list[tuple[PurePosixPath, PurePosixPath]] = []
    try:
        with tarfile.open(path, mode="r:*") as tar:
            while (member := tar.next()) is not None:
                budget.member()
                tar.members.clear()  # tarfile keeps every header otherwise: memory grows with the entries
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts or not name.parts:
                    continue
                if member.issym() or member.islnk():  # docker save links layers it holds twice
                    target = PurePosixPath(member.linkname)
                    links.append((name, target if member.islnk() else name.parent / target))
                    continue
                if not member.isreg():
                    continue
                budget.take(member.size)  # declared size first: a sparse member can claim terabytes
                target = dest.joinpath(*name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    continue
                with source, open(target, "xb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
    except (tarfile.TarError, EOFError) as exc:
        raise InputError(f"{text}: not a readable tar archive ({str(exc).splitlines()[0].rstrip(': ')})") from None
    except OSError as exc:
        raise InputError(f"{text}: cannot unpack it: {exc.strerror or exc}") from None
    for name, target in links:  # a link to a regular file inside the archive: a hard link to it
        resolved: list[str] = []
        inside = True
        for part in target.parts:
            if part in (".", "/"):
                continue
            if part == "..":
                if not resolved:
                    inside = False
                    break
                resolved.pop()
            else:
                resolved.append(part)
        if not inside or not resolved or target.is_absolute():
            continue
        source = dest.joinpath(*resolved)
        if not source.is_file() or source.is_symlink():
            continue
        copy = dest.joinpath(*name.parts)
        if copy.exists() or copy.is_symlink():
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        _place(source, copy, budget)


def _place(source: Path, target: Path, budget: Budget) -> None:
    """``target`` holds ``source``'s bytes: a hard link (no space), a copy where links fail."""
    try:
        os.link(source, target)
    except OSError:
        budget.take(source.stat().st_size)
        shutil.copyfile(source, target)


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def _docker_to_layout(raw: Path, layout_dir: Path, text: str) -> None:
    from hpcannotate.oci.layout import OciLayout

    if not (raw / "manifest.json").is_file():
        raise InputError(f"{text}: not a docker archive (no readable manifest.json in it)")
    try:
        entries = json.loads(_small(raw / "manifest.json", "manifest.json", text))
    except (OSError, ValueError):
        raise InputError(f"{text}: not a docker archive (no readable manifest.json in it)") from None
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{text}: manifest.json lists no image")
    layout = OciLayout.create(layout_dir)
    descriptors = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) or \
                not isinstance(entry.get("Layers"), list):
            raise InputError(f"{text}: manifest.json entry {n} has no Config and Layers")
        config_path = _member(raw, entry["Config"], text)
        config = _small(config_path, entry["Config"], text)
        try:
            platform = json.loads(config)
        except ValueError:
            raise InputError(f"{text}: {entry['Config']} is not JSON") from None
        layers = []
        for name in entry["Layers"]:
            layer_path = _member(raw, str(name), text)
            digest = _file_digest(layer_path)
            with layer_path.open("rb") as fh:
                gz = fh.read(2) == b"\x1f\x8b"
            target = layout.blob_path(digest)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                try:
                    os.link(layer_path, target)  # the same file system: no copy
                except OSError:
                    shutil.copyfile(layer_path, target)
            layers.append({"mediaType": DOCKER_LAYER_GZIP if gz else DOCKER_LAYER_TAR, "digest": digest,
                           "size": layer_path.stat().st_size})
        manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": DOCKER_CONFIG, "digest": layout.put_blob(config), "size": len(config)},
                    "layers": layers}
        raw_manifest = canonical_json(manifest)
        digest = layout.put_blob(raw_manifest)
        tags = [t for t in entry.get("RepoTags") or [] if isinstance(t, str)]
        desc = {"mediaType": DOCKER_MANIFEST, "digest": digest, "size": len(raw_manifest),
                "platform": {"architecture": str(platform.get("architecture") or ""),
                             "os": str(platform.get("os") or "")}}
        for tag in tags or [None]:
            descriptors.append({**desc, "annotations": {REF_NAME: tag, INDEX_KEY: str(n)}}
                               if tag else {**desc, "annotations": {INDEX_KEY: str(n)}})
    layout.write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})


def _small(path: Path, name: str, text: str) -> bytes:
    """A JSON file of the archive, read into memory only when it is the size such files are."""
    if path.stat().st_size > MAX_JSON:
        raise InputError(f"{text}: {name} is larger than {MAX_JSON // (1024 * 1024)} MiB (not an image archive)")
    return path.read_bytes()


def _member(raw: Path, name: str, text: str) -> Path:
    parts = PurePosixPath(name).parts
    if not parts or ".." in parts or PurePosixPath(name).is_absolute():
        raise InputError(f"{text}: manifest.json names {name!r}, outside the archive")
    path = raw.joinpath(*parts)
    if not path.is_file():
        raise InputError(f"{text}: manifest.json names {name}, which the archive does not hold")
    return path


def _docker_pick(layout: Path, ref: str, text: str) -> str:
    """The manifest digest a docker-archive reference picks: ``@N`` by position, else by RepoTag."""
    index = json.loads((layout / "index.json").read_text())
    manifests = index.get("manifests") or []
    if ref.startswith("@"):
        wanted = ref[1:]
        found = [d for d in manifests if (d.get("annotations") or {}).get(INDEX_KEY) == wanted]
    else:
        name = _docker_name(ref)
        found = [d for d in manifests if _docker_name((d.get("annotations") or {}).get(REF_NAME) or "") == name]
    if not found:
        raise InputError(f"{text}: the archive has no image {ref}")
    return found[0]["digest"]


def _docker_name(ref: str) -> str:
    """A RepoTag as Docker spells it in full: ``hello`` -> ``docker.io/library/hello:latest``."""
    if not ref:
        return ""
    first, slash, _ = ref.partition("/")
    if not slash:
        ref = f"docker.io/library/{ref}"
    elif "." not in first and ":" not in first and first != "localhost":
        ref = f"docker.io/{ref}"
    return ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest"
