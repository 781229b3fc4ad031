"""One view of the machine being fingerprinted: its files and its commands.

The live host is the tree ``/`` with commands run for real; a ``--sysroot`` is
a captured tree whose commands are answered from ``<sysroot>/commands``. The
probes only talk to a ``HostView``, so the same code reads both.

Symbolic links in a captured tree are followed inside it, as a chroot would: an
absolute target (``etc/os-release -> /usr/lib/os-release``) starts again at the
tree's root and ``..`` stops there, so nothing of the machine reading the tree
is ever read in its place.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.files import open_regular
from hpcannotate.host.commands import Runner

READ_LIMIT = 4 * 1024 * 1024
# procfs sysctl files refuse one huge read() with ENOMEM: read in page-sized steps.
CHUNK = 64 * 1024
MAX_HOPS = 40  # symbolic links followed in one lookup, as Linux's ELOOP limit


def read_bytes(path: Path, limit: int = READ_LIMIT) -> bytes | None:
    """Up to ``limit`` bytes of a file, read in page-sized steps (procfs); None when it cannot be read."""
    chunks: list[bytes] = []
    size = 0
    try:
        with open_regular(path) as handle:  # a FIFO or device in a sysroot: unknown, not a hang
            while size < limit:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except (OSError, InputError):
        return None
    return b"".join(chunks)[:limit]


@dataclass(frozen=True)
class HostView:
    root: Path
    run_command: Runner
    live: bool

    def path(self, path: str, follow_last: bool = True) -> Path:
        """An absolute host path (``/proc/cpuinfo``) inside this view's tree, its links resolved inside it.

        OSError (ELOOP) when the links loop or are nested too deep.
        """
        if self.live:
            return self.root / path.lstrip("/")
        parts = [p for p in path.split("/") if p and p != "."]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = self.root.joinpath(*done, part)
            if (parts or follow_last) and candidate.is_symlink():
                hops += 1
                if hops > MAX_HOPS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", str(self.where(path)))
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            done.append(part)
        return self.root.joinpath(*done)

    def where(self, path: str) -> Path:
        """The host path inside this view's tree as written, links not followed (for messages)."""
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str | None:
        """The text of a small host file, or None when it is missing or unreadable."""
        try:
            data = read_bytes(self.path(path))
        except OSError:
            return None
        return data.decode("utf-8", "replace") if data is not None else None

    def read_line(self, path: str) -> str | None:
        """The first line of a file, stripped (sysfs and procfs values)."""
        text = self.read(path)
        if text is None:
            return None
        line = text.strip().splitlines()
        return line[0].strip() if line else ""

    def read_int(self, path: str) -> int | None:
        value = self.read_line(path)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def listdir(self, path: str) -> list[str]:
        """Entry names of a host directory, sorted; empty when it does not exist."""
        try:
            return sorted(p.name for p in self.path(path).iterdir())
        except OSError:
            return []

    def exists(self, path: str) -> bool:
        try:
            return self.path(path).exists()
        except OSError:
            return False

    def readlink(self, path: str) -> str | None:
        """The target of a symbolic link in the tree, as stored; None when it is not a link."""
        try:
            return os.readlink(self.path(path, follow_last=False))
        except OSError:
            return None

    def run(self, argv: Sequence[str]) -> tuple[int, str]:
        return self.run_command(tuple(argv))
