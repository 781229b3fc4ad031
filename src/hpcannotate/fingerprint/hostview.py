"""One view of the machine being fingerprinted: its files and its commands.

The live host is the tree ``/`` with commands run for real; a ``--sysroot`` is
a captured tree whose commands are answered from ``<sysroot>/commands``. The
probes only talk to a ``HostView``, so the same code reads both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .commands import Runner

READ_LIMIT = 4 * 1024 * 1024
# procfs sysctl files refuse one huge read() with ENOMEM: read in page-sized steps.
CHUNK = 64 * 1024


@dataclass(frozen=True)
class HostView:
    root: Path
    run_command: Runner
    live: bool

    def path(self, path: str) -> Path:
        """An absolute host path (``/proc/cpuinfo``) inside this view's tree."""
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str | None:
        """The text of a small host file, or None when it is missing or unreadable."""
        chunks: list[bytes] = []
        size = 0
        try:
            with open(self.path(path), "rb") as handle:
                while size < READ_LIMIT:
                    chunk = handle.read(CHUNK)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
        except OSError:
            return None
        return b"".join(chunks).decode("utf-8", "replace")

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
        return self.path(path).exists()

    def run(self, argv: Sequence[str]) -> tuple[int, str]:
        return self.run_command(tuple(argv))
