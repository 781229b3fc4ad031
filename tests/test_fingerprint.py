"""Host fingerprint: captured nodes (tests/data/sysroots) and this machine for real."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import archspec.cpu
import pytest

from hpcannotate.errors import InputError
from hpcannotate.host import Fingerprint, fingerprint
from hpcannotate.host import commands as cmd
from hpcannotate.host.commands import CapturedRunner, capture_name
from hpcannotate.host.cpu import from_cpuinfo
from hpcannotate.host.gpu import capability_for_product, cuda_for_driver, gfx_name
from hpcannotate.host.interconnect import parse_fi_providers, parse_ucx_version
from hpcannotate.host.software import parse_mpichversion, parse_mpirun
from hpcannotate.host.system import kernel_version, parse_ldd
from hpcannotate.model.annotations import Annotations

SYSROOTS = Path(__file__).parent / "data" / "sysroots"
H100 = SYSROOTS / "h100-sapphirerapids-ib"
A100 = SYSROOTS / "a100-cascadelake-roce"
SLINGSHOT = SYSROOTS / "slingshot-zen3-mi250x"
ZEN2 = SYSROOTS / "zen2-epyc7742"
GRAVITON = SYSROOTS / "graviton2-neoverse_n1"
ALL = [H100, A100, SLINGSHOT, ZEN2, GRAVITON]
P = "org.supercontainers."


def without(*missing: tuple[str, ...], root: Path):
    """The sysroot's captured commands, except ``missing`` (as if not installed)."""
    captured = CapturedRunner(root / "commands")

    def run(argv):
        return (cmd.NOT_FOUND, "") if tuple(argv) in missing else captured(argv)

    return run


