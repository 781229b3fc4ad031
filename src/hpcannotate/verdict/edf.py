"""A CSCS Environment Definition File (EDF) for the Container Engine, from an image's annotations.

Seed 004 (CSCS, *Containers-First User Environments on HPE Cray EX*) shows the EDF: a TOML
file with ``image``, ``workdir``, ``entrypoint``, ``writable``, ``mounts``, ``[env]`` and
``[annotations]`` that switch on the Container Engine's hooks. The image's annotations say
which hooks it needs, so the site does not have to guess:

- the CXI (Slingshot libfabric) hook, when the image talks libfabric (``communication.framework``
  includes libfabric, or ``mpi.portability.mode`` is libfabric_inject) or is an MPICH-ABI MPI
  meant to be replaced (``mpich_replace``/``mpi_replace``);
- the AWS OFI NCCL hook (NCCL over libfabric), when the image has NCCL and CUDA 11 or 12,
  with the plugin variant of that CUDA major version.

Hook keys: the Container Engine's documentation (docs.cscs.ch, "Resource and hooks") spells
them ``com.hooks.cxi.enabled = "true"`` and ``com.hooks.aws_ofi_nccl.enabled = "true"`` with
``com.hooks.aws_ofi_nccl.variant = "cuda12"``, string values; that is the default here. The
May 2024 talk (seed 004) used the pathfinder's spelling ``com.hooks.cxi.enable = true`` and
``com.hooks.ofi_nccl.version = "cuda12"``: ``hook_style="seed-2024"`` writes that instead.

``image`` is in Enroot's ``[REGISTRY#]IMAGE[:TAG]`` form: Docker Hub images without a registry
part (Enroot's default), every other registry before a ``#``. Enroot pulls by tag and picks
the child of an index by architecture only (not by ``platform.variant``), so for an index
holding several images of one architecture (one per CPU target) the EDF names the per-target
tag that ``hpcannotate build`` pushes (``TAG-TARGET``) unless the chosen image is the first of
its architecture.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.keynames import (
    COMMUNICATION_FRAMEWORK,
    HARDWARE_CPU_OPTIMIZED_VERSION,
    HARDWARE_GPU_NVIDIA_CUDA_VERSION,
    MPI_IMPLEMENTATION,
    MPI_PORTABILITY_MODE,
    NCCL_VERSION,
)

if TYPE_CHECKING:
    from hpcannotate.host import Fingerprint
    from hpcannotate.image.read import ImageRead, PlatformEntry, Transport
    from hpcannotate.registry.reference import Reference

HOOK_STYLES = ("current", "seed-2024")
MPICH_ABI = frozenset({"mpich", "mvapich2", "intelmpi", "cray-mpich"})
NCCL_VARIANTS = {"11": "cuda11", "12": "cuda12"}
_MOUNT_SIDE = re.compile(r"^(/|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class EdfOptions:
    mounts: list[str] = field(default_factory=list)
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: bool | None = None  # None: decide from the image
    writable: bool = False
    hook_style: str = "current"
    pin: bool = True  # image by digest (the chosen image, immutable); False: by tag, as Enroot pulls tags


@dataclass
class Edf:
    data: dict
    reference: str  # what was read
    pull: str  # the image the EDF names, as a registry reference
    entry: PlatformEntry
    warnings: list[str] = field(default_factory=list)

    def toml(self) -> str:
        import tomli_w

        header = (f"# CSCS Environment Definition File written by hpcannotate from {self.entry.pull}\n"
                  f"# target {self.entry.annotations.get(HARDWARE_CPU_OPTIMIZED_VERSION, '?')}, "
                  f"platform {self.entry.platform_text}\n")
        return header + tomli_w.dumps(self.data)


def check_mount(text: str) -> str:
    """``SRC:DST`` or ``SRC:DST:ro`` with absolute paths (``${SCRATCH}/data`` counts as absolute)."""
    parts = text.split(":")
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        parts = parts[:2]
    if len(parts) != 2 or not all(_MOUNT_SIDE.match(p) for p in parts):
        raise InputError(f"--mount {text}: expected SRC:DST[:ro] with absolute paths (or ${{VAR}}/... paths)")
    return text


def check_env(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not _ENV_NAME.match(name):
        raise InputError(f"--env {text}: expected NAME=VALUE")
    return name, value


def pinned_image_name(reference: Reference, digest: str) -> str:
    """Enroot's ``[REGISTRY#]IMAGE@DIGEST``: the exact image chosen, which a moved tag cannot change."""
    from hpcannotate.registry.reference import DOCKER_HUB

    if reference.is_layout:
        raise InputError(f"{reference}: an EDF names an image in a registry; push the OCI layout first "
                         "(hpcannotate build --push, skopeo copy)")
    registry = "" if reference.registry == DOCKER_HUB else f"{reference.registry}#"
    return f"{registry}{reference.repository}@{digest}"


