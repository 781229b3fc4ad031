"""CPU facts in archspec's vocabulary: the host target, its generic level and family.

On the live host archspec itself decides (``archspec.cpu.host()``). For a
captured tree the same decision is made from ``<sysroot>/proc/cpuinfo``: the
partial microarchitecture archspec would build from that file is matched against
``TARGETS`` with archspec's rules (compatible targets, best generic candidate,
``cpu_part`` on AArch64, deepest descendant wins), without touching archspec's
cached host detection or patching its globals. archspec is imported lazily.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from hpcannotate.errors import InputError
from hpcannotate.host.hostview import HostView

X86_64 = "x86_64"
AARCH64 = "aarch64"
PPC64LE = "ppc64le"
PPC64 = "ppc64"
RISCV64 = "riscv64"


@dataclass
class CpuInfo:
    target: str
    family: str
    vendor: str
    generic: str
    mode: str
    model: str | None = None
    features: list[str] = field(default_factory=list)
    source: str = "archspec.cpu.host()"


def parse_cpuinfo(text: str) -> dict[str, str]:
    """The first processor block of /proc/cpuinfo as key -> value (as archspec reads it)."""
    data: dict[str, str] = {}
    for line in text.splitlines():
        key, separator, value = line.partition(":")
        if separator != ":" and data:
            break
        if separator:
            data[key.strip()] = value.strip()
    return data


def machine_of(data: dict[str, str], arch_hint: str | None = None) -> str | None:
    """The architecture family a cpuinfo block describes (x86 has flags, Arm has Features, ...).

    ``arch_hint`` is ``uname -m`` of the machine (``/proc/sys/kernel/arch``), which alone tells
    ppc64 (big-endian) from ppc64le. Without it, POWER7 and older are ppc64: little-endian
    Linux needs POWER8. POWER8 and newer are taken as ppc64le, what every current distribution
    runs on them.
    """
    if arch_hint in (X86_64, AARCH64, PPC64LE, PPC64, RISCV64):
        return arch_hint
    if "flags" in data and "vendor_id" in data:
        return X86_64
    if "Features" in data or "CPU implementer" in data:
        return AARCH64
    power = re.search(r"POWER(\d+)", data.get("cpu", ""))
    if power:
        return PPC64 if int(power.group(1)) <= 7 else PPC64LE
    if "isa" in data and data["isa"].startswith("rv64"):
        return RISCV64
    return None


def _partial(data: dict[str, str], machine: str):
    """archspec's partial Microarchitecture for a cpuinfo block (mirrors detect.proc_cpuinfo)."""
    from archspec.cpu.detect import partial_uarch
    from archspec.cpu.schema import TARGETS_JSON

    if machine == X86_64:
        return partial_uarch(vendor=data.get("vendor_id", "generic"), features=set(data.get("flags", "").split()))
    if machine == AARCH64:
        code = data.get("CPU implementer")
        vendors = TARGETS_JSON["conversions"]["arm_vendors"]
        vendor = vendors.get(code, code) if code else "generic"
        return partial_uarch(vendor=vendor, features=set(data.get("Features", "").split()),
                             cpu_part=data.get("CPU part", ""))
    if machine in (PPC64LE, PPC64):
        match = re.search(r"POWER(\d+)", data.get("cpu", ""))
        return partial_uarch(generation=int(match.group(1)) if match else 0)
    if machine == RISCV64:
        uarch = data.get("uarch", RISCV64)
        uarch = {"sifive,u74-mc": "u74mc", "spacemit,x60": "x60"}.get(uarch, uarch)
        if data.get("model name") == "Spacemit(R) X60":  # kernels that print no uarch line (archspec does the same)
            uarch = "x60"
        return partial_uarch(name=uarch)
    from archspec.cpu.microarchitecture import generic_microarchitecture

    return generic_microarchitecture(machine)


def _compatible(info, target, machine: str) -> bool:
    """archspec's per-family compatibility rule, for a machine that is not necessarily this one."""
    from archspec.cpu import TARGETS
    from archspec.cpu.detect import compatibility_check_for_x86_64

    if machine == X86_64:
        return compatibility_check_for_x86_64(info, target)
    root = TARGETS.get(machine)
    if root is None:
        return False
    descends = target == root or root in target.ancestors
    if machine == AARCH64:
        # archspec: on Linux, a generic armv8.Xa level is never picked by features.
        if target.vendor == "generic" and target.name != AARCH64:
            return False
        return (root == target.family and target.vendor in (info.vendor, "generic")
                and target.features.issubset(info.features))
    if machine in (PPC64LE, PPC64):
        return descends and target.generation <= info.generation
    if machine == RISCV64:
        return descends and (target.name == info.name or target.vendor == "generic")
    return False


