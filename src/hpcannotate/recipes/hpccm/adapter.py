"""HPCCM recipes: evaluate the recipe in a worker, then turn its building blocks into annotations.

The recipe runs in a worker process (``hpccm_eval.evaluate``), which answers
with plain facts: the stages, and for the image the final stage builds every
building block (nested ones included, and those copied in from a build stage
by ``runtime()`` or ``copy(_from=...)``) with the recipe line that added it.
``interpret`` turns those facts into keys; ``hpcannotate.hpccm.annotations``
uses the same function inside hpccm's own process, so there is one mapping.

Only what a block or the base image states is set: hpccm's defaults count
(``openmpi()`` installs hpccm's default version), a git checkout or a
distribution package has no version, and two blocks that disagree leave the
key out with the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from hpcannotate.errors import InputError
from hpcannotate.files import read_head
from hpcannotate.model.catalogue import catalogue, is_managed
from hpcannotate.model.keynames import (
    APP_NAME,
    APP_VERSION,
    COMMUNICATION_FRAMEWORK,
    COMPILER_IMPLEMENTATION,
    COMPILER_VERSION,
    HARDWARE_GPU_NVIDIA_ARCHITECTURE,
    HARDWARE_GPU_NVIDIA_CUDA_VERSION,
    LIBFABRIC_VERSION,
    MPI_ABI_VERSION,
    MPI_IMPLEMENTATION,
    MPI_VERSION,
    NCCL_VERSION,
    UCX_VERSION,
)
from hpcannotate.recipes.base import MODE_KEY, TARGET_KEY, Adapter, Inference, InferOptions, apply_target
from hpcannotate.recipes.baseimage import os_from_image
from hpcannotate.recipes.facts import (
    App,
    BaseOs,
    Compiler,
    CpuTarget,
    Cuda,
    Fabric,
    Fact,
    Mpi,
    Recipe,
    Sourced,
    fact_for,
)
from hpcannotate.recipes.isolation import malformed, run_isolated
from hpcannotate.recipes.packages import (
    COMPILER_PACKAGES,
    INFRASTRUCTURE,
    MPI_PACKAGES,
    bundled_mpi_reason,
    cuda_arch_to_sm,
    major_minor,
    mpi_abi_version,
)

EVALUATE = "hpcannotate.recipes.hpccm.evaluate:evaluate"
RECIPE_MARKERS = re.compile(r"\bStage[0-9]+\s*\+=|\bbaseimage\s*\(|\bhpccm\.(?:include|building_blocks|primitives)\b")

MPI_BLOCKS = ("openmpi", "mpich", "mvapich2", "mvapich2_gdr", "intel_mpi", "hpcx")
COMPILER_BLOCKS = {"gnu": "gnu", "llvm": "llvm", "nvhpc": "nvhpc", "pgi": "pgi", "intel_psxe": "intel",
                   "arm_allinea_studio": "armclang"}
GENERIC_BLOCKS = ("generic_autotools", "generic_cmake", "generic_build")
PACKAGE_BLOCKS = ("packages", "apt_get", "yum")
# OS package names (apt and yum spellings) -> MPI or fabric they install
OS_PACKAGE_MPI = re.compile(r"^(?:lib)?(openmpi|mpich|mvapich2)(?:[0-9.]*)(?:-(?:bin|dev|devel|common))?$")
# libfabric is always spelled with its lib prefix: Debian's `fabric` is a Python SSH tool, not libfabric
OS_PACKAGE_FABRIC = re.compile(r"^(?:(?:lib)?(ucx)|lib(fabric))(?:[0-9]*)(?:-(?:dev|devel|bin|tools|utils))?$")
CTOOLCHAIN = {"nvc": "nvhpc", "pgcc": "nvhpc", "gcc": "gcc", "clang": "llvm", "icc": "intel", "icx": "oneapi",
              "armclang": "armclang"}
ARCHIVE_SUFFIX = re.compile(r"\.(?:tar\.gz|tar\.bz2|tar\.xz|tgz|tbz2|txz|zip|tar|git)$")
NAME_VERSION = re.compile(r"^(?P<name>[A-Za-z][\w.+-]*?)[-_]v?(?P<version>[0-9][\w.+-]*)$")
MAX_FRAGMENT = 120
KOKKOS_GPU = re.compile(r"(?:KEPLER|MAXWELL|PASCAL|VOLTA|TURING|AMPERE|ADA|HOPPER|BLACKWELL)([0-9]{2,3})", re.I)


# ------------------------------------------------------------------ one object of the image
@dataclass
class Block:
    """One hpccm object from the facts, with where the recipe put it."""

    fact: dict
    recipe: Path

    @property
    def kind(self) -> str:
        return self.fact["kind"]

    @property
    def depth(self) -> int:
        return self.fact.get("depth", 0)

    def attr(self, name: str, default: Any = None) -> Any:
        value = self.fact.get("attrs", {}).get(name, default)
        return default if value is None else value

    @property
    def kwargs(self) -> dict:
        return self.fact.get("kwargs") or {}

    def explicit(self, name: str) -> bool:
        return name in self.kwargs

    def fragment(self, *names: str) -> str:
        """``openmpi(version='4.1.5')``: the block and the arguments a value came from (all when none named)."""
        shown = [f"{n}={self.kwargs[n]!r}" for n in (names or tuple(self.kwargs)) if n in self.kwargs]
        text = f"{self.kind}({', '.join(shown)})"
        return text if len(text) <= MAX_FRAGMENT else text[: MAX_FRAGMENT - 4] + "...)"

    def where(self, *names: str, note: str | None = None) -> dict:
        """Provenance arguments for ``Inference.set``: the recipe line and the fragment."""
        file = self.fact.get("file") or self.fact.get("made_file")
        line = self.fact.get("line") if self.fact.get("file") else self.fact.get("made_line")
        notes = [note] if note else []
        if self.fact.get("origin") in ("runtime", "copy") and self.fact.get("via_line"):
            via = "runtime()" if self.fact["origin"] == "runtime" else "copy()"
            notes.append(f"copied into the final stage by {via} at line {self.fact['via_line']}")
        return {"line": line, "fragment": self.fragment(*names), "note": "; ".join(notes) or None,
                "file": _other_file(file, self.recipe)}

    def configure_flags(self) -> list[str]:
        """Configure options the block passes, its own defaults and the recipe's with_/enable_ arguments."""
        flags = [str(o) for o in self.attr("configure_opts", []) if isinstance(o, str)]
        for key, value in self.kwargs.items():
            if key.startswith(("with_", "without_", "enable_", "disable_")) and value not in (False, None):
                flag = "--" + key.replace("_", "-")
                flags.append(flag if value is True else f"{flag}={value}")
        return flags

    def ospackages(self) -> list[str]:
        names: list[str] = []
        for key in ("ospackages", "apt", "yum"):
            value = self.attr(key) or self.kwargs.get(key) or []
            names.extend(str(v) for v in value if isinstance(v, str))
        return names


