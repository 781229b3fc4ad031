"""Review findings on the host side: version comparison, derived values of loaded fingerprints, unknown user
namespaces, GPU architecture spellings, sysroot links, edf.choose, and mixed-vendor / 32-bit images.

Everything here runs on annotation sets, hand-written fingerprints and small captured trees: no image is built.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.host import Fingerprint, fingerprint
from hpcannotate.host.system import userns_enabled
from hpcannotate.image.read import ImageRead, PlatformEntry
from hpcannotate.model.annotations import Annotations, Problem
from hpcannotate.model.versions import version_at_least, version_key
from hpcannotate.verdict.match import GREEN, NOTE, ORANGE, RED, UNKNOWN, assess, gpu_arch_name, rank

P = "org.supercontainers."
SYSROOTS = Path(__file__).parent / "data" / "sysroots"
ZEN2 = SYSROOTS / "zen2-epyc7742"
H100 = SYSROOTS / "h100-sapphirerapids-ib"


def image(target: str = "zen2", **more: str) -> dict[str, str]:
    values = {P + "hardware.cpu.optimized.version": target, P + "hardware.cpu.optimized.mode": "microarchitecture"}
    values.update({P + k.replace("__", "."): v for k, v in more.items()})
    return values


def host(**sections) -> Fingerprint:
    return Fingerprint.from_json({"cpu": {"target": "zen2"}, **sections}, "host.json")


def levels(found, check: str) -> list[str]:
    return [r.level for r in found.reasons if r.check == check]


# -- 2: versions --------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [("5.10", "5.10.0"), ("550.54", "550.54.0"), ("12", "12.0.0"),
                                      ("v4.1.0rc1", "4.1"), ("5.14.0-284.11.1.el9_2", "5.14")])
def test_versions_of_different_lengths_compare_zero_padded(a, b):
    assert version_key(a) == version_key(b)
    assert version_at_least(a, b) and version_at_least(b, a)


def test_version_key_orders_numerically_never_as_text():
    assert version_key("550.54") < version_key("550.54.14") < version_key("550.100")
    assert version_key("2.9") < version_key("2.10")
    assert version_key("12.4.1", 2) == (12, 4) and version_key("12.0.1", 2) == (12,)
    assert version_key(None) == () and version_key("unknown") == ()


def test_kernel_5_10_meets_a_5_10_0_minimum():
    fp = host(os={"kernel_release": "5.10"})
    found = assess(image(host__kernel__version__min="5.10.0"), fp)
    assert levels(found, "kernel") == [GREEN] and found.verdict == GREEN


def test_driver_550_54_meets_a_550_54_0_minimum():
    fp = host(gpu={"nvidia": {"driver_version": "550.54", "cuda_version": "12.4", "architectures": ["sm_90"]}})
    found = assess(image(hardware__gpu__nvidia__driver__version="550.54.0",
                         hardware__gpu__nvidia__architecture="sm_90"), fp)
    assert RED not in levels(found, "cuda") and found.verdict == GREEN


# -- 3: derived values are not trusted from a file ----------------------------------------------


def test_a_hand_written_cxi_host_has_a_fast_network():
    fp = host(interconnect={"cxi": ["cxi0"]})
    assert fp.interconnect.fast and fp.interconnect.kinds == ["slingshot"]
    found = assess(image(mpi__implementation="openmpi", mpi__version="4.1.6"), fp)
    assert found.verdict == ORANGE, found.reasons


def test_stored_derived_interconnect_values_cannot_hide_the_devices():
    fp = host(interconnect={"cxi": ["cxi0"], "kinds": [], "fast": False, "frameworks": [],
                            "libfabric": {"version": "1.15.2", "providers": ["cxi"]}})
    assert fp.interconnect.fast and fp.interconnect.kinds == ["slingshot"]
    assert fp.interconnect.frameworks == ["libfabric"]
    claimed = host(interconnect={"fast": True, "kinds": ["infiniband"]})  # a network the files do not show
    assert claimed.interconnect.fast and claimed.interconnect.kinds == ["infiniband"]


def test_stored_annotations_are_derived_again_from_the_sections():
    fp = host(os={"user_namespaces": {"max_user_namespaces": 0}, "filesystems": ["overlay"]},
              annotations={P + "host.kernel.modules.expectation": "user-namespaces,overlay",
                           P + "kernel.version": "9.9"})
    assert fp.annotations[P + "host.kernel.modules.expectation"] == "overlay"
    assert P + "kernel.version" not in fp.annotations
    found = assess(image(host__kernel__modules__expectation="user-namespaces"), fp)
    assert levels(found, "kernel") == [ORANGE]


def test_kernel_version_follows_the_release():
    fp = host(os={"kernel_release": "5.14.0-284.11.1.el9_2.x86_64", "kernel_version": "6.8"})
    assert fp.os.kernel_version == "5.14.0"
    assert host(os={"kernel_version": "4.18.0"}).os.kernel_version == "4.18.0"  # no release: as given


def test_loaded_fingerprint_round_trips_unchanged(tmp_path):
    fp = fingerprint(H100)
    assert Fingerprint.from_json(fp.to_json()) == fp


# -- 4: unknown user namespaces -------------------------------------------------------------------


@pytest.mark.parametrize(("maximum", "clone", "apparmor", "enabled"), [
    (None, None, None, None), (0, None, None, False), (100, 0, None, False), (100, 1, None, True),
    (100, None, 1, None), (100, None, 0, True), (None, 0, None, False),
])
def test_userns_enabled(maximum, clone, apparmor, enabled):
    assert userns_enabled(maximum, clone, apparmor) is enabled


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    shutil.copy(ZEN2 / "proc" / "cpuinfo", root / "proc" / "cpuinfo")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_no_max_user_namespaces_file_is_unknown_not_disabled(tmp_path):
    fp = fingerprint(sysroot=_tree(tmp_path, {"proc/sys/kernel/osrelease": "6.8.0\n"}))
    assert fp.os.user_namespaces.enabled is None
    found = assess(image(host__kernel__modules__expectation="user-namespaces"), fp)
    assert levels(found, "kernel") == [NOTE] and found.verdict == GREEN


def test_ubuntu_apparmor_restriction_is_unknown(tmp_path):
    fp = fingerprint(sysroot=_tree(tmp_path, {"proc/sys/user/max_user_namespaces": "63000\n",
                                              "proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1\n"}))
    assert fp.os.user_namespaces.enabled is None
    assert levels(assess(image(host__kernel__modules__expectation="user-namespaces"), fp), "kernel") == [NOTE]


# -- 5: GPU architecture spellings --------------------------------------------------------------


@pytest.mark.parametrize(("text", "name"), [("sm_90", "sm_90"), ("90", "sm_90"), ("9.0", "sm_90"),
                                            ("SM_90a", "sm_90a"), ("compute_80", "compute_80"),
                                            ("hopper", None), ("", None)])
def test_gpu_arch_names(text, name):
    assert gpu_arch_name(text) == name


def test_a_bare_capability_number_is_compared_not_red():
    fp = host(gpu={"nvidia": {"driver_version": "550.54.15", "cuda_version": "12.4", "architectures": ["sm_90"]}})
    found = assess(image(hardware__gpu__nvidia__architecture="90"), fp)
    assert levels(found, "gpu") == [GREEN] and found.verdict == GREEN


def test_host_architectures_written_as_capabilities():
    fp = host(gpu={"nvidia": {"driver_version": "550.54.15", "cuda_version": "12.4", "architectures": ["8.0"]}})
    assert assess(image(hardware__gpu__nvidia__architecture="sm_80"), fp).verdict == GREEN
    assert assess(image(hardware__gpu__nvidia__architecture="sm_90"), fp).verdict == RED  # a real misfit


def test_an_unparseable_architecture_is_unknown_with_a_reason():
    fp = host(gpu={"nvidia": {"driver_version": "550.54.15", "cuda_version": "12.4", "architectures": ["sm_90"]}})
    found = assess(image(hardware__gpu__nvidia__architecture="hopper"), fp)
    assert found.verdict == UNKNOWN
    assert "'hopper' is not a CUDA architecture" in found.reasons[0].message


# -- 7: links in a captured tree stay inside it -------------------------------------------------------


def test_sysroot_absolute_links_resolve_inside_the_tree(tmp_path):
    root = _tree(tmp_path, {"usr/lib/os-release": 'ID=inside\nPRETTY_NAME="Inside 1"\n',
                            "data/osrelease": "5.14.0-inside\n"})
    (root / "etc").mkdir()
    (root / "etc" / "os-release").symlink_to("/usr/lib/os-release")
    (root / "proc" / "sys" / "kernel").mkdir(parents=True)
    (root / "proc" / "sys" / "kernel" / "osrelease").symlink_to("../../../../../../../data/osrelease")
    (root / "loop").symlink_to("/loop")
    fp = fingerprint(sysroot=root)
    assert fp.os.distribution.get("ID") == "inside"
    assert fp.os.kernel_release == "5.14.0-inside"
    from hpcannotate.host.commands import CapturedRunner
    from hpcannotate.host.hostview import HostView

    view = HostView(root, CapturedRunner(root / "commands"), live=False)
    assert view.read("/loop") is None and view.listdir("/loop/x") == [] and not view.exists("/loop")


# -- 8: edf.choose, the match table, problems -----------------------------------------------------


def entry(values: dict[str, str], platform: dict | None = None, problems=()) -> PlatformEntry:
    return PlatformEntry("reg.example.org/app:1", "reg.example.org/app@sha256:" + "0" * 64, "sha256:" + "0" * 64,
                         platform or {"architecture": "amd64", "os": "linux"},
                         Annotations.from_mapping(values, source="test"), list(problems))


def test_edf_choose_assesses_a_single_image():
    from hpcannotate.verdict.edf import choose

    read = ImageRead("reg.example.org/app:1", entries=[entry(image("zen3"))])
    chosen, warnings = choose(read, fingerprint(ZEN2))
    assert chosen is read.entries[0]
    assert len(warnings) == 1 and "no image of reg.example.org/app:1 fits the given host" in warnings[0]
    assert choose(ImageRead("r", entries=[entry(image("zen2"))]), fingerprint(ZEN2))[1] == []


def test_edf_single_image_when_this_host_cannot_be_described(monkeypatch):
    import hpcannotate.host as fpmod
    from hpcannotate.verdict.edf import choose

    def broken(*args, **kwargs):
        raise InputError("/proc/cpuinfo: no such file")

    monkeypatch.setattr(fpmod, "fingerprint", broken)
    read = ImageRead("reg.example.org/app:1", entries=[entry(image("zen3"))])
    chosen, warnings = choose(read, None)
    assert chosen is read.entries[0] and "was not checked against this host" in warnings[0]


def test_wants_entrypoint_runs_only_its_two_checks(monkeypatch):
    import hpcannotate.verdict.check as check
    from hpcannotate.verdict.edf import wants_entrypoint

    monkeypatch.setattr(check, "check_image_entry", lambda *a: pytest.fail("all checks ran"))
    one = entry(image())
    assert wants_entrypoint(one, {"config": {"Env": ["PATH=/usr/bin"]}}) is False
    assert wants_entrypoint(one, {"config": {"Entrypoint": ["/opt/setup.sh"], "Env": ["PATH=/usr/bin"]}}) is True


def test_print_match_names_the_fingerprint_file(capsys, tmp_path):
    from hpcannotate.cli.host_cmds import _host_label, _print_match

    report = rank([ImageRead("reg.example.org/app:1", entries=[entry(image("zen3"))])], fingerprint(ZEN2))
    where = _host_label(tmp_path / "node.json", None)
    _print_match(report, where)
    out = capsys.readouterr()
    text = out.out + out.err
    assert f"host ({tmp_path / 'node.json'}): zen2" in text
    assert f"no image runs on the host of {tmp_path / 'node.json'}" in text and "no image runs on this host" not in text
    assert _host_label(None, None) == "this host"


def test_problems_of_missing_mandatory_keys_are_not_repeated_whatever_their_words():
    mode = P + "hardware.cpu.optimized.mode"
    values = {k: v for k, v in image().items() if k != mode}
    missing = Problem(mode, "is not there")  # worded differently: still the missing-key reason given above
    found = assess(values, fingerprint(ZEN2), problems=[missing, Problem(P + "mpi.version", "bad value")])
    assert [r.level for r in found.reasons if r.check == "annotations"] == [UNKNOWN, NOTE]
    notes = [r.message for r in found.reasons if r.check == "annotations" and r.level == NOTE]
    assert notes == ["mpi.version: bad value"]


# -- 9: images for two GPU vendors, 32-bit x86 ------------------------------------------------------


def test_an_image_for_nvidia_and_amd_fits_an_nvidia_host():
    fp = host(gpu={"nvidia": {"driver_version": "550.54.15", "cuda_version": "12.4", "architectures": ["sm_90"]}})
    found = assess(image(hardware__gpu__nvidia__architecture="sm_90", hardware__gpu__amd__architecture="gfx90a"),
                   fp)
    assert found.verdict == GREEN, found.reasons


def test_an_image_for_nvidia_and_amd_fits_an_amd_host():
    fp = host(gpu={"amd": {"architectures": ["gfx90a"]}})
    found = assess(image(hardware__gpu__nvidia__architecture="sm_90",
                         hardware__gpu__amd__architecture="gfx90a:xnack-"), fp)
    assert found.verdict == GREEN, found.reasons


def test_a_386_image_runs_on_an_amd64_host():
    fp = fingerprint(ZEN2)
    values = {P + "hardware.cpu.optimized.version": "pentium4", P + "hardware.cpu.optimized.mode": "architecture"}
    found = assess(values, fp, {"architecture": "386", "os": "linux"})
    assert found.verdict == ORANGE and "32-bit" in found.reasons[0].message
    assert levels(assess({}, fp, {"architecture": "386", "os": "linux"}), "cpu") == [ORANGE]
    assert levels(assess(image("zen2"), fp, {"architecture": "arm", "os": "linux"}), "cpu") == [RED]
