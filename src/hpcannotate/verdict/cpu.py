"""CPU fit: does every instruction set the image's code needs exist on this host, and how well is it tuned?

A binary built for an archspec target may use the target's features (archspec's data,
``-march=<target>``). It raises SIGILL only when the host lacks one of them that compilers
actually emit code for: features they never emit on their own (protection keys, cache-line
write-back, mitigation MSRs; ``data/cpu.yaml`` ``not_emitted``) do not count, and Linux's
spellings (``pni`` for sse3) are translated. So a cloud VM whose hypervisor hides ``pku``
runs zen3 code, and an Intel host runs zen2 code (every instruction set is there; it is only
tuned for another vendor: orange, not red). x86_64 and aarch64 are judged by features;
POWER by generation and RISC-V by name, as archspec does.

The tuning then costs a factor from the match policy: the host's own target, its direct
parent, another ancestor, or another vendor's target; and the host's vector units being
twice or four times as wide as the image's code uses costs another.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from hpcannotate.model.knowledge import archspec_families, linux_flag_names, not_emitted, runs_also, vector_widths
from hpcannotate.verdict.reasons import Reason, red, speed

if TYPE_CHECKING:
    from hpcannotate.host import Fingerprint

FEATURE_FAMILIES = ("x86_64", "aarch64")  # families whose targets archspec tells apart by features


def _targets():
    import archspec.cpu

    return archspec.cpu.TARGETS


def simd_width(target) -> int:
    """The widest vector registers code for an archspec target may use, in bits."""
    widths = vector_widths()
    if target.name in widths:
        return widths[target.name]
    features = target.features
    family = target.family.name
    if family == "x86_64":
        if "avx512f" in features:
            return 512
        return 256 if "avx2" in features or "avx" in features else 128
    if family == "aarch64" and "sve" in features:
        inherited = [widths[a.name] for a in target.ancestors if a.name in widths]
        return max(inherited, default=128)
    return 128


def needed(target) -> frozenset[str]:
    """The features a binary built for ``target`` may execute: archspec's, less those never emitted."""
    return frozenset(target.features) - not_emitted(target.family.name)


def host_flags(features, family: str) -> frozenset[str]:
    """The host's cpuinfo flags, with archspec's spelling added where Linux spells them differently."""
    names = linux_flag_names(family)
    return frozenset(features) | {names[f] for f in features if f in names}


@functools.lru_cache(maxsize=64)
def effective_host(target: str, vendor: str, features: frozenset[str]):
    """The target whose code this host runs natively: archspec's own choice, made without the
    features compilers never emit (a VM that hides ``pku`` is still a zen4, not an ``x86_64_v4``)."""
    from archspec.cpu.detect import partial_uarch

    from hpcannotate.host.cpu import select_target

    strict = _targets()[target]
    family = strict.family.name
    if family != "x86_64" or not features:
        return strict
    info = partial_uarch(vendor=vendor, features=set(host_flags(features, family)) | not_emitted(family))
    chosen = select_target(info, family)
    return chosen if chosen == strict or strict in chosen.ancestors else strict


