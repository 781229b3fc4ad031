"""``collection apply|export``: MetaHub collection YAML -> an annotated OCI index, and back.

Real images (buildah, see test_retrofit) in a real registry; the index goes to another
repository, so blobs are mounted across repositories (the registry log shows no blob data sent).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.image.inspect import inspect
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.inputs import parse_yaml
from hpcannotate.oci import media
from hpcannotate.oci.layout import OciLayout
from hpcannotate.retrofit.collection import (
    FEATURES_KEY,
    apply_collection,
    dump_collection,
    export_collection,
    load_collection,
    parse_collection,
)

from .test_retrofit import Images, log_mark, manifest_puts, no_login_files, push_images  # noqa: F401 - fixture

BLOB_DATA = re.compile(r'"(?:PUT|PATCH) /v2/\S+/blobs/uploads')
MOUNT = re.compile(r'"POST /v2/\S+/blobs/uploads/\?\S*mount=\S+ HTTP/1.1" 201')

# The MetaHub community-edition example of seed 001 (collections/gromacs/mpich/2021.5.yaml).
SEED_EXAMPLE = """\
manifests:
  - name: gromacs/mpich
    tag: 2021.5
    manifests:
      - image: quay.io/cqnib/gromacs/gcc-7.3.1/2021.5/mpich:x86_64_v4
        platform:
          os: linux
          arch: amd64
        annotations:
            org.supercontainers.mpi.provider: mpich
            org.supercontainers.mpi.abi.version: 12.0
            org.supercontainers.mpi.portability.optimized: stock
            org.supercontainers.mpi.portability.mode: mpich_replace
            org.supercontainers.mpi.version: 3.4
      - image: quay.io/cqnib/gromacs-2021.5_gcc-11.3.0:zen3
        platform:
          os: linux
          arch: amd64
          features: [cpu:zen3]
      - image: quay.io/cqnib/gromacs/gcc-7.3.1/2021.5/mpich:x86_64_v4_labeled
        platform:
          os: linux
          arch: amd64
          features: [cpu:zen2]
      - image: quay.io/cqnib/gromacs-2021.5_gcc-7.3.1:aarch64
        platform:
          os: linux
          arch: arm64
"""


@pytest.fixture(scope="module")
def images(buildah_store, registry, tmp_path_factory) -> Images:
    return push_images(buildah_store, registry, "hpc/coll", tmp_path_factory.mktemp("coll-images"))


def write_collection(path: Path, images: Images, tag: str = "2021.5", single: str | None = None,
                     index: str | None = None) -> Path:
    path.write_text(f"""\
manifests:
  - name: gromacs/mpich
    tag: "{tag}"
    annotations:
      org.opencontainers.image.description: curated by the test suite
    manifests:
      - image: {single or images.fresh("single")}
        platform: {{os: linux, arch: amd64, features: [cpu:x86_64_v4, "isa:avx512"]}}
        annotations:
          org.supercontainers.mpi.provider: mpich
          org.supercontainers.mpich.abi.version: 12.0
          org.supercontainers.mpi.portability.mode: mpich_replace
      - image: {index or images.fresh("index")}
        platform: linux/arm64
        annotations:
          org.supercontainers.app.version: "2021.5"
