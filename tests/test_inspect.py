"""``inspect``: annotations of an index, its descriptors, each child and the config labels, from a real registry.

Uses the buildah-built images of test_retrofit (two platforms, an OCI and a Docker v2 image, an
OCI layout). The registry's log shows what was fetched: manifests and configs, never a layer.
"""

from __future__ import annotations

import json
import re

import pytest

from hpcannotate.image.inspect import grouped, inspect
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.oci import media
from hpcannotate.retrofit.annotate import annotate

from .test_retrofit import KEEP, Images, log_mark, no_login_files, push_images  # noqa: F401 - fixture

BLOB_GET = re.compile(r'"GET /v2/\S+/blobs/(sha256:[0-9a-f]{64}) HTTP')


@pytest.fixture(scope="module")
def images(buildah_store, registry, tmp_path_factory) -> Images:
    return push_images(buildah_store, registry, "hpc/inspect", tmp_path_factory.mktemp("inspect-images"))


def test_index_json_has_descriptors_children_and_labels(images, run_cli):
    ref = images.fresh("index")
    annotate(ref, set={"app.version": "1.36"}, platforms=["linux/arm64"], descriptor=True)
    r = run_cli("inspect", ref, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    index, digest = images.manifest(ref)
    assert data["digest"] == digest and data["mediaType"] == media.OCI_INDEX
    assert data["annotations"] == {}
    assert [m["platform"] for m in data["manifests"]] == [d["platform"] for d in index["manifests"]]
    assert [m["digest"] for m in data["manifests"]] == [d["digest"] for d in index["manifests"]]
    amd, arm = data["manifests"]
    assert amd["annotations"] == {}
    assert arm["annotations"] == {P + "app.version": "1.36"}
    assert arm["manifest_annotations"][P + "app.version"] == "1.36"
    assert amd["manifest_annotations"][P + "hardware.cpu.optimized.version"] == "x86_64"
    assert arm["manifest_annotations"][KEEP] == "yes"
    assert amd["labels"][P + "app.name"] == "bb"
    assert amd["groups"]["hardware"] == {P + "hardware.cpu.optimized.mode": "architecture",
                                         P + "hardware.cpu.optimized.version": "x86_64"}
    assert amd["groups"]["mpi"] == {P + "mpi.implementation": "mpich"}  # the alias spelling, canonical here
    assert amd["groups"]["other"][KEEP] == "yes"
    # buildah writes empty base-image keys: reported, with the key and the reason
    assert {"key": "org.opencontainers.image.base.name", "message": "is empty", "value": ""} in amd["problems"]
    assert amd["compliant"] is False and data["compliant"] is False


def test_only_manifests_and_configs_are_fetched(images):
    ref = images.fresh("index")
    mark = log_mark(images.registry)
    found = inspect(ref)
    fetched = set(BLOB_GET.findall(images.registry.log_text()[mark:]))
    configs = {image.config_digest for image in found.images}
    assert fetched == configs and len(configs) == 2


def test_platform_filter_and_layout(images, tmp_path):
    found = inspect(images.fresh("index"), platforms=["linux/arm64"])
    assert [i.platform_text for i in found.images] == ["linux/arm64"] and found.skipped == 1
    layout = images.fresh_layout(tmp_path)
    from_layout = inspect(f"oci:{layout}:index")
    assert [i.platform_text for i in from_layout.images] == ["linux/amd64", "linux/arm64"]
    assert from_layout.images[1].annotations[P + "hardware.cpu.optimized.version"] == "aarch64"
    single = inspect(f"oci:{layout}:single")
    assert not single.is_index and single.images[0].platform == {"architecture": "amd64", "os": "linux"}


def test_compliant_image_table(images, run_cli):
    ref = images.fresh("single")
    annotate(ref, unset=["org.opencontainers.image.base.name", "org.opencontainers.image.base.digest"])
    r = run_cli("inspect", ref)
    assert r.returncode == 0, r.stderr
    assert "HPC Container Compliant" in r.stdout and "not HPC" not in r.stdout
    line = next(x for x in r.stdout.splitlines() if "hardware.cpu.optimized.version" in x)
    assert line.split() == ["hardware", P + "hardware.cpu.optimized.version", "x86_64", "manifest"]
    label = next(x for x in r.stdout.splitlines() if "app.name" in x)
    assert label.split()[-1] == "label"


def test_stale_label_is_pointed_out(images, run_cli):
    ref = images.fresh("single")
    annotate(ref, set={"mpi.implementation": "openmpi"})  # the config label still says mpich
    found = inspect(ref)
    assert found.images[0].stale_labels() == {P + "mpi.implementation": ("mpich", "openmpi")}
    assert dict(found.images[0].effective())[P + "mpi.implementation"] == "openmpi"  # the annotation wins
    r = run_cli("inspect", ref)
    assert "label org.supercontainers.mpi.implementation='mpich' differs from the annotation 'openmpi'" in r.stderr


def test_docker_image_labels_and_errors(images, run_cli):
    found = inspect(images.fresh("docker"))
    assert found.media_type == media.DOCKER_MANIFEST
    assert found.images[0].labels[P + "app.name"] == "bb"
    assert found.images[0].annotations == {}
    r = run_cli("inspect", f"{images.name}:no-such-tag")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"hpcannotate: error: {images.name}:no-such-tag: manifest not found (HTTP 404 MANIFEST_UNKNOWN)"]
    r = run_cli("inspect", images.fresh("index"), "--platform", "linux/s390x")
    assert r.returncode == 2 and "no manifest for linux/s390x" in r.stderr


def test_grouping_follows_the_catalogue_order():
    groups = grouped({"z.other": "1", P + "mpi.implementation": "mpich", P + "hardware.cpu.optimized.version": "zen3",
                      P + "not.a.key": "x"})
    assert list(groups) == ["hardware", "mpi", "unknown", "other"]