def _listed(names) -> str:
    names = sorted(names)
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def cpu_fit(name: str | None, fp: Fingerprint, platform: dict | None) -> list[Reason]:
    """The CPU findings for an image built for target ``name`` (and ``platform``) on ``fp``."""
    targets = _targets()
    strict = targets[fp.cpu.target]
    family = strict.family.name
    arch = (platform or {}).get("architecture")
    built_family = archspec_families().get(arch or "", arch)
    if built_family and built_family != family:
        if built_family in runs_also().get(family, ()):
            return _compat(name, fp, arch or built_family)
        return [_other_family(f"{arch} ({built_family})", built_family, family, strict.name)]
    if not name or name not in targets:
        return []  # missing or not an archspec name: the annotation check says so
    image = targets[name]
    if image.family.name != family:
        if image.family.name in runs_also().get(family, ()):
            return _compat(name, fp, image.family.name)
        return [_other_family(f"{name} ({image.family.name})", image.family.name, family, strict.name)]
    features = frozenset(fp.cpu.features) or frozenset(strict.features)
    host = effective_host(strict.name, fp.cpu.vendor or strict.vendor, features)
    if family in FEATURE_FAMILIES:
        missing = needed(image) - host_flags(features, family)
        if missing:
            return [red("cpu", f"built for {name}; this host is {strict.name}: {name} instructions will raise SIGILL",
                        f"{strict.name} lacks {_listed(missing)}")]
    elif not image <= strict:
        return [red("cpu", f"built for {name}; this host is {strict.name}: {name} is not {strict.name} or one of its "
                           "ancestors in archspec, so its code may use instructions this host lacks (SIGILL)")]
    return [_tuning(image, host, strict, fp.cpu.vendor), *_width(image, host)]


def _other_family(built: str, built_family: str, family: str, host: str) -> Reason:
    detail = None
    if {built_family, family} == {"ppc64", "ppc64le"}:
        detail = "ppc64 is big-endian and ppc64le little-endian: neither runs the other's binaries"
    return red("cpu", f"built for {built}; this host is {family} ({host}): its binaries cannot run here", detail)


def _tuning(image, host, strict, vendor: str | None) -> Reason:
    name = image.name
    hidden = "" if host == strict else (f" (archspec names it {strict.name}: its hypervisor hides features no "
                                        f"compiler emits; its instruction sets are {host.name}'s)")
    if image == host:
        return speed("cpu", "native", f"built for {name}, this host's own target{hidden}")
    if image in host.parents:
        return speed("cpu", "parent", f"built for {name}, the closest ancestor of this host's {host.name}{hidden}")
    if image in host.ancestors:
        return speed("cpu", "ancestor", f"built for {name}, an ancestor of this host's {host.name}{hidden}")
    if image.vendor != "generic" and vendor and vendor != "generic" and image.vendor != vendor:
        return speed("cpu", "other_vendor", f"built for {name} ({image.vendor}); this host is {host.name} ({vendor}): "
                                            f"every instruction set {name} code needs is here, but it is tuned "
                                            "for another vendor's cores")
    return speed("cpu", "ancestor", f"built for {name}: every instruction set it needs is on this {host.name}, tuned "
                                    f"for another microarchitecture{hidden}")


def _width(image, host) -> list[Reason]:
    image_bits, host_bits = simd_width(image), simd_width(host)
    if host_bits < 2 * image_bits:
        return []
    kind = "generic target" if image.vendor == "generic" else "target"
    return [speed("cpu", "width_4x" if host_bits >= 4 * image_bits else "width_2x",
                  f"{kind} {image.name} on a much newer host ({host.name}): runs, but without the host's "
                  f"{host_bits}-bit vector instructions ({image.name} code uses at most {image_bits}-bit)")]


def _compat(name: str | None, fp: Fingerprint, built: str) -> list[Reason]:
    """32-bit code on a 64-bit host of the same line (386 on amd64): runs in compatibility mode."""
    targets = _targets()
    host = targets[fp.cpu.target]
    image = targets.get(name or "")
    if image is not None and image.family.name in runs_also().get(host.family.name, ()):
        missing = needed(image) - host_flags(frozenset(fp.cpu.features) or frozenset(host.features),
                                             host.family.name)
        if missing:
            return [red("cpu", f"built for {name}; this host is {host.name}: {name} instructions will raise SIGILL",
                        f"{host.name} lacks {_listed(missing)}")]
    what = f"{name} ({built})" if image is not None else built
    return [speed("cpu", "compat32", f"built for {what}, 32-bit code: runs on this {host.family.name} host "
                                     f"({host.name}) in compatibility mode (the kernel's 32-bit support), without "
                                     "64-bit registers or the host's wider vector units")]
