"""``hpcannotate match``: verdicts, scores, reasons and ranking of real images for captured hosts.

The images are built with ``hpcannotate build`` (buildah, busybox) and pushed to a real registry;
the hosts are the captured sysroots of tests/data/sysroots (H100, A100 with an old driver,
Slingshot + MI250X, Zen 2 + InfiniBand, Graviton). The scoring rules are also checked directly
on annotation sets, for cases no small image covers (CUDA minor version compatibility, PTX).
"""

from __future__ import annotations

import json

import pytest

from hpcannotate.host import Fingerprint, fingerprint
from hpcannotate.verdict.match import assess, ptx_jits, sass_runs, simd_width

from .fixtures.hostimages import SYSROOTS, host_images, layer_reads, log_mark

P = "org.supercontainers."
SIGILL = "built for zen3; this host is zen2: zen3 instructions will raise SIGILL"


def cpu(target: str, mode: str = "microarchitecture", **more: str) -> dict[str, str]:
    values = {P + "hardware.cpu.optimized.version": target, P + "hardware.cpu.optimized.mode": mode}
    values.update({P + k.replace("__", "."): v for k, v in more.items()})
    return values


@pytest.fixture(scope="module")
def hosts() -> dict[str, Fingerprint]:
    return {d.name: fingerprint(sysroot=d) for d in sorted(SYSROOTS.iterdir()) if d.is_dir()}


@pytest.fixture(scope="module")
def images(buildah_store, busybox_base, registry, tmp_path_factory):
    return host_images(buildah_store, registry, tmp_path_factory.mktemp("hostimages"))


def match_json(run_cli, refs, host: str, *extra: str):
    result = run_cli("match", *refs, "--sysroot", SYSROOTS / host, "--json", *extra)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


# -- rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("image", "host", "runs"), [
    ("sm_80", "sm_80", True), ("sm_80", "sm_86", True), ("sm_86", "sm_80", False), ("sm_80", "sm_90", False),
    ("sm_90a", "sm_90", True), ("sm_90a", "sm_100", False), ("sm_100", "sm_103", True), ("sm_120", "sm_100", False),
])
def test_sass_runs_within_one_major_on_equal_or_newer_minor(image, host, runs):
    assert sass_runs(image, host) is runs


@pytest.mark.parametrize(("image", "host", "jits"), [
    ("compute_70", "sm_90", True), ("compute_90", "sm_80", False), ("compute_80", "sm_80", True),
    ("compute_90a", "sm_100", False), ("sm_70", "sm_90", False),
])
def test_ptx_jits_on_any_equal_or_newer_device(image, host, jits):
    assert ptx_jits(image, host) is jits


def test_much_newer_means_twice_the_vector_width():
    import archspec.cpu

    targets = archspec.cpu.TARGETS
    assert [simd_width(targets[n]) for n in ("x86_64", "x86_64_v2", "x86_64_v3", "x86_64_v4")] == [128, 128, 256, 512]
    assert simd_width(targets["zen4"]) == 256  # AVX-512 on 256-bit data paths
    assert simd_width(targets["neoverse_v1"]) == 256 and simd_width(targets["neoverse_n1"]) == 128


def test_cpu_verdicts_against_the_archspec_partial_order(hosts):
    zen2, spr = hosts["zen2-epyc7742"], hosts["h100-sapphirerapids-ib"]
    red = assess(cpu("zen3"), zen2)
    assert (red.verdict, red.score) == ("red", 0)
    assert red.reasons[0].message == SIGILL
    assert "zen2 lacks" in red.reasons[0].detail
    assert assess(cpu("zen2"), zen2).score == 100
    assert (assess(cpu("zen"), zen2).verdict, assess(cpu("zen"), zen2).score) == ("green", 95)  # closest ancestor
    assert assess(cpu("x86_64_v3", "genericMicro"), zen2).verdict == "green"
    orange = assess(cpu("x86_64", "architecture"), zen2)
    assert (orange.verdict, orange.score) == ("orange", 63)  # an ancestor (0.90) with half the vector width (0.70)
    assert orange.reasons[0].message.startswith("generic target x86_64 on a much newer host (zen2)")
    assert assess(cpu("x86_64", "architecture"), spr).score == 50  # 128-bit code on a 512-bit host: 0.90 x 0.55
    assert assess(cpu("icelake"), spr).score == 95
    family = assess(cpu("neoverse_n1"), zen2, {"os": "linux", "architecture": "arm64"})
    assert family.verdict == "red" and "cannot run here" in family.reasons[0].message


def test_missing_mandatory_annotations_are_unknown_and_named(hosts):
    found = assess({P + "mpi.implementation": "none"}, hosts["zen2-epyc7742"])
    assert (found.verdict, found.score) == ("unknown", 30)
    assert "hardware.cpu.optimized.mode, hardware.cpu.optimized.version" in found.reasons[0].message
    not_archspec = assess(cpu("zen-3"), hosts["zen2-epyc7742"])
    assert not_archspec.verdict == "unknown" and "did you mean zen3" in not_archspec.reasons[0].message
    # a red finding still wins over missing annotations
    assert assess({}, hosts["zen2-epyc7742"], {"os": "linux", "architecture": "arm64"}).verdict == "red"


