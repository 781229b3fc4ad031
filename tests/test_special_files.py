"""Special files given where a file is read: refused in one line, in bounded time and memory.

A FIFO blocks ``open()`` until someone writes, ``/dev/zero`` never ends, and a sparse file or a
/proc file lies about its size. Every command that reads a file the user names goes through
``hpcannotate.files``; these run the real commands on real special files (mkfifo, /dev/zero,
a 1 TB sparse file, a symlink loop) and measure each run's time and peak memory (wait4).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.files import MAX_FILE_BYTES, open_regular, read_bytes, read_limited, write_text
from hpcannotate.registry import RegistryClient
from hpcannotate.registry.auth import find_credentials
from hpcannotate.registry.reference import parse_reference

from .conftest import console_script

TIME_LIMIT = 45.0  # seconds per command: generous on a loaded machine; a hang would be forever
MEMORY_LIMIT_MB = 400  # peak RSS per command; reading /dev/zero or a 1 TB file whole would be far more


# A small launcher runs the CLI and reports the CLI's own peak RSS: measured straight from pytest, a
# child's ru_maxrss includes the pytest process it was forked from (Linux keeps the pre-exec high-water
# mark), which grows past the limit over a long session.
LAUNCHER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
            "sys.exit(code if code >= 0 else 128 - code)")


def run_bounded(*args: str, env: dict | None = None, cwd: Path | None = None) -> tuple[int, str, float, float]:
    """Run the CLI; (exit code, stderr, seconds, peak RSS in MB). Killed (and failed) past TIME_LIMIT."""
    import signal
    import sys
    import tempfile

    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss, open(os.devnull, "wb") as out, subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, rss.name, console_script(), *args], stdout=out, stderr=subprocess.PIPE,
        env=full_env, cwd=cwd, start_new_session=True,
    ) as proc:
        start = time.monotonic()
        timer = threading.Timer(TIME_LIMIT, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        stderr = proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
        proc.wait()
        timer.cancel()
        peak_kb = int(rss.read() or 0) or 1 << 30  # no figure (killed): over any limit
    return proc.returncode, stderr, time.monotonic() - start, peak_kb / 1024


def assert_one_line(result: tuple[int, str, float, float], *names: str) -> str:
    code, stderr, seconds, peak = result
    assert seconds < TIME_LIMIT, f"took {seconds:.1f} s (killed?)"
    assert peak < MEMORY_LIMIT_MB, f"peak RSS {peak:.0f} MB"
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcannotate: error:"), stderr
    assert "internal error" not in stderr and "Traceback" not in stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


@pytest.fixture
def sparse(tmp_path) -> Path:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(1 << 40)  # 1 TB of holes: no disk used
    return path


@pytest.fixture
def loop(tmp_path) -> Path:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    return tmp_path / "a.yaml"


# -- the reader itself ---------------------------------------------------------------------------


def test_the_reader_refuses_special_files_without_opening_them_for_long(fifo, sparse, loop, tmp_path):
    start = time.monotonic()
    with pytest.raises(InputError, match=r"pipe\.yaml: is a FIFO \(named pipe\), expected a file"):
        read_bytes(fifo)
    with pytest.raises(InputError, match=r"^/dev/zero: is a character device"):
        read_bytes("/dev/zero")
    with pytest.raises(InputError, match=rf"huge\.yaml: 1099511627776 bytes is too large .*limit {MAX_FILE_BYTES}"):
        read_bytes(sparse)
    with pytest.raises(InputError, match=r"a\.yaml: too many levels of symbolic links"):
        read_bytes(loop)
    with pytest.raises(InputError, match=r": is a directory"):
        read_bytes(tmp_path)
    with pytest.raises(InputError, match=r"no such file"):
        read_bytes(tmp_path / "missing")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InputError, match=r"a part of the path is not a directory"):
        read_bytes(tmp_path / "a-file" / "x")
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "a-file")
    with pytest.raises(InputError, match=r"link\.yaml: is a symbolic link"):
        read_bytes(link, follow_symlinks=False)
    assert time.monotonic() - start < 5


def test_a_proc_file_that_says_size_0_is_read():
    assert b"Name:" in read_bytes("/proc/self/status")  # st_size 0: read by chunks, not by size


class Endless(io.RawIOBase):
    """A file that never ends (what /dev/zero or a growing /proc file looks like once open)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = b"\0" * len(buffer)
        return len(buffer)


def test_a_file_longer_than_it_said_stops_one_byte_past_the_cap_in_bounded_memory():
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"endless: more than 1048576 bytes, too large for a test file"):
            read_limited(io.BufferedReader(Endless()), "endless", "test file", 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak


def test_a_fifo_swapped_in_after_the_check_does_not_block_the_open(tmp_path, monkeypatch):
    """O_NONBLOCK: the fstat on the opened file decides, even if the name changed after the stat."""
    path = tmp_path / "swapped"
    os.mkfifo(path)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, **kw: real_stat(tmp_path, **kw) if p == path else real_stat(p, **kw))
    monkeypatch.setattr("hpcannotate.files._check", _check_only_fifos)
    start = time.monotonic()
    with pytest.raises(InputError, match="FIFO"):
        open_regular(path)
    assert time.monotonic() - start < 5


def _check_only_fifos(path, info, what, max_bytes):
    import stat

    if stat.S_ISFIFO(info.st_mode):
        raise InputError(f"{path}: is a FIFO")


