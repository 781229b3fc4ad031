"""The smoke test before a pull: does an image run on this host, and how fast?

``assess`` compares one image's annotations with a host ``Fingerprint`` key by key and gives
a verdict, a score and its reasons in words; ``rank_entries`` orders many platform entries,
fastest first; ``match`` reads many references (manifests, and configs only when needed;
see ``imageread``) and ranks every platform entry.

The score is the expected fraction of bare-metal speed, in percent: 100 x the product of the
speed factors of every finding (``data/match-policy.yaml``; CPU in ``matchcpu``). Red: a
finding says the image cannot run here (an instruction set its code needs is missing,
another architecture or endianness, a driver too old, no GPU code for the host's GPUs, a
kernel too old), or the product is at most 10%. Unknown: mandatory annotations missing.
Green: 90 and more. Orange: it runs, slower than that.

Ranking is by verdict, then the exact product (not the rounded score), then the CPU factor
(the closer the target, the better), then the deeper archspec target, then reference and
digest: never the order of the arguments.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpcannotate.model import keynames as keys
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.knowledge import policy
from hpcannotate.model.versions import version_key
from hpcannotate.verdict.cpu import cpu_fit, simd_width
from hpcannotate.verdict.reasons import (
    GREEN,
    NOTE,
    ORANGE,
    RANK,
    RED,
    UNKNOWN,
    VERDICTS,
    Reason,
    note,
    red,
    speed,
    unknown,
)

if TYPE_CHECKING:
    from hpcannotate.host import Fingerprint
    from hpcannotate.image.read import ImageRead, PlatformEntry, Transport

__all__ = ["GREEN", "NOTE", "ORANGE", "RANK", "RED", "UNKNOWN", "VERDICTS", "Assessment", "EntryMatch",
           "MatchReport", "Reason", "assess", "gpu_arch_name", "match", "ptx_jits", "rank", "rank_entries",
           "sass_runs", "simd_width"]

TARGET = keys.HARDWARE_CPU_OPTIMIZED_VERSION
CUDA = keys.HARDWARE_GPU_NVIDIA_CUDA_VERSION
NV_ARCH = keys.HARDWARE_GPU_NVIDIA_ARCHITECTURE
NV_DRIVER = keys.HARDWARE_GPU_NVIDIA_DRIVER_VERSION
AMD_ARCH = keys.HARDWARE_GPU_AMD_ARCHITECTURE
MPI = keys.MPI_IMPLEMENTATION
MPI_VERSION = keys.MPI_VERSION
MPI_ABI = keys.MPI_ABI_VERSION
MPI_MODE = keys.MPI_PORTABILITY_MODE
FRAMEWORK = keys.COMMUNICATION_FRAMEWORK
GLIBC = keys.GLIBC_VERSION
KERNEL_MIN = keys.HOST_KERNEL_VERSION_MIN
EXPECTATION = keys.HOST_KERNEL_MODULES_EXPECTATION
APP = keys.APP_NAME
TITLE = keys.OCI_TITLE


@dataclass
class Assessment:
    verdict: str
    score: int
    reasons: list[Reason]
    factor: float = 1.0  # the exact product of the speed factors (0 when red)


def _items(value: str | None) -> list[str]:
    return [i.strip() for i in (value or "").split(",") if i.strip()]


# -- GPU ---------------------------------------------------------------------------------------


_ARCH = re.compile(r"(sm|compute)_(\d{2,3})([af]?)")


def gpu_arch_name(text: str) -> str | None:
    """A CUDA architecture as ``sm_XY``/``compute_XY``: also from ``90``, ``9.0``, ``SM_90`` (None: not one)."""
    value = text.strip().lower()
    if _ARCH.fullmatch(value):
        return value
    from hpcannotate.model.domain import cuda_arch_to_sm

    names = cuda_arch_to_sm(value)
    return names[0] if len(names) == 1 and _ARCH.fullmatch(names[0]) else None


def _gpu_arch(text: str) -> tuple[str, int, int, str] | None:
    """``sm_90a`` -> ("sm", 9, 0, "a"); ``compute_120`` -> ("compute", 12, 0, ""); ``9.0``/``90`` as sm_90."""
    name = gpu_arch_name(text)
    found = _ARCH.fullmatch(name) if name else None
    if not found:
        return None
    digits = found.group(2)
    return found.group(1), int(digits[:-1]), int(digits[-1]), found.group(3)


def sass_runs(image: str, host: str) -> bool:
    """sm_XY machine code runs on the same major and an equal or newer minor; ``a`` variants only on XY itself."""
    built, on = _gpu_arch(image), _gpu_arch(host)
    if not built or not on or built[0] != "sm":
        return False
    if built[3] == "a":
        return built[1:3] == on[1:3]
    return built[1] == on[1] and built[2] <= on[2]


def ptx_jits(image: str, host: str) -> bool:
    """compute_XY PTX is JIT-compiled for any device of capability >= X.Y (``a``: exactly, ``f``: same major)."""
    built, on = _gpu_arch(image), _gpu_arch(host)
    if not built or not on or built[0] != "compute":
        return False
    if built[3] == "a":
        return built[1:3] == on[1:3]
    if built[3] == "f":
        return built[1] == on[1] and built[2] <= on[2]
    return built[1:3] <= on[1:3]


def _nvidia(values: Mapping[str, str], fp: Fingerprint) -> list[Reason]:
    cuda, archs, minimum = values.get(CUDA), _items(values.get(NV_ARCH)), values.get(NV_DRIVER)
    what = ", ".join(x for x in (f"CUDA {cuda}" if cuda else "", ",".join(archs)) if x) or "NVIDIA GPUs"
    nvidia = fp.gpu.nvidia if fp.gpu else None
    if nvidia is None:
        return [speed("gpu", "no_gpu", f"GPU build ({what}) on a host without an NVIDIA GPU: only CPU code "
                                          "paths can run, if the application has them")]
    reasons: list[Reason] = []
    driver, host_cuda = nvidia.driver_version, nvidia.cuda_version
    if minimum and driver and version_key(driver) < version_key(minimum):
        reasons.append(red("cuda", f"needs NVIDIA driver >= {minimum}; this host has {driver}"))
    minor_compat = False
    if cuda and host_cuda:
        need, have = version_key(cuda, 2), version_key(host_cuda, 2)
        if version_key(cuda, 1) > version_key(host_cuda, 1):
            reasons.append(red("cuda", f"needs CUDA {cuda}; the host driver {driver or '?'} supports CUDA up to "
                                        f"{host_cuda}: the CUDA runtime will refuse to start (driver too old)"))
        elif need > have:
            minor_compat = True
            reasons.append(speed("cuda", "minor_compat", f"needs CUDA {cuda}; the host driver {driver or '?'} supports "
                                                      f"CUDA up to {host_cuda}: runs through CUDA minor version "
                                                      f"compatibility, except PTX JIT and APIs newer than {host_cuda}"))
        else:
            reasons.append(speed("cuda", "fits", f"CUDA {cuda} runs on driver {driver or '?'} "
                                                      f"(CUDA up to {host_cuda})"))
    elif cuda:
        reasons.append(note("cuda", f"needs CUDA {cuda}; the host's CUDA support is not known"))
    bad = [a for a in archs if gpu_arch_name(a) is None]
    archs = [name for a in archs if (name := gpu_arch_name(a)) is not None]
    host_bad = [a for a in nvidia.architectures if gpu_arch_name(a) is None]
    host_archs = [name for a in nvidia.architectures if (name := gpu_arch_name(a)) is not None]
    if bad:
        text = ", ".join(repr(b) for b in bad)
        if archs:
            reasons.append(note("gpu", f"hardware.gpu.nvidia.architecture {text} is not a CUDA architecture "
                                        "(sm_XY, compute_XY or X.Y): left out of the comparison"))
        else:
            reasons.append(unknown("gpu",
                                  f"hardware.gpu.nvidia.architecture {text} is not a CUDA architecture (sm_XY, "
                                  "compute_XY or X.Y): cannot compare GPUs"))
            return reasons
    if host_bad:
        reasons.append(note("gpu", f"the host GPU architecture {', '.join(repr(b) for b in host_bad)} is not a "
                                    "CUDA architecture: left out of the comparison"))
    if archs and host_archs:
        reasons.extend(_arch_fit(archs, host_archs, minor_compat, cuda))
    elif archs:
        reasons.append(note("gpu", f"built for {','.join(archs)}; the host GPUs' compute capability is not known"))
    else:
        reasons.append(note("gpu", "no hardware.gpu.nvidia.architecture: cannot check the GPU architecture"))
    return reasons


def _arch_fit(archs: list[str], host_archs: list[str], minor_compat: bool, cuda: str | None) -> list[Reason]:
    reasons = []
    for host in host_archs:
        sass = [a for a in archs if sass_runs(a, host)]
        ptx = [a for a in archs if ptx_jits(a, host)]
        if sass:
            exact = [a for a in sass if _gpu_arch(a)[1:3] == _gpu_arch(host)[1:3]]  # type: ignore[index]
            best = exact[0] if exact else sass[-1]
            reasons.append(speed("gpu", "sass_exact" if exact else "sass_older_minor",
                                  f"{best} machine code runs on the host's {host} GPUs"))
        elif ptx and minor_compat:
            reasons.append(red("gpu", f"no machine code for the host's {host}; its {ptx[-1]} PTX was made by CUDA "
                                       f"{cuda}, which this older driver cannot JIT-compile"))
        elif ptx:
            reasons.append(speed("gpu", "ptx_jit", f"no machine code for the host's {host}; {ptx[-1]} PTX is "
                                                    "JIT-compiled by the driver at start-up"))
        else:
            reasons.append(red("gpu", f"built for {','.join(archs)}; this host's GPUs are {host}: no machine code "
                                       f"runs on {host} and no PTX to JIT, so kernels will not launch",
                                "SASS runs only on the same major version with an equal or newer minor; PTX "
                                "JITs on any equal or newer compute capability"))
    return reasons


def _gfx(text: str) -> str:
    """``GFX90A:xnack-`` -> ``gfx90a``: the target, without its feature settings."""
    return text.strip().lower().partition(":")[0]


def _amd(values: Mapping[str, str], fp: Fingerprint) -> list[Reason]:
    wanted = _items(values.get(AMD_ARCH))
    amd = fp.gpu.amd if fp.gpu else None
    if amd is None or not amd.architectures:
        return [speed("gpu", "no_gpu", f"GPU build ({','.join(wanted)}) on a host without an AMD GPU: only CPU "
                                          "code paths can run, if the application has them")]
    reasons = []
    targets = {_gfx(w) for w in wanted}
    for host in amd.architectures:
        if _gfx(host) in targets:
            reasons.append(speed("gpu", "sass_exact", f"{host} code objects run on the host's {host} GPUs"))
        else:
            reasons.append(red("gpu", f"built for {','.join(wanted)}; this host's GPUs are {host}: AMD code objects "
                                       "run only on the gfx target they were built for"))
    return reasons


def _gpu(values: Mapping[str, str], fp: Fingerprint) -> list[Reason]:
    """NVIDIA and AMD builds; an image built for both is judged for the GPUs this host has."""
    nvidia_build = any(values.get(k) for k in (CUDA, NV_ARCH, NV_DRIVER))
    amd_build = bool(values.get(AMD_ARCH))
    if nvidia_build and amd_build:
        has_nvidia = bool(fp.gpu and fp.gpu.nvidia)
        has_amd = bool(fp.gpu and fp.gpu.amd and fp.gpu.amd.architectures)
        if has_nvidia and has_amd:  # either vendor's code runs: the better fit counts
            options = [_nvidia(values, fp), _amd(values, fp)]
            return max(options, key=lambda rs: min((RANK.get(r.level, 4) for r in rs), default=4))
        if has_nvidia:
            return _nvidia(values, fp)
        if has_amd:
            return _amd(values, fp)
    reasons = []
    if nvidia_build:
        reasons.extend(_nvidia(values, fp))
    if amd_build:
        reasons.extend(_amd(values, fp))
    return reasons


# -- MPI, kernel -------------------------------------------------------------------------------


def _abi(implementation: str | None, version: str | None, given: str | None) -> str | None:
    if given:
        return given
    from hpcannotate.model.domain import mpi_abi_version

    return mpi_abi_version(implementation, version) if implementation else None


def _mpi(values: Mapping[str, str], fp: Fingerprint) -> list[Reason]:
    impl = values.get(MPI)
    if not impl or impl == "none":
        return []
    if impl == "threadmpi":
        return [note("mpi", "thread-MPI: runs on one node; the interconnect is not used")]
    version = values.get(MPI_VERSION)
    name = f"{impl} {version}" if version else impl
    mode = values.get(MPI_MODE) or "none"
    net = fp.interconnect
    kinds = ", ".join(net.kinds) or "a fast network"
    host_mpi = fp.software.primary_mpi
    if mode == "none":
        if not net.fast:
            return [speed("mpi", "no_fast_network", f"{name} from the image; this host has no fast interconnect it "
                                              "would miss")]
        own = sorted(set(_items(values.get(FRAMEWORK))) & set(net.frameworks) - {"tcp", "none"})
        if own:
            return [speed("mpi", "own_framework", f"{name} cannot be replaced (no mpi.portability.mode) and this host "
                                              f"has a fast interconnect ({kinds}): the image's own {','.join(own)} "
                                              "may reach it with the devices mounted, but not as the site's MPI")]
        return [speed("mpi", "tcp_fallback", f"{name} cannot be replaced (no mpi.portability.mode) and this host has a "
                                          f"fast interconnect ({kinds}): the image's MPI will likely fall back "
                                          "to TCP")]
    if mode == "ucx_replace":
        if net.ucx:
            version = f" {net.ucx.version}" if net.ucx.version else ""
            return [speed("mpi", "replaced", f"ucx_replace: the host's UCX{version} can be swapped in")]
        return [speed("mpi", "no_host_library", "asks for the host's UCX (ucx_replace); this host has no UCX: "
                                                "the image's own runs")]
    if mode == "libfabric_inject":
        if net.libfabric:
            version = f" {net.libfabric.version}" if net.libfabric.version else ""
            return [speed("mpi", "replaced", f"libfabric_inject: the host's libfabric{version} can be injected")]
        return [speed("mpi", "no_host_library", "asks for the host's libfabric (libfabric_inject); this host has none: "
                                          "the image's own runs")]
    # mpi_replace / mpich_replace: the host MPI takes the image's place, through the ABI
    if host_mpi is None:
        if net.fast:
            return [speed("mpi", "no_host_library", f"asks for MPI replacement ({mode}) but this host has no MPI to "
                                              f"inject: the image's {name} runs, likely over TCP instead of {kinds}")]
        return [note("mpi", f"asks for MPI replacement ({mode}); this host has no MPI, so the image's own runs")]
    host_name = f"{host_mpi.implementation} {host_mpi.version or ''}".strip()
    image_abi = _abi(impl, version, values.get(MPI_ABI))
    host_abi = _abi(host_mpi.implementation, host_mpi.version, host_mpi.abi_version)
    if not image_abi or not host_abi:
        return [note("mpi", f"{mode}: the MPI ABI of the image ({image_abi or '?'}) or of the host's {host_name} "
                             f"({host_abi or '?'}) is not known: cannot check the replacement")]
    if version_key(image_abi, 1) != version_key(host_abi, 1):
        return [speed("mpi", "abi_mismatch", f"{mode}: the image's {impl} has MPI ABI {image_abi}, the host's "
                                          f"{host_name} has ABI {host_abi}: the host MPI cannot replace it")]
    reasons = [speed("mpi", "replaced", f"{name} (ABI {image_abi}) can be replaced by the host's {host_name} "
                                         f"(ABI {host_abi})")]
    image_glibc, host_glibc = values.get(GLIBC), fp.os.libc_version if fp.os.libc == "glibc" else None
    if image_glibc and host_glibc and version_key(image_glibc) < version_key(host_glibc):
        reasons.append(speed("mpi", "old_glibc", f"the host's {host_mpi.implementation} is built against glibc "
                                                 f"{host_glibc}; the image has glibc {image_glibc}: the injected MPI "
                                                 "libraries may not load"))
    return reasons


def _kernel(values: Mapping[str, str], fp: Fingerprint) -> list[Reason]:
    reasons = []
    minimum, running = values.get(KERNEL_MIN), fp.os.kernel_version
    if minimum and running:
        if version_key(running) < version_key(minimum):
            reasons.append(red("kernel", f"needs host kernel >= {minimum}; this host runs {running}"))
        else:
            reasons.append(speed("kernel", "fits", f"host kernel {running} >= {minimum}"))
    elif minimum:
        reasons.append(note("kernel", f"needs host kernel >= {minimum}; the host's kernel version is not known"))
    lacking, unknown = [], []
    for item in _items(values.get(EXPECTATION)):
        offered = _offers(fp, item)
        if offered is False:
            lacking.append(item)
        elif offered is None:
            unknown.append(item)
    if lacking:
        reasons.append(speed("kernel", "feature_missing", f"expects {', '.join(lacking)} from the host kernel; "
                                                    "this host does not offer it"))
    if unknown:
        reasons.append(note("kernel", f"expects {', '.join(unknown)} from the host kernel; whether this host "
                                       "offers it is not known"))
    return reasons


def _offers(fp: Fingerprint, feature: str) -> bool | None:
    """Whether the host offers a kernel feature: True, False, or None when the fingerprint cannot tell."""
    from hpcannotate.host.system import CONTAINER_FILESYSTEMS

    if feature == "user-namespaces":
        return fp.os.user_namespaces.enabled
    if feature in CONTAINER_FILESYSTEMS:
        return (feature in fp.os.filesystems) if fp.os.filesystems else None
    return None


@functools.cache
def _mandatory() -> tuple[tuple[str, str], ...]:
    return tuple((spec.key, spec.short) for spec in catalogue().mandatory())


def _annotations(values: Mapping[str, str], problems: Sequence) -> list[Reason]:
    reasons = []
    missing = [short for key, short in _mandatory() if key not in values]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        reasons.append(unknown("annotations",
                              f"mandatory annotation{plural} missing: {', '.join(missing)}: cannot tell how it "
                              "runs here"))
    target = values.get(TARGET)
    if target:
        from hpcannotate.model.targets import is_target, suggest_target

        if not is_target(target):
            hint = suggest_target(target)
            reasons.append(unknown("annotations",
                                  f"hardware.cpu.optimized.version {target!r} is not an archspec target"
                                  + (f" (did you mean {hint}?)" if hint else "") + ": cannot compare CPUs"))
    mandatory = {key for key, _ in _mandatory()}
    for problem in problems:
        if problem.key == TARGET or (problem.key in mandatory and problem.key not in values):
            continue  # said above: a missing mandatory key, a target that is not archspec's
        reasons.append(note("annotations", str(problem).removeprefix(keys.SUPERCONTAINERS)))
    return reasons


def _cpu(values: Mapping[str, str], fp: Fingerprint, platform: dict | None, cache: dict | None = None) -> list[Reason]:
    """The CPU findings; ``cache`` (one host) keeps them per target and architecture: many entries share them."""
    if cache is None:
        return cpu_fit(values.get(TARGET), fp, platform)
    key = (values.get(TARGET), (platform or {}).get("architecture"))
    if key not in cache:
        cache[key] = cpu_fit(key[0], fp, platform)
    return list(cache[key])


def _plain(values: Mapping[str, str]) -> dict[str, str]:
    """Canonical key -> value once: ``Annotations`` resolves spellings on every lookup, and assess looks often."""
    from hpcannotate.model.annotations import Annotations

    if isinstance(values, Annotations):
        return {entry.key: entry.value for entry in values.entries()}
    return dict(values)


CHECKS: tuple[Callable[..., list[Reason]], ...] = (_gpu, _mpi, _kernel)
ORDER = {RED: 0, UNKNOWN: 1, ORANGE: 2, GREEN: 3, NOTE: 4}


def assess(values: Mapping[str, str], fp: Fingerprint, platform: dict | None = None,
           problems: Sequence = (), *, cache: dict | None = None) -> Assessment:
    """The verdict, score and reasons for one image (its merged annotations) on the host ``fp``.

    ``cache``: a dict kept across calls for the same ``fp`` (``rank_entries`` passes one).
    """
    rules = policy()
    values = _plain(values)
    reasons = _annotations(values, problems) + _cpu(values, fp, platform, cache)
    for check in CHECKS:
        reasons.extend(check(values, fp))
    counted = [r for r in reasons if r.level != NOTE]
    levels = {r.level for r in counted}
    product = math.prod(r.factor for r in counted if r.level in (GREEN, ORANGE))
    if RED in levels:
        verdict, score, product = RED, 0, 0.0
    elif UNKNOWN in levels:
        verdict, score = UNKNOWN, rules.unknown_score
    else:
        score = round(product * 100)
        if score <= rules.red_at_most:
            verdict = RED
            reasons.append(red("speed", f"runs, but at an expected {score}% of bare-metal speed (the findings "
                                        f"below multiplied): {rules.red_at_most}% and less counts as not running"))
        else:
            verdict = GREEN if score >= rules.green_from else ORANGE
    reasons.sort(key=lambda r: ORDER[r.level])  # stable: checks keep their order within a level
    return Assessment(verdict, score, reasons, product)


# -- many references -------------------------------------------------------------------------


@dataclass
class EntryMatch:
    entry: PlatformEntry
    verdict: str
    score: int
    reasons: list[Reason]
    rank: int = 0
    factor: float = 0.0  # the exact expected fraction of bare-metal speed the score rounds

    @property
    def target(self) -> str | None:
        return self.entry.annotations.get(TARGET)

    def to_json(self) -> dict:
        return {
            "rank": self.rank,
            "reference": self.entry.reference,
            "pull": self.entry.pull,
            "digest": self.entry.digest,
            "platform": self.entry.platform,
            "target": self.target,
            "app": app_of(self.entry.annotations),
            "verdict": self.verdict,
            "score": self.score,
            "factor": round(self.factor, 4),
            "reasons": [r.to_json() for r in self.reasons],
        }

    def sort_key(self) -> tuple:
        """Fastest first, deterministically: verdict, expected speed, CPU fit, the deeper target, then names."""
        return (*speed_order(self.verdict, self.factor, self.reasons, self.target), self.entry.reference,
                self.entry.digest or "")


def speed_order(verdict: str, factor: float, reasons: Sequence[Reason], target: str | None) -> tuple:
    """The ranking key of one judged image without its names (smaller is faster): ``match``, ``resolve``
    and the site report all order by it, so they recommend the same image."""
    cpu = math.prod(r.factor for r in reasons if r.check == "cpu" and r.level in (GREEN, ORANGE))
    depth = _target_depth(target)
    return (-RANK[verdict], -factor, -cpu, tuple(-d for d in depth))


def _target_depth(name: str | None) -> tuple[int, int]:
    import archspec.cpu

    target = archspec.cpu.TARGETS.get(name or "")
    return (len(target.ancestors), len(target.features)) if target is not None else (-1, -1)


def app_of(values: Mapping[str, str]) -> str | None:
    return values.get(APP) or values.get(TITLE)


@dataclass
class MatchReport:
    host: Fingerprint
    reads: list[ImageRead]
    ranking: list[EntryMatch] = field(default_factory=list)
    app: str | None = None
    left_out: int = 0  # entries of other applications (--app)

    @property
    def best(self) -> EntryMatch | None:
        return self.ranking[0] if self.ranking else None

    @property
    def use(self) -> EntryMatch | None:
        """The image to use: the best one, when it runs (green or orange)."""
        best = self.best
        return best if best is not None and best.verdict in (GREEN, ORANGE) else None

    @property
    def errors(self) -> list[ImageRead]:
        return [r for r in self.reads if r.error]

    def to_json(self) -> dict:
        best = self.best
        per_ref = []
        for read in self.reads:
            mine = [m for m in self.ranking if m.entry.reference == read.reference and not read.error]
            top = mine[0] if mine else None
            per_ref.append({
                "reference": read.reference,
                "digest": read.digest,
                "mediaType": read.media_type,
                "index": read.is_index,
                "verdict": top.verdict if top else None,
                "score": top.score if top else None,
                "reasons": [r.to_json() for r in top.reasons] if top else [],
                "entries": [m.to_json() for m in mine],
                "error": read.error,
                "requests": read.requests,
            })
        return {
            "host": {"source": self.host.source, "target": self.host.cpu.target,
                     "annotations": dict(self.host.annotations)},
            "app": self.app,
            "verdict": best.verdict if best else None,
            "score": best.score if best else None,
            "reasons": [r.to_json() for r in best.reasons] if best else [],
            "use": self.use.entry.pull if self.use else None,
            "ranking": [m.to_json() for m in self.ranking],
            "references": per_ref,
            "left_out": self.left_out,
            "errors": [{"reference": r.reference, "error": r.error} for r in self.errors],
        }


def rank_entries(entries: Sequence[PlatformEntry], fp: Fingerprint) -> list[EntryMatch]:
    """Assess every platform entry on ``fp``; fastest first (ranks set from 1), whatever their order.

    The library call for anything that picks an image for a host (``edf``, a scheduler plugin,
    a discovery site): entries come from ``imageread.read_many``/``entries_of`` or are built by
    hand as ``PlatformEntry`` objects.
    """
    matches = []
    cache: dict = {}
    for entry in entries:
        found = assess(entry.annotations, fp, entry.platform, entry.problems, cache=cache)
        matches.append(EntryMatch(entry, found.verdict, found.score, found.reasons, factor=found.factor))
    matches.sort(key=EntryMatch.sort_key)
    for n, m in enumerate(matches, 1):
        m.rank = n
    return matches


def rank(reads: Sequence[ImageRead], fp: Fingerprint, app: str | None = None) -> MatchReport:
    """Assess every entry of every reference read (of application ``app`` when given), fastest first."""
    report = MatchReport(fp, list(reads), app=app)
    entries = []
    for read in reads:
        for entry in read.entries:
            if app is not None and (app_of(entry.annotations) or "").lower() != app.lower():
                report.left_out += 1
                continue
            entries.append(entry)
    report.ranking = rank_entries(entries, fp)
    return report


def match(refs: Sequence[str], fp: Fingerprint, transport: Transport | None = None, *, app: str | None = None,
          workers: int | None = None, configs: str = "needed") -> MatchReport:
    """Read ``refs`` concurrently (manifests; a config only where they lack a mandatory key: ``configs``)
    and rank every platform entry on ``fp``."""
    from hpcannotate.image.read import DEFAULT_WORKERS, Transport, read_many

    reads = read_many(list(refs), transport or Transport(), workers=workers or DEFAULT_WORKERS, configs=configs)
    return rank(reads, fp, app)
