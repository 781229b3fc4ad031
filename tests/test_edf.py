"""``hpcannotate edf``: CSCS Environment Definition Files for images built by ``hpcannotate build``.

Every EDF is parsed back with tomllib; the hook annotations are compared as the Container
Engine reads them (nested TOML tables flattened to dotted keys).
"""

from __future__ import annotations

import json
import re

import pytest

from hpcannotate.host import fingerprint
from hpcannotate.registry.reference import parse_reference
from hpcannotate.verdict.edf import flatten, hook_annotations, image_name

from .fixtures.hostimages import SYSROOTS, host_images

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

P = "org.supercontainers."


@pytest.fixture(scope="module")
def images(buildah_store, busybox_base, registry, tmp_path_factory):
    return host_images(buildah_store, registry, tmp_path_factory.mktemp("hostimages"))


def edf_of(run_cli, ref: str, *args: str) -> tuple[dict, str]:
    result = run_cli("edf", ref, *args)
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout), result.stderr


def test_gpu_image_gets_the_nccl_hook(run_cli, images, tmp_path):
    out = tmp_path / "fit.toml"
    result = run_cli("edf", images.refs["fit-gpu"], "--mount", "${SCRATCH}:/scratch", "--mount",
                     "/capstor/data:/data:ro", "--workdir", "/scratch", "--env", "NCCL_DEBUG=INFO", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    text = out.read_text()
    assert text.startswith("# CSCS Environment Definition File written by hpcannotate from ")
    data = tomllib.loads(text)
    assert re.fullmatch(rf"{re.escape(images.registry)}#host/fit-gpu@sha256:[0-9a-f]{{64}}", data["image"])
    assert data["workdir"] == "/scratch"
    assert data["entrypoint"] is False  # the environment is in ENV: the entrypoint adds nothing
    assert data["mounts"] == ["${SCRATCH}:/scratch", "/capstor/data:/data:ro"]
    assert data["env"] == {"NCCL_DEBUG": "INFO"}
    assert flatten(data["annotations"]) == {"com.hooks.aws_ofi_nccl.enabled": "true",
                                            "com.hooks.aws_ofi_nccl.variant": "cuda12"}
    assert "writable" not in data


def test_libfabric_image_gets_the_cxi_hook(run_cli, images):
    data, _ = edf_of(run_cli, images.refs["fit-zen3"], "--writable")
    assert flatten(data["annotations"]) == {"com.hooks.cxi.enabled": "true"}
    assert data["writable"] is True
    assert data["mounts"] == [] and data["env"] == {}
    seed, _ = edf_of(run_cli, images.refs["fit-zen3"], "--hook-style", "seed-2024")
    assert flatten(seed["annotations"]) == {"com.hooks.cxi.enable": True}


def test_index_of_several_targets_names_the_per_target_tag(run_cli, images, tmp_path):
    host = tmp_path / "zen2.json"
    host.write_text(json.dumps(fingerprint(sysroot=SYSROOTS / "zen2-epyc7742").to_json()))
    data, stderr = edf_of(run_cli, images.refs["hello"], "--fingerprint", host)
    resolved = run_cli("resolve", images.refs["hello"], "--fingerprint", host, "--format", "pyxis")
    assert data["image"] == resolved.stdout.strip()  # pinned: the digest resolve chooses
    assert stderr == ""
    data, stderr = edf_of(run_cli, images.refs["hello"], "--fingerprint", host, "--by-tag")
    assert data["image"] == f"{images.registry}#host/hello:1.0-x86_64_v3"
    assert stderr == ""
    assert data["annotations"] == {}
    arm = tmp_path / "graviton.json"
    arm.write_text(json.dumps(fingerprint(sysroot=SYSROOTS / "graviton2-neoverse_n1").to_json()))
    data, stderr = edf_of(run_cli, images.refs["hello"], "--fingerprint", arm)
    assert "no image of" in stderr and "fits the given host" in stderr


def test_unknown_entrypoint_is_kept(run_cli, images):
    data, _ = edf_of(run_cli, images.refs["foreign"])
    assert data["entrypoint"] is True  # the environment may live only there
    forced, _ = edf_of(run_cli, images.refs["foreign"], "--no-entrypoint")
    assert forced["entrypoint"] is False


def test_image_names_in_enroot_form():
    assert image_name(parse_reference("ubuntu:24.04")) == "library/ubuntu:24.04"
    assert image_name(parse_reference("nvcr.io/nvidia/pytorch:24.01-py3")) == "nvcr.io#nvidia/pytorch:24.01-py3"
    assert image_name(parse_reference("ghcr.io/org/app")) == "ghcr.io#org/app:latest"


def test_hook_rules():
    mpich = {P + "mpi.implementation": "cray-mpich", P + "mpi.portability.mode": "mpich_replace"}
    assert flatten(hook_annotations(mpich)[0]) == {"com.hooks.cxi.enabled": "true"}
    assert hook_annotations({P + "mpi.implementation": "openmpi", P + "mpi.portability.mode": "mpi_replace"})[0] == {}
    cuda11 = {P + "hardware.gpu.nvidia.cuda.version": "11.8", P + "nccl.version": "2.16.5"}
    assert flatten(hook_annotations(cuda11, "seed-2024")[0]) == {"com.hooks.ofi_nccl.version": "cuda11"}
    cuda13 = {P + "hardware.gpu.nvidia.cuda.version": "13.0", P + "nccl.version": "2.27.3"}
    hooks, warnings = hook_annotations(cuda13)
    assert hooks == {} and "CUDA 13" in warnings[0]
    assert hook_annotations({P + "hardware.gpu.nvidia.cuda.version": "12.4"})[0] == {}  # no NCCL, no plugin


@pytest.mark.parametrize(("args", "words"), [
    (["--mount", "data:/data"], "expected SRC:DST"),
    (["--mount", "/a:/b:/c:/d"], "expected SRC:DST"),
    (["--env", "1X=2"], "expected NAME=VALUE"),
])
def test_bad_options(run_cli, images, args, words):
    result = run_cli("edf", images.refs["fit-zen3"], *args)
    assert result.returncode == 2 and words in result.stderr
    assert result.stderr.count("\n") == 1


def test_layouts_cannot_be_pulled_and_digests_only_pinned(run_cli, images, tmp_path):
    layout = run_cli("edf", f"oci:{tmp_path}:1.0")
    assert layout.returncode == 2 and "push the OCI layout first" in layout.stderr
    from hpcannotate.registry.client import RegistryClient

    with RegistryClient() as client:
        digest = client.get_manifest(images.refs["fit-zen3"]).digest
    by_digest = run_cli("edf", images.refs["fit-zen3"].replace(":1.0", "@" + digest))
    assert by_digest.returncode == 0, by_digest.stderr  # pinned to the chosen image (a child of that index)
    assert tomllib.loads(by_digest.stdout)["image"].startswith(f"{images.registry}#host/fit-zen3@sha256:")
    by_tag = run_cli("edf", images.refs["fit-zen3"].replace(":1.0", "@" + digest), "--by-tag")
    assert by_tag.returncode == 2 and "Enroot pulls by tag" in by_tag.stderr
