"""Stream one layer blob into an ``ImageTree``: decompress, read the tar, apply whiteouts, keep what is asked.

A layer is read once, front to back, in bounded memory: no layer is ever held
whole, a compressed chunk is inflated a bounded slice at a time (a zip bomb
cannot grow memory), and tar members that are not wanted are skipped in the
stream. The compression is told by the blob's first bytes, not its media type
(gzip ``1f 8b``, zstd ``28 b5 2f fd``, else a plain tar), because registries and
tools get media types wrong.

Nothing is written outside the scratch directory: extracted files get names
the probe makes up (``000001``), opened with ``O_CREAT|O_EXCL|O_NOFOLLOW``;
symbolic links are recorded as text and never created; member names with a
``..`` component are skipped with a warning and absolute names are made
relative; device nodes and FIFOs are skipped. A truncated or corrupt layer, a
blob that is not a tar, or one whose bytes do not match its digest is one
``LayerError`` naming the layer digest; a decompressor failure says which
decompressor failed.

Python's tarfile reads a header extension (a pax header, a GNU long name or
link, a GNU sparse map) whole into memory, so ``_TarReader``, the file tarfile
reads through (its public interface only: ``TarFile(fileobj=...)``, ``next()``,
``extractfile``), sees each header before tarfile processes it and refuses
extensions larger than ``EXTENSION_LIMIT``, chains of more than
``EXTENSION_CHAIN`` of them before one member, global pax headers adding up
to more than ``EXTENSION_LIMIT`` and sparse maps of more than ``SPARSE_LIMIT``
regions. A layer whose tar stream is larger than ``MAX_TAR_BYTES`` (64 GiB
unless ``apply_layer`` is told otherwise) is refused as well.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import struct
import subprocess
import tarfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from hpcannotate.errors import InputError
from hpcannotate.image.probe.tree import DIR, FILE, SYMLINK, ImageTree, Node, join, parent_of, split

CHUNK = 1024 * 1024
TAR_BUFFER = 64 * 1024  # tarfile copies its buffer on every header read: small keeps that cheap
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WARNINGS_PER_LAYER = 20
EXTENSION_LIMIT = 1024 * 1024  # bytes of one pax header / GNU long name, and of all global pax headers together
EXTENSION_CHAIN = 8  # extension headers in a row before one member (real archives use two at most)
SPARSE_LIMIT = 65536  # regions of one GNU sparse file
MAX_TAR_BYTES = 64 * 1024**3  # decompressed bytes of one layer


class LayerError(InputError):
    """A layer that cannot be read: truncated, corrupt, not a tar, or not matching its digest."""


class Wanted(Protocol):
    def limit(self, path: str) -> int | None:
        """None: only count this regular file; 0: record it; N > 0: also keep its first N bytes."""


@dataclass
class LayerStats:
    digest: str
    compression: str = "tar"
    bytes_read: int = 0  # the blob's bytes, as stored (compressed)
    tar_bytes: int = 0  # after decompression
    entries: int = 0
    files_kept: list[str] = field(default_factory=list)  # image paths whose bytes were extracted
    blobs: dict[str, str] = field(default_factory=dict)  # scratch file name -> image path
    skipped: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "digest": self.digest,
            "compression": self.compression,
            "bytes_read": self.bytes_read,
            "tar_bytes": self.tar_bytes,
            "entries": self.entries,
            "files_kept": len(self.files_kept),
            "skipped": self.skipped,
        }


# -- byte streams ---------------------------------------------------------------------------------


class _Hashing:
    """Counts and hashes what the decompressor pulls from the blob; ``finish`` drains and checks the digest."""

    def __init__(self, raw: BinaryIO, digest: str):
        self._raw = raw
        self._digest = digest
        self._hash = hashlib.sha256() if digest.startswith("sha256:") else None
        self.count = 0
        self._head = b""

    def peek(self, size: int) -> bytes:
        while len(self._head) < size:
            data = self._raw.read(size - len(self._head))
            if not data:
                break
            self._account(data)
            self._head += data
        return self._head[:size]

    def _account(self, data: bytes) -> None:
        self.count += len(data)
        if self._hash is not None:
            self._hash.update(data)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (a short read is not the end: only b"" is)."""
        if self._head:
            if size < 0 or size >= len(self._head):
                data, self._head = self._head, b""
            else:
                data, self._head = self._head[:size], self._head[size:]
            return data
        data = self._raw.read(size if size >= 0 else CHUNK)
        self._account(data)
        return data

    def finish(self) -> bool:
        """Read what is left (the tar's padding, a compressor's trailer); True if the digest matches."""
        while self.read(CHUNK):
            pass
        if self._hash is None:
            return True
        return "sha256:" + self._hash.hexdigest() == self._digest


