"""The layer reader's bounds: huge tar header extensions, nested extensions, a cap on decompressed bytes,
and decompressor failures named as such (review findings on image/probe/layers.py).

Layers are fed to ``apply_layer`` directly, as bytes crafted here; nothing is built or pulled.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import shutil
import subprocess
import tarfile
import tracemalloc

import pytest

from hpcannotate.errors import InputError
from hpcannotate.image.probe import layers
from hpcannotate.image.probe.layers import LayerError, apply_layer
from hpcannotate.image.probe.tree import ImageTree

BLOCK = 512


class Everything:
    def limit(self, path: str) -> int | None:
        return 4096


def _digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _apply(blob: bytes, tmp_path, **kwargs):
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    counter = itertools.count(1)
    return apply_layer(ImageTree(), io.BytesIO(blob), digest=_digest(blob), index=0, wanted=Everything(),
                       scratch=scratch, counter=lambda: next(counter), **kwargs)


def _header(name: str, size: int, kind: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(format=tarfile.USTAR_FORMAT) if kind not in (tarfile.GNUTYPE_LONGNAME,
                                                                   tarfile.GNUTYPE_LONGLINK) \
        else info.tobuf(format=tarfile.GNU_FORMAT)


def _small_file() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("etc/os-release")
        info.size = 8
        tar.addfile(info, io.BytesIO(b"ID=test\n"))
    return out.getvalue()


def _gzip_stream(parts) -> bytes:
    """gzip of the concatenated byte strings ``parts`` (an iterable: nothing big is ever held)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        for part in parts:
            gz.write(part)
    return out.getvalue()


def _zeros(total: int):
    chunk = b"\0" * (1024 * 1024)
    while total > 0:
        yield chunk[: min(total, len(chunk))]
        total -= len(chunk)


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                                  tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK],
                         ids=["pax", "pax-global", "solaris", "gnu-longname", "gnu-longlink"])
