"""Image references: ``registry/repo:tag``, ``repo@sha256:...`` and local OCI layouts ``oci:PATH[:tag]``.

One parser for every command, so ``inspect``, ``annotate`` and ``build --push`` agree on what a
reference names. The grammar is the one of CNCF distribution (``docker pull``): a first path
component is a registry only when it looks like a host (has a ``.`` or a ``:port``, or is
``localhost``); otherwise the image is on Docker Hub, and a single name lives under ``library/``.
A reference with neither tag nor digest means ``:latest``, as with ``docker pull``.

``oci:PATH[:tag]`` names an image in an OCI image layout on disk (as skopeo and buildah spell it).
Paths may contain ``:``; the last ``:`` segment is taken as the tag only when it holds no ``/``
(so ``oci:/a:b/c`` is the layout ``/a:b/c`` with no tag). ``oci:PATH@sha256:...`` names one by digest.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass, replace
from pathlib import Path

from hpcannotate.errors import InputError

DOCKER_HUB = "docker.io"
# Docker Hub answers the distribution API on this host, not on docker.io.
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DEFAULT_TAG = "latest"
LAYOUT_PREFIX = "oci:"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[A-Za-z0-9=_-]+$")
_HOST_RE = re.compile(
    r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?))*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)
_MAX_NAME = 255


@dataclass(frozen=True)
class Reference:
    """A parsed image reference; ``str()`` is its canonical, fully qualified form.

    For a registry image ``registry`` is the host as the user names it (``docker.io`` for Docker Hub),
    ``api_host`` the host to talk to. For a layout ``layout_path`` is set and ``registry`` is empty.
    """

    registry: str = ""
    repository: str = ""
    tag: str | None = None
    digest: str | None = None
    layout_path: Path | None = None
    # an archive (``oci-archive:FILE``, ``docker-archive:FILE``) is read through the layout it is
    # unpacked to: ``archive`` is the file as the user named it, ``shown`` the whole reference they
    # typed, so every output names what the user gave, never the cache
    archive: str | None = None
    shown: str | None = None

    @property
    def is_layout(self) -> bool:
        return self.layout_path is not None

    @property
    def api_host(self) -> str:
        """The host serving ``/v2/`` (Docker Hub's API is not on ``docker.io``)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """``registry/repository`` (or ``oci:PATH``, or the archive) without tag or digest."""
        if self.archive is not None:
            return self.archive
        if self.layout_path is not None:
            return f"{LAYOUT_PREFIX}{self.layout_path}"
        return f"{self.registry}/{self.repository}"

    @property
    def manifest_ref(self) -> str:
        """What goes after ``/manifests/`` when reading: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> Reference:
        """The same repository at another tag (any digest dropped: a tag is a moving name)."""
        _check_tag(tag, str(self))
        return replace(self, tag=tag, digest=None, shown=None)

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (tag dropped, so writes go by digest)."""
        _check_digest(digest, str(self))
        return replace(self, tag=None, digest=digest, shown=None)

    def __str__(self) -> str:
        if self.shown is not None:
            return self.shown
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse what a user typed; raises ``InputError`` (one line naming the reference) if malformed."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("empty image reference")
    text = text.strip()
    if text.startswith(("oci-archive:", "docker-archive:")):  # unpacked into the cache, read as a layout
        from hpcannotate.oci.archive import archive_target

        target = archive_target(text)
        if target.get("digest"):
            _check_digest(target["digest"], text)
        return Reference(**target)
    if text.startswith(LAYOUT_PREFIX):
        return _parse_layout(text)
    if text.startswith("docker://"):
        text = text[len("docker://"):]
    elif "://" in text:
        raise InputError(f"{text}: an image reference has no URL scheme (write registry/repo:tag; see --plain-http)")
    return _parse_registry(text)


def _parse_layout(text: str) -> Reference:
    """``oci:PATH``, ``oci:PATH:tag`` or ``oci:PATH@sha256:...``."""
    body = text[len(LAYOUT_PREFIX):]
    digest = None
    head, at, tail = body.rpartition("@")
    if at and _ANY_DIGEST_RE.match(tail) and "/" not in tail:
        _check_digest(tail, text)
        body, digest = head, tail
    tag = None
    path, colon, last = body.rpartition(":")
    if colon and "/" not in last:
        if not last:
            raise InputError(f"{text}: empty tag after ':'")
        _check_tag(last, text)
        body, tag = path, last
    if not body:
        raise InputError(f"{text}: no layout path after 'oci:'")
    return Reference(tag=tag, digest=digest, layout_path=Path(body))


def _parse_registry(text: str) -> Reference:
    remainder, digest = _split_digest(text)
    remainder, tag = _split_tag(remainder, text)
    registry, repository = _split_registry(remainder, text)
    if repository != repository.lower() and _REPOSITORY_RE.match(repository.lower()):
        raise InputError(f"{text}: repository names must be lowercase")
    if not _REPOSITORY_RE.match(repository):
        raise InputError(f"{text}: malformed repository name {repository!r}")
    if len(repository) + len(registry) + 1 > _MAX_NAME:
        raise InputError(f"{text}: name longer than {_MAX_NAME} characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry=registry, repository=repository, tag=tag, digest=digest)


def _split_digest(text: str) -> tuple[str, str | None]:
    name, at, digest = text.partition("@")
    if not at:
        return text, None
    _check_digest(digest, text)
    return name, digest


def _split_tag(name: str, text: str) -> tuple[str, str | None]:
    """The tag is after the last ':' that follows the last '/' (a ':' before it is a port)."""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon <= slash:
        return name, None
    tag = name[colon + 1:]
    _check_tag(tag, text)
    return name[:colon], tag


def _split_registry(name: str, text: str) -> tuple[str, str]:
    if not name:
        raise InputError(f"{text}: no repository name")
    first, slash, rest = name.partition("/")
    if slash and _looks_like_host(first):
        if not _HOST_RE.match(first):
            raise InputError(f"{text}: malformed registry host {first!r}")
        _check_port(first, text)
        host = DOCKER_HUB if first.lower() in DOCKER_HUB_ALIASES else first
        if host == DOCKER_HUB and "/" not in rest:
            rest = f"library/{rest}"
        return host, rest
    return DOCKER_HUB, name if slash else f"library/{name}"


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


def _check_port(host: str, text: str) -> None:
    _, colon, port = host.rpartition(":")
    if colon and not host.endswith("]") and port.isdigit() and not 0 < int(port) < 65536:
        raise InputError(f"{text}: port {port} out of range")


def _check_tag(tag: str, text: str) -> None:
    if not _TAG_RE.match(tag):
        raise InputError(f"{text}: malformed tag {tag!r} (letters, digits, '_', '.', '-'; at most 128)")


def _check_digest(digest: str, text: str) -> None:
    if _DIGEST_RE.match(digest):
        return
    if _ANY_DIGEST_RE.match(digest) and not digest.startswith("sha256:"):
        raise InputError(f"{text}: only sha256 digests are supported, not {digest.split(':')[0]}")
    raise InputError(f"{text}: malformed digest {digest!r} (expected sha256:<64 hex digits>)")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8 and ::1, and for ``localhost`` and ``*.localhost`` names that resolve only to
    those (with or without a port): plain HTTP is allowed there.

    A ``.localhost`` name is not trusted by its spelling: /etc/hosts or a resolver can point it
    anywhere, and plain HTTP there would send credentials over the network in clear.
    """
    name = _hostname(host).lower()
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    if name == "localhost" or name.endswith(".localhost"):
        return _resolves_to_loopback(name)
    return False


@functools.lru_cache(maxsize=64)
def _resolves_to_loopback(name: str) -> bool:
    """Every address ``name`` resolves to is a loopback one (False when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0].split("%", 1)[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def _hostname(host: str) -> str:
    """``host:port`` or ``[v6]:port`` -> the bare host."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host
