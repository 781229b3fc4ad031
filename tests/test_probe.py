"""The image probe on crafted layers (every whiteout and bad-input case), real buildah images and a registry.

Crafted layers are built here with tarfile and assembled into real OCI layouts
(``OciLayout``), so each case states exactly which bytes the probe reads. The
busybox image is the real one the build tests use (buildah store), the GROMACS
image the real Debian build (slow).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.image.probe import LayerError, cross_check, probe_image
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.oci.layout import OciLayout
from hpcannotate.oci.media import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    canonical_json,
)
from hpcannotate.recipes.facts import BaseOs, Kernel, Libc, Python, SearchPath, Shell, Tools, to_annotations
from hpcannotate.registry.client import RegistryClient

REPO = Path(__file__).resolve().parents[1]
BANNER = b"GNU C Library (Ubuntu GLIBC 2.35-0ubuntu3.8) stable release version 2.35.\nCopyright"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# -- crafting layers and images ---------------------------------------------------------------------


@dataclass
class E:
    """One tar entry: kind is file, dir, link (symbolic), hard, whiteout, opaque, chr or fifo."""

    kind: str
    path: str
    data: bytes | str = b""  # file content, or a link's target

    def info(self) -> tuple[tarfile.TarInfo, bytes | None]:
        if self.kind == "whiteout":
            parent, _, name = self.path.rpartition("/")
            info = tarfile.TarInfo((parent + "/" if parent else "") + ".wh." + name)
            return info, b""
        if self.kind == "opaque":
            return tarfile.TarInfo(self.path.rstrip("/") + "/.wh..wh..opq"), b""
        info = tarfile.TarInfo(self.path)
        info.mtime = 1700000000
        if self.kind == "file":
            data = self.data.encode() if isinstance(self.data, str) else self.data
            info.size = len(data)
            info.mode = 0o755
            return info, data
        info.type = {"dir": tarfile.DIRTYPE, "link": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                     "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[self.kind]
        if self.kind in ("link", "hard"):
            info.linkname = str(self.data)
        info.mode = 0o755
        return info, None


def tar_bytes(entries: list[E]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info, data = entry.info()
            tar.addfile(info, io.BytesIO(data) if data is not None and info.isreg() else None)
    return out.getvalue()


def layer(entries: list[E], compression: str = "gzip") -> tuple[bytes, str]:
    """(blob, media type) of a layer holding ``entries``."""
    raw = tar_bytes(entries)
    if compression == "gzip":
        return gzip.compress(raw, mtime=0), OCI_LAYER_GZIP
    if compression == "zstd":
        proc = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True)
        return proc.stdout, OCI_LAYER_ZSTD
    return raw, OCI_LAYER_TAR


def image(path: Path, layers: list[tuple[bytes, str] | list[E]], env: list[str] | None = None,
          labels: dict | None = None, tag: str = "t") -> str:
    """An OCI layout at ``path`` with one image of ``layers``; returns its reference."""
    oci = OciLayout.create(path)
    descriptors = []
    for item in layers:
        blob, media_type = layer(item) if isinstance(item, list) else item
        descriptors.append({"mediaType": media_type, "digest": oci.put_blob(blob), "size": len(blob)})
    config = canonical_json({"architecture": "amd64", "os": "linux",
                             "config": {"Env": env if env is not None else [PATH_ENV], "Labels": labels or {}},
                             "rootfs": {"type": "layers", "diff_ids": []}})
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": oci.put_blob(config), "size": len(config)},
                "layers": descriptors}
    oci.put_manifest(manifest, OCI_MANIFEST, ref=tag)
    return f"oci:{path}:{tag}"


def glibc_userland(version: str = "2.31") -> list[E]:
    """A small Debian-like user land: merged /usr, libc by file name, bash, dash as /bin/sh, python."""
    return [
        E("dir", "usr/bin"), E("dir", "usr/lib/x86_64-linux-gnu"), E("dir", "usr/local/bin"), E("dir", "etc"),
        E("link", "bin", "usr/bin"), E("link", "lib", "usr/lib"),
        E("file", f"usr/lib/x86_64-linux-gnu/libc-{version}.so", b"\x7fELF"),
        E("link", "usr/lib/x86_64-linux-gnu/libc.so.6", f"libc-{version}.so"),
        E("file", "usr/lib/os-release", 'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="11"\n'),
        E("link", "etc/os-release", "../usr/lib/os-release"),
        E("file", "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        E("file", "usr/bin/bash"), E("file", "usr/bin/dash"), E("link", "usr/bin/sh", "dash"),
        E("file", "usr/bin/python3.9"), E("link", "usr/bin/python3", "python3.9"),
        E("file", "usr/bin/jq"), E("file", "usr/bin/git"), E("file", "usr/bin/lstopo-no-graphics"),
        E("file", "usr/bin/some-unrelated-tool"),
        E("file", "usr/include/linux/version.h", "#define LINUX_VERSION_CODE 330496\n"
                                                  "#define KERNEL_VERSION(a,b,c) (((a) << 16) + ((b) << 8) + (c))\n"),
    ]


def probe(ref: str, tmp_path: Path, **kwargs):
    return probe_image(ref, cache=tmp_path / "cache", **kwargs)


PROBE_MAIN = ("import sys; from hpcannotate.cli import cli, main; from hpcannotate.cli.probe_cmd import probe_cmd; "
              "cli.add_command(probe_cmd); sys.exit(main(sys.argv[1:]))")


def run_probe(*args: str | Path) -> subprocess.CompletedProcess:
    """``hpcannotate probe ARGS`` through the CLI's real main() (error handling and exit codes included)."""
    env = {**os.environ, "NO_COLOR": "1", "HPCANNOTATE_QUIET": "1"}  # stderr: errors and warnings only
    return subprocess.run([sys.executable, "-c", PROBE_MAIN, "probe", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def values(result) -> dict[str, str]:
    return {k.removeprefix(P): v for k, v in result.annotations.items()}


# -- user land --------------------------------------------------------------------------------------


def test_glibc_userland_values_and_their_files(tmp_path):
    result = probe(image(tmp_path / "img", [glibc_userland()]), tmp_path)
    got = values(result)
    assert got["libc.implementation"] == "glibc"
    assert got["glibc.version"] == "2.31"
    assert got["os.name"] == "debian" and got["os.version"] == "11"
    assert got["python.version"] == "3.9"
    assert got["shell.implementation"] == "bash,dash,sh"  # root's shell first, then what /bin/sh is
    assert got["tools.includes"] == "jq,git,hwloc,python3"
    assert got["path.extra"] == "/usr/local/bin"  # exists and is empty; /usr/local/sbin does not exist
    assert got["kernel.version"] == "5.11"  # 330496 = 5.11.0: the kernel headers of the user land
    entry = result.annotations.entry(P + "glibc.version")
    assert entry.provenance.layer == Layer.PROBE
    assert entry.provenance.file == "/lib/x86_64-linux-gnu/libc.so.6"  # found through the /lib -> usr/lib link
    assert "libc-2.31.so" in entry.provenance.fragment
    assert result.annotations.entry(P + "os.name").provenance.file == "/usr/lib/os-release"
    assert not result.annotations.validate() or all("mandatory" in p.message for p in result.annotations.validate())
    # only the files the rules read were extracted
    assert sorted(result.files_read) == ["/etc/passwd", "/usr/include/linux/version.h", "/usr/lib/os-release"]


def test_glibc_version_from_the_banner_inside_libc(tmp_path):
    libc = b"\x7fELF" + b"\0" * 5000 + BANNER + b"\0" * 100
    entries = [E("file", "lib/x86_64-linux-gnu/libc.so.6", libc)]
    result = probe(image(tmp_path / "img", [entries]), tmp_path)
    assert values(result)["glibc.version"] == "2.35"
    assert "Ubuntu GLIBC 2.35" in result.annotations.entry(P + "glibc.version").provenance.fragment
    # a libc.so.6 without the banner is not called glibc
    other = probe(image(tmp_path / "img2", [[E("file", "lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF junk")]]),
                  tmp_path)
    assert P + "libc.implementation" not in other.annotations
    assert "no glibc banner" in other.missing[P + "libc.implementation"]


def test_musl_image(tmp_path):
    entries = [
        E("file", "lib/ld-musl-x86_64.so.1"), E("link", "lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1"),
        E("file", "bin/busybox"), E("link", "bin/sh", "/bin/busybox"), E("link", "bin/ash", "/bin/busybox"),
        E("link", "usr/bin/wget", "/bin/busybox"),
        E("file", "etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"),
        E("file", "etc/passwd", "root:x:0:0:root:/root:/bin/ash\n"),
        E("file", "lib/apk/db/installed", "P:musl\nV:1.2.4_git20230717-r4\n\nP:openmpi\nV:4.1.5-r1\n\n"),
        E("file", "usr/lib/libmpi.so.40.30.5"), E("link", "usr/lib/libmpi.so.40", "libmpi.so.40.30.5"),
    ]
    result = probe(image(tmp_path / "img", [entries]), tmp_path)
    got = values(result)
    assert got["libc.implementation"] == "musl"
    assert "glibc.version" not in got
    assert got["shell.implementation"] == "ash,sh"  # busybox's shell is ash
    assert got["os.name"] == "alpine" and got["os.version"] == "3.19.1"
    assert got["mpi.implementation"] == "openmpi" and got["mpi.version"] == "4.1.5"
    assert result.annotations.entry(P + "mpi.version").provenance.file == "/lib/apk/db/installed"
    assert "wget" in got["tools.includes"]


# -- whiteouts ----------------------------------------------------------------------------------------


def test_whiteouts_opaque_directories_and_deleted_files(tmp_path):
    lower = [
        *glibc_userland(),
        E("file", "usr/lib/x86_64-linux-gnu/libmpi.so.12.1.8"),
        E("link", "usr/lib/x86_64-linux-gnu/libmpi.so.12", "libmpi.so.12.1.8"),
        E("file", "usr/bin/mpichversion"),
        E("dir", "opt/tools/bin"), E("file", "opt/tools/bin/jq"), E("file", "opt/tools/bin/curl"),
        E("dir", "opt/site/bin"), E("file", "opt/site/bin/old-helper"),
    ]
    middle = [
        # the MPICH library goes, Open MPI comes
        E("whiteout", "usr/lib/x86_64-linux-gnu/libmpi.so.12"),
        E("whiteout", "usr/lib/x86_64-linux-gnu/libmpi.so.12.1.8"),
        E("file", "usr/lib/x86_64-linux-gnu/libmpi.so.40.30.4"),
        E("link", "usr/lib/x86_64-linux-gnu/libmpi.so.40", "libmpi.so.40.30.4"),
        E("file", "usr/lib/x86_64-linux-gnu/libopen-pal.so.40.30.2"),
        # opaque: /opt/tools/bin keeps only what this layer puts there
        E("dir", "opt/tools/bin"), E("opaque", "opt/tools/bin"), E("file", "opt/tools/bin/rsync"),
        # the only (unrecorded) file of /opt/site/bin goes: the directory becomes empty
        E("whiteout", "opt/site/bin/old-helper"),
    ]
    upper = [E("whiteout", "usr/bin/python3.9")]  # python3 now dangles
    env = ["PATH=/opt/tools/bin:/opt/site/bin:/usr/local/bin:/usr/bin:/bin"]
    result = probe(image(tmp_path / "img", [lower, middle, upper], env=env), tmp_path)
    got = values(result)
    assert got["mpi.implementation"] == "openmpi"
    assert got["mpi.abi.version"] == "40.0"
    assert [f.name for f in result.findings if f.kind == "mpi"] == ["openmpi"]
    tools = got["tools.includes"].split(",")
    assert "rsync" in tools and "curl" not in tools  # hidden by the opaque directory
    assert "jq" in tools  # /usr/bin/jq is still there
    assert got["path.extra"] == "/opt/site/bin:/usr/local/bin"
    assert "python.version" not in got
    assert "python" in result.missing[P + "python.version"]


def test_a_whiteout_hides_lower_layers_only(tmp_path):
    same = [E("file", "etc/os-release", "ID=first\n"), E("whiteout", "etc/os-release")]
    result = probe(image(tmp_path / "img", [same]), tmp_path)
    assert values(result)["os.name"] == "first"  # a whiteout never hides its own layer's file
    again = probe(image(tmp_path / "img2", [same, [E("whiteout", "etc/os-release")]]), tmp_path)
    assert "os.name" not in values(again)


def test_a_file_replacing_a_directory_hides_its_subtree(tmp_path):
    lower = [E("dir", "opt/mpi/lib"), E("file", "opt/mpi/lib/libmpi.so.40"), E("file", "opt/mpi/lib/libopen-pal.so.40")]
    upper = [E("file", "opt/mpi", "not a directory any more")]
    result = probe(image(tmp_path / "img", [lower, upper]), tmp_path)
    assert not [f for f in result.findings if f.kind == "mpi"]


def test_entries_below_a_lower_link_land_where_it_points(tmp_path):
    lower = [E("dir", "usr/lib/x86_64-linux-gnu"), E("link", "lib", "usr/lib")]
    # no directory entries: an extractor creates lib/x86_64-linux-gnu/... through the existing link
    upper = [E("file", "lib/x86_64-linux-gnu/libc.so.6", BANNER)]
    result = probe(image(tmp_path / "img", [lower, upper]), tmp_path)
    assert values(result)["glibc.version"] == "2.35"
    assert result.annotations.entry(P + "glibc.version").provenance.file == "/usr/lib/x86_64-linux-gnu/libc.so.6"


def test_hard_links_devices_and_fifos(tmp_path):
    lower = [E("file", "usr/lib/os-release", "ID=hardlinked\nVERSION_ID=1\n"),
             E("hard", "etc/os-release", "usr/lib/os-release"),
             E("chr", "dev/null"), E("fifo", "run/fifo"),
             E("file", "usr/bin/bash"), E("hard", "usr/bin/rbash", "usr/bin/bash")]
    upper = [E("whiteout", "usr/lib/os-release")]
    result = probe(image(tmp_path / "img", [lower, upper]), tmp_path)
    assert values(result)["os.name"] == "hardlinked"  # read through the hard link after the original went
    assert result.annotations.entry(P + "os.name").provenance.file == "/etc/os-release"
    assert not (tmp_path / "dev").exists()


# -- MPI, fabrics, CUDA ------------------------------------------------------------------------------


def test_mpich_abi_libraries_told_apart(tmp_path):
    intel = [E("file", "opt/intel/oneapi/mpi/2021.10.0/lib/release/libmpi.so.12.0.0"),
             E("link", "opt/intel/oneapi/mpi/2021.10.0/lib/release/libmpi.so.12", "libmpi.so.12.0.0")]
    got = values(probe(image(tmp_path / "intel", [intel]), tmp_path))
    assert got["mpi.implementation"] == "intelmpi" and got["mpi.version"] == "2021.10.0"
    assert got["mpi.abi.version"] == "12.0"
    mvapich = [E("file", "usr/local/mvapich2/lib/libmpi.so.12"), E("file", "usr/local/mvapich2/bin/mpiname")]
    assert values(probe(image(tmp_path / "mv", [mvapich]), tmp_path))["mpi.implementation"] == "mvapich2"
    bare = [E("file", "usr/local/lib/libmpi.so.12.4.0"), E("link", "usr/local/lib/libmpi.so.12", "libmpi.so.12.4.0")]
    result = probe(image(tmp_path / "bare", [bare]), tmp_path)
    assert "mpi.implementation" not in values(result)  # the ABI is known, the implementation is not
    assert values(result)["mpi.abi.version"] == "12.0"
    assert "MPICH ABI" in result.missing[P + "mpi.implementation"]


def test_fabrics_cuda_and_nccl(tmp_path):
    fabric = b"\x7fELF" + b"".join(b"FABRIC_1.%d\0" % n for n in range(8)) + b"\0" * 64
    entries = [
        E("file", "usr/lib/x86_64-linux-gnu/libfabric.so.1.18.2", fabric),
        E("link", "usr/lib/x86_64-linux-gnu/libfabric.so.1", "libfabric.so.1.18.2"),
        E("file", "opt/ucx/lib/libucp.so.0.0.0"), E("link", "opt/ucx/lib/libucp.so.0", "libucp.so.0.0.0"),
        E("file", "opt/ucx/lib/pkgconfig/ucx.pc", "prefix=/opt/ucx\nName: ucx\nVersion: 1.15.0\n"),
        E("file", "usr/local/cuda-12.4/targets/x86_64-linux/lib/libcudart.so.12.4.127"),
        E("link", "usr/local/cuda-12.4/targets/x86_64-linux/lib/libcudart.so.12", "libcudart.so.12.4.127"),
        E("link", "usr/local/cuda", "cuda-12.4"),
        E("file", "usr/local/cuda-12.4/version.json", json.dumps({"cuda": {"version": "12.4.1"}})),
        E("file", "usr/lib/x86_64-linux-gnu/libnccl.so.2.18.3"),
        E("link", "usr/lib/x86_64-linux-gnu/libnccl.so.2", "libnccl.so.2.18.3"),
    ]
    result = probe(image(tmp_path / "img", [entries]), tmp_path)
    got = values(result)
    assert got["libfabric.abi.version"] == "1.7"
    assert "libfabric.version" not in got  # libfabric.so.1.18.2 is no release number: not guessed
    assert "libtool" in result.missing[P + "libfabric.version"]
    assert got["ucx.version"] == "1.15.0"
    assert result.annotations.entry(P + "ucx.version").provenance.file == "/opt/ucx/lib/pkgconfig/ucx.pc"
    assert got["hardware.gpu.nvidia.cuda.version"] == "12.4"
    assert got["nccl.version"] == "2.18.3"
    recipe = Annotations.from_mapping({"communication.framework": "ucx,libfabric,psm2", "nccl.version": "2.19.3",
                                       "hardware.gpu.nvidia.cuda.version": "12.4"},
                                      Provenance(Layer.RECIPE, "recipe.yaml"))
    conflicts = cross_check(recipe, result)
    assert {(c.key.removeprefix(P), c.severity) for c in conflicts} == {
        ("communication.framework", "error"), ("nccl.version", "error")}
    assert any("libpsm2.so" in c.message for c in conflicts)


def test_the_probe_records_typed_facts_with_the_files_they_came_from(tmp_path):
    """The rules record facts (recipes/facts.py) as the recipe adapters do; facts.to_annotations makes the
    probe's annotations of them."""
    result = probe(image(tmp_path / "img", [glibc_userland()]), tmp_path)
    kinds = {type(fact) for fact in result.facts}
    assert {Libc, BaseOs, Python, Shell, Tools, SearchPath, Kernel} <= kinds
    assert to_annotations(result.facts).to_json() == result.annotations.to_json()
    libc = next(fact for fact in result.facts if isinstance(fact, Libc))
    assert (libc.implementation.value, libc.glibc_version.value) == ("glibc", "2.31")
    assert libc.glibc_version.provenance.layer == Layer.PROBE
    assert libc.glibc_version.provenance.file == "/lib/x86_64-linux-gnu/libc.so.6"
    assert libc.glibc_version.provenance.note == "libc.so.6 links to libc-X.Y.so"
    assert [e.key for e in result.evidence] == [key for fact in result.facts for key, _ in fact.items()]


def test_cross_check_of_shells_tools_and_a_static_cuda(tmp_path):
    """Claimed shells and known tools the image lacks are errors; CUDA without libcudart.so a warning."""
    result = probe(image(tmp_path / "img", [glibc_userland()]), tmp_path)
    recipe = Annotations.from_mapping({"shell.implementation": "bash,zsh", "tools.includes": "jq,curl,not-a-tool",
                                       "hardware.gpu.nvidia.cuda.version": "12.4"},
                                      Provenance(Layer.RECIPE, "recipe.yaml", 2))
    conflicts = {c.key.removeprefix(P): c for c in cross_check(recipe, result)}
    assert sorted(conflicts) == ["hardware.gpu.nvidia.cuda.version", "shell.implementation", "tools.includes"]
    assert conflicts["shell.implementation"].message == "the recipe says zsh, the image has bash,dash,sh"
    assert conflicts["shell.implementation"].image_source.startswith("image probe /etc/passwd")
    assert conflicts["tools.includes"].message == "the recipe says curl, the image has jq,git,hwloc,python3"
    assert conflicts["tools.includes"].recipe_source == "recipe recipe.yaml:2"
    assert conflicts["hardware.gpu.nvidia.cuda.version"].severity == "warning"
    assert [c.key for c in cross_check(recipe, result.annotations)] == [P + "shell.implementation",
                                                                        P + "tools.includes"]


def test_cross_check_openmpi_claim_on_an_mpich_image(tmp_path):
    entries = [E("file", "usr/lib/x86_64-linux-gnu/libmpich.so.12.3.0"),
               E("link", "usr/lib/x86_64-linux-gnu/libmpich.so.12", "libmpich.so.12.3.0"),
               E("link", "usr/lib/x86_64-linux-gnu/libmpi.so.12", "libmpich.so.12.3.0"),
               E("file", "var/lib/dpkg/status",
                 "Package: libmpich12\nStatus: install ok installed\nVersion: 4.0.2-3\n\n")]
    ref = image(tmp_path / "img", [entries])
    result = probe(ref, tmp_path)
    assert values(result)["mpi.implementation"] == "mpich" and values(result)["mpi.version"] == "4.0.2"
    recipe = Annotations.from_mapping({"mpi.implementation": "openmpi", "mpi.version": "4.1.5"},
                                      Provenance(Layer.RECIPE, "recipe.yaml", 3))
    conflicts = cross_check(recipe, result)
    assert [c.key.removeprefix(P) for c in conflicts] == ["mpi.implementation", "mpi.version"]
    assert "openmpi" in conflicts[0].message and "mpich" in conflicts[0].message
    assert conflicts[0].recipe_source == "recipe recipe.yaml:3"
    # the annotations alone (no findings) still show the ABI contradiction
    assert cross_check(recipe, Annotations.from_mapping({"mpi.abi.version": "12.0"}))[0].severity == "error"
    # agreeing claims, less precise versions included, are no conflict
    fine = Annotations.from_mapping({"mpi.implementation": "mpich", "mpi.version": "4.0"})
    assert cross_check(fine, result) == []

    claims = tmp_path / "claims.yaml"
    claims.write_text("mpi.implementation: openmpi\n")
    loose = run_probe(ref, "--cache", tmp_path / "cache", "--recipe", claims)
    assert loose.returncode == 0, loose.stderr
    assert "CONFLICTS" in loose.stdout and "openmpi" in loose.stdout
    strict = run_probe(ref, "--cache", tmp_path / "cache", "--recipe", claims, "--strict", "--json")
    assert strict.returncode == 1, strict.stderr
    data = json.loads(strict.stdout)
    assert data["conflicts"][0]["key"] == P + "mpi.implementation"
    assert data["annotations"][P + "mpi.implementation"] == "mpich"
    assert data["provenance"][P + "mpi.implementation"]["layer"] == "image probe"


def test_recipe_directory_claims_against_an_mpich_image(tmp_path):
    """recipes/gromacs (debian variant) claims Open MPI with UCX and libfabric: an MPICH-only image contradicts it."""
    entries = [E("file", "usr/lib/x86_64-linux-gnu/libmpi.so.12"), E("file", "usr/bin/mpichversion"),
               E("file", "usr/lib/x86_64-linux-gnu/libucp.so.0")]
    ref = image(tmp_path / "img", [entries])
    r = run_probe(ref, "--cache", tmp_path / "cache", "--recipe", REPO / "recipes" / "gromacs", "--strict", "--json")
    assert r.returncode == 1, r.stderr
    conflicts = {c["key"].removeprefix(P): c for c in json.loads(r.stdout)["conflicts"]}
    assert set(conflicts) == {"mpi.implementation", "mpi.abi.version", "communication.framework"}
    assert conflicts["mpi.implementation"]["recipe"] == "openmpi"
    assert "hpcannotate.yaml" in conflicts["mpi.implementation"]["recipe_source"]
    assert "libfabric.so" in conflicts["communication.framework"]["message"]


def test_keep_leaves_the_extracted_files_with_their_names(tmp_path):
    ref = image(tmp_path / "img", [glibc_userland()])
    probe(ref, tmp_path, keep=tmp_path / "kept")
    names = json.loads((tmp_path / "kept" / "files.json").read_text())
    assert sorted(names.values()) == ["/etc/passwd", "/usr/include/linux/version.h", "/usr/lib/os-release"]
    by_path = {path: name for name, path in names.items()}
    assert (tmp_path / "kept" / by_path["/etc/passwd"]).read_text().startswith("root:")
    with pytest.raises(InputError, match="not empty"):
        probe(ref, tmp_path, keep=tmp_path / "kept")


def test_check_labels_compares_the_image_with_its_own_claims(tmp_path):
    labels = {P + "glibc.version": "2.36", P + "os.name": "debian"}
    ref = image(tmp_path / "img", [glibc_userland("2.31")], labels=labels)
    r = run_probe(ref, "--cache", tmp_path / "cache", "--check-labels", "--strict")
    assert r.returncode == 1
    assert "glibc.version" in r.stdout and "2.36" in r.stdout


# -- bad input ---------------------------------------------------------------------------------------


def test_paths_leaving_the_root_are_skipped_and_nothing_is_written_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    entries = [
        E("file", "../../escape.txt", "x"),
        E("file", "usr/../../escape2.txt", "x"),
        E("file", "/etc/os-release", "ID=absolute\nVERSION_ID=1\n"),  # made relative
        # an absolute link to a host directory, then a wanted file "inside" it: it lands inside the image
        E("link", "usr/lib/x86_64-linux-gnu", str(outside)),
        E("file", "usr/lib/x86_64-linux-gnu/libc.so.6", BANNER),
        # a relative link that climbs above the root stops at the image root, as in a chroot
        E("file", "usr/bin/python3.12"),
        E("link", "usr/bin/python3", "../../../../../../../usr/bin/python3.12"),
    ]
    ref = image(tmp_path / "img", [entries])
    before = sorted(p for p in tmp_path.rglob("*"))
    result = probe(ref, tmp_path)
    after = sorted(p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "cache"))
    assert after == before
    assert list(outside.iterdir()) == []
    assert not (tmp_path.parent / "escape.txt").exists()
    got = values(result)
    assert got["os.name"] == "absolute"
    assert got["glibc.version"] == "2.35"  # read from the image's own file behind the link
    assert result.files_read == ["/etc/os-release", "/" + str(outside).lstrip("/") + "/libc.so.6"]
    assert got["python.version"] == "3.12"
    assert sum("leaves the image root" in w for w in result.warnings) == 2
    assert any("climbs above the image root" in w for w in result.warnings)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda: gzip.compress(tar_bytes(glibc_userland()), mtime=0)[:-200], "truncated"),
    (lambda: gzip.compress(b"plain text, not a tar archive\n" * 100, mtime=0), "not a tar archive"),
    (lambda: os.urandom(4096), "not a tar archive"),
    (lambda: tar_bytes(glibc_userland())[:1500], "truncated"),
    (lambda: b"", "not a tar archive"),
], ids=["truncated-gzip", "gzip-of-text", "random-bytes", "truncated-tar", "empty-blob"])
def test_bad_layers_give_one_error_naming_the_layer(tmp_path, make, expected):
    blob = make()
    ref = image(tmp_path / "img", [layer(glibc_userland()), (blob, OCI_LAYER_GZIP)])
    with pytest.raises(LayerError) as caught:
        probe(ref, tmp_path)
    digest = OciLayout(tmp_path / "img").put_blob(blob)
    assert digest in str(caught.value) and expected in str(caught.value)
    r = run_probe(ref, "--cache", tmp_path / "cache")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpcannotate: error:") and digest in lines[0], r.stderr
    assert not list((tmp_path / "cache" / "scratch").iterdir())  # the scratch directory is gone


