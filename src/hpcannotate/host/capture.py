"""``fingerprint capture DIR``: write this node as a sysroot that ``--sysroot`` reads elsewhere.

A site admin captures each node type once (on a compute node of each Slurm partition) and
matches images against the captures from a login node or a laptop. The capture is made by
running the fingerprint probes over this machine *as if it were a captured tree* (``/`` read
as a sysroot, commands run for real) while recording every file read, every directory listed,
every link read and every command's output; exactly those are written to DIR. So the capture
holds what the probes need and nothing else (no /home, no environment), and reading it back
gives the same fingerprint: ``capture`` checks that before it returns.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.host import commands as cmd
from hpcannotate.host.hostview import HostView, read_bytes

MAX_LISTED = 200  # a listed directory with more entries (a library directory) is not mirrored name by name
COPY_LIMIT = 4 * 1024 * 1024  # bytes copied of one file (the probes read at most this much; libc.so.6 less)


@dataclass
class Recording:
    files: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)
    links: set[str] = field(default_factory=set)
    runs: dict[tuple[str, ...], tuple[int, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordingView(HostView):
    """This machine read as a sysroot at ``/``, remembering what the probes touched."""

    def __init__(self, recording: Recording, run=cmd.host_run):
        super().__init__(Path("/"), run, live=False)
        object.__setattr__(self, "recording", recording)

    def path(self, path: str, follow_last: bool = True) -> Path:
        with self.recording.lock:
            self.recording.files.add(path)
        return super().path(path, follow_last)

    def listdir(self, path: str) -> list[str]:
        with self.recording.lock:
            self.recording.listed.add(path)
        return super().listdir(path)

    def readlink(self, path: str) -> str | None:
        with self.recording.lock:
            self.recording.links.add(path)
        return super().readlink(path)

    def run(self, argv: Sequence[str]) -> tuple[int, str]:
        result = super().run(argv)
        with self.recording.lock:
            self.recording.runs[tuple(argv)] = result
        return result


def _inside(directory: Path, host_path: str) -> Path:
    parts = [p for p in host_path.split("/") if p not in ("", ".", "..")]
    return directory.joinpath(*parts)


def _copy_file(source: Path, dest: Path) -> bool:
    data = read_bytes(source, COPY_LIMIT)
    if data is None:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return True


def write(recording: Recording, directory: Path) -> list[str]:
    """Write what was recorded into ``directory``; the host paths written, sorted."""
    written = []
    for path in sorted(recording.links):
        target = os.readlink(path) if os.path.islink(path) else None
        if target is not None:
            dest = _inside(directory, path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.is_symlink():
                os.symlink(target, dest)
            written.append(path)
    for path in sorted(recording.listed):
        source = Path(path)
        try:
            entries = sorted(source.iterdir())
        except OSError:
            continue
        dest = _inside(directory, path)
        dest.mkdir(parents=True, exist_ok=True)
        if len(entries) > MAX_LISTED:
            continue
        for entry in entries:
            target = dest / entry.name
            if entry.is_dir() and not target.exists():
                target.mkdir(parents=True, exist_ok=True)
    for path in sorted(recording.files):
        source = Path(path)
        dest = _inside(directory, path)
        if source.is_file() and not dest.is_symlink() and _copy_file(source, dest):
            written.append(path)
    commands = directory / "commands"
    commands.mkdir(parents=True, exist_ok=True)
    for argv, (rc, output) in sorted(recording.runs.items()):
        if rc == cmd.NOT_FOUND:
            continue  # not installed here: no file says exactly that
        name = cmd.capture_name(argv)
        (commands / f"{name}.txt").write_text(output, encoding="utf-8")
        if rc:
            (commands / f"{name}.rc").write_text(f"{rc}\n")
        written.append(f"commands/{name}.txt")
    return sorted(set(written))


def _comparable(fp) -> dict:
    """What a capture must reproduce: every annotation, the CPU features and the GPUs (not where each was read)."""
    gpus = fp.gpu.nvidia.devices if fp.gpu and fp.gpu.nvidia else []
    return {**fp.annotations, "cpu.features": sorted(fp.cpu.features), "cpu.model": fp.cpu.model,
            "gpu.devices": [(d.name, d.architecture) for d in gpus]}


def capture(directory: Path, *, force: bool = False, run=cmd.host_run) -> list[str]:
    """Capture this node into ``directory`` (new, or empty; ``force`` replaces an earlier capture)."""
    from hpcannotate.host import fingerprint

    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise InputError(f"{directory}: exists and is not a directory")
        earlier = (directory / "proc" / "cpuinfo").is_file()
        if any(directory.iterdir()) and not (force and earlier):
            raise InputError(f"{directory}: not empty (capture writes into a new or empty directory; --force "
                             "replaces an earlier capture)")
        if force and earlier:
            shutil.rmtree(directory)
    recording = Recording()
    view = RecordingView(recording, run)
    here = fingerprint(view=view)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = write(recording, directory)
    except OSError as exc:
        raise InputError(f"{directory}: cannot write the capture ({exc.strerror or exc})") from None
    again = fingerprint(sysroot=directory)
    mine, theirs = _comparable(here), _comparable(again)
    if mine != theirs:
        differ = sorted(k for k in mine if mine.get(k) != theirs.get(k))
        raise InputError(f"{directory}: the capture does not read back as this node ({', '.join(differ)} differ); "
                         "please report this")
    return written
