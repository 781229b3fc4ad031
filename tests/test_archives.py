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
    from hpcannotate.inspect import inspect

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