def image_name(reference: Reference, tag: str | None = None) -> str:
    """Enroot's ``[REGISTRY#]IMAGE[:TAG]`` (Docker Hub without a registry part)."""
    from hpcannotate.registry.reference import DOCKER_HUB

    if reference.is_layout:
        raise InputError(f"{reference}: an EDF names an image in a registry; push the OCI layout first "
                         "(hpcannotate build --push, skopeo copy)")
    if reference.digest and not tag:
        raise InputError(f"{reference}: Enroot pulls by tag, not by digest: name the image by a tag")
    registry = "" if reference.registry == DOCKER_HUB else f"{reference.registry}#"
    repository = reference.repository
    return f"{registry}{repository}:{tag or reference.tag or 'latest'}"


def hook_annotations(values: Mapping[str, str], style: str = "current") -> tuple[dict, list[str]]:
    """The ``[annotations]`` table the image's annotations call for (nested: TOML's dotted keys)."""
    if style not in HOOK_STYLES:
        raise InputError(f"--hook-style {style}: expected one of {', '.join(HOOK_STYLES)}")
    frameworks = {f.strip() for f in values.get(COMMUNICATION_FRAMEWORK, "").split(",")}
    mode = values.get(MPI_PORTABILITY_MODE, "none")
    impl = values.get(MPI_IMPLEMENTATION, "none")
    warnings: list[str] = []
    hooks: dict[str, dict[str, object]] = {}
    if "libfabric" in frameworks or mode == "libfabric_inject" or (
            impl in MPICH_ABI and mode in ("mpich_replace", "mpi_replace")):
        hooks["cxi"] = {"enabled": "true"} if style == "current" else {"enable": True}
    cuda, nccl = values.get(HARDWARE_GPU_NVIDIA_CUDA_VERSION), values.get(NCCL_VERSION)
    if cuda and nccl:
        major = cuda.split(".")[0]
        variant = NCCL_VARIANTS.get(major)
        if variant is None:
            warnings.append(f"NCCL {nccl} with CUDA {cuda}: no OFI NCCL hook variant is known for CUDA {major}; "
                            "the hook is left off")
        elif style == "current":
            hooks["aws_ofi_nccl"] = {"enabled": "true", "variant": variant}
        else:
            hooks["ofi_nccl"] = {"version": variant}
    return ({"com": {"hooks": hooks}} if hooks else {}), warnings


def wants_entrypoint(entry: PlatformEntry, config: dict) -> bool:
    """Run the image's entrypoint only when the environment may live there and not in ENV.

    Only the two checks that decide it run (``entrypoint`` and ``environment`` of ``check``), with
    the inputs ``check_image_entry`` gives them.
    """
    from hpcannotate.verdict.check import PROFILE_MARKER, judge_entrypoint, judge_environment

    inner = config.get("config") or {}
    entrypoint = [str(a) for a in inner.get("Entrypoint") or []]
    if not entrypoint:
        return False
    env = {}
    for item in inner.get("Env") or []:
        name, _, value = str(item).partition("=")
        env[name] = value
    history = [str(h.get("created_by") or "") for h in config.get("history") or [] if isinstance(h, dict)]
    profiles = sorted({m.group(0) for line in history for m in re.finditer(r"/etc/profile\.d/[\w.+-]+", line)})
    entry_check, _ = judge_entrypoint(entrypoint, entry.annotations.get(PROFILE_MARKER), None,
                                      "its script is in a layer, which is not read")
    return not (judge_environment(entrypoint, env, profiles).passed and entry_check.passed)


