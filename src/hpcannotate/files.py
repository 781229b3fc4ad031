"""One bounded way to read the files hpcannotate is handed: regular files only, size checked twice.

Why: a FIFO given to ``validate`` blocks ``open()`` forever, ``/dev/zero`` and ``/proc`` files say
their size is 0 and then never end, and a sparse file says 1 TB. So every input file is

- checked with ``stat`` first, so a FIFO, device, socket or directory is refused without opening it;
- opened with ``O_NONBLOCK`` (a FIFO swapped in between the two steps cannot block the open) and,
  where asked, ``O_NOFOLLOW``; ``fstat`` on the open file decides, not the name;
- refused when ``fstat`` says it is larger than the limit, and read in chunks that stop one byte past
  the limit, so a file that grows, or lies about its size, still costs at most ``limit + 1`` bytes.

Errors are one ``InputError`` line that names the file and says why.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from hpcannotate.errors import InputError

MAX_FILE_BYTES = 16 * 1024 * 1024  # the cap on an input document (annotations, recipes, fingerprints)
CHUNK = 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)

_REASONS = {
    errno.ENOENT: "no such file",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.ENAMETOOLONG: "file name too long",
    errno.EISDIR: "is a directory",
    errno.ENXIO: "is a socket or a device with nothing behind it",
    errno.EOVERFLOW: "too large to read",
}


def kind_of(mode: int) -> str | None:
    """``a FIFO (named pipe)`` and the like for a special file; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


def os_reason(exc: OSError) -> str:
    """A short lower-case reason for an OSError, without the path (callers name the file first)."""
    return _REASONS.get(exc.errno or 0) or (exc.strerror or type(exc).__name__).lower()


def open_regular(
    path: str | Path,
    what: str = "file",
    *,
    max_bytes: int | None = None,
    follow_symlinks: bool = True,
) -> BinaryIO:
    """A binary handle on ``path`` if it is a regular file (at most ``max_bytes`` long), else InputError.

    The handle is blocking again once the file is known to be regular (O_NONBLOCK means nothing for
    regular files, but it would for a file system that honours it). Read it in bounded chunks.
    """
    try:
        before = os.stat(path, follow_symlinks=follow_symlinks)
    except OSError as exc:
        raise InputError(f"{path}: {os_reason(exc)}") from None
    _check(path, before, what, max_bytes)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"{path}: {os_reason(exc)}") from None
    try:
        _check(path, os.fstat(fd), what, max_bytes)  # the file opened is the one that counts
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check(path: str | Path, info: os.stat_result, what: str, max_bytes: int | None) -> None:
    kind = kind_of(info.st_mode)
    if kind is not None:
        raise InputError(f"{path}: is {kind}, expected a {what} (a regular file)")
    if max_bytes is not None and info.st_size > max_bytes:
        raise InputError(f"{path}: {info.st_size} bytes is too large for a {what} (limit {max_bytes})")


def read_bytes(
    path: str | Path,
    what: str = "file",
    max_bytes: int = MAX_FILE_BYTES,
    *,
    follow_symlinks: bool = True,
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, checked before and while reading."""
    with open_regular(path, what, max_bytes=max_bytes, follow_symlinks=follow_symlinks) as handle:
        return read_limited(handle, path, what, max_bytes)


def read_limited(handle: BinaryIO, path: str | Path, what: str, max_bytes: int) -> bytes:
    """Read ``handle`` to its end, refusing it once it passes ``max_bytes`` (a file whose size lied)."""
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = handle.read(min(CHUNK, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise InputError(f"{path}: more than {max_bytes} bytes, too large for a {what}")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {os_reason(exc)}") from None
    return b"".join(chunks)


def read_text(
    path: str | Path,
    what: str = "file",
    max_bytes: int = MAX_FILE_BYTES,
    *,
    follow_symlinks: bool = True,
) -> str:
    """The UTF-8 text (a BOM is dropped) of a small regular file, or an InputError naming it."""
    data = read_bytes(path, what, max_bytes, follow_symlinks=follow_symlinks)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def read_head(path: str | Path, size: int) -> bytes | None:
    """The first ``size`` bytes of a regular file, for sniffing its format; None for anything else."""
    try:
        with open_regular(path) as handle:
            return handle.read(size)
    except (InputError, OSError):
        return None


def write_text(path: str | Path, text: str, what: str = "output") -> None:
    """Write an output file the user named (``-o``), or an InputError naming it and why.

    O_NONBLOCK makes a FIFO nobody reads fail at once (ENXIO) instead of blocking; a FIFO with a
    reader, or a device such as /dev/stdout, is written as asked.
    """
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise InputError(f"{path}: cannot write the {what}: no such directory {path.parent}") from None
        if exc.errno == errno.ENXIO:
            raise InputError(f"{path}: cannot write the {what}: a FIFO that nobody reads") from None
        raise InputError(f"{path}: cannot write the {what}: {os_reason(exc)}") from None
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(text.encode("utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot write the {what}: {os_reason(exc)}") from None
    finally:
        if fd >= 0:
            os.close(fd)


def regular_only(where: str):
    """A copytree ``copy_function`` that copies regular files and refuses FIFOs, sockets and devices
    (copying a FIFO waits for a writer that never comes; a device never ends)."""
    def copy(source: str, dest: str) -> str:
        if not stat.S_ISREG(os.stat(source).st_mode):
            raise InputError(f"{where}: {source} is a special file (FIFO, socket or device), not a regular file")
        import shutil  # only when copying: shutil pulls in bz2 and lzma

        return shutil.copy2(source, dest)

    return copy