def test_a_blob_that_does_not_match_its_digest(tmp_path):
    ref = image(tmp_path / "img", [glibc_userland()])
    oci = OciLayout.open(tmp_path / "img")
    manifest = oci.read_json(oci.find("t")["digest"])
    digest = manifest["layers"][0]["digest"]
    good = gzip.decompress(oci.blob_path(digest).read_bytes())
    oci.blob_path(digest).write_bytes(gzip.compress(good.replace(b"ID=debian", b"ID=evilos"), mtime=0))
    with pytest.raises(LayerError, match=f"{digest}: its content does not match its digest"):
        probe(ref, tmp_path)


def test_zstd_and_uncompressed_layers(tmp_path):
    ref = image(tmp_path / "img", [layer(glibc_userland()[:8], "zstd"), layer(glibc_userland()[8:], "tar")])
    result = probe(ref, tmp_path)
    assert [s.compression for s in result.layers] == ["zstd", "tar"]
    assert values(result)["glibc.version"] == "2.31" and values(result)["os.name"] == "debian"


def test_index_resolution_names_the_images_to_choose_from(tmp_path):
    from hpcannotate.oci.media import OCI_INDEX

    ref = image(tmp_path / "img", [glibc_userland()], tag="a")
    oci = OciLayout.open(tmp_path / "img")
    desc = oci.find("a")
    entry = {**desc, "platform": {"os": "linux", "architecture": "amd64"}}
    one = oci.put_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}, OCI_INDEX, ref="one")
    assert one["mediaType"] == OCI_INDEX
    assert values(probe(f"oci:{tmp_path / 'img'}:one", tmp_path))["glibc.version"] == "2.31"
    two = [{**entry, "annotations": {P + "hardware.cpu.optimized.version": t}} for t in ("zen3", "zen4")]
    oci.put_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": two}, OCI_INDEX, ref="two")
    r = run_probe(f"oci:{tmp_path / 'img'}:two", "--cache", tmp_path / "cache")
    assert r.returncode == 2 and "zen3, zen4" in r.stderr
    assert ref.endswith(":a")


