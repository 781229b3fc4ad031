"""The matcher against real machine data: archspec's own /proc/cpuinfo captures, a KVM guest whose
hypervisor masks flags, this machine's capture, and real nvidia-smi banners (R390 to R610).

What must hold on every host (issue 14): the recommended image is the fastest one that runs there, no
runnable image is red, and no image that cannot run is green or orange. "Runs" is decided independently
here, from the instruction sets: every feature of the image's archspec target that a compiler emits is
among the host's flags.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import archspec.cpu
import pytest

from hpcannotate.host import fingerprint
from hpcannotate.host.cpu import from_cpuinfo
from hpcannotate.host.gpu import banner_gpus, parse_banner
from hpcannotate.image.read import PlatformEntry
from hpcannotate.model.knowledge import cuda_min_drivers, gpu_capabilities, not_emitted, oci_names, policy
from hpcannotate.model.versions import version_key
from hpcannotate.verdict.match import assess, rank_entries

DATA = Path(__file__).parent / "data"
CPUINFO = DATA / "cpuinfo"
SYSROOTS = DATA / "sysroots"
NVIDIA_SMI = DATA / "nvidia-smi"
P = "org.supercontainers."
TARGETS = archspec.cpu.TARGETS
# archspec's file names say the target its tests expect; where we read a capture differently, why:
EXPECTED = {
    "linux-rhel8-power9": "power9le",  # RHEL 8 runs only ppc64le; archspec's test forces ppc64
    "linux-unknown-power10": "power10le",  # the same: no hint, POWER8+ is taken as little-endian
    "linux-nutanix-kvm-skylake_avx512-masked": "x86_64_v4",  # archspec's strict name (clwb, pku masked)
}
ZEN2 = SYSROOTS / "zen2-epyc7742"


def image(target: str, **more: str) -> dict[str, str]:
    from hpcannotate.model.targets import mode_for_target

    values = {P + "hardware.cpu.optimized.version": target, P + "hardware.cpu.optimized.mode": mode_for_target(target)}
    values.update({P + k.replace("__", "."): v for k, v in more.items()})
    return values


def host_from(capture: Path):
    """The zen2 sysroot's node with the CPU of ``capture`` (a /proc/cpuinfo of a real machine)."""
    cpu = from_cpuinfo(capture.read_text(), str(capture))
    return dataclasses.replace(fingerprint(sysroot=ZEN2), cpu=cpu)


def entry(target: str, n: int = 0, platform: dict | None = None, **more: str) -> PlatformEntry:
    from hpcannotate.model.annotations import Annotations

    return PlatformEntry(f"reg.example/app:{target}", f"reg.example/app@sha256:{n:064x}", f"sha256:{n:064x}",
                         platform, Annotations.from_mapping(image(target, **more)))


def runs_by_features(target, host_cpu) -> bool:
    """Independent of match: the compiler-emitted features of ``target`` are all among the host's flags."""
    flags = set(host_cpu.features) | ({"sse3"} if "pni" in host_cpu.features else set())
    return set(target.features) - not_emitted(target.family.name) <= flags


CAPTURES = sorted(p for p in CPUINFO.iterdir() if p.is_file() and p.name != "README.md")


@pytest.mark.parametrize("capture", CAPTURES, ids=[p.name for p in CAPTURES])
def test_every_real_capture_is_read_as_archspec_reads_it(capture):
    expected = EXPECTED.get(capture.name, capture.name.split("-", 2)[2])
    assert from_cpuinfo(capture.read_text(), str(capture)).target == expected


FEATURE_CAPTURES = [p for p in CAPTURES if TARGETS[EXPECTED.get(p.name, p.name.split("-", 2)[2])].family.name
                    in ("x86_64", "aarch64")]


@pytest.mark.parametrize("capture", FEATURE_CAPTURES, ids=[p.name for p in FEATURE_CAPTURES])
def test_on_every_host_red_means_a_missing_instruction_set_and_the_fastest_runnable_image_wins(capture):
    host = host_from(capture)
    family = TARGETS[host.cpu.target].family.name
    candidates = sorted(n for n, t in TARGETS.items() if t.family.name == family)
    entries = [entry(name, n) for n, name in enumerate(candidates)]
    ranking = rank_entries(entries, host)
    for found in ranking:
        runs = runs_by_features(TARGETS[found.target], host.cpu)
        assert (found.verdict != "red") is runs, (found.target, found.verdict, [r.message for r in found.reasons])
        if not runs:
            assert "SIGILL" in found.reasons[0].message
    best = ranking[0]
    assert best.verdict == "green" and best.score == 100, [(m.target, m.score) for m in ranking[:3]]
    # the winner is the host's own target (for a masked VM: the one it really is), never a generic level
    # when a named target of the host runs
    strict = TARGETS[host.cpu.target]
    assert TARGETS[best.target] == strict or strict in TARGETS[best.target].ancestors
    # and the ranking does not depend on the order of the arguments
    assert [m.target for m in rank_entries(list(reversed(entries)), host)] == [m.target for m in ranking]