def _other_file(file: str | None, recipe: Path) -> str | None:
    """None for the main recipe (the inference's own path); an included file, spelled relative like the recipe."""
    if not file or os.path.abspath(file) == os.path.abspath(recipe):
        return None
    try:
        return str(recipe.parent / os.path.relpath(file, os.path.dirname(os.path.abspath(recipe))))
    except ValueError:  # another drive (Windows)
        return file


def source_name_version(block: Block) -> tuple[str | None, str | None]:
    """(name, version) of what a generic block builds, from its URL, package file or repository."""
    url = block.attr("url") or block.attr("package")
    if isinstance(url, str) and url:
        github = re.search(r"github\.com/[^/]+/([^/]+)/archive/(?:refs/(?:tags|heads)/)?(.+)$", url)
        if github:
            name, ref = github.group(1), ARCHIVE_SUFFIX.sub("", github.group(2))
            ref = ref.removeprefix(f"{name}-")
            return name, (ref[1:] if re.match(r"v[0-9]", ref) else ref)
        base = ARCHIVE_SUFFIX.sub("", url.rstrip("/").rsplit("/", 1)[-1])
        match = NAME_VERSION.match(base)
        return (match["name"], match["version"]) if match else (base or None, None)
    repository = block.attr("repository")
    if isinstance(repository, str) and repository:
        name = ARCHIVE_SUFFIX.sub("", repository.rstrip("/").rsplit("/", 1)[-1])
        ref = block.attr("branch") or ""
        version = ref[1:] if re.match(r"v[0-9]", ref) else (ref if re.match(r"[0-9]", ref) else None)
        return name or None, version
    return None, None


# ------------------------------------------------------------------ the facts, grouped
@dataclass
class Facts:
    raw: dict
    recipe: Path
    image: list[Block] = field(default_factory=list)
    build: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image = [Block(f, self.recipe) for f in self.raw.get("image", [])]
        self.build = [Block(f, self.recipe) for f in self.raw.get("build", [])]

    def of_kind(self, *kinds: str, blocks: Iterable[Block] | None = None) -> list[Block]:
        return [b for b in (self.image if blocks is None else blocks) if b.kind in kinds]

    @property
    def final_stage(self) -> dict:
        return next((s for s in self.raw.get("stages", []) if s["index"] == self.raw.get("final")), {})

    def base(self, stage: dict | None = None) -> Block | None:
        base = (stage or self.final_stage).get("base")
        return Block(base, self.recipe) if base else None

    def source_bases(self) -> list[Block]:
        sources = set(self.raw.get("sources", []))
        return [Block(s["base"], self.recipe) for s in self.raw.get("stages", []) if s["index"] in sources and
                s.get("base")]

    def own(self, *kinds: str, blocks: Iterable[Block] | None = None) -> list[Block]:
        """Blocks the recipe added itself, or through its own block classes.

        Those nested in hpccm's blocks (openmpi's generic_autotools, its packages)
        are how hpccm builds them and say nothing new.
        """
        return [b for b in self.of_kind(*kinds, blocks=blocks) if not b.fact.get("parent_hpccm")]

    def top_generic(self, blocks: Iterable[Block] | None = None) -> list[Block]:
        return self.own(*GENERIC_BLOCKS, blocks=blocks)


# ------------------------------------------------------------------ setting values safely
def stated(inference: Inference, value: str | None, where: dict) -> Sourced | None:
    """A value the recipe states, with where it says it; None for an empty one (nothing set, nothing warned)."""
    if value is None or str(value).strip() == "":
        return None
    return inference.sourced(str(value), **where)


def put(inference: Inference, fact: Fact) -> bool:
    """Add what the recipe states; ``Inference.add`` leaves out invalid values (and says why)."""
    return inference.add(fact.spelled_short())


def _unique(values: list) -> list:
    seen: list = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


# ------------------------------------------------------------------ base image
def cuda_from_image(image: str) -> tuple[str | None, str | None]:
    """(CUDA major.minor, None) from an image reference, or (None, reason) when it has none or several.

    A digest (``cuda:12.2.0-devel@sha256:...`` or ``cuda@sha256:...``) pins the image; the name and the tag
    still say what it is.
    """
    image, _, digest = image.partition("@")
    repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    last = repo.rsplit("/", 1)[-1]
    if re.fullmatch(r"cuda(?:[-_][a-z0-9_]+)?", last):
        match = re.match(r"([0-9]+\.[0-9]+)", tag)
        if match:
            return major_minor(match.group(1)), None
        if digest and not tag:
            return None, (f"the CUDA image {repo} is pinned by digest ({digest[:19]}...) without a tag, which "
                          "would say the CUDA version")
        return None, f"the CUDA image tag {tag or '(none)'!r} does not say the version"
    match = re.search(r"(?:^|[-_])cuda[-_]?([0-9]+\.[0-9]+)", tag)
    if match:
        return match.group(1), None
    if "cuda_multi" in tag or "cuda-multi" in tag:
        return None, f"{image} bundles several CUDA versions"
    return None, None