def test_outputs_that_cannot_be_written_are_one_line(tmp_path, fifo):
    with pytest.raises(InputError, match=r"no such directory"):
        write_text(tmp_path / "missing" / "out.yaml", "x")
    with pytest.raises(InputError, match=r"is a directory"):
        write_text(tmp_path, "x")
    with pytest.raises(InputError, match=r"a FIFO that nobody reads"):
        write_text(fifo, "x")
    write_text(tmp_path / "ok.yaml", "é")
    assert (tmp_path / "ok.yaml").read_text(encoding="utf-8") == "é"


def test_a_docker_config_json_that_is_a_fifo_is_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "config.json")
    env = {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}
    with pytest.raises(InputError, match=r"config\.json: is a FIFO"):
        find_credentials(parse_reference("registry.example.org/x:y"), env=env)


# -- every command that reads a named file -------------------------------------------------------


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "sparse"])
@pytest.mark.parametrize("argv", [
    ["validate", "{}"],
    ["annotate", "oci:/nonexistent/never-read:tag", "--from", "{}"],
    ["match", "--fingerprint", "{}", "oci:/nonexistent/layout"],
    ["collection", "apply", "{}", "--dry-run"],
], ids=["validate", "annotate-from", "match-fingerprint", "collection-apply"])
def test_commands_refuse_special_files_in_bounded_time_and_memory(request, argv, special):
    path = "/dev/zero" if special == "/dev/zero" else str(request.getfixturevalue(special))
    line = assert_one_line(run_bounded(*[path if a == "{}" else a for a in argv]), path)
    assert ("too large" in line) if special == "sparse" else ("is a" in line)


def test_a_spack_include_that_is_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "packages.yaml")
    (tmp_path / "spack.yaml").write_text("spack:\n  include: [packages.yaml]\n  specs: [zlib]\n")
    assert_one_line(run_bounded("infer", "--format", "spack", str(tmp_path / "spack.yaml")), "packages.yaml", "FIFO")


def test_infer_on_a_fifo_names_it(fifo):
    assert_one_line(run_bounded("infer", str(fifo)), str(fifo), "FIFO")


def _layout(tmp_path: Path, blob_is_fifo: bool) -> Path:
    layout = tmp_path / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    digest = "sha256:" + "ab" * 32
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": digest, "size": 100,
                                                "annotations": {"org.opencontainers.image.ref.name": "t"}}]}
    if blob_is_fifo:
        (layout / "index.json").write_text(json.dumps(index))
        os.mkfifo(blobs / ("ab" * 32))
    else:
        os.mkfifo(layout / "index.json")
    return layout


@pytest.mark.parametrize("blob_is_fifo", [True, False], ids=["blob", "index.json"])
def test_a_layout_with_a_fifo_inside(tmp_path, blob_is_fifo):
    layout = _layout(tmp_path, blob_is_fifo)
    line = assert_one_line(run_bounded("inspect", f"oci:{layout}:t"), str(layout))
    assert "FIFO" in line


def test_a_fingerprint_of_a_sysroot_with_fifos_finishes(tmp_path):
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "sys").mkdir()
    os.mkfifo(root / "proc" / "cpuinfo")
    os.mkfifo(root / "proc" / "version")
    line = assert_one_line(run_bounded("fingerprint", "--sysroot", str(root), "--json"), "proc/cpuinfo")
    assert "is a FIFO (named pipe), not a file" in line


BOMBS = Path(__file__).parent / "bad-input"


@pytest.mark.parametrize(("argv", "name"), [
    (["validate", "{}"], "validate/alias-bomb.yaml"),
    (["validate", "{}"], "validate/deep-nesting.json"),
    (["validate", "{}"], "validate/deep-nesting.yaml"),
    (["collection", "apply", "{}", "--dry-run"], "collection/alias-bomb.yaml"),
    (["render", "{}", "-o", "/nonexistent/never-written"], "render/deep-nesting.yaml"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_nesting_and_alias_bombs_cost_bounded_time_and_memory(argv, name):
    path = str(BOMBS / name)
    assert_one_line(run_bounded(*[path if a == "{}" else a for a in argv]), path)


@pytest.mark.parametrize("where", ["/proc/hpcannotate-test/layout", "/proc/self"])
def test_a_layout_where_none_can_be_written_is_one_line(where):
    from hpcannotate.oci.layout import OciLayout

    with pytest.raises(InputError, match=rf"^(oci:)?{where}.*: cannot (create|write)"):
        OciLayout.create(where)


def test_collection_export_to_an_unwritable_place_is_one_line(registry, tmp_path):
    """A real index in the real registry, exported to a missing directory and to a directory."""
    from hpcannotate.oci.media import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST

    ref = f"{registry.host}/hpc/export:v1"
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    with RegistryClient() as client:
        digest = client.push_blob(ref, config)
        image = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                            "config": {"mediaType": OCI_CONFIG, "digest": digest, "size": len(config)}}).encode()
        image_digest = client.put_manifest(f"{registry.host}/hpc/export:image", image, OCI_MANIFEST)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": image_digest, "size": len(image),
             "platform": {"os": "linux", "architecture": "amd64"}}]}
        client.put_manifest(ref, json.dumps(index).encode(), OCI_INDEX)
    env = {"HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path)}
    assert_one_line(run_bounded("collection", "export", ref, "-o", str(tmp_path / "no" / "x.yaml"), env=env),
                    "no such directory")
    assert_one_line(run_bounded("collection", "export", ref, "-o", str(tmp_path), env=env), "is a directory")