class _Inflate:
    """gzip (any number of members) inflated a bounded slice at a time, straight from zlib."""

    def __init__(self, source: _Hashing):
        self._source = source
        self._d = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed input not yet given to zlib
        self._buffer = bytearray()
        self._eof = False
        self._member_started = False

    def _fill(self, want: int) -> None:
        while len(self._buffer) < want and not self._eof:
            if self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            elif self._pending:
                data, self._pending = self._pending, b""
            else:
                data = self._source.read(CHUNK)
                if not data:
                    if self._member_started and not self._d.eof:
                        self._buffer += self._d.flush()  # output zlib still holds for want of room
                        if not self._d.eof:
                            raise EOFError("compressed data ended before the end of the gzip stream")
                    self._eof = True
                    break
            if not self._member_started:  # between members: zero padding is allowed, anything else is not
                data = data.lstrip(b"\0")
                if not data:
                    continue
                if not GZIP_MAGIC.startswith(data[:2]):
                    raise zlib.error("data after the end of the gzip stream")
                self._member_started = True
            self._buffer += self._d.decompress(data, CHUNK)
            if self._d.eof:
                self._pending = self._d.unused_data
                self._d = zlib.decompressobj(wbits=31)
                self._member_started = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            chunks = []
            while data := self.read(CHUNK):
                chunks.append(data)
            return b"".join(chunks)
        self._fill(size)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class _ZstdCommand:
    """zstd through the ``zstd`` command when no Python binding is installed: a feeder thread, a pipe."""

    def __init__(self, source: _Hashing, exe: str):
        self._proc = subprocess.Popen([exe, "-d", "-c", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        self._source = source
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        assert self._proc.stdin is not None
        try:
            while data := self._source.read(CHUNK):
                self._proc.stdin.write(data)
        except BrokenPipeError:
            pass
        except BaseException as exc:  # reported by read()/close() in the reading thread
            self._error = exc
        finally:
            with contextlib.suppress(BrokenPipeError):
                self._proc.stdin.close()

    def read(self, size: int = -1) -> bytes:
        assert self._proc.stdout is not None
        data = self._proc.stdout.read(size)
        if not data or (size > 0 and len(data) < size):
            self._check()
        return data

    def _check(self) -> None:
        self._thread.join()
        code = self._proc.wait()
        if self._error is not None:
            raise self._error
        if code != 0:
            message = (self._proc.stderr.read() if self._proc.stderr else b"").decode(errors="replace").strip()
            raise zlib.error(f"zstd: {message.splitlines()[-1] if message else f'exit {code}'}")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._thread.join(timeout=5)


def _zstd_reader(source: _Hashing):
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14

        return zstd.ZstdFile(source, "rb")
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found]

        return zstandard.ZstdDecompressor().stream_reader(source, read_size=CHUNK)
    except ImportError:
        pass
    exe = shutil.which("zstd")
    if exe is None:
        return None
    return _ZstdCommand(source, exe)


def _zstd_errors() -> tuple[type[BaseException], ...]:
    """The exception types the installed zstd bindings raise (none when only the command is there)."""
    found: list[type[BaseException]] = []
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14

        found.append(zstd.ZstdError)
    except (ImportError, AttributeError):
        pass
    try:
        import zstandard  # type: ignore[import-not-found]

        found.append(zstandard.ZstdError)
    except (ImportError, AttributeError):
        pass
    return tuple(found)


class _DecompressError(Exception):
    """The decompressor (not the tar reader) failed: raised through tarfile untouched, reported by name."""


# -- tar members ----------------------------------------------------------------------------------


_EXTENSIONS = {
    tarfile.XHDTYPE: "pax extended header",
    tarfile.SOLARIS_XHDTYPE: "Solaris extended header",
    tarfile.XGLTYPE: "pax global header",
    tarfile.GNUTYPE_LONGNAME: "GNU long-name header",
    tarfile.GNUTYPE_LONGLINK: "GNU long-link header",
}


class _TarReader:
    """What ``tarfile.TarFile`` reads, through its public interface only: a buffered, forward-only
    file (``read``, ``tell``, ``seek`` ahead) that also watches the headers tarfile parses.

    While ``TarFile.next()`` runs (``watching``), every block it reads is seen here first, in order:
    a header, an extension's content, an old GNU sparse extension block, or the map of a GNU sparse
    1.0 file. So a header extension tarfile would read whole into memory is refused when its header
    arrives, before its content is read; so are chains of more than ``EXTENSION_CHAIN`` extensions,
    global pax headers adding up to more than ``EXTENSION_LIMIT``, and sparse maps of more than
    ``SPARSE_LIMIT`` regions. A refusal is a ``tarfile.HeaderError``, which the layer reader reports in
    one line. Reads of member data (``extractfile``) happen outside ``next()`` and are not inspected.
    """

    def __init__(self, stream):
        self._stream = stream
        self._buf = b""
        self._at = 0  # position in _buf
        self.pos = 0  # bytes handed to tarfile (or skipped by a seek)
        self.watching = False
        self._state = "header"
        self._header = 0  # offset of the header being processed
        self._chain = 0  # extension headers since the last real member
        self._global = 0  # bytes of pax global headers so far
        self._regions = 0  # regions of the old GNU sparse file being read
        self._map = b""  # unparsed bytes of a GNU sparse 1.0 map
        self._map_need: int | None = None  # numbers the map still holds (None: its count is next)

    # -- the file tarfile sees ---------------------------------------------------------------------
    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or pos < self.pos:
            raise OSError("a layer is read front to back: no seeking backwards")
        while self.pos < pos and self._take(min(pos - self.pos, CHUNK)):
            pass
        return self.pos

    def read(self, size: int = -1) -> bytes:
        start = self.pos
        if size is None or size < 0:
            parts = []
            while chunk := self._take(CHUNK):
                parts.append(chunk)
            data = b"".join(parts)
        else:
            data = self._take(size)
            while len(data) < size and (more := self._take(size - len(data))):
                data += more
        if self.watching and self._state != "idle":
            self._watch(data, start)
        return data

    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes: from the buffer, else one read of the stream (b"" only at its end)."""
        if self._at >= len(self._buf):
            if size >= TAR_BUFFER:
                data = self._stream.read(size)
                self.pos += len(data)
                return data
            self._buf, self._at = self._stream.read(TAR_BUFFER), 0
        data = self._buf[self._at:self._at + size]
        self._at += len(data)
        self.pos += len(data)
        return data

    # -- what tarfile is parsing -------------------------------------------------------------------
    def start(self) -> None:
        """``TarFile.next()`` begins: the next block it reads at a header position is a header."""
        self.watching, self._state = True, "header"

    def stop(self) -> None:
        self.watching = False

    def _watch(self, data: bytes, start: int) -> None:
        if self._state == "header":
            if len(data) == tarfile.BLOCKSIZE:  # next() also reads 1 byte to detect truncation: not a header
                self._on_header(data, start)
        elif self._state == "content":
            self._state = "header"
        elif self._state == "sparse":
            self._on_sparse_block(data)
        elif self._state == "map":
            self._on_map(data)

    def _on_header(self, block: bytes, offset: int) -> None:
        found = _type_and_size(block)
        if found is None:
            self._state = "idle"  # the end, or a header tarfile refuses itself
            return
        kind_byte, size = found
        self._header = offset
        kind = _EXTENSIONS.get(kind_byte)
        if kind is None:
            self._chain = 0  # a real member ends the chain of extensions before it
            if kind_byte == tarfile.GNUTYPE_SPARSE:
                self._regions = _sparse_regions(block[386:482], 4)
                self._state = "sparse" if block[482] else "idle"
            else:  # the only blocks next() may still read are a GNU sparse 1.0 map
                self._state, self._map, self._map_need = "map", b"", None
            return
        if size > EXTENSION_LIMIT:
            raise tarfile.HeaderError(f"a {kind} of {size} bytes at offset {offset}: more than the "
                                      f"{EXTENSION_LIMIT} bytes the probe reads (corrupt or hostile archive)")
        self._chain += 1
        if self._chain > EXTENSION_CHAIN:
            raise tarfile.HeaderError(f"more than {EXTENSION_CHAIN} tar extension headers in a row at offset "
                                      f"{offset} (corrupt or hostile archive)")
        if kind_byte == tarfile.XGLTYPE:
            self._global += size
            if self._global > EXTENSION_LIMIT:
                raise tarfile.HeaderError(f"pax global headers add up to more than {EXTENSION_LIMIT} bytes at "
                                          f"offset {offset} (corrupt or hostile archive)")
        self._state = "content"

    def _on_sparse_block(self, block: bytes) -> None:
        """An old GNU sparse extension block: 21 regions and whether another block follows."""
        if self._regions > SPARSE_LIMIT:
            raise tarfile.HeaderError(f"a GNU sparse file of more than {SPARSE_LIMIT} regions at offset "
                                      f"{self._header} (corrupt or hostile archive)")
        if len(block) < tarfile.BLOCKSIZE:
            raise tarfile.HeaderError("truncated GNU sparse header")
        self._regions += _sparse_regions(block[:504], 21)
        if not block[504]:
            self._state = "idle"

    def _on_map(self, block: bytes) -> None:
        """A GNU sparse 1.0 map, as tarfile reads it (a count, then offset and size lines): bounded in
        regions and in line length."""
        if not block:
            raise tarfile.HeaderError("truncated GNU sparse map")
        self._map += block
        while True:
            newline = self._map.find(b"\n")
            if newline < 0:
                if len(self._map) > 64:
                    raise tarfile.HeaderError(f"a GNU sparse map line of more than 64 bytes at offset "
                                              f"{self._header}")
                return
            text, self._map = self._map[:newline], self._map[newline + 1:]
            try:
                number = int(text)
                if self._map_need is None and not 0 <= number <= SPARSE_LIMIT:
                    raise ValueError
            except ValueError:
                raise tarfile.HeaderError(f"a GNU sparse map at offset {self._header} that is not numbers, or of "
                                          f"more than {SPARSE_LIMIT} regions (corrupt or hostile archive)") from None
            self._map_need = number * 2 if self._map_need is None else self._map_need - 1
            if self._map_need == 0:
                self._state = "idle"
                return


_SIGNED_SUM = struct.Struct("148b8x356b")


def _type_and_size(block: bytes) -> tuple[bytes, int] | None:
    """The type and size fields of a tar header block, read as ``TarInfo.frombuf`` reads them; None where
    frombuf refuses the block (all zeros: the end; a checksum that does not add up). Read here, not with
    frombuf, because frombuf decodes every field: twice per header would slow the probe down."""
    if block.count(0) == tarfile.BLOCKSIZE:
        return None
    try:
        checksum = _tar_number(block[148:156])
        size = _tar_number(block[124:136])
    except ValueError:
        return None
    unsigned = 256 + sum(block[:148]) + sum(block[156:512])
    if checksum != unsigned and checksum != 256 + sum(_SIGNED_SUM.unpack_from(block)):
        return None
    return block[156:157], size


def _sparse_regions(fields: bytes, count: int) -> int:
    """Regions an old GNU sparse header (or extension block) lists, counted as tarfile counts them:
    entries with a non-zero offset and size, up to the first that is not a number."""
    found = 0
    for i in range(count):
        try:
            offset = _tar_number(fields[i * 24:i * 24 + 12])
            size = _tar_number(fields[i * 24 + 12:i * 24 + 24])
        except ValueError:
            break
        found += bool(offset and size)
    return found


def _tar_number(field: bytes) -> int:
    """A tar number field: octal text, or base-256 when the first byte says so."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[:1] == b"\xff" else value
    return int(field.split(b"\0", 1)[0].decode("ascii").strip() or "0", 8)


def normalise(name: str) -> str | None:
    """A member name as a path inside the root; None when it climbs out (``..``) or names nothing."""
    parts = split(name)
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _escapes(path: str, target: str) -> bool:
    """Whether a relative link target climbs above the image root (it is resolved inside it anyway)."""
    if target.startswith("/"):
        return ".." in split(target) and _climb(split(target)) < 0
    return _climb(split(parent_of(path)) + split(target)) < 0


def _climb(parts: list[str]) -> int:
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            return -1
    return depth


class _Applier:
    """Applies one layer's members to the tree."""

    def __init__(self, tree: ImageTree, index: int, wanted: Wanted, scratch: Path, stats: LayerStats,
                 counter: Callable[[], int]):
        self.tree = tree
        self.index = index
        self.wanted = wanted
        self.scratch = scratch
        self.stats = stats
        self.counter = counter

    def warn(self, text: str, skipped: bool = True) -> None:
        self.stats.skipped += int(skipped)
        if len(self.stats.warnings) < WARNINGS_PER_LAYER:
            self.stats.warnings.append(f"layer {self.stats.digest}: {text}")
        elif len(self.stats.warnings) == WARNINGS_PER_LAYER:
            self.stats.warnings.append(f"layer {self.stats.digest}: more entries skipped (not listed)")

    def member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        self.stats.entries += 1
        path = normalise(info.name)
        if path is None:
            if split(info.name):
                self.warn(f"skipped {info.name!r}: its path leaves the image root")
            return
        base = path.rpartition("/")[2]
        if base.startswith(".wh."):
            parent = self.tree.real_dir(parent_of(path))
            if base == ".wh..wh..opq":
                self.tree.opaque(parent, self.index)
            elif base[4:] and base[4:] not in (".", ".."):
                self.tree.whiteout(join(parent, base[4:]), self.index)
            return
        place = self.tree.placed(path)
        if info.isdir():
            ok = self.tree.add(place, Node(DIR, self.index))
        elif info.issym():
            if _escapes(path, info.linkname):
                self.warn(f"link {path} -> {info.linkname} climbs above the image root; resolved inside it",
                          skipped=False)
            ok = self.tree.add(place, Node(SYMLINK, self.index, link=info.linkname))
        elif info.islnk():
            ok = self._hardlink(place, info)
        elif info.isreg():
            ok = self._regular(tar, info, place)
        else:  # character/block devices, FIFOs: never created, never needed
            return
        if not ok:
            self.warn(f"skipped {path}: a file is in the way of its directory")

    def _regular(self, tar: tarfile.TarFile, info: tarfile.TarInfo, place: str) -> bool:
        limit = self.wanted.limit(place)
        if limit is None:
            return self.tree.count_unrecorded(place, self.index)
        blob = None
        if limit > 0:
            if info.size > limit:
                self.warn(f"{place} is {info.size} bytes, more than the {limit} the probe reads; not read")
            else:
                blob = self._extract(tar, info)
                self.stats.files_kept.append("/" + place)
                self.stats.blobs[blob.name] = "/" + place
        return self.tree.add(place, Node(FILE, self.index, size=info.size, blob=blob))

    def _extract(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> Path:
        target = self.scratch / f"{self.counter():06d}"
        source = tar.extractfile(info)
        assert source is not None
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        return target

    def _hardlink(self, place: str, info: tarfile.TarInfo) -> bool:
        target = normalise(info.linkname)
        if target is None:
            self.warn(f"skipped hard link {place} -> {info.linkname!r}: its target leaves the image root")
            return True
        source = self.tree.nodes.get(self.tree.placed(target))
        if source is not None and source.kind == FILE:
            return self.tree.add(place, Node(FILE, self.index, size=source.size, blob=source.blob))
        limit = self.wanted.limit(place)
        if limit is None:
            return self.tree.count_unrecorded(place, self.index)
        if limit > 0:
            self.warn(f"{place} is a hard link to {target}, whose bytes were not kept; not read")
        return self.tree.add(place, Node(FILE, self.index))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, EOFError) or "unexpected end" in text or "ended before" in text:
        return f"truncated or corrupt ({text})"
    return text


def apply_layer(
    tree: ImageTree,
    raw: BinaryIO,
    *,
    digest: str,
    index: int,
    wanted: Wanted,
    scratch: Path,
    counter: Callable[[], int],
    where: str = "",
    max_tar_bytes: int = MAX_TAR_BYTES,
) -> LayerStats:
    """Read the layer blob ``raw`` (as stored: compressed or not) and apply it as layer number ``index``.

    ``max_tar_bytes`` caps the decompressed size of the layer (a zip bomb is refused, not read to its end).
    """
    stats = LayerStats(digest)
    prefix = f"{where}: " if where else ""
    source = _Hashing(raw, digest)
    head = source.peek(4)
    if head.startswith(GZIP_MAGIC):
        stats.compression = "gzip"
        stream = _Inflate(source)
    elif head.startswith(ZSTD_MAGIC):
        stats.compression = "zstd"
        stream = _zstd_reader(source)
        if stream is None:
            raise LayerError(f"{prefix}layer {digest} is zstd-compressed; install the zstd command or "
                             "`pip install zstandard` to read it")
    else:
        stream = source
    counted = _Counting(stream, stats.compression, max_tar_bytes)
    reader = _TarReader(counted)
    applier = _Applier(tree, index, wanted, scratch, stats, counter)
    try:
        try:
            reader.start()  # the constructor reads the first member
            tar = tarfile.TarFile(fileobj=reader, mode="r")
            reader.stop()
        except tarfile.ReadError as exc:
            if counted.count == 0 or "invalid header" in str(exc) or "empty file" in str(exc):
                raise LayerError(f"{prefix}layer {digest} is not a tar archive "
                                 f"({stats.compression if stats.compression != 'tar' else 'no gzip or zstd'} "
                                 f"data, {_describe(exc)})") from None
            raise
        with tar:
            while True:
                reader.start()
                info = tar.next()
                reader.stop()
                if info is None:
                    break
                applier.member(tar, info)
                tar.members.clear()  # tarfile keeps every TarInfo otherwise: memory grows with the layer
            end = tar.offset
        while counted.read(CHUNK):  # the compressor's end (its checksum is verified there)
            pass
        _check_end(counted.count, end, applier, f"{prefix}layer {digest}")
    except LayerError:
        raise
    except _DecompressError as exc:
        raise LayerError(f"{prefix}layer {digest}: {exc}") from None
    except RecursionError:
        raise LayerError(f"{prefix}layer {digest}: tar headers nested too deeply "
                         "(corrupt or hostile archive)") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, *_zstd_errors()) as exc:
        raise LayerError(f"{prefix}layer {digest}: {_describe(exc)}") from None
    finally:
        close = getattr(stream, "close", None)
        if close is not None and stream is not source:
            close()
    stats.tar_bytes = counted.count
    if not source.finish():
        raise LayerError(f"{prefix}layer {digest}: its content does not match its digest (corrupt or truncated)")
    stats.bytes_read = source.count
    return stats