def nvhpc_image_version(image: str) -> str | None:
    match = re.search(r"(?:^|/)nvhpc:([0-9]{2}\.[0-9]+)", image)
    return match.group(1) if match else None


def arch_family(base: Block) -> str | None:
    """The CPU family of a base image, as hpccm's baseimage primitive decides it (None: the build host's)."""
    arch = str(base.attr("arch", "")).lower()
    if arch in ("aarch64", "arm64", "arm"):
        return "aarch64"
    if arch in ("ppc64le", "power"):
        return "ppc64le"
    if arch in ("x86_64", "amd64", "x86"):
        return "x86_64"
    image = str(base.attr("image", ""))
    if re.search(r"aarch64|arm64", image):
        return "aarch64"
    if "ppc64le" in image:
        return "ppc64le"
    return None


def infer_base(facts: Facts, inference: Inference) -> None:
    base = facts.base()
    if base is None:
        inference.warnings.append("the final stage has no baseimage()")
        return
    image = str(base.attr("image", ""))
    where = base.where("image")
    found = os_from_image(image)
    put(inference, BaseOs(image=stated(inference, image, where), name=stated(inference, found and found[0], where),
                          version=stated(inference, found and found[1], where)))


# ------------------------------------------------------------------ MPI
@dataclass
class Candidate:
    implementation: str
    version: str | None
    why_no_version: str | None
    block: Block
    names: tuple[str, ...]
    note: str | None = None


def _version_of(block: Block, default_note: bool = True) -> tuple[str | None, str | None, str | None]:
    """(version, reason it is unknown, note) for a block that builds one package."""
    if block.attr("repository"):
        return None, f"{block.kind} is built from the git repository {block.attr('repository')}", None
    if block.explicit("url") or block.explicit("package"):
        _, version = source_name_version(block)
        return version, None if version else f"{block.kind} is built from {block.attr('url')}", None
    version = block.attr("version")
    if version is None:
        return None, f"{block.kind}() does not say its version", None
    note = None if block.explicit("version") or not default_note else f"hpccm's default for {block.kind}()"
    return str(version), None, note


def mpi_candidates(facts: Facts) -> list[Candidate]:
    """MPI libraries in the final image, most explicit first: MPI blocks, then generic builds."""
    found = []
    for block in facts.of_kind(*MPI_BLOCKS):
        implementation = MPI_PACKAGES[block.kind]
        bundled = bundled_mpi_reason(block.kind, block.attr("version"))
        if bundled:
            reason = bundled
            found.append(Candidate(implementation, None, reason, block, ("version",),
                                   note=f"HPC-X {block.attr('version')} (Open MPI + UCX)"))
            continue
        version, why, note = _version_of(block)
        if block.kind == "intel_mpi" and version:
            version = re.sub(r"-[0-9]+$", "", version)  # 2019.6-088: the package build number is not the version
        found.append(Candidate(implementation, version, why, block, ("version",), note))
    for block in facts.top_generic():
        name, version = source_name_version(block)
        if name and name.lower() in MPI_PACKAGES:
            why = None if version else f"the {name} build does not say its version"
            bundled = bundled_mpi_reason(name, version)
            if bundled:
                version, why = None, bundled
            found.append(Candidate(MPI_PACKAGES[name.lower()], version, why, block, ("url", "repository")))
    return found


def bundled_mpi(facts: Facts) -> list[Candidate]:
    """MPIs that come with something else: OS packages, the NVIDIA HPC SDK, Intel Parallel Studio."""
    found = []
    for block in facts.own(*PACKAGE_BLOCKS):
        for name in block.ospackages():
            match = OS_PACKAGE_MPI.match(name)
            if match:
                found.append(Candidate(match.group(1), None, f"{name} is a distribution package", block,
                                       ("ospackages", "apt", "yum"), note=f"OS package {name}"))
    for block in facts.of_kind("nvhpc"):
        if block.attr("mpi", True):
            found.append(Candidate("openmpi", None, "the NVIDIA HPC SDK bundles Open MPI without a stated version",
                                   block, ("mpi",), note="the NVIDIA HPC SDK's bundled Open MPI"))
    for block in facts.of_kind("intel_psxe"):
        if block.attr("mpi", True):
            found.append(Candidate("intelmpi", None, "Intel Parallel Studio's MPI version is not stated", block,
                                   ("mpi",), note="Intel Parallel Studio XE includes Intel MPI"))
    base = facts.base()
    if not found and base is not None and nvhpc_image_version(str(base.attr("image", ""))):
        found.append(Candidate("openmpi", None, "the NVIDIA HPC SDK image bundles Open MPI without a stated version",
                               base, ("image",), note="the NVIDIA HPC SDK image bundles Open MPI"))
    return found


