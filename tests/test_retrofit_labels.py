"""``annotate --labels`` and ``--aliases`` (issue 12, parts 6 and 7), on real images in a real registry.

Label readers (``skopeo inspect``, ``docker inspect``, Apptainer, Charliecloud) see only the
config's labels: ``--labels`` rewrites them with one small config blob, layers and diff_ids
untouched, far below 16 KiB on the wire. ``--aliases`` writes the seeds' spellings beside the
canonical keys.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.retrofit.annotate import annotate, make_change
from hpcannotate.retrofit.collection import apply_collection

from .test_retrofit import Images, log_mark, push_images

BLOB_UPLOAD_START = '"POST /v2/'


@pytest.fixture(scope="module")
def images(buildah_store, registry, tmp_path_factory) -> Images:
    return push_images(buildah_store, registry, "hpc/labels", tmp_path_factory.mktemp("label-images"))


def config_of(images: Images, ref: str) -> tuple[dict, dict]:
    manifest, _ = images.manifest(ref)
    with images.client() as client:
        config = json.loads(client.fetch_blob(ref, manifest["config"]["digest"]))
    return manifest, config


def skopeo_labels(ref: str) -> dict:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed (apt-get install skopeo)")
    proc = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--override-arch", "amd64",
                           f"docker://{ref}"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["Labels"] or {}


def test_labels_rewrite_one_config_blob_and_skopeo_sees_them(images):
    ref = images.fresh("single")
    before, old_config = config_of(images, ref)
    assert skopeo_labels(ref).get(P + "mpi.implementation") == "mpich"
    mark = log_mark(images.registry)
    result = annotate(ref, set={"mpi.implementation": "openmpi", "app.version": "1.2"}, labels=True)
    assert result.written and result.verified, result.verification
    assert result.stats["bytes_sent"] < 16 * 1024
    after, new_config = config_of(images, ref)
    assert after["layers"] == before["layers"]
    assert after["config"]["digest"] != before["config"]["digest"]
    assert new_config["rootfs"] == old_config["rootfs"]  # diff_ids unchanged
    assert new_config["history"] == old_config["history"]
    labels = new_config["config"]["Labels"]
    assert labels[P + "mpi.implementation"] == "openmpi" and labels[P + "app.version"] == "1.2"
    assert labels[P + "app.name"] == "bb"  # a label not named is kept
    assert after["annotations"][P + "app.version"] == "1.2"
    assert skopeo_labels(ref)[P + "mpi.implementation"] == "openmpi"
    uploads = images.registry.log_text()[mark:].count(BLOB_UPLOAD_START)
    assert uploads == 1  # the config; no layer


def test_labels_on_every_child_of_an_index(images):
    ref = images.fresh("index")
    index, _ = images.manifest(ref)
    result = annotate(ref, set={"app.version": "2.0"}, labels=True)
    assert result.verified, result.verification
    assert result.stats["bytes_sent"] < 16 * 1024
    new_index, _ = images.manifest(ref)
    for old, new in zip(index["manifests"], new_index["manifests"], strict=True):
        child_ref = f"{images.name}@{new['digest']}"
        child, config = config_of(images, child_ref)
        old_child, _ = images.manifest(f"{images.name}@{old['digest']}")
        assert child["layers"] == old_child["layers"]
        assert config["config"]["Labels"][P + "app.version"] == "2.0"


def test_without_labels_the_config_is_untouched(images):
    ref = images.fresh("single")
    before, _ = images.manifest(ref)
    assert annotate(ref, set={"app.version": "3"}).verified
    assert images.manifest(ref)[0]["config"] == before["config"]


def test_aliases_write_the_seed_spellings_in_annotations_and_labels(images):
    ref = images.fresh("single")
    change, _ = make_change({"mpi.version": "4.1.5", "mpi.abi.version": "12.0"}, aliases=True)
    result = annotate(ref, change=change, labels=True)
    assert result.verified, result.verification
    manifest, config = config_of(images, ref)
    # the image says mpi.provider=mpich: canonical and seed spellings together, same values
    for where in (manifest["annotations"], config["config"]["Labels"]):
        assert where[P + "mpi.version"] == where[P + "mpich.version"] == "4.1.5"
        assert where[P + "mpi.abi.version"] == where[P + "mpich.abi.version"] == "12.0"
        assert P + "openmpi.version" not in where  # an alias only where its condition holds
    assert manifest["annotations"][P + "mpi.implementation"] == manifest["annotations"][P + "mpi.provider"]


def test_collection_apply_with_labels_and_aliases(images, tmp_path):
    single = images.fresh("single")
    path = tmp_path / "c.yaml"
    path.write_text(f"""\
manifests:
  - name: labelled
    tag: "1"
    manifests:
      - image: {single}
        annotations:
          org.supercontainers.mpi.version: "4.1"
""")
    (result,) = apply_collection(path, push=f"{images.registry.host}/metahub", labels=True, aliases=True)
    assert result.verified, result.verification
    (image,) = result.images
    target = f"{images.registry.host}/metahub/labelled@{image.digest}"
    manifest, config = config_of(images, target)
    source, _ = images.manifest(single)
    assert manifest["layers"] == source["layers"]
    labels = config["config"]["Labels"]
    assert labels[P + "mpi.version"] == labels[P + "mpich.version"] == "4.1"
    assert manifest["annotations"][P + "mpich.version"] == "4.1"
    assert skopeo_labels(f"{images.registry.host}/metahub/labelled:1")[P + "mpi.version"] == "4.1"