def test_cuda_driver_rules(hosts):
    h100 = hosts["h100-sapphirerapids-ib"].to_json()
    h100["gpu"]["nvidia"].update(driver_version="535.104.05", cuda_version="12.2")
    h100["annotations"] = {}
    host = Fingerprint.from_json(h100)
    minor = assess(cpu("icelake", hardware__gpu__nvidia__cuda__version="12.4",
                       hardware__gpu__nvidia__architecture="sm_90"), host)
    assert minor.verdict == "orange" and "minor version compatibility" in minor.reasons[0].message
    ptx_only = assess(cpu("icelake", hardware__gpu__nvidia__cuda__version="12.4",
                          hardware__gpu__nvidia__architecture="compute_90"), host)
    assert ptx_only.verdict == "red" and "cannot JIT-compile" in ptx_only.reasons[0].message
    old = assess(cpu("cascadelake", hardware__gpu__nvidia__cuda__version="12.1",
                     hardware__gpu__nvidia__architecture="sm_80,compute_80"), hosts["a100-cascadelake-roce"])
    assert old.verdict == "red"
    assert old.reasons[0].message == ("needs CUDA 12.1; the host driver 470.82.01 supports CUDA up to 11.4: the CUDA "
                                      "runtime will refuse to start (driver too old)")
    jit = assess(cpu("cascadelake", hardware__gpu__nvidia__cuda__version="11.2",
                     hardware__gpu__nvidia__architecture="sm_70,compute_70"), hosts["a100-cascadelake-roce"])
    assert (jit.verdict, jit.score) == ("green", 90) and "JIT-compiled" in jit.reasons[-1].message
    no_gpu = assess(cpu("zen2", hardware__gpu__nvidia__cuda__version="12.4"), hosts["zen2-epyc7742"])
    assert (no_gpu.verdict, no_gpu.score) == ("orange", 50)
    amd = assess(cpu("zen3", hardware__gpu__amd__architecture="gfx908"), hosts["slingshot-zen3-mi250x"])
    assert amd.verdict == "red" and "this host's GPUs are gfx90a" in amd.reasons[0].message


def test_mpi_rules(hosts):
    slingshot = hosts["slingshot-zen3-mi250x"]
    fixed = assess(cpu("zen3", mpi__implementation="openmpi", mpi__version="4.1.5"), slingshot)
    assert fixed.verdict == "orange" and "cannot be replaced" in fixed.reasons[0].message
    assert "slingshot" in fixed.reasons[0].message
    mismatch = assess(cpu("zen3", mpi__implementation="openmpi", mpi__version="4.1.5",
                          mpi__portability__mode="mpi_replace"), slingshot)
    assert mismatch.verdict == "orange"
    assert "MPI ABI 40.0, the host's cray-mpich 8.1.26 has ABI 12.0" in mismatch.reasons[0].message
    fits = assess(cpu("zen3", mpi__implementation="mpich", mpi__version="4.1.2",
                      mpi__portability__mode="mpich_replace"), slingshot)
    assert fits.verdict == "green" and any("can be replaced by the host's cray-mpich" in r.message
                                           for r in fits.reasons)
    old_glibc = assess(cpu("zen3", mpi__implementation="mpich", mpi__version="4.1.2", glibc__version="2.28",
                           mpi__portability__mode="mpich_replace"), slingshot)
    assert old_glibc.verdict == "orange" and "glibc 2.31" in old_glibc.reasons[0].message
    # no fast interconnect: the image's own MPI is fine
    assert assess(cpu("neoverse_n1", mpi__implementation="openmpi"), hosts["graviton2-neoverse_n1"]).verdict == \
        "green"


# -- real images in a registry ------------------------------------------------------------------


@pytest.mark.parametrize(("host", "expected"), [
    ("zen2-epyc7742", [("x86_64_v3", "green", 90), ("x86_64", "orange", 63), (None, "unknown", 30)]),
    ("h100-sapphirerapids-ib", [("icelake", "green", 95), ("x86_64_v3", "orange", 63)]),
    ("slingshot-zen3-mi250x", [("x86_64_v3", "green", 90), ("zen3", "orange", 80)]),
    ("graviton2-neoverse_n1", [("neoverse_n1", "green", 100)]),
])
def test_ranks_real_images_best_first(run_cli, images, host, expected):
    refs = [images.refs[n] for n in ("hello", "fit-zen3", "fit-gpu", "fit-arm", "bare")]
    code, data = match_json(run_cli, refs, host)
    assert code == 0
    got = [(e["target"], e["verdict"], e["score"]) for e in data["ranking"]]
    assert got[: len(expected)] == expected
    assert [e["rank"] for e in data["ranking"]] == list(range(1, 7))
    scores = [e["score"] for e in data["ranking"]]
    assert scores == sorted(scores, reverse=True)
    best = data["ranking"][0]
    assert data["use"] == best["pull"] and "@sha256:" in best["pull"]
    assert (data["verdict"], data["score"], data["reasons"]) == (best["verdict"], best["score"], best["reasons"])
    assert {r["reference"] for r in data["references"]} == set(refs)