def infer_mpi(facts: Facts, inference: Inference) -> Candidate | None:
    candidates = mpi_candidates(facts) or bundled_mpi(facts)
    if not candidates:
        base = facts.base()
        image = base.attr("image") if base else "unknown"
        reason = f"no MPI building block in the final image; the base image {image} may provide one"
        for key in (MPI_IMPLEMENTATION, MPI_VERSION, MPI_ABI_VERSION):
            inference.miss(key, reason)
        return None
    implementations = _unique([c.implementation for c in candidates])
    if len(implementations) > 1:
        reason = "the final image has several MPIs: " + ", ".join(implementations)
        for key in (MPI_IMPLEMENTATION, MPI_VERSION, MPI_ABI_VERSION):
            inference.miss(key, reason)
        return None
    first = candidates[0]
    where = first.block.where(*first.names, note=first.note)
    versions = _unique([c.version for c in candidates])
    one = len(versions) == 1 and bool(first.version)
    abi = mpi_abi_version(first.implementation, first.version) if one else None
    put(inference, Mpi(implementation=stated(inference, first.implementation, where),
                       version=stated(inference, first.version, where) if one else None,
                       abi_version=stated(inference, abi, first.block.where(
                           *first.names, note=f"{first.implementation} {first.version} ABI"))))
    if one:
        if not abi:
            inference.miss(MPI_ABI_VERSION, f"no known ABI for {first.implementation} {first.version}")
    else:
        reason = first.why_no_version if len(versions) == 1 else "the MPI blocks disagree on the version: " + \
            ", ".join(str(v) for v in versions)
        inference.miss(MPI_VERSION, reason or "unknown")
        inference.miss(MPI_ABI_VERSION, "follows mpi.version, which is unknown")
    return first


def infer_pmi(facts: Facts, inference: Inference, mpi: Candidate | None) -> None:
    """PMI from the MPI's pmi/pmix arguments and the pmix / slurm_pmi2 blocks they point at."""
    if mpi is None or mpi.block.kind not in ("openmpi", "mpich", "mvapich2"):
        return
    flags = mpi.block.configure_flags()
    pmix = [f for f in flags if f.startswith("--with-pmix")]
    pmi = [f for f in flags if f.startswith("--with-pmi") and not f.startswith("--with-pmix")]
    if pmix:
        for block in facts.of_kind("pmix"):
            if block.attr("prefix") and block.attr("prefix") in pmix[0] and block.attr("version"):
                major = str(block.attr("version")).split(".")[0]
                put(inference, Mpi(pmi=stated(inference, f"pmix-{major}", block.where("version"))))
                return
        put(inference, Mpi(pmi=stated(inference, "pmix", mpi.block.where("pmix", "with_pmix"))))
        return
    if pmi:
        for block in facts.of_kind("slurm_pmi2"):
            if block.attr("prefix") and block.attr("prefix") in pmi[0]:
                put(inference, Mpi(pmi=stated(inference, "2", block.where("prefix", note=f"MPI configured {pmi[0]}"))))
                return


# ------------------------------------------------------------------ fabrics
def infer_fabric(facts: Facts, inference: Inference, mpi: Candidate | None) -> None:
    frameworks: dict[str, dict] = {}
    ucx_versions: list[tuple] = []
    libfabric_versions: list[tuple] = []
    for block in facts.of_kind("ucx"):
        version, why, note = _version_of(block)
        frameworks.setdefault("ucx", block.where())
        ucx_versions.append((version, why, block, note))
    for block in facts.of_kind("hpcx"):
        frameworks.setdefault("ucx", block.where(note=f"HPC-X {block.attr('version')} is Open MPI + UCX"))
        ucx_versions.append((None, f"HPC-X {block.attr('version')} bundles UCX without a stated version", block, None))
    for block in facts.top_generic():
        name, version = source_name_version(block)
        if name and name.lower() in ("ucx", "libfabric"):
            frameworks.setdefault(name.lower(), block.where("url", "repository"))
            target = ucx_versions if name.lower() == "ucx" else libfabric_versions
            target.append((version, None if version else f"the {name} build does not say its version", block, None))
    if mpi is not None:
        _mpi_fabrics(mpi, frameworks)
    for block in facts.own(*PACKAGE_BLOCKS):
        for name in block.ospackages():
            match = OS_PACKAGE_FABRIC.match(name)
            if match:
                fabric = "ucx" if match.group(1) == "ucx" else "libfabric"
                frameworks.setdefault(fabric, block.where("ospackages", "apt", "yum", note=f"OS package {name}"))
                target = ucx_versions if fabric == "ucx" else libfabric_versions
                target.append((None, f"{name} is a distribution package", block, None))
    if frameworks:
        first = next(iter(frameworks.values()))
        put(inference, Fabric(framework=stated(inference, ",".join(frameworks), first)))
    elif mpi is not None and mpi.block.kind not in MPI_BLOCKS:
        inference.miss(COMMUNICATION_FRAMEWORK, f"the MPI comes with {mpi.block.fragment(*mpi.names)}, which does "
                       "not say its network library")
    else:
        inference.miss(COMMUNICATION_FRAMEWORK, "no UCX or libfabric in the final image, and the MPI is not "
                       "configured for one")
    _component_version(inference, UCX_VERSION, ucx_versions)
    _component_version(inference, LIBFABRIC_VERSION, libfabric_versions)


def _mpi_fabrics(mpi: Candidate, frameworks: dict[str, dict]) -> None:
    block = mpi.block
    flags = " ".join(block.configure_flags())
    if block.kind == "openmpi" and block.attr("ucx"):
        frameworks.setdefault("ucx", block.where("ucx"))
    if re.search(r"--with-ucx|ch4:ucx", flags):
        frameworks.setdefault("ucx", block.where("configure_opts", "with_ucx"))
    if re.search(r"--with-(?:ofi|libfabric)\b|ch4:ofi|nemesis:ofi", flags):
        frameworks.setdefault("libfabric", block.where("configure_opts", "with_ofi", "with_libfabric"))
    if block.kind == "intel_mpi" and mpi.version and re.match(r"20[1-9][0-9]", mpi.version) \
            and int(mpi.version[:4]) >= 2019:
        frameworks.setdefault("libfabric", block.where("version", note="Intel MPI 2019 and later use libfabric"))


