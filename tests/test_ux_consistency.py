"""User-reported inconsistencies: stale-label warnings, CPU verdicts, validate --json, probe of a missing image."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.host import Fingerprint, fingerprint
from hpcannotate.image.inspect import ImageView
from hpcannotate.image.probe.sources import BuildahSource, push_failure
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.values import same_value
from hpcannotate.verdict.match import assess

from .fixtures.hostimages import SYSROOTS

REPO = Path(__file__).resolve().parents[1]
SHELLS = P + "shell.implementation"


def cpu(target: str, mode: str = "genericMicro") -> dict[str, str]:
    return {P + "hardware.cpu.optimized.version": target, P + "hardware.cpu.optimized.mode": mode}


# -- 1. inspect: a comma list in another order is not a stale label -----------------------------------


def test_same_value_compares_comma_lists_as_sets_and_normalises_spellings():
    shells = catalogue()[SHELLS]
    assert same_value(shells, "bash,sh,dash", "bash,dash,sh")
    assert same_value(shells, "bash, sh", "sh,bash")
    assert not same_value(shells, "bash,sh", "bash,sh,dash")
    framework = catalogue()[P + "communication.framework"]
    assert same_value(framework, "libfabrics,ucx", "ucx,libfabric")  # an accepted spelling of an item
    mpi = catalogue()[P + "mpi.implementation"]
    assert not same_value(mpi, "mpich", "openmpi")


def test_reordered_comma_list_label_is_not_stale():
    image = ImageView("sha256:" + "0" * 64, "application/vnd.oci.image.manifest.v1+json", 1,
                      {SHELLS: "bash,dash,sh", P + "mpi.implementation": "openmpi"},
                      labels={SHELLS: "bash,sh,dash", P + "mpi.implementation": "mpich"})
    assert image.stale_labels() == {P + "mpi.implementation": ("mpich", "openmpi")}
    changed = ImageView("sha256:" + "1" * 64, "application/vnd.oci.image.manifest.v1+json", 1,
                        {SHELLS: "bash,sh"}, labels={"shell.implementation": "bash,sh,dash"})
    assert changed.stale_labels() == {"shell.implementation": ("bash,sh,dash", "bash,sh")}


# -- 2. match: one image-vs-host relation, one verdict --------------------------------------------------


@pytest.fixture(scope="module")
def spr() -> Fingerprint:
    return fingerprint(sysroot=SYSROOTS / "h100-sapphirerapids-ib")


def on(target: str) -> Fingerprint:
    return Fingerprint.from_json({"cpu": {"target": target}})


def test_narrower_vector_code_is_orange_even_for_a_direct_parent(spr):
    """x86_64_v3 (256-bit) on any AVX-512 host: orange whether archspec calls it a parent or not.

    The score is the tuning (a direct parent 0.95, another ancestor 0.90) times the lost vector width (0.70).
    """
    found = {host: assess(cpu("x86_64_v3"), fp) for host, fp in
             (("x86_64_v4", on("x86_64_v4")), ("icelake", on("icelake")), ("sapphirerapids", spr))}
    assert {host: (a.verdict, a.score) for host, a in found.items()} == {
        "x86_64_v4": ("orange", 66), "icelake": ("orange", 63), "sapphirerapids": ("orange", 63)}
    assert "without the host's 512-bit vector instructions" in found["x86_64_v4"].reasons[0].message
    # a microarchitecture and its AVX-512 child: as on the other AVX-512 hosts
    parent, other = assess(cpu("skylake", "microarchitecture"), on("skylake_avx512")), \
        assess(cpu("skylake", "microarchitecture"), on("cascadelake"))
    assert (parent.verdict, parent.score, other.verdict, other.score) == ("orange", 66, "orange", 63)


def test_direct_parent_with_vectors_as_wide_stays_green_95(spr):
    assert (assess(cpu("x86_64_v4"), on("skylake_avx512")).score, assess(cpu("icelake"), spr).score) == (95, 95)
    assert assess(cpu("x86_64_v3"), on("haswell")).score == 95
    assert assess(cpu("x86_64_v4"), on("zen4")).score == 95  # zen4 runs AVX-512 on 256-bit data paths
    assert assess(cpu("x86_64_v4"), spr).score == 90  # an ancestor further up, as wide


# -- 3. validate --json: unknown keys are not canonical annotations --------------------------------------


def test_validate_json_keeps_unknown_keys_apart_as_written(run_cli):
    r = run_cli("validate", REPO / "examples" / "broken.yaml", "--json")
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    assert P + "mpi.implmentation" not in data["annotations"]
    assert data["annotations"][P + "mpi.implementation"] == "openmpi"
    assert all(key in catalogue().specs for key in data["annotations"])
    assert data["unknown"] == {"mpi.implmentation": "openmpi"}
    error = next(e for e in data["errors"] if "unknown key" in e["message"])
    assert error["key"] == "mpi.implmentation" and error["value"] == "openmpi"
    text = run_cli("validate", REPO / "examples" / "broken.yaml")
    row = next(line for line in text.stdout.splitlines() if "unknown key" in line)
    assert row.split()[0] == "mpi.implmentation"


def test_validate_json_unknown_full_key_and_foreign_keys(run_cli, tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("hardware.cpu.optimized.version: x86_64\nhardware.cpu.optimized.mode: architecture\n"
                 "org.supercontainers.not.a.key: x\ncom.example.build: '42'\n")
    data = json.loads(run_cli("validate", f, "--json").stdout)
    assert data["unknown"] == {P + "not.a.key": "x"}
    assert data["annotations"]["com.example.build"] == "42"  # other tools' keys pass through
    assert P + "not.a.key" not in data["annotations"]
    ok = json.loads(run_cli("validate", REPO / "examples" / "metahub-gromacs-mpich.yaml", "--json").stdout)
    assert ok["compliant"] is True and ok["unknown"] == {}


# -- 4. probe containers-storage: a missing image in the user's terms -------------------------------------


BUILDAH_NOT_KNOWN = ('Error: pushing image "no/such:image" to "oci:/root/.cache/hpcannotate/scratch/'
                     'hpcannotate-probe-x/layout:probe": no/such:image: image not known')


def test_push_failure_names_a_missing_image_plainly():
    assert push_failure("no/such:image", BUILDAH_NOT_KNOWN + "\n") == (
        "containers-storage:no/such:image: no such image in buildah's store "
        "(--root/--runroot/--storage-driver say which store)")
    other = push_failure("Bad Name", 'Error: pushing image "Bad Name" to "oci:/x:probe": invalid reference format')
    assert other.startswith("containers-storage:Bad Name: buildah cannot read it from its store: Error: pushing")
    assert other.endswith("invalid reference format")


@pytest.fixture
def fake_buildah(tmp_path, monkeypatch):
    """A ``buildah`` on PATH that fails like buildah 1.28 does for an image its store does not hold."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "buildah"
    script.write_text(f"#!/bin/sh\necho '{BUILDAH_NOT_KNOWN}' >&2\nexit 125\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return bindir


def test_missing_image_in_buildahs_store(fake_buildah, tmp_path, run_cli):
    with pytest.raises(InputError) as raised:
        BuildahSource("no/such:image", "linux/amd64", None, tmp_path / "scratch")
    assert str(raised.value) == ("containers-storage:no/such:image: no such image in buildah's store "
                                 "(--root/--runroot/--storage-driver say which store)")
    assert not list((tmp_path / "scratch").iterdir())  # the temporary layout is removed
    r = run_cli("probe", "containers-storage:no/such:image", "--cache", tmp_path / "cache",
                env={"PATH": os.environ["PATH"]})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "hpcannotate: error: containers-storage:no/such:image: no such image in buildah's store "
        "(--root/--runroot/--storage-driver say which store)"]


def test_probe_help_names_an_image_the_store_can_hold(run_cli):
    r = run_cli("probe", "--help")
    assert r.returncode == 0
    assert "localhost/gromacs" not in r.stdout
    assert "containers-storage:docker.io/library/debian:bookworm" in r.stdout
