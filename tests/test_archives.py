"""``oci-archive:`` and ``docker-archive:`` references (issue 12, part 8), made by the real ``skopeo copy``.

Each reader (inspect, probe, match, check) takes them; a multi-image archive is read by name or
position; a bad archive is one line and exit 2.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from .fixtures.images import require_tool


def skopeo(*args: str) -> None:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def archives(busybox_base, tmp_path_factory) -> dict[str, Path]:
    """From the busybox base layout: an OCI archive, a docker archive, and multi-image ones of each."""
    require_tool("skopeo", "skopeo")
    top = tmp_path_factory.mktemp("archives")
    source = f"oci:{busybox_base}:latest"
    skopeo("copy", "-q", source, f"oci-archive:{top / 'one.tar'}:bb")
    skopeo("copy", "-q", source, f"docker-archive:{top / 'one-docker.tar'}:busybox:one")
    skopeo("copy", "-q", source, f"docker-archive:{top / 'two-docker.tar'}:busybox:two")
    # a layout with two names, archived as skopeo does (a tar of the layout)
    skopeo("copy", "-q", source, f"oci:{top / 'layout'}:first")
    skopeo("copy", "-q", source, f"oci:{top / 'layout'}:second")
    with tarfile.open(top / "multi.tar", "w") as tar:
        for path in sorted((top / "layout").rglob("*")):
            tar.add(path, arcname=str(path.relative_to(top / "layout")), recursive=False)
    # `docker save a b`: one manifest.json listing both images, the files of both
    merged, names = [], set()
    with tarfile.open(top / "multi-docker.tar", "w") as out:
        for part in ("one-docker.tar", "two-docker.tar"):
            with tarfile.open(top / part) as tar:
                for member in tar:
                    if member.name == "manifest.json":
                        merged += json.load(tar.extractfile(member))
                    elif member.name not in names:
                        names.add(member.name)
                        out.addfile(member, tar.extractfile(member) if member.isreg() else None)
        data = json.dumps(merged).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    (top / "not-a-tar.tar").write_text("hello\n")
    with tarfile.open(top / "empty.tar", "w"):
        pass
    return {p.stem: p for p in top.glob("*.tar")}


@pytest.fixture
def cli(run_cli, tmp_path):
    def run(*args: str):
        return run_cli(*args, env={"HPCANNOTATE_CACHE": str(tmp_path / "cache")})

    return run


@pytest.mark.parametrize("ref", ["oci-archive:{one}", "oci-archive:{one}:bb", "docker-archive:{one-docker}",
                                 "docker-archive:{one-docker}:busybox:one", "docker-archive:{multi-docker}:@1",
                                 "docker-archive:{multi-docker}:busybox:two", "oci-archive:{multi}:second"])
def test_inspect_reads_archives(archives, ref, tmp_path, monkeypatch):
    from hpcannotate.image.inspect import inspect

    monkeypatch.setenv("HPCANNOTATE_CACHE", str(tmp_path / "cache"))
    found = inspect(ref.format(**{k: str(v) for k, v in archives.items()}))
    assert not found.is_index and len(found.images) == 1
    # the base's labels (docker archives keep only the config, OCI ones the manifest annotations too)
    assert "busybox" in json.dumps(found.to_json())


def test_the_two_images_of_a_docker_archive_are_told_apart(archives, cli):
    one = json.loads(cli("inspect", "--json", f"docker-archive:{archives['multi-docker']}:busybox:one").stdout)
    two = json.loads(cli("inspect", "--json", f"docker-archive:{archives['multi-docker']}:@1").stdout)
    assert one["digest"] == two["digest"]  # the same image under two names: the same manifest
    missing = cli("inspect", f"docker-archive:{archives['multi-docker']}:busybox:three")
    assert missing.returncode == 2 and "no image busybox:three" in missing.stderr


def test_check_and_probe_read_the_layers_of_an_archive(archives, cli):
    r = cli("check", "--json", f"oci-archive:{archives['one']}:bb")
    assert r.returncode in (0, 1), r.stderr
    assert json.loads(r.stdout)["kind"] == "image"
    p = cli("probe", "--json", f"docker-archive:{archives['one-docker']}")
    assert p.returncode == 0, p.stderr
    assert "ash" in json.loads(p.stdout)["annotations"]["org.supercontainers.shell.implementation"]


def test_match_ranks_archives(archives, cli):
    r = cli("match", "--json", f"oci-archive:{archives['one']}", f"docker-archive:{archives['one-docker']}")
    assert r.returncode in (0, 1), r.stderr


@pytest.mark.parametrize("name, message", [("not-a-tar", "not a readable tar archive"),
                                           ("empty", "not an OCI archive"),
                                           ("missing", "no such archive file")])
def test_bad_archives_are_one_line_and_exit_2(archives, cli, tmp_path, name, message):
    path = archives.get(name, tmp_path / "missing.tar")
    r = cli("inspect", f"oci-archive:{path}")
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    d = cli("check", f"docker-archive:{archives['one']}")  # an OCI archive is not a docker archive
    assert d.returncode == 2 and "not a docker archive" in d.stderr


# -- every output names the archive as the user gave it, never the cache ---------------------------

def test_outputs_name_the_users_reference(archives, cli, tmp_path):
    one, docker = f"oci-archive:{archives['one']}:bb", f"docker-archive:{archives['multi-docker']}:busybox:two"
    for args in (("inspect", one), ("inspect", "--json", docker), ("check", docker), ("check", "--json", one),
                 ("probe", docker), ("probe", "--json", one), ("match", one, docker), ("match", "--json", docker),
                 ("inspect", f"oci-archive:{archives['one']}:nope")):
        r = cli(*args)
        out = r.stdout + r.stderr
        assert str(tmp_path / "cache") not in out and "oci:" not in out.replace("oci-archive:", ""), (args, out)
        for arg in args:
            if "archive:" in arg:
                assert arg.split(":")[1] in out, (args, out)
    missing = cli("inspect", f"oci-archive:{archives['one']}:nope")
    assert missing.returncode == 2 and missing.stderr.count(f"oci-archive:{archives['one']}:nope") == 1


def test_an_archive_image_by_digest_round_trips(archives, cli):
    ref = f"docker-archive:{archives['multi-docker']}:@0"
    digest = json.loads(cli("inspect", "--json", ref).stdout)["digest"]
    again = cli("inspect", "--json", f"docker-archive:{archives['multi-docker']}@{digest}")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["reference"] == f"docker-archive:{archives['multi-docker']}@{digest}"


# -- the cache is bounded ----------------------------------------------------------------------------

def test_cache_reuses_an_entry_and_drops_the_least_recently_used(archives, tmp_path, monkeypatch):
    import os
    import shutil

    from hpcannotate.registry.reference import parse_reference

    monkeypatch.setenv("HPCANNOTATE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cache" / "archives"
    first = parse_reference(f"oci-archive:{archives['one']}").layout_path
    assert parse_reference(f"oci-archive:{archives['one']}:bb").layout_path == first  # reused
    copy = tmp_path / "copy.tar"
    shutil.copyfile(archives["one"], copy)
    os.utime(first, (1, 1))  # used long ago
    monkeypatch.setenv("HPCANNOTATE_ARCHIVE_CACHE", "1")  # room for nothing but the newest
    second = parse_reference(f"oci-archive:{copy}").layout_path
    assert second != first and not first.exists() and second.exists()
    assert sorted(p.name for p in root.iterdir()) == [second.name]
    # a rewritten archive (same path, size and mtime restored) is unpacked again, never read stale
    stat = copy.stat()
    copy.write_bytes(archives["one"].read_bytes())
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert parse_reference(f"oci-archive:{copy}").layout_path != second


# -- hostile archives: nothing outside the unpack directory, bounded disk and memory -----------------

def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w") -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def _layout_members() -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [(_info("oci-layout"), b'{"imageLayoutVersion": "1.0.0"}'),
            (_info("index.json"), b'{"schemaVersion": 2, "manifests": []}')]


def test_hostile_members_stay_inside(cli, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep")
    bad = _tar(tmp_path / "bad.tar", [
        (_info(f"../../../..{outside}/escaped"), b"x"), (_info(f"{outside}/absolute"), b"x"),
        (_info("link-out", tarfile.SYMTYPE, str(outside)), None),
        (_info("link-out/through-symlink"), b"x"),
        (_info("hard-out", tarfile.LNKTYPE, f"{outside}/victim"), None),
        (_info("hard-up", tarfile.LNKTYPE, "../../victim"), None),
        (_info("sym-up", tarfile.SYMTYPE, "../../../../etc/passwd"), None),
        (_info("dev", tarfile.CHRTYPE), None), (_info("fifo", tarfile.FIFOTYPE), None),
        *_layout_members()])
    r = cli("inspect", f"oci-archive:{bad}")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr  # an empty layout
    assert sorted(p.name for p in outside.iterdir()) == ["victim"] and (outside / "victim").read_text() == "keep"
    unpacked = [p for p in (tmp_path / "cache" / "archives").iterdir()]
    assert len(unpacked) == 1
    files = {str(p.relative_to(unpacked[0])) for p in unpacked[0].rglob("*")}
    assert files == {"oci-layout", "index.json", "link-out", "link-out/through-symlink"}
    assert not any(p.is_symlink() or not (p.is_file() or p.is_dir()) for p in unpacked[0].rglob("*"))


def test_a_compression_bomb_is_refused_before_it_fills_the_disk(cli, tmp_path, monkeypatch):
    import hpcannotate.oci.archive as archive

    monkeypatch.setattr(archive, "EXPANSION_FLOOR", 1024 * 1024)  # the real floor is 64 MiB: keep the test small
    big = 8 * 1024 * 1024
    bomb = tmp_path / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz") as tar:
        info = _info("blobs/sha256/" + "0" * 64)
        info.size = big
        tar.addfile(info, io.BytesIO(bytes(big)))
    assert bomb.stat().st_size * archive.EXPANSION < big
    from hpcannotate.errors import InputError
    from hpcannotate.registry.reference import parse_reference

    monkeypatch.setenv("HPCANNOTATE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="compression bomb"):
        parse_reference(f"oci-archive:{bomb}")
    assert [p.name for p in (tmp_path / "cache" / "archives").iterdir()] == []  # nothing left behind


def test_a_sparse_member_claiming_terabytes_is_refused(cli, tmp_path):
    sparse = tmp_path / "sparse.tar"
    # an old-GNU sparse header ('S') declaring a 1 TiB file of which nothing is stored
    block = bytearray(tarfile.TarInfo("blobs/sha256/" + "1" * 64).tobuf(tarfile.GNU_FORMAT)[:512])
    block[156:157] = tarfile.GNUTYPE_SPARSE
    block[124:136] = b"%011o\0" % 0  # stored size
    block[483:495] = b"%011o\0" % (1 << 40)  # realsize
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    sparse.write_bytes(bytes(block) + bytes(1024))
    r = cli("inspect", f"oci-archive:{sparse}")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "sparse member" in r.stderr and "not unpacked" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_tar_bomb_of_entries_and_a_huge_manifest_are_refused(tmp_path, monkeypatch):
    import hpcannotate.oci.archive as archive
    from hpcannotate.errors import InputError
    from hpcannotate.registry.reference import parse_reference

    monkeypatch.setenv("HPCANNOTATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(archive, "MAX_MEMBERS", 50)
    many = _tar(tmp_path / "many.tar", [(_info(f"f{n}"), b"") for n in range(60)])
    with pytest.raises(InputError, match="more than 50 entries"):
        parse_reference(f"oci-archive:{many}")
    monkeypatch.setattr(archive, "MAX_JSON", 1000)
    huge = _tar(tmp_path / "huge.tar", [(_info("manifest.json"), b"[" + b" " * 2000 + b"]")])
    with pytest.raises(InputError, match=r"manifest\.json is larger than"):
        parse_reference(f"docker-archive:{huge}")
    assert [p.name for p in (tmp_path / "cache" / "archives").iterdir()] == []