def _component_version(inference: Inference, key: str, found: list[tuple]) -> None:
    """Set a component's version (``key``, a keynames constant) from (version, why unknown, block, note) tuples,
    when they agree."""
    if not found:
        return
    versions = _unique([v for v, _, _, _ in found])
    version, why, block, note = found[0]
    if len(versions) == 1 and version:
        put(inference, fact_for(key, stated(inference, version, block.where("version", "url", note=note))))
    elif len(versions) > 1:
        inference.miss(key, "the blocks disagree: " + ", ".join(str(v) for v in versions))
    else:
        inference.miss(key, why or "unknown")


# ------------------------------------------------------------------ CUDA, NCCL, GPU architectures
def infer_cuda(facts: Facts, inference: Inference) -> None:
    sources: list[tuple[str, dict]] = []
    reasons: list[str] = []
    base = facts.base()
    if base is not None:
        version, reason = cuda_from_image(str(base.attr("image", "")))
        if version:
            sources.append((version, base.where("image")))
        elif reason:
            reasons.append(reason)
    for block in facts.of_kind("nvhpc"):
        if block.explicit("cuda") and block.attr("cuda"):
            sources.append((major_minor(str(block.attr("cuda"))), block.where("cuda")))
        else:
            reasons.append("the nvhpc block bundles several CUDA versions and does not pick one with cuda=")
    for block in facts.of_kind("nccl"):
        if block.explicit("cuda"):
            sources.append((major_minor(str(block.attr("cuda"))), block.where("cuda", note="NCCL built for it")))
    for build_base in facts.source_bases():
        version, _ = cuda_from_image(str(build_base.attr("image", "")))
        if version:
            sources.append((version, build_base.where("image", note="the build stage's base image")))
    versions = _unique([v for v, _ in sources])
    if len(versions) == 1:
        put(inference, Cuda(version=stated(inference, versions[0], sources[0][1])))
    elif versions:
        said = "; ".join(f"{v} ({_says(where)})" for v, where in (next(s for s in sources if s[0] == v)
                                                                  for v in versions))
        inference.warnings.append(f"CUDA versions disagree: {said}; hardware.gpu.nvidia.cuda.version is left out")
        inference.miss(HARDWARE_GPU_NVIDIA_CUDA_VERSION, f"the recipe names several CUDA versions: {said}")
    else:
        image = base.attr("image") if base else "none"
        inference.miss(HARDWARE_GPU_NVIDIA_CUDA_VERSION,
                       "; ".join(reasons) or f"the base image {image} is not a CUDA image and no block pins CUDA")
    _infer_nccl(facts, inference)


def _says(where: dict) -> str:
    """``line 3: nccl(cuda='11.8')``: where a value came from, for a reason text."""
    line = f"line {where['line']}: " if where.get("line") else ""
    file = f"{where['file']}:" if where.get("file") else ""
    return f"{file}{line}{where.get('fragment') or '?'}"


def _infer_nccl(facts: Facts, inference: Inference) -> None:
    found = []
    for block in facts.of_kind("nccl"):
        version, why, note = _version_of(block)
        # nccl versions carry the package revision (2.18.3-1); the release is what users compare
        found.append((re.sub(r"-[0-9]+$", "", version) if version else None, why, block, note))
    _component_version(inference, NCCL_VERSION, found)


def gpu_architectures(options: Iterable[str]) -> list[str]:
    """sm_NN from an application's cmake/configure options (CMAKE_CUDA_ARCHITECTURES, *_GPU_ARCH, Kokkos)."""
    found: list[str] = []
    for option in options:
        for pattern in (r"CMAKE_CUDA_ARCHITECTURES=\"?([0-9a-z;, -]+)", r"GMX_CUDA_TARGET_SM=\"?([0-9;, ]+)",
                        r"[A-Z_]*(?:GPU|CUDA)_ARCH(?:S|ITECTURES?)?=\"?((?:sm_)?[0-9]{2,3}(?:[;,](?:sm_)?[0-9]{2,3})*)"):
            for match in re.finditer(pattern, option):
                numbers = re.findall(r"(?:sm_)?([0-9]{2,3})", match.group(1))
                found.extend(cuda_arch_to_sm(",".join(numbers)))
        if re.search(r"KOKKOS_ARCH|Kokkos_ARCH_", option):
            found.extend(f"sm_{n}" for n in KOKKOS_GPU.findall(option))
    return _unique(found)


def infer_gpu_arch(facts: Facts, inference: Inference, apps: list[Block]) -> None:
    for block in reversed(apps):
        options = [str(o) for o in block.attr("cmake_opts", []) or []] + block.configure_flags()
        found = gpu_architectures(options)
        if found:
            put(inference, Cuda(architecture=stated(inference, ",".join(found),
                                                  block.where("cmake_opts", "configure_opts"))))
            return
    inference.miss(HARDWARE_GPU_NVIDIA_ARCHITECTURE, "the recipe does not pass GPU architectures to the "
                   "application build")