def select_target(info, machine: str):
    """The host target archspec would pick for ``info`` (mirrors archspec.cpu.detect.host)."""
    from archspec.cpu import TARGETS
    from archspec.cpu.microarchitecture import generic_microarchitecture

    candidates = [t for t in TARGETS.values() if _compatible(info, t, machine)]
    if not candidates:
        return generic_microarchitecture(machine)

    def depth(item):
        return len(item.ancestors), len(item.features)

    best_generic = max((c for c in candidates if c.vendor == "generic"), key=depth)
    if info.cpu_part and any(c.cpu_part == info.cpu_part for c in candidates):
        candidates = [c for c in candidates if c.cpu_part == info.cpu_part]
    candidates = [c for c in candidates if c > best_generic]
    return max(candidates, key=depth) if candidates else best_generic


def generic_level(target) -> str:
    """The most specific vendor-neutral ancestor (x86_64_v3 for zen2, armv8.2a for neoverse_n1)."""
    chain = [target, *target.ancestors]
    generic = [t for t in chain if t.vendor == "generic"]
    return max(generic, key=lambda t: len(t.ancestors)).name if generic else target.family.name


def _model_name(data: dict[str, str]) -> str | None:
    for key in ("model name", "cpu model", "cpu", "uarch"):
        if data.get(key):
            return data[key]
    return None


def _info(target, vendor: str, features, model: str | None, source: str) -> CpuInfo:
    from hpcannotate.model.targets import mode_for_target

    return CpuInfo(
        target=target.name,
        family=target.family.name,
        vendor=vendor or target.vendor,
        generic=generic_level(target),
        mode=mode_for_target(target.name) if target.name in _targets() else "architecture",
        model=model,
        features=sorted(features),
        source=source,
    )


def _targets():
    from archspec.cpu import TARGETS

    return TARGETS


def from_cpuinfo(text: str, where: str = "/proc/cpuinfo", arch_hint: str | None = None) -> CpuInfo:
    """CPU facts from the text of a /proc/cpuinfo (of any Linux machine, not only this one)."""
    data = parse_cpuinfo(text)
    machine = machine_of(data, arch_hint)
    if machine is None:
        raise InputError(f"{where}: cannot tell the CPU architecture (no flags, Features, POWER or rv64 line)")
    info = _partial(data, machine)
    target = select_target(info, machine)
    return _info(target, info.vendor, info.features, _model_name(data), where)


def detect(host: HostView) -> CpuInfo:
    """The CPU of ``host``: archspec's own detection live, the tree's cpuinfo for a sysroot."""
    if host.live:
        import archspec.cpu
        from archspec.cpu.detect import detected_info

        target = archspec.cpu.host()
        info = detected_info()
        text = host.read("/proc/cpuinfo")
        model = _model_name(parse_cpuinfo(text)) if text else None
        return _info(target, info.vendor, info.features, model, "archspec.cpu.host()")
    where = str(host.where("/proc/cpuinfo"))
    text = host.read("/proc/cpuinfo")
    if text is None:
        from hpcannotate.files import kind_of

        kind = kind_of(os.stat(where).st_mode) if os.path.exists(where) else None
        why = f"is {kind}, not a file" if kind else "no such file"
        raise InputError(f"{where}: {why} (a sysroot needs at least proc/cpuinfo)")
    return from_cpuinfo(text, where, arch_hint(host))


def arch_hint(host: HostView) -> str | None:
    """``uname -m`` of the machine: ``/proc/sys/kernel/arch`` (Linux 6.1+), else the ``uname -m`` output."""
    from hpcannotate.host import commands as cmd

    hint = host.read_line("/proc/sys/kernel/arch")
    if hint:
        return hint
    rc, out = host.run(cmd.UNAME_M)
    return (out.strip() or None) if rc == 0 else None


def from_target(name: str, where: str = "cpu.target") -> CpuInfo:
    """CPU facts implied by a target name alone (a hand-written fingerprint of another host)."""
    from hpcannotate.model.targets import suggest_target

    targets = _targets()
    if name not in targets:
        hint = suggest_target(name)
        raise InputError(f"{where}: {name!r} is not an archspec target" + (f" (did you mean {hint}?)" if hint else ""))
    target = targets[name]
    return _info(target, target.vendor, target.features, None, "given")