# ---------------------------------------------------------------- CPU
@pytest.mark.parametrize(
    ("root", "target", "generic", "family", "vendor"),
    [
        (H100, "sapphirerapids", "x86_64_v4", "x86_64", "GenuineIntel"),
        (A100, "cascadelake", "x86_64_v4", "x86_64", "GenuineIntel"),
        (SLINGSHOT, "zen3", "x86_64_v3", "x86_64", "AuthenticAMD"),
        (ZEN2, "zen2", "x86_64_v3", "x86_64", "AuthenticAMD"),
        (GRAVITON, "neoverse_n1", "armv8.2a", "aarch64", "ARM"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_cpu_target_from_captured_cpuinfo(root, target, generic, family, vendor):
    cpu = fingerprint(root).cpu
    assert (cpu.target, cpu.generic, cpu.family, cpu.vendor) == (target, generic, family, vendor)
    assert cpu.mode == "microarchitecture"
    assert cpu.source.endswith("proc/cpuinfo")
    assert cpu.features and cpu.features == sorted(cpu.features)


ARCHSPEC_ON_FILE = """
import builtins, sys
import archspec.cpu.detect as detect
path, machine = sys.argv[1], sys.argv[2]
detect.open = lambda *args, **kwargs: builtins.open(path)  # archspec's own parser reads the captured file
detect._machine = lambda: machine
print(detect.host().name)
"""


@pytest.mark.parametrize("root", ALL, ids=lambda p: p.name)
def test_sysroot_decision_equals_archspec_itself(root):
    # Cross-check in a throwaway process: archspec, pointed at the captured cpuinfo, picks the same target.
    cpu = fingerprint(root).cpu
    proc = subprocess.run([sys.executable, "-c", ARCHSPEC_ON_FILE, str(root / "proc" / "cpuinfo"), cpu.family],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == cpu.target


def test_zen2_flags_lack_what_zen3_needs():
    # The reason a zen3 image dies on this node: zen3 requires features zen2 does not have.
    cpu = fingerprint(ZEN2).cpu
    missing = archspec.cpu.TARGETS["zen3"].features - set(cpu.features)
    assert {"vaes", "vpclmulqdq"} <= missing
    assert archspec.cpu.TARGETS["zen2"] <= archspec.cpu.TARGETS["zen3"]


def test_sysroot_without_cpuinfo_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match=r"proc/cpuinfo: no such file"):
        fingerprint(tmp_path)
    with pytest.raises(InputError, match="not a directory"):
        fingerprint(tmp_path / "absent")


# ---------------------------------------------------------------- GPU
def test_h100_node_gpus_from_nvidia_smi():
    nvidia = fingerprint(H100).gpu.nvidia
    assert nvidia.driver_version == "550.54.15"
    assert (nvidia.cuda_version, nvidia.cuda_version_source) == ("12.4", "nvidia-smi")
    assert len(nvidia.devices) == 8
    assert {d.compute_capability for d in nvidia.devices} == {"9.0"}
    assert nvidia.architectures == ["sm_90"]
    assert nvidia.source == "nvidia-smi --query-gpu"


def test_a100_old_driver_refuses_compute_cap_and_the_name_gives_it():
    nvidia = fingerprint(A100).gpu.nvidia
    assert nvidia.driver_version == "470.82.01"
    assert nvidia.cuda_version == "11.4"
    assert [d.name for d in nvidia.devices] == ["NVIDIA A100-SXM4-40GB"] * 4
    assert nvidia.architectures == ["sm_80"]


def test_without_nvidia_smi_the_proc_files_and_driver_table_answer():
    runner = without(cmd.NVIDIA_SMI, cmd.NVIDIA_SMI_QUERY, cmd.NVIDIA_SMI_QUERY_NO_CC, root=A100)
    nvidia = fingerprint(A100, run=runner).gpu.nvidia
    assert nvidia.source == "/proc/driver/nvidia"
    assert nvidia.driver_version == "470.82.01"
    assert (nvidia.cuda_version, nvidia.cuda_version_source) == ("11.4", "driver table")
    assert nvidia.architectures == ["sm_80"]
    h100 = fingerprint(H100, run=without(cmd.NVIDIA_SMI, cmd.NVIDIA_SMI_QUERY, root=H100)).gpu.nvidia
    assert (h100.driver_version, h100.cuda_version, h100.architectures) == ("550.54.15", "12.4", ["sm_90"])


def test_amd_gpus_from_kfd_topology():
    gpu = fingerprint(SLINGSHOT).gpu
    assert gpu.nvidia is None
    assert gpu.amd.architectures == ["gfx90a"]
    assert [d.node for d in gpu.amd.devices] == list(range(1, 9))  # node 0 is the CPU


@pytest.mark.parametrize("root", [ZEN2, GRAVITON], ids=lambda p: p.name)
def test_no_gpu_is_null(root):
    fp = fingerprint(root)
    assert fp.gpu is None and fp.to_json()["gpu"] is None
    assert not any(k.startswith(P + "hardware.gpu") for k in fp.annotations)


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [("550.54.15", "12.4"), ("550.54.14", "12.4"), ("545.23.08", "12.3"), ("535.104.05", "12.2"),
     ("470.82.01", "11.4"), ("470.42.01", "11.4"), ("465.19.01", "11.3"), ("418.39", "10.1"),
     ("580.65.06", "13.0"), ("590.48.01", "13.1"), ("595.45.04", "13.2"), ("610.43.02", "13.3"),
     ("400.0", "9.2"), ("390.46", "9.1"), ("384.81", "9.0"), ("384.0", None)],
)
def test_cuda_for_driver(driver, cuda):
    assert cuda_for_driver(driver) == cuda


def test_product_names_do_not_shadow_each_other():
    assert capability_for_product("NVIDIA A10") == "8.6"
    assert capability_for_product("NVIDIA A100-SXM4-80GB") == "8.0"
    assert capability_for_product("NVIDIA H20") == "9.0"
    assert capability_for_product("NVIDIA H200") == "9.0"
    assert capability_for_product("Tesla V100-SXM2-32GB") == "7.0"
    assert capability_for_product("NVIDIA GeForce GTX 1080") is None


@pytest.mark.parametrize(("value", "name"), [(90010, "gfx90a"), (90402, "gfx942"), (90008, "gfx908"),
                                             (110000, "gfx1100"), (100300, "gfx1030")])
def test_gfx_name(value, name):
    assert gfx_name(value) == name


# ---------------------------------------------------------------- interconnect
def test_infiniband_and_roce_devices():
    net = fingerprint(H100).interconnect
    assert [d.name for d in net.rdma] == [f"mlx5_{i}" for i in range(5)]
    assert net.kinds == ["infiniband", "roce"]
    assert net.rdma[0].ports[0].rate == "400 Gb/sec (4X NDR)"
    assert net.rdma[0].ports[0].state == "ACTIVE"
    assert net.rdma[4].kind == "roce" and net.rdma[4].ports[0].link_layer == "Ethernet"
    assert net.fast and net.frameworks == ["ucx", "verbs"]
    assert net.ucx.version == "1.15.0"
    assert fingerprint(A100).interconnect.kinds == ["roce"]


def test_slingshot_cxi_and_libfabric():
    net = fingerprint(SLINGSHOT).interconnect
    assert net.cxi == ["cxi0", "cxi1", "cxi2", "cxi3"]
    assert net.kinds == ["slingshot"] and net.fast
    assert net.libfabric.version == "1.15.2.0" and net.libfabric.api == "1.15"
    assert "cxi" in net.libfabric.providers
    assert net.frameworks == ["libfabric"]


def test_cray_libfabric_found_without_fi_info_on_path():
    runner = without(cmd.FI_INFO_PROVIDERS, cmd.FI_INFO_VERSION, root=SLINGSHOT)
    fabric = fingerprint(SLINGSHOT, run=runner).interconnect.libfabric
    assert fabric.version == "1.15.2.0"
    assert fabric.source == "/opt/cray/libfabric/1.15.2.0"


def test_no_fast_network():
    net = fingerprint(GRAVITON).interconnect
    assert (net.rdma, net.cxi, net.kinds, net.fast, net.frameworks) == ([], [], [], False, [])


def test_fabric_output_parsers():
    assert parse_fi_providers("cxi:\n\tversion: 0.1\ntcp;ofi_rxm:\n    version: 116.0\n") == ["cxi", "tcp;ofi_rxm"]
    assert parse_ucx_version("# UCT version=1.9.0 revision 1d0a420\n") == "1.9.0"
    assert parse_ucx_version("# Library version: 1.16.0\n") == "1.16.0"


# ---------------------------------------------------------------- OS
@pytest.mark.parametrize(
    ("root", "release", "version", "glibc", "where"),
    [
        (H100, "5.15.0-105-generic", "5.15.0", "2.35", "ldd --version"),
        (A100, "4.18.0-372.9.1.el8.x86_64", "4.18.0", "2.28", "/lib64/libc-2.28.so"),
        (SLINGSHOT, "5.14.21-150400.24.46_13.0.78-cray_shasta_c", "5.14.21", "2.31", "ldd --version"),
        (ZEN2, "5.15.0-91-generic", "5.15.0", "2.35", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
        (GRAVITON, "6.1.72-96.166.amzn2023.aarch64", "6.1.72", "2.34", "ldd --version"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_kernel_and_glibc(root, release, version, glibc, where):
    osi = fingerprint(root).os
    assert (osi.kernel_release, osi.kernel_version) == (release, version)
    assert (osi.libc, osi.libc_version, osi.libc_source) == ("glibc", glibc, where)


def test_user_namespaces():
    h100 = fingerprint(H100)
    assert h100.os.user_namespaces.enabled and h100.os.user_namespaces.unprivileged_userns_clone == 1
    assert h100.annotations[P + "host.kernel.modules.expectation"] == "user-namespaces,overlay,squashfs,fuse"
    a100 = fingerprint(A100)  # max_user_namespaces = 0: the site turned them off
    assert a100.os.user_namespaces.enabled is False
    assert a100.annotations[P + "host.kernel.modules.expectation"] == "overlay,squashfs,fuse"


def test_ldd_parser():
    assert parse_ldd("musl libc (x86_64)\nVersion 1.2.4\nDynamic Program Loader\n") == ("musl", "1.2.4")
    assert parse_ldd("ldd (GNU libc) 2.28\nCopyright (C) 2018\n") == ("glibc", "2.28")
    assert parse_ldd("") is None
    assert kernel_version("6.8.0-1015-nvidia-64k") == "6.8.0"


# ---------------------------------------------------------------- software
@pytest.mark.parametrize(
    ("root", "implementation", "version", "abi"),
    [
        (H100, "openmpi", "4.1.5rc2", "40.0"),
        (A100, "mvapich2", "2.3.7", "12.0"),  # Hydra's mpirun; mpichversion tells MVAPICH2
        (SLINGSHOT, "cray-mpich", "8.1.26", "12.0"),  # the site's default, not the newest
        (ZEN2, "mpich", "4.1.2", "12.0"),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_host_mpi(root, implementation, version, abi):
    fp = fingerprint(root)
    mpi = fp.software.mpi[0]
    assert (mpi.implementation, mpi.version, mpi.abi_version) == (implementation, version, abi)
    assert fp.annotations[P + "mpi.implementation"] == implementation
    assert fp.annotations[P + "mpi.abi.version"] == abi


def test_no_mpi_on_graviton():
    fp = fingerprint(GRAVITON)
    assert fp.software.mpi == []
    assert P + "mpi.implementation" not in fp.annotations


@pytest.mark.parametrize(
    ("root", "runtimes"),
    [
        (H100, {"docker": "24.0.7", "enroot": "3.4.1"}),
        (A100, {"singularity": "3.8.7", "podman": "4.0.2"}),
        (SLINGSHOT, {"apptainer": "1.3.2"}),
        (ZEN2, {"podman": "3.4.4", "charliecloud": "0.36"}),
        (GRAVITON, {"docker": "24.0.5"}),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_container_runtimes(root, runtimes):
    found = fingerprint(root).software.container_runtimes
    assert {r.name: r.version for r in found} == runtimes


def test_mpi_output_parsers():
    assert parse_mpirun("Intel(R) MPI Library for Linux* OS, Version 2021.10 Build 20230619 (id: c2e19c2f3e)\n") == (
        "intelmpi", "2021.10")
    assert parse_mpirun("mpirun (Open MPI) 5.0.3\n\nReport bugs to https://www.open-mpi.org/community/help/\n") == (
        "openmpi", "5.0.3")
    assert parse_mpirun("Usage: mpirun [options]\n") is None
    assert parse_mpichversion("MPICH Version:      4.2.0\nMPICH Device: ch4:ofi\n") == ("mpich", "4.2.0")


# ---------------------------------------------------------------- annotations and JSON
@pytest.mark.parametrize("root", ALL, ids=lambda p: p.name)
def test_annotations_are_valid_image_vocabulary(root):
    fp = fingerprint(root)
    assert Annotations.from_mapping(fp.annotations).validate() == []
    assert fp.as_annotations()[P + "hardware.cpu.optimized.version"] == fp.cpu.target
    assert all(key.startswith(P) for key in fp.annotations)


def test_h100_annotations_key_by_key():
    assert fingerprint(H100).annotations == {
        P + "hardware.cpu.optimized.version": "sapphirerapids",
        P + "hardware.cpu.optimized.mode": "microarchitecture",
        P + "hardware.gpu.nvidia.driver.version": "550.54.15",
        P + "hardware.gpu.nvidia.cuda.version": "12.4",
        P + "hardware.gpu.nvidia.architecture": "sm_90",
        P + "mpi.implementation": "openmpi",
        P + "mpi.version": "4.1.5rc2",
        P + "mpi.abi.version": "40.0",
        P + "communication.framework": "ucx,verbs",
        P + "ucx.version": "1.15.0",
        P + "libc.implementation": "glibc",
        P + "glibc.version": "2.35",
        P + "kernel.version": "5.15.0",
        P + "host.kernel.modules.expectation": "user-namespaces,overlay,squashfs,fuse",
    }


def test_slingshot_annotations_name_fabric_and_amd():
    annotations = fingerprint(SLINGSHOT).annotations
    assert annotations[P + "communication.framework"] == "libfabric"
    assert annotations[P + "libfabric.version"] == "1.15.2.0"
    assert annotations[P + "hardware.gpu.amd.architecture"] == "gfx90a"


@pytest.mark.parametrize("root", ALL, ids=lambda p: p.name)
def test_json_round_trip(root, tmp_path):
    fp = fingerprint(root)
    data = fp.to_json()
    assert list(data) == ["cpu", "gpu", "interconnect", "os", "software", "annotations", "source"]
    saved = tmp_path / "host.json"
    saved.write_text(json.dumps(data))
    loaded = Fingerprint.load(saved)
    assert loaded.to_json() == data
    assert loaded == fp


def test_hand_written_fingerprint_needs_only_a_target():
    fp = Fingerprint.from_json({"cpu": {"target": "zen2"}})
    assert (fp.cpu.family, fp.cpu.generic, fp.cpu.vendor) == ("x86_64", "x86_64_v3", "AuthenticAMD")
    assert fp.annotations == {P + "hardware.cpu.optimized.version": "zen2",
                              P + "hardware.cpu.optimized.mode": "microarchitecture"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cpu": {"target": "zen-2"}},
         r"host.json: cpu.target: 'zen-2' is not an archspec target \(did you mean zen2\?\)"),
        ({"gpu": None}, "cpu: missing"),
        ({"cpu": {"target": "zen2"}, "network": {}}, "unknown section 'network'"),
        ({"cpu": {"target": "zen2"}, "gpu": {"nvidia": {"devices": [{"index": "0", "name": "H100"}]}}},
         r"gpu.nvidia.devices\[0\].index: expected an integer"),
        ({"cpu": {"target": "zen2"}, "os": {"kernel_release": 5}}, "os.kernel_release: expected text"),
        ({"cpu": {"target": "zen2"}, "annotations": {"k": 1}}, "annotations: expected a mapping of keys to text"),
    ],
)
def test_bad_fingerprint_files_name_the_place(data, message):
    with pytest.raises(InputError, match=message):
        Fingerprint.from_json(data, "host.json")


def test_load_reports_the_file(tmp_path):
    bad = tmp_path / "host.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"host\.json:1: malformed JSON"):
        Fingerprint.load(bad)


# ---------------------------------------------------------------- commands
def test_sysroot_runs_nothing_on_this_machine(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"ran {args!r} while reading a sysroot")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    assert fingerprint(H100).cpu.target == "sapphirerapids"


def test_captured_runner(tmp_path):
    (tmp_path / "nvidia-smi-query-gpu.txt").write_text("Field \"compute_cap\" is not a valid field to query.\n")
    (tmp_path / "nvidia-smi-query-gpu.rc").write_text("2\n")
    (tmp_path / "fi_info-l.txt").write_text("tcp:\n")
    runner = CapturedRunner(tmp_path)
    assert runner(cmd.NVIDIA_SMI_QUERY)[0] == 2
    assert runner(cmd.FI_INFO_PROVIDERS) == (0, "tcp:\n")
    assert runner(cmd.UCX_INFO) == (cmd.NOT_FOUND, "")
    assert capture_name(("ibv_devinfo", "-v")) == "ibv_devinfo-v"
    assert capture_name(cmd.RUNTIMES["charliecloud"]) == "ch-run-version"


def test_import_is_cheap():
    code = ("import sys, hpcannotate.host; "
            "print('archspec' in sys.modules, 'hpcannotate.recipes.adapters' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ---------------------------------------------------------------- this machine, for real
def test_live_host_agrees_with_archspec_and_platform():
    fp = fingerprint()
    assert fp.source == "live"
    assert fp.cpu.target == archspec.cpu.host().name
    assert fp.cpu.family == str(archspec.cpu.host().family)
    assert fp.os.kernel_release == platform.release()
    libc, version = platform.libc_ver()
    if libc == "glibc":
        assert (fp.os.libc, fp.os.libc_version) == ("glibc", version)
    assert Annotations.from_mapping(fp.annotations).validate() == []
    if shutil.which("docker"):
        banner = subprocess.run(["docker", "--version"], capture_output=True, text=True).stdout
        docker = {r.name: r for r in fp.software.container_runtimes}["docker"]
        assert docker.version in banner


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs Linux /proc/cpuinfo")
def test_sysroot_path_decides_like_archspec_on_this_cpu():
    # The code that reads captured trees, fed this machine's cpuinfo, must pick what archspec picks.
    assert from_cpuinfo(Path("/proc/cpuinfo").read_text()).target == archspec.cpu.host().name


@pytest.mark.skipif(not Path("/proc/sys/user/max_user_namespaces").exists(), reason="Linux only")
def test_live_user_namespaces_match_procfs():
    expected = int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    clone = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if clone.exists():
        expected = expected and clone.read_text().strip() != "0"
    assert fingerprint().os.user_namespaces.enabled is expected


# ---------------------------------------------------------------- CLI
def run_fingerprint_cli(*args: str) -> subprocess.CompletedProcess:
    """The command through the CLI's real main() (error handling, exit codes) in its own process."""
    code = (
        "import sys\n"
        "from hpcannotate.cli import cli, main\n"
        "from hpcannotate.cli.fingerprint_cmd import fingerprint_cmd\n"
        "if 'fingerprint' not in cli.commands: cli.add_command(fingerprint_cmd)\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", code, "fingerprint", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_cli_json_for_a_sysroot():
    proc = run_fingerprint_cli("--json", "--sysroot", str(A100))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["cpu"]["target"] == "cascadelake"
    assert data["annotations"][P + "hardware.gpu.nvidia.cuda.version"] == "11.4"
    assert Fingerprint.from_json(data).cpu.target == "cascadelake"


def test_cli_table_groups_sections():
    proc = run_fingerprint_cli("--sysroot", str(SLINGSHOT))
    assert proc.returncode == 0, proc.stderr
    for text in ("CPU", "zen3 (microarchitecture)", "GPU", "8 x gfx90a", "Interconnect", "cxi0, cxi1, cxi2, cxi3",
                 "OS", "Software", "cray-mpich 8.1.26, ABI 12.0", "org.supercontainers.libfabric.version"):
        assert text in proc.stdout
    live = run_fingerprint_cli()
    assert live.returncode == 0, live.stderr
    assert archspec.cpu.host().name in live.stdout


def test_cli_errors_are_one_line(tmp_path):
    proc = run_fingerprint_cli("--sysroot", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "proc/cpuinfo: no such file" in proc.stderr
    missing = run_fingerprint_cli("--sysroot", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