# ------------------------------------------------------------------ compilers
def infer_compiler(facts: Facts, inference: Inference) -> None:
    found: list[tuple[str, str | None, dict, str | None]] = []
    for block in facts.of_kind(*COMPILER_BLOCKS, blocks=facts.image + facts.build):
        family = COMPILER_PACKAGES[COMPILER_BLOCKS[block.kind]]
        version = block.attr("version") if block.kind != "intel_psxe" else None
        note = None
        if block.kind == "gnu" and not block.explicit("version"):
            version, note = None, "gnu() installs the distribution's gcc, whose version the recipe does not say"
        if block.kind == "llvm" and not block.explicit("version") and not block.attr("upstream"):
            version, note = None, "llvm() installs the distribution's clang, whose version the recipe does not say"
        found.append((family, str(version) if version else None, block.where("version", note=note),
                      note or f"{block.kind}() does not say its version"))
    base = facts.base()
    for candidate in [base, *facts.source_bases()]:
        version = nvhpc_image_version(str(candidate.attr("image", ""))) if candidate else None
        if version:
            found.append(("nvhpc", version, candidate.where("image", note="NVIDIA HPC SDK image"), None))
    families = _unique([f for f, _, _, _ in found])
    if len(families) > 1:
        families = _toolchain_choice(facts, families) or families
    if not families:
        reason = "no compiler building block; the base image's compiler is not known from the recipe"
        inference.miss(COMPILER_IMPLEMENTATION, reason)
        inference.miss(COMPILER_VERSION, reason)
        return
    if len(families) > 1:
        reason = "several compilers (" + ", ".join(families) + ") and no toolchain says which built the application"
        inference.miss(COMPILER_IMPLEMENTATION, reason)
        inference.miss(COMPILER_VERSION, reason)
        return
    mine = [(v, w, why) for f, v, w, why in found if f == families[0]]
    versions = _unique([v for v, _, _ in mine])
    one = len(versions) == 1 and bool(versions[0])
    put(inference, Compiler(implementation=stated(inference, families[0], mine[0][1]),
                            version=stated(inference, versions[0], mine[0][1]) if one else None))
    if one:
        return
    if len(versions) == 1:
        inference.miss(COMPILER_VERSION, mine[0][2] or "unknown")
    else:
        inference.miss(COMPILER_VERSION, "the compiler blocks disagree: " + ", ".join(str(v) for v in versions))


def _toolchain_choice(facts: Facts, families: list[str]) -> list[str]:
    """The compiler family the application blocks' toolchain= names (CC=nvc -> nvhpc), when it is one of them."""
    chosen = []
    for block in facts.image + facts.build:
        toolchain = block.kwargs.get("toolchain")
        cc = toolchain.get("CC") if isinstance(toolchain, dict) else None
        family = CTOOLCHAIN.get(os.path.basename(str(cc))) if cc else None
        if family in families:
            chosen.append(family)
    return _unique(chosen) if len(_unique(chosen)) == 1 else []


# ------------------------------------------------------------------ application and labels
def applications(facts: Facts) -> list[Block]:
    """Generic builds in the final image that are not part of the stack (MPI, fabric, hwloc...): the application(s)."""
    apps = []
    for block in facts.top_generic():
        name, _ = source_name_version(block)
        if not name or name.lower() not in INFRASTRUCTURE:
            apps.append(block)
    return apps


GENERIC_PREFIXES = ("/usr/local", "/usr", "/opt")


def main_applications(apps: list[Block]) -> list[Block]:
    """The builds no later build uses: a library the recipe builds for the application (MILC's QUDA,
    installed in /usr/local/quda, which the MILC build passes as QUDA_HOME) is not the application."""
    used = set()
    for i, block in enumerate(apps):
        prefix = str(block.attr("prefix") or "").rstrip("/")
        if not prefix or prefix in GENERIC_PREFIXES:
            continue  # a shared prefix: another build mentioning it says nothing about this one
        pattern = re.compile(re.escape(prefix) + r"(?![\w.-])")
        if any(pattern.search(repr(later.kwargs)) for later in apps[i + 1:]):
            used.add(i)
    return [b for i, b in enumerate(apps) if i not in used]


def infer_app(facts: Facts, inference: Inference, apps: list[Block]) -> None:
    for blocks in (facts.image, facts.build):
        labels = [(k, v, b) for b in facts.of_kind("label", blocks=blocks) if b.depth == 0
                  for k, v in (b.fact.get("labels") or {}).items()
                  if k.endswith(".version") and not k.startswith(("hpccm.", "org."))]
        names = _unique([k[: -len(".version")] for k, _, _ in labels])
        if len(names) == 1:
            _, value, block = labels[-1]
            where = block.where("metadata")
            put(inference, App(name=stated(inference, names[0], where), version=stated(inference, value, where)))
            return
    apps = main_applications(apps)
    names = _unique([(source_name_version(b)[0] or "?").lower() for b in apps])
    if len(names) > 1:
        reason = (f"the recipe builds several applications ({', '.join(names)}) and no <app>.version label says "
                  "which one the image is for")
        inference.miss(APP_NAME, reason)
        inference.miss(APP_VERSION, reason)
        return
    if apps:
        block = apps[-1]
        name, version = source_name_version(block)
        where = block.where("url", "repository", "package", "branch", note="the last application build")
        put(inference, App(name=stated(inference, name, where), version=stated(inference, version, where)))
        if not version:
            inference.miss(APP_VERSION, f"{block.kind} builds {name} from a branch or commit, not a release")
        return
    inference.miss(APP_NAME, "the recipe builds no application (no generic_* block, no <app>.version label)")
    inference.miss(APP_VERSION, "the recipe builds no application")


def collect_labels(facts: Facts, inference: Inference) -> list[tuple[str, str, Block]]:
    """hpccm.* labels the blocks hold (annotate=False too) go to ``labels``; returns the recipe's own ones."""
    own = []
    for block in facts.image:
        for key, value in (block.fact.get("labels") or {}).items():
            if block.kind == "label" and block.depth == 0:
                own.append((key, value, block))
                if not is_managed(catalogue().canonical(key)):
                    inference.labels[key] = value
            else:
                inference.labels.setdefault(key, value)
    return own


