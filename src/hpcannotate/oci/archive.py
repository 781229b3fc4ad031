"""``oci-archive:PATH[:ref]`` and ``docker-archive:PATH[:ref|@N]`` (skopeo's transports), read as OCI layouts.

An archive is unpacked once into hpcannotate's cache (keyed by its path, size and mtime) and
then read like ``oci:DIR``: every reader (inspect, probe, match, check) gets it for free.

- ``oci-archive``: a tar of an OCI image layout (``skopeo copy ... oci-archive:x.tar``,
  ``podman save --format oci-archive``). ``:ref`` is the ``org.opencontainers.image.ref.name``.
- ``docker-archive``: ``docker save``'s format (``manifest.json`` listing each image's config,
  layer files and RepoTags). Each image becomes a Docker v2 manifest in the layout, tagged with
  its RepoTags; ``:name:tag`` picks one by RepoTag, ``:@N`` by position, as skopeo does. The
  layers stay as stored (their digests are the digests of the files).

Only regular files at plain relative paths are unpacked (no links, no ``..``, no devices): an
archive is untrusted input. A bad archive is one ``InputError`` naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from ..errors import InputError
from .media import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_INDEX, canonical_json

OCI_ARCHIVE = "oci-archive:"
DOCKER_ARCHIVE = "docker-archive:"
PREFIXES = (OCI_ARCHIVE, DOCKER_ARCHIVE)
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
REF_NAME = "org.opencontainers.image.ref.name"
CHUNK = 1024 * 1024


def is_archive(text: str) -> bool:
    return text.startswith(PREFIXES)


def split_archive(text: str) -> tuple[str, Path, str | None]:
    """(prefix, archive path, reference or None): the path is the longest prefix that is a file."""
    prefix = next(p for p in PREFIXES if text.startswith(p))
    body = text[len(prefix):]
    if not body:
        raise InputError(f"{text}: no archive path after '{prefix}'")
    if Path(body).is_file():
        return prefix, Path(body), None
    head, colon, tail = body.partition(":")
    while colon:
        if Path(head).is_file():
            return prefix, Path(head), tail or None
        more, colon, tail = tail.partition(":")
        head = f"{head}:{more}"
    raise InputError(f"{text}: no such archive file")


def as_layout(text: str) -> str:
    """The ``oci:DIR[:tag|@digest]`` reference that reads the archive ``text`` names."""
    prefix, path, ref = split_archive(text)
    layout = _unpacked(prefix, path, text)
    if ref is None:
        return f"oci:{layout}"
    if prefix == DOCKER_ARCHIVE:
        return f"oci:{layout}@{_docker_pick(layout, ref, text)}"
    return f"oci:{layout}:{ref}"


def _cache_key(prefix: str, path: Path) -> str:
    stat = path.stat()
    text = f"{prefix}{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _unpacked(prefix: str, path: Path, text: str) -> Path:
    from ..baseimage import cache_dir

    root = cache_dir() / "archives"
    root.mkdir(parents=True, exist_ok=True)
    done = root / _cache_key(prefix, path)
    if (done / "oci-layout").is_file():
        return done
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        if prefix == OCI_ARCHIVE:
            _extract(path, work, text)
            if not (work / "oci-layout").is_file() or not (work / "index.json").is_file():
                raise InputError(f"{text}: not an OCI archive (no oci-layout and index.json in it)")
        else:
            raw = work / "raw"
            _extract(path, raw, text)
            _docker_to_layout(raw, work, text)
            shutil.rmtree(raw)
        try:
            os.replace(work, done)
        except OSError:  # another process unpacked it meanwhile
            shutil.rmtree(work, ignore_errors=True)
        return done
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _extract(path: Path, dest: Path, text: str) -> None:
    """Regular files at plain relative paths only; anything else in the archive is skipped."""
    dest.mkdir(parents=True, exist_ok=True)
    links: list[tuple[PurePosixPath, PurePosixPath]] = []
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                name = PurePosixPath(member.name)
                if name.is_absolute() or ".." in name.parts or not name.parts:
                    continue
                if member.issym() or member.islnk():  # docker save links layers it holds twice
                    target = PurePosixPath(member.linkname)
                    links.append((name, target if member.islnk() else name.parent / target))
                    continue
                if not member.isreg():
                    continue
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
    for name, target in links:  # a link to a regular file inside the archive becomes a copy of it
        parts = [p for p in target.parts if p != "."]
        resolved: list[str] = []
        for part in parts:
            if part == "..":
                if not resolved:
                    break
                resolved.pop()
            else:
                resolved.append(part)
        source = dest.joinpath(*resolved) if resolved else None
        if source is not None and source.is_file() and not source.is_symlink():
            copy = dest.joinpath(*name.parts)
            copy.parent.mkdir(parents=True, exist_ok=True)
            if not copy.exists():
                shutil.copyfile(source, copy)


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def _docker_to_layout(raw: Path, layout_dir: Path, text: str) -> None:
    from .layout import OciLayout

    try:
        entries = json.loads((raw / "manifest.json").read_text())
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
        config = config_path.read_bytes()
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
            descriptors.append({**desc, "annotations": {REF_NAME: tag, "io.hpcannotate.archive.index": str(n)}}
                               if tag else {**desc, "annotations": {"io.hpcannotate.archive.index": str(n)}})
    layout.write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})


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
        found = [d for d in manifests if (d.get("annotations") or {}).get("io.hpcannotate.archive.index") == wanted]
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
