"""crane for real: ``annotate --backend crane``, and crane reading what hpcannotate wrote.

crane (go-containerregistry) is an independent client: the manifests and configs that ``annotate``
(both backends) and ``collection apply`` leave in a real registry must be the very bytes
hpcannotate's own client reads, under the digests hpcannotate reports.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.oci import media
from hpcannotate.registry import RegistryClient

from .fixtures.realtools import require_go_tool
from .test_collection import write_collection
from .test_retrofit import Images, blob_uploads, log_mark, no_login_files, push_images  # noqa: F401 - fixture

pytestmark = pytest.mark.real_tools
HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"


def crane(*args: str) -> bytes:
    """crane's own answer (stdout bytes); plain HTTP to the loopback test registry."""
    exe = require_go_tool("crane")
    proc = subprocess.run([exe, *args, "--insecure"], capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc.stdout


def same_bytes_as_crane(ref: str, digest: str | None = None) -> dict:
    """The manifest (and, for an image, the config) as hpcannotate's client and crane read them."""
    with RegistryClient() as client:
        ours = client.get_manifest(ref)
    assert crane("manifest", ref) == ours.raw
    assert crane("digest", ref).decode().strip() == ours.digest
    if digest is not None:
        assert ours.digest == digest
    manifest = json.loads(ours.raw)
    if manifest.get("mediaType") == media.OCI_MANIFEST:
        repository = ref.rpartition("@")[0] if "@" in ref else ref.rpartition(":")[0]
        with RegistryClient() as client:
            config = b"".join(client.get_blob(repository, manifest["config"]["digest"]))
        assert crane("config", ref) == config
    return manifest


@pytest.fixture(scope="module")
def images(buildah_store, registry, tmp_path_factory) -> Images:
    require_go_tool("crane")
    return push_images(buildah_store, registry, "hpc/crane", tmp_path_factory.mktemp("crane-images"))


def test_annotate_with_the_crane_backend_on_a_single_image(images, run_cli):
    ref = images.fresh("single")
    before, _ = images.manifest(ref)
    mark = log_mark(images.registry)
    value = 'a,b "c"=d $HOME'  # a comma, quotes and '=': crane's CSV flag parsing must give it back whole
    r = run_cli("annotate", ref, "--backend", "crane", "--set", "app.version=7", "--set",
                f"org.example.note={value}", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["verified"] is True
    after = same_bytes_as_crane(ref, result["new_digest"])
    assert after["annotations"][P + "app.version"] == "7"
    assert after["annotations"]["org.example.note"] == value
    assert after["layers"] == before["layers"]
    assert before["annotations"].items() <= after["annotations"].items()  # every other key kept
    # crane re-serialises the config (one small new blob); the layers are never sent again
    started = [u for u in blob_uploads(images.registry, mark) if u.startswith('"POST')]
    assert started == ['"POST /v2/hpc/crane/blobs/uploads']


def test_the_crane_backend_refuses_an_index(images, run_cli):
    ref = images.fresh("index")
    _, digest = images.manifest(ref)
    r = run_cli("annotate", ref, "--backend", "crane", "--set", "app.version=7")
    assert r.returncode == 2
    assert "is an index; crane mutate cannot annotate an index" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert images.manifest(ref)[1] == digest  # untouched


def test_native_annotate_results_read_the_same_with_crane(images, run_cli):
    for kind in ("single", "index"):
        ref = images.fresh(kind)
        r = run_cli("annotate", ref, "--set", "mpi.implementation=openmpi", "--json")
        assert r.returncode == 0, r.stderr
        result = json.loads(r.stdout)
        manifest = same_bytes_as_crane(ref, result["new_digest"])
        if kind == "index":
            for desc in manifest["manifests"]:
                child = same_bytes_as_crane(f"{images.name}@{desc['digest']}", desc["digest"])
                assert child["annotations"][P + "mpi.implementation"] == "openmpi"


def test_collection_apply_results_read_the_same_with_crane(images, tmp_path, run_cli):
    path = write_collection(tmp_path / "c.yaml", images, tag="crane")
    r = run_cli("collection", "apply", path, "--push", f"{images.registry.host}/metahub-crane", "--json")
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)
    index = same_bytes_as_crane(result["reference"], result["digest"])
    assert index["mediaType"] == media.OCI_INDEX
    repository = result["reference"].rpartition(":")[0]
    for desc in index["manifests"]:
        same_bytes_as_crane(f"{repository}@{desc['digest']}", desc["digest"])


@pytest.mark.slow
def test_build_results_read_the_same_with_crane(buildah_store, busybox_base, registry, tmp_path, run_cli):
    require_go_tool("crane")
    ref = f"{registry.host}/crane/hello:1.0"
    r = run_cli("build", HELLO, "--push", ref, "--workdir", tmp_path, *buildah_store.cli_args(), "--json",
                timeout=900)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    index = same_bytes_as_crane(ref, report["digest"])
    for desc, target in zip(index["manifests"], report["targets"], strict=True):
        manifest = same_bytes_as_crane(f"{registry.host}/crane/hello@{desc['digest']}", target["digest"])
        assert manifest["annotations"][P + "hardware.cpu.optimized.version"] == target["target"]