# ------------------------------------------------------------------ CPU target
def infer_target(facts: Facts, inference: Inference, given: str | None) -> None:
    pins = facts.raw.get("pins") or []
    effective = facts.raw.get("cpu_target")
    pinned: dict | None = _label_pin(facts) or (pins[-1] if pins else None)
    if pinned is None and effective != given:
        pinned = {"target": effective, "file": None, "line": None}
    base = facts.base()
    family = arch_family(base) if base else None
    flags = [f for f in facts.raw.get("arch_flags") or [] if f not in BASELINE_FLAGS]
    if pinned is None and not given:
        _baseline_target(facts, inference, family, flags)
    elif pinned is None:
        apply_target(inference, given)
    else:
        _pinned_target(inference, pinned, given)
    target = inference.annotations.get(TARGET_KEY)
    if target and family:
        from hpcannotate.model import targets

        if targets.family_of(target) != family:
            inference.warnings.append(f"CPU target {target} ({targets.family_of(target)}) does not match the "
                                      f"base image's architecture {family}")
    if target and not flags and "arch_flags" in facts.raw:
        from hpcannotate.model import targets

        if targets.is_target(target) and targets.mode_for_target(target) != "architecture":
            inference.warnings.append(
                f"CPU target {target} labels the image, but nothing in the recipe compiles with {target} flags "
                "(no -march/-mcpu/-tp in the generated Dockerfile; hpccm applies its CPU target only through a "
                "compiler block's toolchain passed to the blocks that build): the binaries are generic")
    if target and (pinned is not None or given):
        for tuned in host_tuned_builds(facts, family or str(facts.raw.get("cpu_arch") or "")):
            inference.warnings.append(f"{tuned}: the image is labelled {target} but built for the build host's CPU")
    if TARGET_KEY in inference.missing and family:
        inference.missing[TARGET_KEY] += f" (the base image is {family})"


def host_tuned_builds(facts: Facts, arch: str | None) -> list[str]:
    """Builds that tune themselves for the build host when the recipe does not say otherwise.

    GROMACS picks GMX_SIMD for the build host's CPU; OpenBLAS on x86_64 builds its kernels for the CPU it
    detects unless make gets TARGET= or DYNAMIC_ARCH=1 (hpccm's openblas() passes neither there).
    """
    found = []
    for command in facts.raw.get("host_tuned") or []:
        if command == "eb":
            found.append("the recipe runs eb, which compiles with -march=native unless --optarch says otherwise")
        else:
            found.append(f"the recipe runs {command}, which builds for the build host's microarchitecture unless "
                         "a Spack target is configured")
    for block in facts.image + facts.build:
        if block.kind == "openblas" and arch == "x86_64":
            opts = " ".join(str(o) for o in block.kwargs.get("make_opts") or [])
            if "TARGET=" not in opts and "DYNAMIC_ARCH=1" not in opts:
                found.append(f"{block.fragment('make_opts')} (line {block.fact.get('line')}) builds OpenBLAS for "
                             "the CPU it detects (no TARGET= or DYNAMIC_ARCH=1)")
        elif block.kind in GENERIC_BLOCKS and _nvhpc_without_tp(block):
            found.append(f"{block.fragment('toolchain')} (line {block.fact.get('line')}) compiles with the NVIDIA "
                         "HPC compilers without -tp, and they target the build host's CPU by default")
        if block.kind in GENERIC_BLOCKS:
            name, _ = source_name_version(block)
            opts = " ".join(str(o) for o in block.attr("cmake_opts", []) or [])
            if name and name.lower() == "gromacs" and "GMX_SIMD" not in opts:
                found.append(f"the GROMACS build (line {block.fact.get('line')}) sets no GMX_SIMD, so GROMACS "
                             "picks the build host's SIMD")
    return list(dict.fromkeys(found))  # a block copied by runtime() is in the image and in its build stage


def _nvhpc_without_tp(block: Block) -> bool:
    """A build whose toolchain is nvc/pgcc (``CC=nvc``) and whose flags name no ``-tp``."""
    toolchain = block.kwargs.get("toolchain")
    if not isinstance(toolchain, dict):
        return False
    compiler = os.path.basename(str(toolchain.get("CC") or ""))
    if compiler not in ("nvc", "pgcc"):
        return False
    flags = " ".join(str(toolchain.get(k) or "") for k in ("CFLAGS", "CXXFLAGS", "FFLAGS", "FCFLAGS"))
    return "-tp" not in flags


# Flags that ask for the generic baseline, not a microarchitecture.
BASELINE_FLAGS = frozenset({"-march=x86-64", "-march=armv8-a", "-mcpu=generic", "-tp=px", "-tp px"})


def _baseline_target(facts: Facts, inference: Inference, family: str | None, flags: list[str]) -> None:
    """No pinned target and no --target: a recipe that passes no CPU flags compiles for its family's baseline.

    The family is the base image's when it says one, else the one hpccm generated the recipe for
    (``hpccm.config.g_cpu_arch``: hpccm picks x86_64 or aarch64 downloads by it).
    """
    if flags:
        inference.miss(TARGET_KEY, f"the recipe compiles with {', '.join(flags[:3])} but pins no archspec CPU "
                                   "target (hpccm.config.set_cpu_target); give --target")
        inference.miss(MODE_KEY, "follows hardware.cpu.optimized.version, which is unknown")
        return
    arch = family or {"x86_64": "x86_64", "aarch64": "aarch64", "ppc64le": "ppc64le"}.get(
        str(facts.raw.get("cpu_arch") or ""))
    tuned = host_tuned_builds(facts, arch)
    if tuned:
        inference.miss(TARGET_KEY, f"{tuned[0]}, so the image is built for the build host's CPU, which the "
                                   "recipe does not name; give --target for the host it is built on")
        inference.miss(MODE_KEY, "follows hardware.cpu.optimized.version, which is unknown")
        return
    if arch is None or "arch_flags" not in facts.raw:
        apply_target(inference, None)
        return
    base = facts.base()
    said = "the base image's architecture" if family else "the architecture hpccm generated the recipe for"
    note = (f"no CPU target and no -march/-mcpu/-tp flags: the compilers' default, the baseline of {said}")
    where = base.where("image", "arch", note=note) if base and family else {"note": note}
    from hpcannotate.model import targets

    inference.add(CpuTarget(target=inference.sourced(arch, **where),
                            mode=inference.sourced(targets.mode_for_target(arch),
                                                   **{**where, "note": f"derived from target {arch}"})))


