"""The exact commands each backend runs (each also runs for real: test_build_busybox.py for buildah,
test_buildx_real.py for buildx on a BuildKit daemon)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hpcannotate.build.builders import BuildOptions, select_builder
from hpcannotate.build.builders.buildah import BuildahBuilder
from hpcannotate.build.builders.buildx import BuildxBuilder, BuildxOptions
from hpcannotate.dockerfile.render import render_variant
from hpcannotate.errors import InputError
from hpcannotate.recipes.recipedir import load_recipe_dir

HELLO = Path(__file__).parent / "data" / "recipedirs" / "hello"


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return render_variant(load_recipe_dir(HELLO), None, "x86_64_v3", tmp_path_factory.mktemp("ctx") / "ctx")


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_buildah_argv_into_a_layout(context):
    options = BuildOptions(root=Path("/r"), runroot=Path("/rr"), storage_driver="vfs")
    argv = BuildahBuilder(options).build_argv(context, "oci:/out:1.0-x86_64_v3", "linux/amd64")
    assert argv[:7] == ["buildah", "--root", "/r", "--runroot", "/rr", "--storage-driver", "vfs"]
    assert argv[7:13] == ["bud", "--format", "oci", "--isolation", "chroot", "--pull=false"]
    assert "docker" not in pairs(argv, "--format")  # the docker format drops annotations
    assert pairs(argv, "--platform") == ["linux/amd64"]
    assert pairs(argv, "-f") == [str(context.dockerfile)]
    assert pairs(argv, "-t") == ["oci:/out:1.0-x86_64_v3"]  # committed straight into the layout
    assert "--tls-verify=false" not in argv
    annotations = pairs(argv, "--annotation")
    assert "org.supercontainers.hardware.cpu.optimized.version=x86_64_v3" in annotations
    assert any(a.startswith("org.supercontainers.docs.build.dockerfile=") for a in annotations)
    labels = pairs(argv, "--label")  # only what the Dockerfile cannot carry
    assert sorted(label.split("=", 1)[0] for label in labels) == sorted(context.argv_labels())
    assert argv[-1] == str(context.directory)


def test_buildah_argv_into_a_registry(context):
    builder = BuildahBuilder(BuildOptions(authfile=Path("/a/auth.json")))
    argv = builder.build_argv(context, "127.0.0.1:5000/hello:1.0-x86_64", "linux/amd64")
    assert pairs(argv, "-t") == ["docker://127.0.0.1:5000/hello:1.0-x86_64"]
    assert "--tls-verify=false" in argv  # loopback registries speak plain HTTP
    assert pairs(argv, "--authfile") == ["/a/auth.json"]
    remote = builder.build_argv(context, "registry.example.org/hpc/hello:1.0-x86_64", "linux/amd64")
    assert "--tls-verify=false" not in remote
    insecure = BuildahBuilder(BuildOptions(tls_verify=False)).build_argv(context, "reg.example.org/x:1", "linux/amd64")
    assert "--tls-verify=false" in insecure


def test_buildx_argv(context):
    options = BuildxOptions(builder="remote-bk", build_contexts={"debian:bookworm": "oci-layout:///cache/debian:bookworm"})
    argv = BuildxBuilder(options).build_argv(context, "reg.example.org/hello:1.0", "linux/arm64")
    assert argv[:5] == ["docker", "buildx", "build", "--builder", "remote-bk"]
    assert pairs(argv, "--platform") == ["linux/arm64"]
    assert "--provenance=false" in argv  # an attestation manifest would hide the image in an index
    annotations = pairs(argv, "--annotation")
    assert "manifest:org.supercontainers.hardware.cpu.optimized.version=x86_64_v3" in annotations
    assert all(a.startswith("manifest:") for a in annotations)
    assert pairs(argv, "--build-context") == ["debian:bookworm=oci-layout:///cache/debian:bookworm"]
    assert pairs(argv, "-t") == ["reg.example.org/hello:1.0"]
    assert pairs(argv, "--output") == ["type=registry"]
    assert argv[-1] == str(context.directory)
    oci = BuildxBuilder(BuildOptions()).build_argv(context, "oci:/out:1.0-x86_64_v3", "linux/amd64")
    assert pairs(oci, "--output") == [f"type=oci,dest={BuildxBuilder.tarball(context)}"]
    assert "--builder" not in oci and "-t" not in oci


def test_values_with_newlines_are_single_arguments(tmp_path):
    recipe = tmp_path / "app"
    shutil.copytree(HELLO, recipe)
    config = recipe / "hpcannotate.yaml"
    config.write_text(config.read_text().replace('description: "A', 'description: "two\\nlines $X \\"q\\" A'))
    ctx = render_variant(load_recipe_dir(recipe), None, "x86_64", tmp_path / "ctx")
    description = ctx.oci_annotations()["org.opencontainers.image.description"]
    assert "\n" in description
    argv = BuildahBuilder(BuildOptions()).build_argv(ctx, "oci:/out:x", "linux/amd64")
    assert f"org.opencontainers.image.description={description}" in pairs(argv, "--label")
    assert f"org.opencontainers.image.description={description}" in pairs(argv, "--annotation")


def test_backend_selection():
    with pytest.raises(InputError, match="unknown backend"):
        select_builder("kaniko", BuildOptions())
    if shutil.which("buildah"):
        assert select_builder("auto", BuildOptions()).name == "buildah"


def test_buildx_argv_for_a_loopback_registry_and_a_local_base(context):
    builder = BuildxBuilder(BuildxOptions(build_contexts={"busybox": "oci-layout:///cache/busybox@sha256:" + "a" * 64}))
    builder.base_digests["busybox"] = "sha256:" + "a" * 64
    argv = builder.build_argv(context, "127.0.0.1:5000/hello:1.0-x86_64_v3", "linux/amd64")
    assert pairs(argv, "--output") == ["type=registry,registry.insecure=true"]  # plain HTTP on loopback only
    assert f"manifest:org.opencontainers.image.base.digest=sha256:{'a' * 64}" in pairs(argv, "--annotation")
    assert pairs(argv, "--build-context") == [f"busybox=oci-layout:///cache/busybox@sha256:{'a' * 64}"]


@pytest.mark.parametrize(("ref", "name"), [
    ("busybox", "busybox"), ("busybox:latest", "busybox"), ("debian:bookworm", "debian:bookworm"),
    ("docker.io/library/debian:bookworm", "debian:bookworm"),
    ("spack/ubuntu-jammy:0.23.1", "spack/ubuntu-jammy:0.23.1"),
    ("reg.example.org:5000/hpc/base:1", "reg.example.org:5000/hpc/base:1"),
])
def test_build_context_names_are_what_buildkit_looks_up(ref, name):
    from hpcannotate.build.builders.buildx_bases import context_name

    assert context_name(ref) == name


def test_a_base_in_an_oci_layout_reaches_buildx_as_a_named_context(tmp_path, run_cli, busybox_base):
    layout = tmp_path / "bases"
    shutil.copytree(busybox_base, layout)
    digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    r = run_cli("build", HELLO, "--backend", "buildx", "--base", f"busybox=oci:{layout}:latest", "--dry-run",
                "--json", "--workdir", tmp_path / "work", "--target", "x86_64")
    assert r.returncode == 0, r.stderr
    (step,) = json.loads(r.stdout)["targets"]
    assert pairs(step["argv"], "--build-context") == [f"busybox=oci-layout://{layout}@{digest}"]
    assert f"manifest:org.opencontainers.image.base.digest={digest}" in pairs(step["argv"], "--annotation")
    assert "manifest:org.supercontainers.shell.implementation=sh,ash" in pairs(step["argv"], "--annotation")
    r = run_cli("build", HELLO, "--backend", "buildah", "--base", f"busybox=oci:{layout}", "--dry-run")
    assert r.returncode == 2 and "--base is for --backend buildx" in r.stderr
    r = run_cli("build", HELLO, "--backend", "buildx", "--base", f"busybox={layout}", "--dry-run")
    assert r.returncode == 2 and "expected REF=oci:PATH[:TAG]" in r.stderr
