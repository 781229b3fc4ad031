"""Versions that package metadata in the image states outright: dpkg and apk databases, pkg-config files.

A library's file name rarely carries its release (``libfabric.so.1.20.0`` is
libfabric 1.17.0 on Debian bookworm, ``libmpi.so.40.30.4`` is Open MPI 4.1.4):
those numbers are libtool's interface versions. The release is written where a
package manager or the build put it: the ``Version:`` of an installed package
(upstream part: epoch, Debian revision and ``-rN`` dropped) or of a ``.pc``
file. Only such statements are used, never a mapping guessed from a soname.
RPM databases (sqlite/Berkeley DB) are not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# package name (full match) -> component whose release it states
PACKAGE_COMPONENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), component)
    for pattern, component in (
        (r"libopenmpi\d+|openmpi|openmpi-libs", "openmpi"),
        (r"libmpich\d+|mpich|mpich-libs", "mpich"),
        (r"libmvapich2-\d+|mvapich2", "mvapich2"),
        (r"libucx\d+|ucx|ucx-libs", "ucx"),
        (r"libfabric\d*|libfabric-libs", "libfabric"),
        (r"libnccl\d+", "nccl"),
        (r"libc6|glibc", "glibc"),
        (r"musl", "musl"),
    )
)

# pkg-config file stem -> component
PKGCONFIG_COMPONENTS = {
    "ompi": "openmpi",
    "ompi-c": "openmpi",
    "mpich": "mpich",
    "mvapich2": "mvapich2",
    "impi": "intelmpi",
    "ucx": "ucx",
    "libfabric": "libfabric",
    "nccl": "nccl",
}

_UPSTREAM = re.compile(r"\d+(?:\.\d+)*")


@dataclass(frozen=True)
class Stated:
    """A component's release as one file states it."""

    component: str
    version: str
    file: str  # image path
    fragment: str  # the words in the file


def upstream_version(text: str) -> str | None:
    """``1:4.1.4-3+b1`` -> ``4.1.4``; ``1.2.4-r2`` -> ``1.2.4``; ``2.36-9+deb12u4`` -> ``2.36``."""
    text = text.strip()
    if re.match(r"^\d+:", text):
        text = text.split(":", 1)[1]
    found = _UPSTREAM.match(text)
    return found.group(0) if found else None


def _component(package: str) -> str | None:
    for pattern, component in PACKAGE_COMPONENTS:
        if pattern.fullmatch(package):
            return component
    return None


def parse_dpkg(text: str, file: str) -> list[Stated]:
    """Installed packages of a dpkg ``status`` file (or one ``status.d`` entry)."""
    result = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        package, version = fields.get("package"), fields.get("version")
        status = fields.get("status", "install ok installed")
        if not package or not version or not status.endswith(" installed"):
            continue
        component = _component(package)
        upstream = upstream_version(version)
        if component and upstream:
            result.append(Stated(component, upstream, file, f"Package: {package} Version: {version}"))
    return result


def parse_apk(text: str, file: str) -> list[Stated]:
    """Installed packages of Alpine's ``lib/apk/db/installed`` (``P:name``, ``V:version`` lines)."""
    result = []
    for block in re.split(r"\n\s*\n", text):
        fields = {line[:1]: line[2:].strip() for line in block.splitlines() if line[1:2] == ":"}
        package, version = fields.get("P"), fields.get("V")
        if not package or not version:
            continue
        component = _component(package)
        upstream = upstream_version(version)
        if component and upstream:
            result.append(Stated(component, upstream, file, f"P:{package} V:{version}"))
    return result


def parse_pkgconfig(text: str, file: str) -> Stated | None:
    """The ``Version:`` of a ``.pc`` file, when its stem names a component the probe knows."""
    stem = file.rsplit("/", 1)[-1].removesuffix(".pc")
    component = PKGCONFIG_COMPONENTS.get(stem)
    if component is None:
        return None
    found = re.search(r"^Version:\s*(\S+)\s*$", text, re.M)
    if not found:
        return None
    version = upstream_version(found.group(1))
    if not version:
        return None
    return Stated(component, version, file, f"Version: {found.group(1)}")