def test_a_kvm_guest_that_hides_pku_and_clwb_runs_skylake_avx512_code_natively():
    # Intel Xeon Gold 5120 (Skylake-SP) under Nutanix KVM: the guest sees no clwb and no pku, so archspec
    # names it x86_64_v4. Every instruction set skylake_avx512 code uses is there.
    host = host_from(CPUINFO / "linux-nutanix-kvm-skylake_avx512-masked")
    assert host.cpu.target == "x86_64_v4"
    found = assess(image("skylake_avx512"), host)
    assert (found.verdict, found.score) == ("green", 100)
    assert "hides features no compiler emits" in found.reasons[0].message
    haswell = assess(image("haswell"), host)
    assert haswell.verdict == "orange" and "512-bit" in haswell.reasons[0].message  # runs, half the width
    zen2 = assess(image("zen2"), host)  # an AMD target on Intel: tuned for another vendor, not SIGILL
    assert zen2.verdict == "orange" and any("another vendor" in r.message for r in zen2.reasons)
    icelake = assess(image("icelake"), host)
    assert icelake.verdict == "red" and "avx512_vnni" in icelake.reasons[0].detail


def test_another_vendor_alone_is_orange_never_red():
    zen4 = host_from(CPUINFO / "linux-rocky8.5-zen4")
    for target in ("haswell", "broadwell", "skylake_avx512", "icelake"):
        found = assess(image(target), zen4)
        assert found.verdict == "orange", (target, [r.message for r in found.reasons])
        assert any(r.check == "cpu" and "another vendor" in r.message for r in found.reasons)
    assert assess(image("sapphirerapids"), zen4).verdict == "red"  # amx_tile, avx512_fp16...: not on Zen 4


def test_big_endian_power7_runs_no_little_endian_image():
    power7 = host_from(CPUINFO / "bgq-rhel6-power7")
    assert (power7.cpu.target, power7.cpu.family) == ("power7", "ppc64")
    le = assess(image("power8le"), power7, {"os": "linux", "architecture": "ppc64le"})
    assert le.verdict == "red" and "big-endian" in le.reasons[0].detail
    assert assess(image("ppc64le"), power7).verdict == "red"  # the target's family alone says it too
    be = assess(image("power7"), power7, {"os": "linux", "architecture": "ppc64"})
    assert (be.verdict, be.score) == ("green", 100)
    hinted = from_cpuinfo((CPUINFO / "linux-centos7-power8le").read_text(), arch_hint="ppc64")
    assert hinted.family == "ppc64"  # uname -m decides where it is known


def test_spacemit_x60_is_recognised_by_its_model_name():
    for name in ("linux-debian13-x60", "linux-spacemit-x60"):  # without and with a uarch line
        assert from_cpuinfo((CPUINFO / name).read_text()).target == "x60"
    host = host_from(CPUINFO / "linux-debian13-x60")
    assert assess(image("x60"), host, {"os": "linux", "architecture": "riscv64"}).score == 100
    assert assess(image("u74mc"), host).verdict == "red"


def test_issue_example_native_target_wins_when_every_image_loses_the_same_to_mpi():
    # Open MPI without mpi.portability.mode on a host with InfiniBand: every image loses the same to MPI;
    # the zen3 image must still beat the x86_64 one on a zen3 node, whatever the order given.
    zen3 = host_from(CPUINFO / "linux-ubuntu20.04-zen3")
    assert zen3.interconnect.fast
    mpi = {"mpi__implementation": "openmpi", "mpi__version": "4.1.5"}
    entries = [entry("x86_64", 1, **mpi), entry("x86_64_v3", 2, **mpi), entry("zen3", 3, **mpi),
               entry("zen2", 4, **mpi)]
    for order in (entries, list(reversed(entries))):
        ranking = rank_entries(order, zen3)
        assert [m.target for m in ranking] == ["zen3", "zen2", "x86_64_v3", "x86_64"]
        assert [m.verdict for m in ranking] == ["orange"] * 4
        assert ranking[0].score == 60  # 1.00 (native) x 0.60 (MPI likely over TCP)


def test_ties_break_deterministically_by_reference_then_digest():
    zen2 = fingerprint(sysroot=ZEN2)
    same = [entry("zen2", 7), entry("zen2", 3)]
    first = rank_entries(same, zen2)
    assert [m.entry.digest for m in first] == sorted(e.digest for e in same)
    assert [m.entry.digest for m in rank_entries(list(reversed(same)), zen2)] == [m.entry.digest for m in first]


def test_score_is_the_product_of_the_policy_factors():
    zen2 = fingerprint(sysroot=ZEN2)
    found = assess(image("x86_64", hardware__gpu__nvidia__cuda__version="12.4"), zen2)
    factors = policy().factors
    expected = factors["cpu"]["ancestor"] * factors["cpu"]["width_2x"] * factors["gpu"]["no_gpu"]
    assert found.factor == pytest.approx(expected)
    assert found.score == round(expected * 100) and found.verdict == "orange"