# -- registry and cache ------------------------------------------------------------------------------


def push_layout(ref_layout: Path, tag: str, registry_ref: str) -> None:
    oci = OciLayout.open(ref_layout)
    desc = oci.find(tag)
    manifest = oci.read_json(desc["digest"])
    client = RegistryClient()
    for blob in [manifest["config"], *manifest["layers"]]:
        client.push_blob(registry_ref, oci.blob_path(blob["digest"]), digest=blob["digest"])
    client.put_manifest(registry_ref, oci.read_blob(desc["digest"]), OCI_MANIFEST)


def test_registry_cold_then_warm_reads_no_blob_twice(tmp_path, registry):
    ref = image(tmp_path / "img", [glibc_userland(), [E("file", "usr/bin/curl")]])
    remote = f"{registry.host}/probe/small:1"
    push_layout(tmp_path / "img", "t", remote)
    blob_gets = registry.log_text().count("GET /v2/probe/small/blobs/")
    cold = probe(remote, tmp_path)
    assert cold.source.blobs_fetched == 3 and cold.source.blobs_from_cache == 0  # config + 2 layers
    assert "curl" in values(cold)["tools.includes"].split(",")
    cached = sorted(p.name for p in (tmp_path / "cache" / "blobs" / "sha256").iterdir())
    assert len(cached) == 3 and all(len(name) == 64 for name in cached)
    assert registry.log_text().count("GET /v2/probe/small/blobs/") == blob_gets + 3
    warm = probe(remote, tmp_path)
    assert warm.source.blobs_fetched == 0 and warm.source.blobs_from_cache == 3
    assert warm.source.registry["by_method"] == {"GET": 1}  # the manifest only
    assert registry.log_text().count("GET /v2/probe/small/blobs/") == blob_gets + 3
    assert values(warm) == values(cold)
    assert warm.reference.startswith(f"{registry.host}/probe/small@sha256:")
    # a damaged cache entry is an error naming the layer, and is dropped so the next run fetches it again
    layer_digest = json.loads(OciLayout.open(tmp_path / "img").read_blob(
        OciLayout.open(tmp_path / "img").find("t")["digest"]))["layers"][0]["digest"]
    path = tmp_path / "cache" / "blobs" / "sha256" / layer_digest.split(":")[1]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(LayerError, match=layer_digest):
        probe(remote, tmp_path)
    assert not path.exists()
    again = probe(remote, tmp_path)
    assert again.source.blobs_fetched == 1 and values(again) == values(cold)
    assert ref