def _label_pin(facts: Facts) -> dict | None:
    """A target the recipe writes into the image itself with label() (e.g. through annotations(target=...))."""
    for block in facts.of_kind("label"):
        for key, value in (block.fact.get("labels") or {}).items():
            if block.depth == 0 and catalogue().canonical(key) == TARGET_KEY:
                where = block.where("metadata")
                return {"target": value, "file": where["file"] or str(facts.recipe), "line": where["line"],
                        "fragment": f"label({key}={value!r})"}
    return None


def _pinned_target(inference: Inference, pin: dict, given: str | None) -> None:
    from hpcannotate.model import targets

    value = pin.get("target")
    fragment = pin.get("fragment") or (f"hpccm.config.set_cpu_target({value!r})" if pin.get("line")
                                       else "hpccm.config.g_cpu_target")
    other = _other_file(pin.get("file"), inference.path)
    if other:
        fragment += f" in {other}"
    if given and value != given:
        inference.warnings.append(f"the recipe pins CPU target {value!r}; --target {given} is not used")
    if not value:
        inference.miss(TARGET_KEY, "the recipe clears the CPU target (set_cpu_target(None))")
        inference.miss(MODE_KEY, "follows hardware.cpu.optimized.version, which is unknown")
        return
    if not targets.is_target(str(value)):
        inference.warnings.append(f"the recipe pins CPU target {value!r}, which archspec does not know")
        inference.miss(TARGET_KEY, f"the recipe pins {value!r}, not an archspec CPU target")
        inference.miss(MODE_KEY, "follows hardware.cpu.optimized.version, which is unknown")
        return
    apply_target(inference, str(value), pinned_by_recipe=True, fragment=fragment,
                 line=pin.get("line") if not other else None)


# ------------------------------------------------------------------ everything
def interpret(raw: dict, inference: Inference, target: str | None) -> Inference:
    """Fill ``inference`` from the facts ``hpccm_eval.describe`` returned (shared with the in-recipe library)."""
    facts = Facts(raw, inference.path)
    put(inference, Recipe(format=stated(inference, "hpccm", {"fragment": "HPCCM recipe"})))
    infer_base(facts, inference)
    infer_target(facts, inference, target)
    mpi = infer_mpi(facts, inference)
    infer_pmi(facts, inference, mpi)
    infer_fabric(facts, inference, mpi)
    infer_cuda(facts, inference)
    infer_compiler(facts, inference)
    apps = applications(facts)
    infer_gpu_arch(facts, inference, apps)
    infer_app(facts, inference, apps)
    for key, value, block in collect_labels(facts, inference):
        if is_managed(catalogue().canonical(key)):
            # the recipe's own label is what the image will carry: it wins over anything inferred
            known = inference.annotations.get(key)
            if known == value:
                continue  # the inferred provenance points at the block itself, which says more
            if known is not None:
                inference.warnings.append(f"the recipe's label() sets {key}={value}, not the inferred {known}")
            inference.set(key, value, **block.where("metadata", note="the recipe's own label()"), check=False)
    return inference


# ------------------------------------------------------------------ the adapter
def _looks_like_recipe(path: Path) -> bool:
    head = read_head(path, 200_000)
    if head is None:
        return False
    text = head.decode("utf-8", "replace")
    return bool(RECIPE_MARKERS.search(text))


def resolve_recipe(path: Path) -> Path:
    """A recipe file, or the recipe in a recipe directory (``recipes/gromacs/`` -> ``gromacs.py``)."""
    if path.is_dir():
        found = sorted(p for p in path.glob("*.py") if _looks_like_recipe(p))
        named = [p for p in found if p.stem == path.resolve().name]
        if len(named) == 1 or len(found) == 1:
            return (named or found)[0]
        if not found:
            raise InputError(f"{path}: no HPCCM recipe (*.py with Stage0 += ...) in this directory")
        names = ", ".join(p.name for p in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise InputError(f"{path}: several HPCCM recipes ({names}); name one")
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    return path


class HpccmAdapter(Adapter):
    name: ClassVar[str] = "hpccm"
    description: ClassVar[str] = "HPC Container Maker recipe (*.py), evaluated with hpccm in a worker process"

    def detect(self, path: Path) -> bool:
        return path.suffix == ".py" and path.is_file() and _looks_like_recipe(path)

    def infer(self, path: Path, options: InferOptions) -> Inference:
        recipe = resolve_recipe(path)
        if options.target:
            apply_target(Inference(self.name, recipe), options.target)  # a bad --target fails before the recipe runs
        payload = {"path": str(recipe.resolve()), "userargs": dict(options.userargs), "target": options.target}
        raw = run_isolated(EVALUATE, payload, timeout=options.timeout, what=str(recipe),
                           reads=[os.path.dirname(payload["path"])])
        try:
            if "error" in raw:
                raise InputError(f"{recipe}: {raw['error']}", raw.get("traceback"))
            inference = Inference(self.name, recipe)
            interpret(raw, inference, options.target)
        except (TypeError, KeyError, AttributeError, ValueError, IndexError) as exc:  # not the shape facts have
            raise malformed(str(recipe), exc) from exc
        return inference
