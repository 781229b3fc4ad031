"""The product's main job, for real: `hpcannotate build recipes/gromacs` (debian variant) with buildah
on a debootstrap-made Debian bookworm base, pushed to a real registry, read back over HTTP, and run.

Slow (a real apt-get install of GROMACS and Open MPI): marked `slow`, which CI runs too.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import pytest

from hpcannotate.build.pipeline import build
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.oci.media import ALL_MANIFEST_TYPES, OCI_INDEX

from .test_build_busybox import image_config, run_in_image

GROMACS = Path(__file__).resolve().parents[1] / "recipes" / "gromacs"
pytestmark = pytest.mark.slow


def http_json(url: str) -> dict:
    request = urllib.request.Request(url, headers={"Accept": ", ".join(ALL_MANIFEST_TYPES)})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def gromacs_build(buildah_store, debian_base, registry, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("gromacs")
    ref = f"{registry.host}/hpc/gromacs:2022.5"
    report = build(GROMACS, workdir=workdir, options=buildah_store.options, backend="buildah", push=ref)
    # the same build into an OCI layout, to run it from there
    layout_report = build(GROMACS, workdir=workdir, options=buildah_store.options, backend="buildah")
    return report, layout_report, workdir / "gromacs" / "oci", registry


def test_annotations_in_the_registry(gromacs_build):
    report, _, _, registry = gromacs_build
    index = http_json(f"{registry.url}/v2/hpc/gromacs/manifests/2022.5")
    assert index["mediaType"] == OCI_INDEX
    (desc,) = index["manifests"]
    assert desc["platform"]["architecture"] == "amd64"
    assert desc["annotations"][P + "hardware.cpu.optimized.version"] == "x86_64_v2"
    manifest = http_json(f"{registry.url}/v2/hpc/gromacs/manifests/{desc['digest']}")
    got = manifest["annotations"]
    for key, value in report.targets[0].annotations.items():
        if key != "org.opencontainers.image.ref.name":
            assert got[key] == value, key
    assert got[P + "hardware.cpu.optimized.mode"] == "genericMicro"
    assert got[P + "mpi.implementation"] == "openmpi"
    assert got[P + "mpi.abi.version"] == "40.0"
    dockerfile = base64.b64decode(got[P + "docs.build.dockerfile"]).decode()
    assert "apt-get install" in dockerfile and "gromacs" in dockerfile
    assert base64.b64decode(got[P + "docs.quickstart.base64"]).decode().startswith("#")


def _tag(layout_report) -> str:
    return layout_report.targets[0].reference.rsplit(":", 1)[1]


def test_gmx_version_with_and_without_entrypoint(gromacs_build, buildah_store):
    _, layout_report, layout, _ = gromacs_build
    tag = _tag(layout_report)
    plain = run_in_image(buildah_store, layout, tag, ["gmx", "--version"])
    assert plain.returncode == 0, plain.stderr
    assert "SIMD instructions:" in plain.stdout and "SSE4.1" in plain.stdout
    entry = run_in_image(buildah_store, layout, tag, ["/usr/local/bin/hpcannotate-entrypoint", "gmx", "--version"])
    assert entry.returncode == 0, entry.stderr
    assert "SSE4.1" in entry.stdout


def test_gmx_mpi_links_open_mpi(gromacs_build, buildah_store):
    _, layout_report, layout, _ = gromacs_build
    ldd = run_in_image(buildah_store, layout, _tag(layout_report), ["sh", "-c", "ldd $(command -v gmx_mpi)"])
    assert ldd.returncode == 0, ldd.stderr
    assert "libmpi.so.40" in ldd.stdout


def test_no_argument_start_is_a_login_shell(gromacs_build, buildah_store):
    _, layout_report, layout, _ = gromacs_build
    tag = _tag(layout_report)
    config = image_config(layout, tag)["config"]
    assert config["Cmd"] == ["/bin/bash", "-l"]
    shell = run_in_image(buildah_store, layout, tag, config["Entrypoint"] + config["Cmd"],
                         stdin='echo "shell=$0"; command -v gmx; echo "path=$PATH"\n')
    assert shell.returncode == 0, shell.stderr
    assert "shell=" in shell.stdout and "bash" in shell.stdout
    assert "/usr/bin/gmx" in shell.stdout


def test_the_layout_is_tagged_with_the_debian_version(gromacs_build):
    """No top-level version in recipes/gromacs: the tags come from the variant's app.version (2022.5), as
    `inspect oci:build/gromacs/oci:2022.5` in the README and --help expects; the pushed REF keeps its own."""
    report, layout_report, layout, _ = gromacs_build
    assert _tag(layout_report) == "2022.5-x86_64_v2"
    assert layout_report.reference.endswith(":2022.5")
    assert report.targets[0].reference.endswith("/hpc/gromacs:2022.5-x86_64_v2")
    tags = {m["annotations"]["org.opencontainers.image.ref.name"]
            for m in json.loads((layout / "index.json").read_text())["manifests"]}
    assert {"2022.5", "2022.5-x86_64_v2"} <= tags and "latest" not in tags