# -- real images ------------------------------------------------------------------------------------


def test_busybox_from_buildahs_store_and_from_its_layout(buildah_store, busybox_base, tmp_path):
    stored = probe("containers-storage:docker.io/library/busybox:latest", tmp_path,
                   store_options=buildah_store.options)
    got = values(stored)
    assert got["shell.implementation"] == "ash,sh"
    assert {"wget", "tar", "vi", "unzip"} <= set(got["tools.includes"].split(","))
    assert "libc.implementation" not in got  # a static busybox: no libc in the image
    assert "static" in stored.missing[P + "libc.implementation"]
    assert stored.reference == "containers-storage:docker.io/library/busybox:latest"
    layout = probe(f"oci:{busybox_base}:latest", tmp_path)
    assert values(layout) == got
    assert not list((tmp_path / "cache" / "scratch").iterdir())  # buildah's temporary layout is removed
    r = run_probe("containers-storage:no/such:image", *buildah_store.cli_args(), "--cache", tmp_path / "cache")
    assert r.returncode == 2 and "no/such:image" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_debian_gromacs_image(buildah_store, debian_base, tmp_path_factory, tmp_path):
    from hpcannotate.build.pipeline import build

    workdir = tmp_path_factory.mktemp("gromacs-probe")
    report = build(REPO / "recipes" / "gromacs", workdir=workdir, options=buildah_store.options, backend="buildah")
    result = probe(report.targets[0].reference, tmp_path)
    got = values(result)
    assert got["libc.implementation"] == "glibc" and got["glibc.version"] == "2.36"
    assert got["os.name"] == "debian" and got["os.version"] == "12"
    assert got["shell.implementation"].split(",")[0] == "bash"
    assert got["mpi.implementation"] == "openmpi" and got["mpi.abi.version"] == "40.0"
    assert result.annotations.entry(P + "mpi.implementation").provenance.file.endswith("/libmpi.so.40")
    assert got["mpi.version"] == "4.1.4"
    assert "mpirun" in got["tools.includes"]
    recipe = Annotations.from_json(json.loads((report.targets[0].context / "annotations.json").read_text()))
    assert [c for c in cross_check(recipe, result) if c.severity == "error"] == []