def _check_end(size: int, end: int, applier: _Applier, where: str) -> None:
    """A tar ends with two zero blocks; a stream that stops inside a block was cut off.

    Python's tarfile takes a stream ending at a block boundary for the end of the archive, so this
    is where truncation between members shows. A missing end marker alone is only a warning:
    some writers omit it, and what the layer holds was read.
    """
    if size % 512:
        raise LayerError(f"{where}: truncated or corrupt (the tar stream stops inside a 512-byte block)")
    if size - end < 1024:
        applier.warn("the tar has no end-of-archive marker (truncated?); its entries were read", skipped=False)


class _Counting:
    """What tarfile reads: counted, capped at ``limit`` bytes, decompressor failures named as such."""

    def __init__(self, stream, compression: str = "tar", limit: int = MAX_TAR_BYTES):
        self._stream = stream
        self._compression = compression
        self._limit = limit
        self._errors: tuple[type[BaseException], ...] = (
            (zlib.error, EOFError, *_zstd_errors()) if compression != "tar" else ())
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._stream.read(size)
        except self._errors as exc:
            raise _DecompressError(f"{self._compression} decompression failed: truncated or corrupt "
                                   f"{self._compression} data ({str(exc).strip() or type(exc).__name__})") from None
        self.count += len(data)
        if self.count > self._limit:
            raise _DecompressError(f"more than {self._limit} bytes of tar once decompressed (the probe's limit "
                                   "per layer): refused")
        return data