def test_the_zen3_image_on_zen2_says_why_in_words(run_cli, images):
    code, data = match_json(run_cli, [images.refs["fit-zen3"]], "zen2-epyc7742")
    assert code == 1  # nothing runs: exit 1
    entry = data["references"][0]["entries"][0]
    assert entry["verdict"] == "red" and entry["score"] == 0
    assert entry["reasons"][0]["message"] == SIGILL
    assert entry["reasons"][0]["check"] == "cpu"


def test_gpu_image_on_the_old_a100_driver_is_red_for_cuda_and_arch(run_cli, images):
    _, data = match_json(run_cli, [images.refs["fit-gpu"]], "a100-cascadelake-roce")
    messages = [r["message"] for r in data["reasons"]]
    assert data["verdict"] == "red"
    assert "needs NVIDIA driver >= 550.54.14; this host has 470.82.01" in messages
    assert any(m.startswith("needs CUDA 12.4; the host driver 470.82.01 supports CUDA up to 11.4") for m in messages)
    assert any("this host's GPUs are sm_80" in m for m in messages)
    assert any("MPI ABI 40.0, the host's mvapich2 2.3.7 has ABI 12.0" in m for m in messages)


def test_reading_never_touches_a_layer_and_stays_within_three_requests_per_entry(run_cli, images, registry):
    mark = log_mark(registry)
    refs = [images.refs[n] for n in ("hello", "fit-zen3", "fit-arm", "bare")]
    _, data = match_json(run_cli, refs, "zen2-epyc7742")
    for ref in data["references"]:
        assert 0 < ref["requests"] <= 3 * len(ref["entries"]), ref
    assert layer_reads(registry, images.layers, mark) == []


def test_fingerprint_file_and_the_kernel_minimum(run_cli, images, hosts, tmp_path):
    data = hosts["h100-sapphirerapids-ib"].to_json()
    data["os"]["kernel_release"] = "4.18.0-553.el8_10.x86_64"  # kernel_version follows the release
    data["os"]["kernel_version"] = "4.18.0"
    data["annotations"] = {}
    saved = tmp_path / "old-kernel.json"
    saved.write_text(json.dumps(data))
    result = run_cli("match", images.refs["fit-gpu"], "--fingerprint", saved, "--json")
    assert result.returncode == 1, result.stderr
    found = json.loads(result.stdout)
    assert found["verdict"] == "red"
    assert found["reasons"][0]["message"] == "needs host kernel >= 5.4; this host runs 4.18.0"


def test_app_filter(run_cli, images):
    refs = [images.refs[n] for n in ("hello", "fit-zen3", "fit-gpu")]
    _, data = match_json(run_cli, refs, "slingshot-zen3-mi250x", "--app", "fit")
    assert {e["app"] for e in data["ranking"]} == {"fit"}
    assert data["left_out"] == 2  # hello's two images
    none = run_cli("match", *refs, "--sysroot", SYSROOTS / "zen2-epyc7742", "--app", "gromacs")
    assert none.returncode == 2 and "'gromacs'" in none.stderr


def test_human_table_names_the_one_to_use(run_cli, images):
    result = run_cli("match", images.refs["hello"], "--sysroot", SYSROOTS / "zen2-epyc7742")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("host (") and "zen2" in lines[0] and "infiniband" in lines[0]
    assert any(line.startswith("1  green    90") for line in lines)
    assert any("generic target x86_64 on a much newer host (zen2)" in line for line in lines)
    assert lines[-1].startswith("use: " + images.refs["hello"].rsplit(":", 1)[0] + "@sha256:")
    assert "(green, score 90)" in lines[-1]


def test_unreadable_references(run_cli, images, registry):
    missing = f"{registry.host}/host/missing:1.0"
    result = run_cli("match", images.refs["hello"], missing, "--sysroot", SYSROOTS / "zen2-epyc7742", "--json")
    assert result.returncode == 0
    assert missing in result.stderr and "not found" in result.stderr
    assert json.loads(result.stdout)["errors"][0]["reference"] == missing
    alone = run_cli("match", missing, "--sysroot", SYSROOTS / "zen2-epyc7742")
    assert alone.returncode == 2
    assert alone.stderr.count("\n") == 1 and missing in alone.stderr


def test_this_machine(run_cli, images):
    import archspec.cpu

    result = run_cli("match", images.refs["hello"], "--json")
    assert result.returncode in (0, 1), result.stderr
    data = json.loads(result.stdout)
    assert data["host"]["target"] == archspec.cpu.host().name
    assert {e["target"] for e in data["ranking"]} == {"x86_64", "x86_64_v3"}
    assert all(e["verdict"] in ("green", "orange", "red") for e in data["ranking"])