def test_a_huge_header_extension_is_refused_without_reading_it_into_memory(tmp_path, kind):
    size = 48 * 1024 * 1024
    blob = _gzip_stream([_header("././@Ext", size, kind), *_zeros(size), _small_file()])
    assert len(blob) < 256 * 1024  # a small blob ...
    tracemalloc.start()
    try:
        with pytest.raises(LayerError) as caught:
            _apply(blob, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert isinstance(caught.value, InputError)
    assert _digest(blob) in message and f"{size} bytes" in message and "\n" not in message
    assert peak < 12 * 1024 * 1024  # ... that used to cost its whole extension (48 MiB) in memory


def test_header_extensions_below_the_limit_still_work(tmp_path):
    out = io.BytesIO()
    long_name = "usr/" + "d" * 300 + "/libfoo.so"
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(long_name)
        info.size = 3
        info.pax_headers = {"comment": "x" * 100_000}
        tar.addfile(info, io.BytesIO(b"abc"))
    stats = _apply(gzip.compress(out.getvalue() + b"\0" * 1024, mtime=0), tmp_path)
    assert stats.entries == 1 and stats.files_kept == ["/" + long_name]


def test_a_long_chain_of_extension_headers_is_refused(tmp_path):
    record = b"30 comment=" + b"y" * 18 + b"\n"
    assert len(record) == 30
    one = _header("././@PaxHeader", len(record), tarfile.XHDTYPE) + record.ljust(BLOCK, b"\0")
    blob = _gzip_stream([one * 2000, _small_file()])
    with pytest.raises(LayerError, match="extension headers in a row"):
        _apply(blob, tmp_path)


def test_many_global_headers_are_refused_in_total(tmp_path):
    size = 512 * 1024
    record_head = f"{size} comment=".encode()
    payload = record_head + b"z" * (size - len(record_head) - 1) + b"\n"
    member = _header("f", 0, tarfile.REGTYPE)
    one = _header("././@Global", size, tarfile.XGLTYPE) + payload + member
    blob = _gzip_stream([one * 4, _small_file()])
    with pytest.raises(LayerError, match="global headers add up"):
        _apply(blob, tmp_path)


def test_an_old_gnu_sparse_map_is_bounded(tmp_path):
    info = tarfile.TarInfo("sparse")
    info.type = tarfile.GNUTYPE_SPARSE
    head = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    head[482] = 1  # isextended: extension blocks follow
    checksum = sum(head[:148]) + 8 * 32 + sum(head[156:BLOCK])
    head[148:155] = b"%06o\0" % checksum
    extension = bytearray(BLOCK)
    for i in range(21):
        extension[i * 24:i * 24 + 12] = b"%011o\0" % (i + 1)
        extension[i * 24 + 12:i * 24 + 24] = b"%011o\0" % 1
    extension[504] = 1  # always another block
    blob = _gzip_stream([bytes(head), *(bytes(extension) for _ in range(20000))])
    with pytest.raises(LayerError, match="sparse"):
        _apply(blob, tmp_path)


def test_decompressed_bytes_are_capped_per_layer(tmp_path):
    raw = _small_file() + b"\0" * (64 * 1024)
    blob = gzip.compress(raw, mtime=0)
    assert _apply(blob, tmp_path).entries == 1
    with pytest.raises(LayerError, match="more than 16384 bytes of tar once decompressed"):
        _apply(blob, tmp_path, max_tar_bytes=16384)
    assert layers.MAX_TAR_BYTES == 64 * 1024**3


def test_a_truncated_gzip_layer_names_the_decompressor(tmp_path):
    raw = _small_file() + b"\0" * 1024
    blob = gzip.compress(raw + bytes(range(256)) * 400, mtime=0)[:-300]
    with pytest.raises(LayerError, match="gzip decompression failed: truncated or corrupt gzip data"):
        _apply(blob, tmp_path)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")
@pytest.mark.parametrize("cut", [20, 200, -20])
def test_a_truncated_zstd_layer_is_a_zstd_error_not_a_tar_error(tmp_path, cut):
    raw = _small_file() + bytes(range(256)) * 4000 + b"\0" * 1024
    whole = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
    assert len(whole) > 250
    blob = whole[:cut]
    with pytest.raises(LayerError) as caught:
        _apply(blob, tmp_path)
    message = str(caught.value)
    assert "zstd decompression failed" in message and "not a tar archive" not in message, message


def test_zstd_binding_errors_are_layer_errors(tmp_path, monkeypatch):
    class ZstdError(Exception):
        pass

    class Broken:
        def read(self, size=-1):
            raise ZstdError("Corrupted block detected")

    monkeypatch.setattr(layers, "_zstd_reader", lambda source: Broken())
    monkeypatch.setattr(layers, "_zstd_errors", lambda: (ZstdError,))
    blob = layers.ZSTD_MAGIC + b"\0" * 100
    with pytest.raises(LayerError, match=r"zstd decompression failed.*Corrupted block detected"):
        _apply(blob, tmp_path)


def test_zlib_errors_inside_a_tar_member_are_still_one_line(tmp_path):
    raw = _small_file() + b"\0" * 1024
    blob = bytearray(gzip.compress(raw, mtime=0))
    blob[-6] ^= 0xFF  # CRC of the gzip member
    with pytest.raises(LayerError) as caught:
        _apply(bytes(blob), tmp_path)
    assert "\n" not in str(caught.value) and "gzip" in str(caught.value)


def _sparse10(map_text: bytes, content: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = map_text.ljust(BLOCK, b"\0") + content
        info = tarfile.TarInfo("GNUSparseFile.0/sparse")
        info.size = len(data)
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "sparse",
                            "GNU.sparse.realsize": str(len(content))}
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_a_gnu_sparse_1_0_file_is_read_and_its_map_bounded(tmp_path):
    stats = _apply(gzip.compress(_sparse10(b"1\n0\n5\n", b"hello"), mtime=0), tmp_path)
    assert stats.entries == 1 and stats.files_kept == ["/sparse"]
    with pytest.raises(LayerError, match="GNU sparse map"):
        _apply(gzip.compress(_sparse10(b"99999999999\n0\n5\n", b"hello"), mtime=0), tmp_path)
    with pytest.raises(LayerError, match="GNU sparse map line"):
        _apply(gzip.compress(_sparse10(b"1" * 600, b"hello"), mtime=0), tmp_path)
