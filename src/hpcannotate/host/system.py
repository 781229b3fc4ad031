"""OS facts: kernel, C library, user namespaces, container file systems, distribution.

glibc on the live host comes from ``os.confstr('CS_GNU_LIBC_VERSION')`` (the
library this Python runs on), then ``ldd --version``. In a captured tree it
comes from ``commands/ldd-version.txt``, else the library files themselves:
``libc-2.28.so`` (glibc before 2.34 names its file by version), ``ld-musl-*``,
or the banner compiled into ``libc.so.6``.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass, field

from hpcannotate.errors import InputError
from hpcannotate.files import open_regular
from hpcannotate.host import commands as cmd
from hpcannotate.host.hostview import HostView

LIB_DIRS = (
    "lib64", "usr/lib64", "lib", "usr/lib",
    "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu",
    "lib/powerpc64le-linux-gnu", "usr/lib/powerpc64le-linux-gnu",
)
CONTAINER_FILESYSTEMS = ("overlay", "squashfs", "fuse")
BANNER_LIMIT = 16 * 1024 * 1024


@dataclass
class UserNamespaces:
    """Whether an unprivileged user can create a user namespace: True, False, or None when unknown.

    ``enabled`` follows from the sysctl values whenever one is known (a loaded fingerprint
    included); only a fingerprint without any of them keeps the ``enabled`` it states.
    """

    enabled: bool | None = None
    max_user_namespaces: int | None = None
    unprivileged_userns_clone: int | None = None  # Debian's switch (0: off)
    apparmor_restrict_unprivileged_userns: int | None = None  # Ubuntu 23.10+ (1: only profiled programs)

    def __post_init__(self) -> None:
        known = (self.max_user_namespaces, self.unprivileged_userns_clone, self.apparmor_restrict_unprivileged_userns)
        if any(value is not None for value in known):
            self.enabled = userns_enabled(*known)


def userns_enabled(maximum: int | None, clone: int | None, apparmor: int | None) -> bool | None:
    """False when a switch turns them off; None when unknown or up to an AppArmor profile; else True.

    No ``max_user_namespaces`` file says nothing (an old kernel, a partial capture): unknown.
    Ubuntu's ``apparmor_restrict_unprivileged_userns = 1`` lets only programs with an AppArmor
    profile that allows it use them (the distribution's own runtimes ship one): unknown for a runtime.
    """
    if maximum == 0 or clone == 0:
        return False
    if maximum is None or apparmor == 1:
        return None
    return True


@dataclass
class OsInfo:
    kernel_release: str | None = None
    kernel_version: str | None = None  # numeric part, comparable with host.kernel.version.min
    libc: str | None = None  # glibc | musl
    libc_version: str | None = None
    libc_source: str | None = None
    user_namespaces: UserNamespaces = field(default_factory=UserNamespaces)
    filesystems: list[str] = field(default_factory=list)  # overlay, squashfs, fuse when the kernel has them
    distribution: dict[str, str] = field(default_factory=dict)  # os-release ID, VERSION_ID, PRETTY_NAME

    def __post_init__(self) -> None:
        # kernel_version follows from the release when there is one, a loaded fingerprint included.
        if self.kernel_release:
            self.kernel_version = kernel_version(self.kernel_release) or self.kernel_version


def kernel_version(release: str | None) -> str | None:
    """``4.18.0-372.9.1.el8.x86_64`` -> ``4.18.0``."""
    match = re.match(r"\d+(\.\d+)*", release or "")
    return match.group(0) if match else None


def parse_ldd(output: str) -> tuple[str, str] | None:
    """(implementation, version) from ``ldd --version``: GNU ``ldd (GNU libc) 2.28``, musl ``Version 1.2.4``."""
    if "musl" in output:
        match = re.search(r"Version\s+(\d+(?:\.\d+)+)", output)
        return ("musl", match.group(1)) if match else None
    first = output.strip().splitlines()[0] if output.strip() else ""
    if "libc" in first.lower() or "glibc" in first.lower():
        match = re.search(r"(\d+\.\d+(?:\.\d+)?)\s*$", first)
        if match:
            return "glibc", match.group(1)
    return None


def _libc_from_tree(host: HostView) -> tuple[str, str | None, str] | None:
    for directory in LIB_DIRS:
        names = host.listdir(directory)
        for name in names:
            match = re.fullmatch(r"libc-(\d+\.\d+(?:\.\d+)?)\.so", name)
            if match:
                return "glibc", match.group(1), f"/{directory}/{name}"
        for name in names:
            if name.startswith("ld-musl-"):
                return "musl", None, f"/{directory}/{name}"
        if "libc.so.6" in names:
            try:
                with open_regular(host.path(f"{directory}/libc.so.6")) as handle:
                    data = handle.read(BANNER_LIMIT)
            except (OSError, InputError):
                continue
            match = re.search(rb"GNU C Library[^\n]*?version (\d+\.\d+(?:\.\d+)?)", data)
            if match:
                return "glibc", match.group(1).decode(), f"/{directory}/libc.so.6"
    return None


def libc(host: HostView) -> tuple[str | None, str | None, str | None]:
    """(implementation, version, where it was read)."""
    if host.live:
        try:
            text = os.confstr("CS_GNU_LIBC_VERSION")
        except (AttributeError, ValueError, OSError):
            text = None
        if text and text.startswith("glibc "):
            return "glibc", text.split()[1], "os.confstr(CS_GNU_LIBC_VERSION)"
    rc, out = host.run(cmd.LDD)
    if rc != cmd.NOT_FOUND:
        parsed = parse_ldd(out)
        if parsed:
            return parsed[0], parsed[1], "ldd --version"
    if not host.live:
        found = _libc_from_tree(host)
        if found:
            return found
    return None, None, None


def user_namespaces(host: HostView) -> UserNamespaces:
    """Whether an unprivileged user can create a user namespace (rootless runtimes need it)."""
    maximum = host.read_int("/proc/sys/user/max_user_namespaces")
    clone = host.read_int("/proc/sys/kernel/unprivileged_userns_clone")
    apparmor = host.read_int("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    return UserNamespaces(userns_enabled(maximum, clone, apparmor), maximum, clone, apparmor)


def filesystems(host: HostView) -> list[str]:
    text = host.read("/proc/filesystems") or ""
    present = {line.split()[-1] for line in text.splitlines() if line.split()}
    return [fs for fs in CONTAINER_FILESYSTEMS if fs in present]


def distribution(host: HostView) -> dict[str, str]:
    text = host.read("/etc/os-release") or host.read("/usr/lib/os-release") or ""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("ID", "VERSION_ID", "PRETTY_NAME"):
            values[key] = value.strip().strip('"').strip("'")
    return values


def detect(host: HostView) -> OsInfo:
    release = host.read_line("/proc/sys/kernel/osrelease")
    if release is None and host.live:
        release = platform.release() or None
    implementation, version, source = libc(host)
    return OsInfo(
        kernel_release=release,
        kernel_version=kernel_version(release),
        libc=implementation,
        libc_version=version,
        libc_source=source,
        user_namespaces=user_namespaces(host),
        filesystems=filesystems(host),
        distribution=distribution(host),
    )
