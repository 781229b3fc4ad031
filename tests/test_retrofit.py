"""``annotate``: retrofitting annotations onto real images in a real registry and in an OCI layout.

Images are built with buildah (``FROM scratch`` + static busybox, no RUN, so linux/amd64 and
linux/arm64 both build without emulation), pushed as an OCI image, an OCI index, Docker v2
schema 2 and a Docker manifest list, and written to an OCI layout. Each test retrofits a fresh
tag and checks that only the annotations changed (same config and layers, other keys kept) and
that the registry's own log shows no blob upload.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.oci import media
from hpcannotate.oci.layout import OciLayout
from hpcannotate.registry import RegistryClient
from hpcannotate.registry.crane import flag_value, mutate_argv, run_mutate
from hpcannotate.retrofit.annotate import ConcurrentUpdateError, annotate

from .fixtures.images import BuildahStore, require_tool
from .fixtures.registry import Registry

KEEP = "org.example.keep"
BLOB_UPLOAD = re.compile(r'"(?:POST|PUT|PATCH) /v2/\S+/blobs/uploads')
MANIFEST_PUT = re.compile(r'"PUT /v2/\S+/manifests/(\S+) HTTP')


# -- test images (shared with test_inspect.py and test_collection.py) ------------------------------------

_BUILT: dict[str, Path] = {}
_COUNTER = itertools.count()


def build_images(store: BuildahStore, workdir: Path) -> Path:
    """localhost/rf:amd64, localhost/rf:arm64 and the manifest list localhost/rf-index (once per store).

    Each carries annotations of its own (CPU target, an alias spelling, another tool's key) and a
    label, so tests can see that a retrofit keeps what it was not asked to change. Returns an OCI
    layout holding the index (tag ``index``) and the amd64 image (tag ``single``).
    """
    key = str(store.root)
    if key in _BUILT:
        return _BUILT[key]
    busybox = require_tool("busybox", "busybox-static")
    ctx = workdir / "ctx"
    ctx.mkdir(parents=True)
    shutil.copy(busybox, ctx / "busybox")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sh\"]\n")
    for arch, target in (("amd64", "x86_64"), ("arm64", "aarch64")):
        _buildah(store, "bud", "--format", "oci", "--isolation", "chroot", "--platform", f"linux/{arch}",
                 "--annotation", f"{P}hardware.cpu.optimized.version={target}",
                 "--annotation", f"{P}hardware.cpu.optimized.mode=architecture",
                 "--annotation", f"{P}mpi.provider=mpich", "--annotation", f"{KEEP}=yes",
                 "--label", f"{P}app.name=bb", "--label", f"{P}mpi.implementation=mpich",
                 "--manifest", "localhost/rf-index", "-t", f"localhost/rf:{arch}", str(ctx))
    layout = workdir / "layout"
    _buildah(store, "manifest", "push", "--all", "--format", "oci", "localhost/rf-index", f"oci:{layout}:index")
    _buildah(store, "push", "--format", "oci", "localhost/rf:amd64", f"oci:{layout}:single")
    _BUILT[key] = layout
    return layout


def _buildah(store: BuildahStore, *args: str) -> None:
    proc = subprocess.run([*store.global_args(), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


@dataclass
class Images:
    """The test images in one registry repository (tags single, index, docker, dockerlist) and a layout."""

    registry: Registry
    repository: str
    layout: Path

    @property
    def name(self) -> str:
        return f"{self.registry.host}/{self.repository}"

    def client(self) -> RegistryClient:
        return RegistryClient(username=self.registry.user, password=self.registry.password)

    def fresh(self, kind: str) -> str:
        """A new tag holding a copy of the ``kind`` manifest (tests change tags; the originals stay)."""
        tag = f"{kind}-{next(_COUNTER)}"
        with self.client() as client:
            got = client.get_manifest(f"{self.name}:{kind}")
            client.put_manifest(f"{self.name}:{tag}", got.raw, got.media_type)
        return f"{self.name}:{tag}"

    def fresh_layout(self, where: Path) -> Path:
        target = where / f"layout-{next(_COUNTER)}"
        shutil.copytree(self.layout, target)
        return target

    def size(self, digest: str) -> int:
        with self.client() as client:
            return len(client.get_manifest(f"{self.name}@{digest}").raw)

    def manifest(self, ref: str) -> tuple[dict, str]:
        with self.client() as client:
            got = client.get_manifest(ref)
        return json.loads(got.raw), got.digest


def push_images(store: BuildahStore, registry: Registry, repository: str, workdir: Path) -> Images:
    layout = build_images(store, workdir)
    dest = f"docker://{registry.host}/{repository}"
    creds = ["--creds", f"{registry.user}:{registry.password}"] if registry.user else []
    _buildah(store, "push", "--tls-verify=false", *creds, "--format", "oci", "localhost/rf:amd64", f"{dest}:single")
    _buildah(store, "push", "--tls-verify=false", *creds, "--format", "v2s2", "localhost/rf:amd64", f"{dest}:docker")
    _buildah(store, "manifest", "push", "--all", "--tls-verify=false", *creds, "--format", "oci",
             "localhost/rf-index", f"{dest}:index")
    _buildah(store, "manifest", "push", "--all", "--tls-verify=false", *creds, "--format", "v2s2",
             "localhost/rf-index", f"{dest}:dockerlist")
    return Images(registry, repository, layout)


def log_mark(registry: Registry) -> int:
    return len(registry.log_text())


def blob_uploads(registry: Registry, since: int) -> list[str]:
    return BLOB_UPLOAD.findall(registry.log_text()[since:])


def manifest_puts(registry: Registry, since: int) -> list[str]:
    return MANIFEST_PUT.findall(registry.log_text()[since:])


@pytest.fixture(autouse=True)
def no_login_files(tmp_path, monkeypatch):
    """No credentials of the machine are used (nor leak) in a test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def images(buildah_store, registry, tmp_path_factory) -> Images:
    return push_images(buildah_store, registry, "hpc/retrofit", tmp_path_factory.mktemp("images"))


# -- single images -------------------------------------------------------------------------------------


def test_single_image_only_annotations_change_and_no_blob_is_uploaded(images):
    ref = images.fresh("single")
    before, old_digest = images.manifest(ref)
    mark = log_mark(images.registry)
    result = annotate(ref, set={"mpi.implementation": "openmpi", "mpi.version": "4.1.5"})
    assert result.written and result.verified, result.verification
    assert result.old_digest == old_digest != result.new_digest
    after, digest = images.manifest(ref)
    assert digest == result.new_digest
    assert after["config"] == before["config"]
    assert after["layers"] == before["layers"]
    assert {k: v for k, v in after.items() if k != "annotations"} == {k: v for k, v in before.items()
                                                                        if k != "annotations"}
    got = after["annotations"]
    assert got[P + "mpi.implementation"] == "openmpi"
    assert got[P + "mpi.version"] == "4.1.5"
    assert P + "mpi.provider" not in got  # the alias spelling of the same key gave way
    for key, value in before["annotations"].items():
        if key != P + "mpi.provider":
            assert got[key] == value, key  # every key not named is kept as it was
    assert blob_uploads(images.registry, mark) == []
    assert result.stats["bytes_sent"] < 16 * 1024
    assert any("signatures" in w and old_digest in w for w in result.warnings)


def test_unset_removes_only_the_named_key(images):
    ref = images.fresh("single")
    before, _ = images.manifest(ref)
    result = annotate(ref, unset=["mpi.implementation"])  # any spelling: the image has mpi.provider
    assert result.verified
    after, _ = images.manifest(ref)
    assert P + "mpi.provider" not in after["annotations"]
    assert {k: v for k, v in before["annotations"].items() if k != P + "mpi.provider"} == after["annotations"]


def test_nothing_to_change_writes_nothing(images):
    ref = images.fresh("single")
    mark = log_mark(images.registry)
    result = annotate(ref, set={KEEP: "yes"})
    assert not result.changed and not result.written
    assert manifest_puts(images.registry, mark) == []


def test_dry_run_prints_the_diff_and_writes_nothing(images, run_cli):
    ref = images.fresh("single")
    _, old = images.manifest(ref)
    mark = log_mark(images.registry)
    r = run_cli("annotate", ref, "--set", "tools.includes=busybox,sh", "--unset", KEEP, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"+ {P}tools.includes = busybox,sh" in r.stdout
    assert f"- {KEEP} (was yes)" in r.stdout
    assert "dry run: nothing written" in r.stdout
    assert manifest_puts(images.registry, mark) == []
    assert images.manifest(ref)[1] == old


def test_invalid_value_is_refused_before_any_request(images, run_cli):
    ref = images.fresh("single")
    mark = log_mark(images.registry)
    r = run_cli("annotate", ref, "--set", "mpi.implementation=mpich3")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "hpcannotate: error: --set: org.supercontainers.mpi.implementation: 'mpich3' is not one of: openmpi, "
        "mpich, mvapich2, intelmpi, cray-mpich, threadmpi, none"
    ]
    assert images.registry.log_text()[mark:].count("/v2/") == 0


def test_a_change_that_contradicts_the_image_is_refused(images):
    ref = images.fresh("single")  # the image says target x86_64, mode architecture
    with pytest.raises(InputError, match=r"does not fit target 'x86_64'.*nothing written"):
        annotate(ref, set={"hardware.cpu.optimized.mode": "microarchitecture"})


def test_digest_reference_is_written_by_digest_and_the_tag_stays(images):
    ref = images.fresh("single")
    _, digest = images.manifest(ref)
    pinned = f"{images.name}@{digest}"
    result = annotate(pinned, set={"app.version": "1.36"})
    assert result.verified
    assert images.manifest(ref)[1] == digest  # no tag was named, none moved
    after, _ = images.manifest(f"{images.name}@{result.new_digest}")
    assert after["annotations"][P + "app.version"] == "1.36"


def test_tag_pinned_to_a_digest_moves_the_tag(images):
    """``repo:tag@digest``: the digest only says what the tag must point at before the write."""
    ref = images.fresh("single")
    _, digest = images.manifest(ref)
    result = annotate(f"{ref}@{digest}", set={"app.version": "1.37"})
    assert result.verified, result.verification
    assert images.manifest(ref)[1] == result.new_digest != digest


def test_malformed_descriptors_are_one_line_errors(tmp_path, run_cli):
    """A descriptor whose platform is text (or whose size is not a number) names the file and the field."""
    layout = OciLayout.create(tmp_path / "bad")
    child = layout.put_blob(b'{"schemaVersion":2,"config":"nope","layers":[]}')
    layout.write_index({"schemaVersion": 2, "manifests": [
        {"mediaType": media.OCI_MANIFEST, "digest": child, "size": 10, "platform": "linux/amd64"}]})
    for command in (["inspect", f"oci:{tmp_path / 'bad'}"], ["annotate", f"oci:{tmp_path / 'bad'}", "--set",
                                                                 "app.version=1"]):
        r = run_cli(*command)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().endswith("index.json: manifests[0].platform is not an object"), r.stderr
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def test_from_yaml_file_and_from_a_recipe(images, tmp_path):
    ref = images.fresh("single")
    curated = tmp_path / "curated.yaml"
    curated.write_text("mpi.provider: openmpi\nlibfabric.abi.version: 1.6\ncommunication.framework: libfabrics\n")
    result = annotate(ref, from_path=curated, set={"mpi.version": "4.1.6"})
    assert result.verified
    got = images.manifest(ref)[0]["annotations"]
    assert got[P + "mpi.implementation"] == "openmpi"
    assert got[P + "communication.framework"] == "libfabric"  # value spelling normalised
    assert got[P + "libfabric.abi.version"] == "1.6"
    recipe = Path(__file__).parent / "data" / "spack" / "gromacs-cuda" / "spack.yaml"
    result = annotate(ref, from_path=recipe, dry_run=True)
    added = {c.key: c.new for c in result.diff[0].changes}
    assert added[P + "app.name"] == "gromacs" and added[P + "hardware.gpu.nvidia.architecture"] == "sm_80"
    assert added[P + "hardware.cpu.optimized.version"] == "zen3"  # the recipe pins its target


def test_docker_v2_image_needs_the_flag_then_converts_with_the_same_blobs(images, run_cli):
    ref = images.fresh("docker")
    before, _ = images.manifest(ref)
    assert before["mediaType"] == media.DOCKER_MANIFEST
    r = run_cli("annotate", ref, "--set", "app.version=1")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "--convert-to-oci" in r.stderr
    mark = log_mark(images.registry)
    r = run_cli("annotate", ref, "--set", "app.version=1", "--convert-to-oci", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["verified"] and result["converted"]
    after, _ = images.manifest(ref)
    assert after["mediaType"] == media.OCI_MANIFEST
    assert after["config"]["mediaType"] == media.OCI_CONFIG
    assert after["config"]["digest"] == before["config"]["digest"]
    assert [(x["digest"], x["size"]) for x in after["layers"]] == [(x["digest"], x["size"]) for x in before["layers"]]
    assert {x["mediaType"] for x in after["layers"]} == {media.OCI_LAYER_GZIP}
    assert after["annotations"] == {P + "app.version": "1"}
    assert blob_uploads(images.registry, mark) == []


# -- indexes -------------------------------------------------------------------------------------------


def test_index_children_are_written_first_and_the_index_last(images):
    ref = images.fresh("index")
    tag = ref.rsplit(":", 1)[1]
    before, _ = images.manifest(ref)
    mark = log_mark(images.registry)
    result = annotate(ref, set={"app.version": "1.36", "mpi.implementation": "mpich"})
    assert result.verified, result.verification
    puts = manifest_puts(images.registry, mark)
    assert puts[-1] == tag and all(p.startswith("sha256:") for p in puts[:-1]) and len(puts) == 3
    assert blob_uploads(images.registry, mark) == []
    after, digest = images.manifest(ref)
    assert digest == result.new_digest
    assert after["annotations"][P + "app.version"] == "1.36"  # all children selected: the index too
    for old_desc, new_desc in zip(before["manifests"], after["manifests"], strict=True):
        assert new_desc["platform"] == old_desc["platform"]
        child, child_digest = images.manifest(f"{images.name}@{new_desc['digest']}")
        assert child_digest == new_desc["digest"]
        assert new_desc["size"] == images.size(new_desc["digest"])
        old_child, _ = images.manifest(f"{images.name}@{old_desc['digest']}")
        assert child["config"] == old_child["config"] and child["layers"] == old_child["layers"]
        assert child["annotations"][P + "app.version"] == "1.36"
        assert child["annotations"][KEEP] == "yes"
        assert child["annotations"][P + "hardware.cpu.optimized.version"] == \
            old_child["annotations"][P + "hardware.cpu.optimized.version"]
    assert {d.where for d in result.diff} == {"index", "linux/amd64", "linux/arm64"}


def test_platform_selection_and_descriptor_annotations(images, run_cli):
    ref = images.fresh("index")
    before, _ = images.manifest(ref)
    r = run_cli("annotate", ref, "--platform", "linux/aarch64", "--descriptor",
                "--set", "hardware.cpu.optimized.version=neoverse_v2",
                "--set", "hardware.cpu.optimized.mode=microarchitecture", "--json")
    assert r.returncode == 0, r.stderr
    after, _ = images.manifest(ref)
    assert after["manifests"][0] == before["manifests"][0]  # amd64 untouched
    arm = after["manifests"][1]
    assert arm["digest"] != before["manifests"][1]["digest"]
    assert arm["annotations"][P + "hardware.cpu.optimized.version"] == "neoverse_v2"
    assert "annotations" not in after  # --platform narrows the change: the index's own keys stay
    # later changes keep the descriptor's copy in step without --descriptor
    result = annotate(ref, set={"hardware.cpu.optimized.version": "neoverse_n1"}, platforms=["linux/arm64"])
    assert result.verified
    arm = images.manifest(ref)[0]["manifests"][1]
    assert arm["annotations"][P + "hardware.cpu.optimized.version"] == "neoverse_n1"
    child = images.manifest(f"{images.name}@{arm['digest']}")[0]
    assert child["annotations"][P + "hardware.cpu.optimized.version"] == "neoverse_n1"


def test_unknown_platform_names_what_the_index_has(images, run_cli):
    r = run_cli("annotate", images.fresh("index"), "--platform", "linux/ppc64le", "--set", "app.version=1")
    assert r.returncode == 2
    assert "no manifest for linux/ppc64le (it has: linux/amd64, linux/arm64)" in r.stderr


def test_docker_manifest_list_is_converted_with_its_children(images):
    ref = images.fresh("dockerlist")
    before, _ = images.manifest(ref)
    assert before["mediaType"] == media.DOCKER_LIST
    with pytest.raises(InputError, match="--convert-to-oci"):
        annotate(ref, set={"app.version": "2"})
    mark = log_mark(images.registry)
    result = annotate(ref, set={"app.version": "2"}, convert_to_oci=True)
    assert result.verified, result.verification
    after, _ = images.manifest(ref)
    assert after["mediaType"] == media.OCI_INDEX
    for desc in after["manifests"]:
        assert desc["mediaType"] == media.OCI_MANIFEST
        child = images.manifest(f"{images.name}@{desc['digest']}")[0]
        assert child["mediaType"] == media.OCI_MANIFEST
        assert child["annotations"][P + "app.version"] == "2"
    assert blob_uploads(images.registry, mark) == []


# -- OCI layouts ---------------------------------------------------------------------------------------


def test_oci_layout_index_retrofit(images, tmp_path):
    path = images.fresh_layout(tmp_path)
    blobs_before = set(os.listdir(path / "blobs" / "sha256"))
    entries_before = OciLayout.open(path).index()["manifests"]
    result = annotate(f"oci:{path}:index", set={"app.version": "1.36"}, descriptor=True)
    assert result.verified, result.verification
    added = set(os.listdir(path / "blobs" / "sha256")) - blobs_before
    assert len(added) == 3  # two children and the index: manifests only
    layout = OciLayout.open(path)
    entry = layout.find("index")
    assert entry["digest"] == result.new_digest
    assert layout.find("single") == next(e for e in entries_before
                                         if e["annotations"]["org.opencontainers.image.ref.name"] == "single")
    index = layout.read_json(entry["digest"])
    for desc in index["manifests"]:
        assert desc["annotations"][P + "app.version"] == "1.36"
        assert layout.read_json(desc["digest"])["annotations"][KEEP] == "yes"


def test_oci_layout_single_image_through_the_cli(images, tmp_path, run_cli):
    path = images.fresh_layout(tmp_path)
    r = run_cli("annotate", f"oci:{path}:single", "--set", "python.version=3.11")
    assert r.returncode == 0, r.stderr
    assert "(verified)" in r.stdout
    layout = OciLayout.open(path)
    assert layout.read_json(layout.find("single")["digest"])["annotations"][P + "python.version"] == "3.11"


# -- another writer -----------------------------------------------------------------------------------


class HookProxy:
    """Forwards to the registry; ``hook(method, path)`` runs before each request is forwarded."""

    def __init__(self, upstream: str, hook: Callable[[str, str], None]):
        self.upstream = upstream
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once (no delayed-ACK stalls)

            def log_message(self, *args):
                pass

            def handle_one(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook(self.command, self.path)
                conn = http.client.HTTPConnection(proxy.upstream, timeout=10)
                skip = {"connection", "transfer-encoding", "keep-alive", "host"}
                conn.request(self.command, self.path, body=body or None,
                             headers={k: v for k, v in self.headers.items() if k.lower() not in skip})
                resp = conn.getresponse()
                payload = resp.read()
                self.send_response(resp.status)
                for name, value in resp.getheaders():
                    if name.lower() not in skip:
                        self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_tag_moved_by_another_writer_is_merged_not_overwritten(images):
    ref = images.fresh("index")
    repository_tag = ref.split("/", 1)[1]
    tag = ref.rsplit(":", 1)[1]
    moved = []

    def other_writer(method: str, path: str) -> None:
        if method == "HEAD" and path.endswith(f"/manifests/{tag}") and not moved:
            moved.append(annotate(ref, set={"org.example.other": "theirs"}).new_digest)

    proxy = HookProxy(images.registry.host, other_writer)
    try:
        result = annotate(f"{proxy.host}/{repository_tag}", set={"app.version": "mine"})
    finally:
        proxy.close()
    assert moved and result.attempts == 2 and result.verified
    after, digest = images.manifest(ref)
    assert digest == result.new_digest
    assert after["annotations"] == {"org.example.other": "theirs", P + "app.version": "mine"}
    for desc in after["manifests"]:
        child = images.manifest(f"{images.name}@{desc['digest']}")[0]["annotations"]
        assert child["org.example.other"] == "theirs" and child[P + "app.version"] == "mine"


def test_a_tag_that_keeps_moving_stops_with_a_clear_message(images):
    ref = images.fresh("single")
    repository_tag = ref.split("/", 1)[1]
    tag = ref.rsplit(":", 1)[1]
    count = itertools.count()

    def busy_writer(method: str, path: str) -> None:
        if method == "HEAD" and path.endswith(f"/manifests/{tag}"):
            annotate(ref, set={"org.example.busy": str(next(count))})

    proxy = HookProxy(images.registry.host, busy_writer)
    try:
        with pytest.raises(ConcurrentUpdateError, match=r"moved 3 times.*nothing was written under the tag"):
            annotate(f"{proxy.host}/{repository_tag}", set={"app.version": "mine"})
    finally:
        proxy.close()
    got = images.manifest(ref)[0]["annotations"]
    assert got["org.example.busy"] == "2" and P + "app.version" not in got


# -- authentication ------------------------------------------------------------------------------------


def test_htpasswd_registry_through_the_cli(buildah_store, auth_registry, tmp_path_factory, tmp_path, run_cli):
    images = push_images(buildah_store, auth_registry, "hpc/auth", tmp_path_factory.mktemp("auth-images"))
    ref = images.fresh("index")
    authfile = tmp_path / "auth.json"
    token = base64.b64encode(f"{auth_registry.user}:{auth_registry.password}".encode()).decode()
    authfile.write_text(json.dumps({"auths": {auth_registry.host: {"auth": token}}}))
    r = run_cli("annotate", ref, "--set", "app.version=9")
    assert r.returncode == 2 and "no credentials found" in r.stderr
    mark = log_mark(auth_registry)
    r = run_cli("annotate", ref, "--set", "app.version=9", "--authfile", authfile, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verified"] is True
    assert auth_registry.password not in r.stdout + r.stderr
    assert blob_uploads(auth_registry, mark) == []
    assert images.manifest(ref)[0]["annotations"][P + "app.version"] == "9"
    r = run_cli("inspect", ref, "--authfile", authfile, "--json")
    assert r.returncode == 0, r.stderr
    assert [m["manifest_annotations"][P + "app.version"] for m in json.loads(r.stdout)["manifests"]] == ["9", "9"]


# -- crane backend -------------------------------------------------------------------------------------


def test_crane_argv_is_exact():
    assert mutate_argv("reg.example.org/a/b:1", {P + "mpi.implementation": "mpich", "x.y": "a,b"}) == [
        "crane", "mutate", "reg.example.org/a/b:1",
        "--annotation", f"{P}mpi.implementation=mpich",
        "--annotation", "x.y=a,b",  # one '=': pflag takes the argument whole, commas included
    ]
    assert mutate_argv("h:5000/a:1", {"k": "v"}, insecure=True)[-1] == "--insecure"
    # several '=' make pflag read a CSV record: quoted so commas and quotes survive
    assert flag_value("k", "a=b,c") == '"k=a=b,c"'
    assert flag_value("k", 'say "x"=1') == '"k=say ""x""=1"'
    assert flag_value("k", "YWJj==") == "k=YWJj=="
    for bad in ("", '"quoted"'):
        with pytest.raises(InputError):
            flag_value("k", bad)


def test_crane_backend_dry_run_shows_the_command_and_refuses_what_crane_cannot_do(images):
    ref = images.fresh("single")
    result = annotate(ref, set={"app.version": "1", "tools.includes": "busybox,sh"}, backend="crane", dry_run=True)
    assert result.command[1:3] == ["mutate", ref]
    assert result.command[3:] == ["--annotation", f"{P}app.version=1", "--annotation", f"{P}tools.includes=busybox,sh"]
    with pytest.raises(InputError, match="is an index; crane mutate cannot annotate an index"):
        annotate(images.fresh("index"), set={"app.version": "1"}, backend="crane")
    with pytest.raises(InputError, match="crane cannot remove"):
        annotate(ref, unset=[KEEP], backend="crane")
    with pytest.raises(InputError, match="not OCI layouts"):
        annotate(f"oci:{images.layout}:single", set={"app.version": "1"}, backend="crane")


def test_crane_runner_reads_the_pushed_digest_and_reports_failures(tmp_path):
    digest = "sha256:" + "ab" * 32
    good = tmp_path / "crane-ok"
    good.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/argv\necho reg.example.org/a@{digest}\n")
    bad = tmp_path / "crane-bad"
    bad.write_text("#!/bin/sh\necho 'Error: MANIFEST_UNKNOWN' >&2\nexit 1\n")
    for script in (good, bad):
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    argv = mutate_argv("reg.example.org/a:1", {"k": "v"}, executable=str(good))
    assert run_mutate(argv) == digest
    assert (tmp_path / "argv").read_text().split() == ["mutate", "reg.example.org/a:1", "--annotation", "k=v"]
    with pytest.raises(Exception, match=r"crane mutate reg.example.org/a:1 failed \(exit 1\): Error: MANIFEST"):
        run_mutate(mutate_argv("reg.example.org/a:1", {"k": "v"}, executable=str(bad)))


@pytest.mark.real_tools
@pytest.mark.skipif(shutil.which("crane") is None, reason="crane is not installed (bash .ci/install-go-tools.sh)")
def test_crane_backend_for_real(images):
    ref = images.fresh("single")
    before, _ = images.manifest(ref)
    result = annotate(ref, set={"app.version": "7"}, backend="crane")
    assert result.verified, result.verification
    after, _ = images.manifest(ref)
    assert after["annotations"][P + "app.version"] == "7" and after["layers"] == before["layers"]


def test_naming_a_digest_keeps_its_other_names(tmp_path):
    """Tagging ``latest`` on the image tagged ``1.0`` adds a name; it does not take ``1.0`` away."""
    layout = OciLayout.create(tmp_path / "names")
    desc = layout.put_manifest({"schemaVersion": 2, "config": {}, "layers": []}, media.OCI_MANIFEST, "1.0",
                               platform={"os": "linux", "architecture": "amd64"})
    layout.put_manifest({"schemaVersion": 2, "config": {}, "layers": []}, media.OCI_MANIFEST, "latest")
    assert layout.find("1.0")["digest"] == layout.find("latest")["digest"] == desc["digest"]
    assert layout.find("1.0")["platform"] == {"os": "linux", "architecture": "amd64"}
    assert len(layout.index()["manifests"]) == 2


def test_crane_is_handed_the_authfile_as_its_docker_config(tmp_path, monkeypatch):
    """crane prefers $DOCKER_CONFIG/config.json over containers' auth files: --authfile must win anyway."""
    home_config = tmp_path / "home-docker"
    home_config.mkdir()
    (home_config / "config.json").write_text('{"auths": {"reg.example.org": {"auth": "aG9tZTpob21l"}}}')
    monkeypatch.setenv("DOCKER_CONFIG", str(home_config))
    authfile = tmp_path / "auth.json"
    authfile.write_text('{"auths": {"reg.example.org": {"auth": "Ym9iOnNlY3JldA=="}}}')
    seen = tmp_path / "seen"
    script = tmp_path / "crane-env"
    pushed = f"reg.example.org/a@sha256:{'cd' * 32}"
    script.write_text(f'#!/bin/sh\ncat "$DOCKER_CONFIG/config.json" > {seen}\necho {pushed}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    run_mutate(mutate_argv("reg.example.org/a:1", {"k": "v"}, executable=str(script)), authfile=authfile)
    assert seen.read_text() == authfile.read_text()
    with pytest.raises(InputError, match=r"--authfile .*missing.json: cannot read"):
        run_mutate(mutate_argv("reg.example.org/a:1", {"k": "v"}, executable=str(script)),
                   authfile=tmp_path / "missing.json")


def test_a_named_authfile_that_does_not_exist_is_an_error(tmp_path, run_cli):
    r = run_cli("inspect", "127.0.0.1:1/a:b", "--authfile", str(tmp_path / "nope.json"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"hpcannotate: error: --authfile {tmp_path / 'nope.json'}: no such file"


def test_attestation_entries_follow_the_image_they_describe(tmp_path):
    """buildx indexes carry provenance manifests naming their image by digest; a retrofit moves that name."""
    layout = OciLayout.create(tmp_path / "bx")
    config_raw = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config = {"mediaType": media.OCI_CONFIG, "digest": layout.put_blob(config_raw), "size": len(config_raw)}
    image = media.canonical_json({"schemaVersion": 2, "mediaType": media.OCI_MANIFEST, "config": config,
                                  "layers": []})
    image_digest = layout.put_blob(image)
    proof = media.canonical_json({"schemaVersion": 2, "mediaType": media.OCI_MANIFEST, "config": config,
                                  "layers": [], "annotations": {"kind": "provenance"}})
    proof_digest = layout.put_blob(proof)
    index = media.canonical_json({"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": [
        {"mediaType": media.OCI_MANIFEST, "digest": image_digest, "size": len(image),
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": media.OCI_MANIFEST, "digest": proof_digest, "size": len(proof),
         "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                         "vnd.docker.reference.digest": image_digest}}]})
    layout.put_manifest(json.loads(index), media.OCI_INDEX, "v1")
    result = annotate(f"oci:{tmp_path / 'bx'}:v1", set={"app.version": "1"})
    assert result.verified, result.verification
    entries = OciLayout.open(tmp_path / "bx").read_json(result.new_digest)["manifests"]
    assert entries[0]["digest"] != image_digest
    assert entries[1]["digest"] == proof_digest  # the attestation itself is not rewritten ...
    assert entries[1]["annotations"]["vnd.docker.reference.digest"] == entries[0]["digest"]  # ... only its pointer