# -- GPUs: real nvidia-smi outputs ------------------------------------------------------------------


def gpu_sysroot(tmp_path: Path, banner: str) -> Path:
    root = tmp_path / banner
    shutil.copytree(ZEN2, root)
    (root / "commands" / "nvidia-smi.txt").write_text((NVIDIA_SMI / banner).read_text())
    return root


@pytest.mark.parametrize(("banner", "driver", "cuda", "source", "archs", "count"), [
    ("r610-b200.txt", "610.43.02", "13.3", "nvidia-smi", ["sm_100"], 2),
    ("r610-rtx3080-laptop.txt", "610.43.03", "13.3", "nvidia-smi", ["sm_86"], 1),
    ("r610-rtx5070-laptop.txt", "610.43.02", "13.3", "nvidia-smi", [], 1),  # not in the table: unknown, not guessed
    ("r390-v100x8.txt", "390.46", "9.1", "driver table", ["sm_70"], 8),  # R390 banners print no CUDA version
])
def test_a_banner_alone_names_driver_cuda_and_gpus(tmp_path, banner, driver, cuda, source, archs, count):
    fp = fingerprint(sysroot=gpu_sysroot(tmp_path, banner))
    nvidia = fp.gpu.nvidia
    assert (nvidia.driver_version, nvidia.cuda_version, nvidia.cuda_version_source) == (driver, cuda, source)
    assert nvidia.architectures == archs and len(nvidia.devices) == count


def test_r610_banner_spelling():
    text = (NVIDIA_SMI / "r610-b200.txt").read_text()
    assert parse_banner(text) == ("610.43.02", "13.3")
    assert banner_gpus(text) == [(0, "NVIDIA B200"), (1, "NVIDIA B200")]


@pytest.mark.parametrize(("name", "capability"), [
    ("Tesla PG500-216", "7.0"), ("TITAN V", "7.0"), ("NVIDIA GeForce RTX 3090", "8.6"),
    ("NVIDIA GeForce RTX 4070", "8.9"), ("NVIDIA RTX 5880 Ada Generation", "8.9"), ("NVIDIA A10G", "8.6"),
    ("Quadro RTX 8000", "7.5"), ("NVIDIA A10", "8.6"), ("Tesla V100S-PCIE-32GB", "7.0"),
])
def test_gpu_names_the_issue_lists(name, capability):
    from hpcannotate.host.gpu import capability_for_product

    assert capability_for_product(name) == capability


# -- knowledge as data --------------------------------------------------------------------------------


def test_data_files_are_consistent():
    rows = cuda_min_drivers()
    assert [version_key(c) for c, _ in rows] == sorted((version_key(c) for c, _ in rows), reverse=True)
    assert [version_key(d) for _, d in rows] == sorted((version_key(d) for _, d in rows), reverse=True)
    assert rows[0][0] == "13.3" and rows[-1] == ("9.0", "384.81")
    names = [n for n, _ in gpu_capabilities()]
    for n, name in enumerate(names):  # a shorter name never shadows a longer one listed after it
        assert not any(name in later.split() or later.startswith(name + " ") for later in names[n + 1:]), name
    assert oci_names()["x86_64"] == "amd64" and oci_names()["ppc64"] == "ppc64" and oci_names()["i686"] == "386"
    assert {"pku", "flush_l1d"} <= not_emitted("x86_64")
    rules = policy()
    assert rules.red_at_most < rules.orange_from < rules.green_from <= 100


def test_host_side_imports_no_recipe_adapter():
    import subprocess
    import sys

    code = ("import sys; import hpcannotate.verdict.match, hpcannotate.host, hpcannotate.host.gpu, "
            "hpcannotate.host.software, hpcannotate.verdict.cpu; "
            "print([m for m in sys.modules if m.startswith('hpcannotate.recipes.adapters')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- capture ------------------------------------------------------------------------------------------


def test_capture_of_this_node_reads_back_the_same(tmp_path, run_cli):
    import json

    result = run_cli("fingerprint", "capture", tmp_path / "node", "--json")
    assert result.returncode == 0, result.stderr
    captured = json.loads(result.stdout)
    assert "/proc/cpuinfo" in captured["files"] and (tmp_path / "node" / "proc" / "cpuinfo").is_file()
    # capture itself refuses a capture that does not read back as this node; read it back once more here
    again = fingerprint(sysroot=tmp_path / "node")
    assert again.annotations == captured["fingerprint"]["annotations"]
    assert again.cpu.target == archspec.cpu.host().name
    busy = run_cli("fingerprint", "capture", tmp_path / "node")
    assert busy.returncode == 2 and "not empty" in busy.stderr and busy.stderr.count("\n") == 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    refused = run_cli("fingerprint", "capture", tmp_path / "other", "--force")  # --force replaces only a capture
    assert refused.returncode == 2 and (tmp_path / "other" / "notes.txt").exists()