""")
    return path


def test_the_seed_example_reads_with_canonical_keys_and_text_values():
    collection = parse_collection(parse_yaml(SEED_EXAMPLE, "2021.5.yaml"), "2021.5.yaml")
    (app,) = collection.applications
    assert (app.name, app.tag, len(app.images)) == ("gromacs/mpich", "2021.5", 4)
    first = app.images[0]
    assert first.annotations[P + "mpi.implementation"] == "mpich"
    assert first.annotations[P + "mpi.abi.version"] == "12.0"  # stays text, not the float 12.0
    assert first.annotations[P + "mpi.portability.optimization"] == "stock"
    assert app.images[1].features == ("cpu:zen3",)
    assert str(app.images[3].platform) == "linux/arm64"


@pytest.mark.parametrize(("text", "message"), [
    ("manifests: []\n", "f.yaml: manifests: is empty"),
    ("manifests:\n- name: a\n  tag: '1'\n  manifests:\n  - image: x/y:1\n    platfrom: linux/amd64\n",
     "f.yaml: manifests[0].manifests[0]: unknown key 'platfrom' (expected: image, platform, annotations)"),
    ("manifests:\n- name: a\n  tag: '1'\n  manifests:\n  - image: x/y:1\n    platform: linux\n",
     "f.yaml: manifests[0].manifests[0].platform: 'linux' is not a platform"),
    ("manifests:\n- name: a\n  tag: '1'\n  manifests:\n  - image: x/y:1\n"
     "    annotations: {mpi.implementation: mpich3}\n",
     "f.yaml: manifests[0].manifests[0].annotations: org.supercontainers.mpi.implementation: 'mpich3' is not one"),
    ("manifests:\n- name: Gromacs\n  tag: '1'\n  manifests:\n  - image: x/y:1\n",
     "f.yaml: manifests[0]: Gromacs:1 is not a repository name and tag"),
    ("manifests:\n- name: a\n  tag: '1'\n  manifests:\n  - image: x/y:1\n    platform: {features: [cpu zen3]}\n",
     "f.yaml: manifests[0].manifests[0].platform.features[0]: 'cpu zen3' is not a feature"),
])
def test_validation_names_the_place(text, message):
    with pytest.raises(InputError) as error:
        parse_collection(parse_yaml(text, "f.yaml"), "f.yaml")
    assert str(error.value).startswith(message)


def test_apply_builds_an_annotated_index_without_changing_the_images(images, tmp_path, run_cli):
    single, index = images.fresh("single"), images.fresh("index")
    sources = {ref: images.manifest(ref)[1] for ref in (single, index)}
    path = write_collection(tmp_path / "2021.5.yaml", images, single=single, index=index)
    mark = log_mark(images.registry)
    r = run_cli("collection", "apply", path, "--push", f"{images.registry.host}/metahub", "--json")
    assert r.returncode == 0, r.stderr
    (result,) = json.loads(r.stdout)
    target = f"{images.registry.host}/metahub/gromacs/mpich:2021.5"
    assert result["reference"] == target and result["verified"] is True
    log = images.registry.log_text()[mark:]
    assert BLOB_DATA.findall(log) == [] and len(MOUNT.findall(log)) >= 2  # blobs linked, never sent
    assert {ref: images.manifest(ref)[1] for ref in sources} == sources  # the listed images are unchanged
    built, digest = images.manifest(target)
    assert digest == result["digest"] and built["mediaType"] == media.OCI_INDEX
    amd, arm = built["manifests"]
    assert amd["platform"] == {"architecture": "amd64", "os": "linux"}
    assert arm["platform"] == {"architecture": "arm64", "os": "linux"}
    assert amd["annotations"][FEATURES_KEY] == "cpu:x86_64_v4,isa:avx512"
    assert amd["annotations"][P + "mpi.provider"] == "mpich"  # the image's spelling, already that value
    assert P + "mpi.implementation" not in amd["annotations"]  # never one key twice
    assert amd["annotations"][P + "mpi.abi.version"] == "12.0"
    assert amd["annotations"][P + "hardware.cpu.optimized.version"] == "x86_64"  # the image's own key
    assert arm["annotations"][P + "app.version"] == "2021.5" and FEATURES_KEY not in arm["annotations"]
    assert built["annotations"]["org.opencontainers.image.title"] == "gromacs/mpich"
    assert built["annotations"]["org.opencontainers.image.description"] == "curated by the test suite"
    source_arm = images.manifest(f"{images.name}@{images.manifest(index)[0]['manifests'][1]['digest']}")[0]
    child = images.manifest(f"{images.registry.host}/metahub/gromacs/mpich@{arm['digest']}")[0]
    assert child["layers"] == source_arm["layers"] and child["config"] == source_arm["config"]
    assert child["annotations"] == {**source_arm["annotations"], P + "app.version": "2021.5"}
    found = inspect(target)
    assert [i.platform_text for i in found.images] == ["linux/amd64", "linux/arm64"]


def test_dry_run_reads_but_writes_nothing(images, tmp_path, run_cli):
    path = write_collection(tmp_path / "c.yaml", images, tag="dry")
    mark = log_mark(images.registry)
    r = run_cli("collection", "apply", path, "--push", f"{images.registry.host}/metahub", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "dry run: nothing written" in r.stdout and "linux/amd64 [cpu:x86_64_v4,isa:avx512]" in r.stdout
    assert manifest_puts(images.registry, mark) == []
    assert "POST" not in images.registry.log_text()[mark:]


def test_export_then_apply_gives_the_same_index(images, tmp_path, run_cli):
    path = write_collection(tmp_path / "c.yaml", images, tag="round")
    (first,) = apply_collection(path, push=f"{images.registry.host}/metahub")
    r = run_cli("collection", "export", first.reference, "-o", tmp_path / "exported.yaml")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "exported.yaml").read_text()
    assert "features:\n      - cpu:x86_64_v4\n      - isa:avx512" in text
    assert "org.supercontainers.mpi.abi.version: '12.0'" in text  # a string in YAML too
    exported = load_collection(tmp_path / "exported.yaml")
    (app,) = exported.applications
    assert (app.name, app.tag) == ("metahub/gromacs/mpich", "round")
    assert all("@sha256:" in image.image for image in app.images)
    (again,) = apply_collection(exported, push=f"{images.registry.host}/metahub/gromacs/mpich:again")
    one, _ = images.manifest(first.reference)
    two, _ = images.manifest(again.reference)
    assert one["manifests"] == two["manifests"]
    assert dump_collection(export_collection(again.reference, name="metahub/gromacs/mpich")).replace(
        "tag: again", "tag: round") == text


def test_collection_into_an_oci_layout(images, tmp_path):
    path = write_collection(tmp_path / "c.yaml", images)
    (result,) = apply_collection(path, push=f"oci:{tmp_path / 'out'}")
    assert result.verified, result.verification
    copied = [i.transfer for i in result.images]
    assert sum(t.copied + t.present for t in copied) == 4  # two configs and two layers, each present once
    assert sum(t.bytes_copied for t in copied) > 1_000_000
    layout = OciLayout.open(tmp_path / "out" / "gromacs" / "mpich")
    for image in result.images:
        manifest = layout.read_json(image.digest)
        assert all(layout.has_blob(d["digest"]) for d in [manifest["config"], *manifest["layers"]])
    assert layout.find("2021.5")["digest"] == result.digest
    found = inspect(f"oci:{tmp_path / 'out' / 'gromacs' / 'mpich'}:2021.5")
    assert found.images[0].descriptor_annotations[FEATURES_KEY] == "cpu:x86_64_v4,isa:avx512"
    assert found.images[1].labels[P + "app.name"] == "bb"  # the config blob arrived


def test_docker_image_in_a_collection_needs_the_flag(images, tmp_path):
    path = write_collection(tmp_path / "c.yaml", images, tag="docker", single=images.fresh("docker"))
    with pytest.raises(InputError, match="--convert-to-oci"):
        apply_collection(path, push=f"{images.registry.host}/metahub", dry_run=True)
    (result,) = apply_collection(path, push=f"{images.registry.host}/metahub", convert_to_oci=True)
    assert result.verified and result.images[0].converted
    assert result.images[0].media_type == media.OCI_MANIFEST


def test_without_push_the_index_goes_to_the_images_registry(images, tmp_path):
    path = write_collection(tmp_path / "c.yaml", images, tag="nopush")
    (result,) = apply_collection(path, dry_run=True)
    assert result.reference == f"{images.registry.host}/gromacs/mpich:nopush"


def test_a_bad_image_in_a_later_application_writes_nothing(images, tmp_path):
    """Every application is read and checked before the first index is written."""
    data = yaml.safe_load(write_collection(tmp_path / "good.yaml", images).read_text())
    broken = copy.deepcopy(data["manifests"][0])
    broken["name"] = "gromacs/broken"
    broken["manifests"][1]["image"] = f"{images.name}:no-such-tag"
    data["manifests"].append(broken)
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    with pytest.raises(HpcAnnotateError, match="no-such-tag"):
        apply_collection(path, push=f"oci:{out}")
    assert not out.exists()


def test_export_from_a_layout_keeps_the_application_name(images, tmp_path):
    """oci:DIR/gromacs/mpich holds the index of gromacs/mpich: its directory alone would say "mpich"."""
    path = write_collection(tmp_path / "c.yaml", images)
    apply_collection(path, push=f"oci:{tmp_path / 'out'}")
    (app,) = export_collection(f"oci:{tmp_path / 'out' / 'gromacs' / 'mpich'}:2021.5")["manifests"]
    assert (app["name"], app["tag"]) == ("gromacs/mpich", "2021.5")