def choose(read: ImageRead, fp: Fingerprint | None,
           others: Sequence[ImageRead] = ()) -> tuple[PlatformEntry, list[str]]:
    """The entry the EDF is for: ``resolve``'s choice among ``read`` and ``others`` (its per-target
    tags) for the host (``fp``, or this machine).

    When nothing fits, the best entry all the same, with a warning (a site admin may prepare
    files for other nodes). A reference with one image when this host cannot be fingerprinted:
    that image, with a warning.
    """
    from hpcannotate.host import fingerprint
    from hpcannotate.verdict.resolve import rank_reads

    if fp is not None:
        host = fp
    else:
        try:
            host = fingerprint()
        except HpcAnnotateError as exc:
            if len(read.entries) == 1 and not others:  # nothing to choose: the EDF does not depend on the host
                return read.entries[0], [f"{read.reference} was not checked against this host ({exc})"]
            raise
    best = rank_reads([read, *others], host)[0]
    warnings = []
    if not best.verdict.runs:
        reason = best.verdict.reasons[0]["message"] if best.verdict.reasons else best.verdict.verdict
        warnings.append(f"no image of {read.reference} fits {'the given host' if fp else 'this host'} "
                        f"(best: {best.entry.pull}, {best.verdict.verdict}: {reason})")
    return best.entry, warnings


def _tag_for(read: ImageRead, entry: PlatformEntry, transport: Transport) -> tuple[str | None, list[str]]:
    """A tag Enroot can pull that yields ``entry``: the reference's own, or hpcannotate's TAG-TARGET."""
    from hpcannotate.registry.reference import parse_reference
    from hpcannotate.registry.repository import open_repository

    reference = parse_reference(read.reference)
    if not read.is_index:
        return reference.tag, []
    def arch(e: PlatformEntry) -> tuple:
        return ((e.platform or {}).get("os"), (e.platform or {}).get("architecture"))

    # Enroot ignores platform.variant: it takes the first image of the architecture
    same_platform = [e for e in read.entries if arch(e) == arch(entry)]
    if same_platform[0] is entry:
        return reference.tag, []
    target = entry.annotations.get(HARDWARE_CPU_OPTIMIZED_VERSION)
    if reference.tag and target:
        candidate = f"{reference.tag}-{target}"
        repo = open_repository(reference.with_tag(candidate), authfile=transport.authfile,
                               tls_verify=transport.tls_verify, plain_http=transport.plain_http)
        try:
            if repo.resolve(candidate) == entry.digest:
                return candidate, []
        finally:
            repo.close()
    arch_text = "/".join(p or "?" for p in arch(entry))
    return reference.tag, [f"{read.reference} holds {len(same_platform)} {arch_text} images and no "
                           f"per-target tag points at the {target or 'chosen'} one: Enroot pulls the first "
                           f"{arch_text} image of the index"]


def build_edf(read: ImageRead, entry: PlatformEntry, config: dict, options: EdfOptions, tag: str | None) -> dict:
    """The EDF's main table; ``options.mounts`` must have passed ``check_mount`` (``edf`` does that first)."""
    from hpcannotate.registry.reference import parse_reference

    inner = config.get("config") or {}
    reference = parse_reference(read.reference)
    data: dict = {"image": pinned_image_name(reference, entry.digest) if options.pin else image_name(reference, tag)}
    workdir = options.workdir or inner.get("WorkingDir") or None
    if workdir:
        data["workdir"] = workdir
    data["entrypoint"] = options.entrypoint if options.entrypoint is not None else wants_entrypoint(entry, config)
    if options.writable:
        data["writable"] = True
    data["mounts"] = list(options.mounts)  # checked by edf() before anything is read
    data["env"] = dict(options.env)
    return data


def edf(ref: str, options: EdfOptions | None = None, *, fp: Fingerprint | None = None,
        transport: Transport | None = None) -> Edf:
    """Read ``ref`` (manifests and configs only) and write the EDF for the image that fits the host."""
    from hpcannotate.image.read import Transport, image_config
    from hpcannotate.registry.reference import parse_reference

    options = options or EdfOptions()
    transport = transport or Transport()
    reference = parse_reference(ref)
    if reference.is_layout:
        image_name(reference)  # raises: an EDF names a registry image
    for mount in options.mounts:
        check_mount(mount)
    from hpcannotate.verdict.resolve import gather

    reads, gathered = gather(ref, transport)
    read = reads[0]
    entry, warnings = choose(read, fp, reads[1:])
    warnings = gathered + warnings
    more: list[str] = []
    if options.pin:
        tag = None
    else:
        tag, more = _tag_for(read, entry, transport)
    config = image_config(ref, entry, transport)
    data = build_edf(read, entry, config, options, tag)
    hooks, hook_warnings = hook_annotations(entry.annotations, options.hook_style)
    data["annotations"] = hooks
    return Edf(data, read.reference, data["image"], entry, warnings + more + hook_warnings)


def flatten(table: Mapping, prefix: str = "") -> dict[str, object]:
    """Nested TOML tables as dotted keys (``com.hooks.cxi.enabled``), as the Container Engine reads them."""
    flat: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
