"""Typed facts: what a recipe (or an image) says about the software in it, each value with its source.

Adapters used to set annotation keys directly, each its own way; now every value they find is a field
of one of the facts below (``Mpi.version``, ``CpuTarget.mode``), and ``to_annotations`` is the one
place facts become annotations, under the key constants of ``keynames``. A reader of facts
(``from_annotations``) gives the cross-check between a recipe and an image the same typed view.

Every value is a ``Sourced``: the text and its ``Provenance`` (layer, file, line, fragment, note), as
``provenance.py`` records it. ``spelling`` keeps the key as the adapter wrote it (``mpi.version``):
annotations record a short spelling in their provenance, and outputs stay byte-identical with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from typing import ClassVar

from hpcannotate.model import keynames as k
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.provenance import Provenance


@dataclass(slots=True)
class Sourced:
    """One value and where it came from."""

    value: str
    provenance: Provenance
    spelling: str | None = None  # the key as the producer wrote it, when not the full key


@dataclass(slots=True)
class Fact:
    """A group of values about one thing; ``KEYS`` maps each field to its annotation key."""

    KEYS: ClassVar[dict[str, str]] = {}

    def items(self) -> Iterator[tuple[str, Sourced]]:
        """(key, value) of the fields that are set, in field order: the order they are annotated in."""
        for name, key in self.KEYS.items():  # KEYS lists the fields in field order
            value = getattr(self, name)
            if value is not None:
                yield key, value

    def without(self, keys: Iterable[str]) -> Fact:
        """This fact with the values of ``keys`` left out (values the catalogue refused)."""
        gone = set(keys)
        return replace(self, **{name: None for name, key in self.KEYS.items() if key in gone})

    def spelled_short(self) -> Fact:
        """This fact with its ``org.supercontainers.*`` keys spelled short (``mpi.version``), as the adapters
        have always written them: the annotations' provenance records that spelling (``spelled``)."""
        return replace(self, **{name: replace(value, spelling=key.removeprefix(k.SUPERCONTAINERS))
                                for name, key in self.KEYS.items()
                                if (value := getattr(self, name)) is not None and value.spelling is None
                                and key.startswith(k.SUPERCONTAINERS)})

    def merged(self, later: Fact) -> Fact:
        """This fact with the values ``later`` (of the same kind) sets: a later value wins, as in annotations."""
        return replace(self, **{f.name: getattr(later, f.name) for f in fields(later)
                                if getattr(later, f.name) is not None})


@dataclass(slots=True)
class App(Fact):
    KEYS: ClassVar[dict[str, str]] = {"name": k.APP_NAME, "version": k.APP_VERSION}
    name: Sourced | None = None
    version: Sourced | None = None


@dataclass(slots=True)
class Mpi(Fact):
    KEYS: ClassVar[dict[str, str]] = {"implementation": k.MPI_IMPLEMENTATION, "version": k.MPI_VERSION,
                                      "abi_version": k.MPI_ABI_VERSION, "pmi": k.PMI_VERSION,
                                      "portability_mode": k.MPI_PORTABILITY_MODE,
                                      "portability_optimization": k.MPI_PORTABILITY_OPTIMIZATION}
    implementation: Sourced | None = None
    version: Sourced | None = None
    abi_version: Sourced | None = None
    pmi: Sourced | None = None
    portability_mode: Sourced | None = None
    portability_optimization: Sourced | None = None


@dataclass(slots=True)
class Compiler(Fact):
    KEYS: ClassVar[dict[str, str]] = {"implementation": k.COMPILER_IMPLEMENTATION, "version": k.COMPILER_VERSION}
    implementation: Sourced | None = None
    version: Sourced | None = None


@dataclass(slots=True)
class Cuda(Fact):
    KEYS: ClassVar[dict[str, str]] = {"version": k.HARDWARE_GPU_NVIDIA_CUDA_VERSION,
                                      "architecture": k.HARDWARE_GPU_NVIDIA_ARCHITECTURE,
                                      "driver_version": k.HARDWARE_GPU_NVIDIA_DRIVER_VERSION}
    version: Sourced | None = None
    architecture: Sourced | None = None
    driver_version: Sourced | None = None


@dataclass(slots=True)
class Rocm(Fact):
    KEYS: ClassVar[dict[str, str]] = {"architecture": k.HARDWARE_GPU_AMD_ARCHITECTURE}
    architecture: Sourced | None = None


@dataclass(slots=True)
class CpuTarget(Fact):
    """The archspec target the binaries are built for, and its mode (derived from the target)."""

    KEYS: ClassVar[dict[str, str]] = {"target": k.HARDWARE_CPU_OPTIMIZED_VERSION,
                                      "mode": k.HARDWARE_CPU_OPTIMIZED_MODE}
    target: Sourced | None = None
    mode: Sourced | None = None


@dataclass(slots=True)
class BaseOs(Fact):
    KEYS: ClassVar[dict[str, str]] = {"image": k.OCI_BASE_NAME, "name": k.OS_NAME, "version": k.OS_VERSION}
    image: Sourced | None = None
    name: Sourced | None = None
    version: Sourced | None = None


@dataclass(slots=True)
class Libc(Fact):
    KEYS: ClassVar[dict[str, str]] = {"implementation": k.LIBC_IMPLEMENTATION, "glibc_version": k.GLIBC_VERSION}
    implementation: Sourced | None = None
    glibc_version: Sourced | None = None


@dataclass(slots=True)
class Fabric(Fact):
    """The communication frameworks (ucx, libfabric, verbs, ...) and the versions of the libraries."""

    KEYS: ClassVar[dict[str, str]] = {"framework": k.COMMUNICATION_FRAMEWORK, "ucx_version": k.UCX_VERSION,
                                      "libfabric_version": k.LIBFABRIC_VERSION,
                                      "libfabric_abi_version": k.LIBFABRIC_ABI_VERSION}
    framework: Sourced | None = None
    ucx_version: Sourced | None = None
    libfabric_version: Sourced | None = None
    libfabric_abi_version: Sourced | None = None


@dataclass(slots=True)
class Nccl(Fact):
    KEYS: ClassVar[dict[str, str]] = {"version": k.NCCL_VERSION}
    version: Sourced | None = None


@dataclass(slots=True)
class Python(Fact):
    KEYS: ClassVar[dict[str, str]] = {"version": k.PYTHON_VERSION}
    version: Sourced | None = None


@dataclass(slots=True)
class Recipe(Fact):
    """The recipe itself: its format, and its text embedded as build documentation."""

    KEYS: ClassVar[dict[str, str]] = {"format": k.BUILD_RECIPE_FORMAT, "hpccm": k.DOCS_BUILD_HPCCM_RECIPE,
                                      "spack": k.DOCS_BUILD_SPACK_ENV, "easyconfig": k.DOCS_BUILD_EASYCONFIG}
    format: Sourced | None = None
    hpccm: Sourced | None = None
    spack: Sourced | None = None
    easyconfig: Sourced | None = None


@dataclass(slots=True)
class Other(Fact):
    """A key no typed fact holds (a recipe's own labels, the rest of the catalogue)."""

    key: str = ""
    value: Sourced | None = None

    def items(self) -> Iterator[tuple[str, Sourced]]:
        if self.value is not None:
            yield self.key, self.value

    def without(self, keys: Iterable[str]) -> Fact:
        return replace(self, value=None) if self.key in set(keys) else self


@dataclass(slots=True)
class Shell(Fact):
    """The shells of the image, root's login shell first (the image probe reads them)."""

    KEYS: ClassVar[dict[str, str]] = {"implementation": k.SHELL_IMPLEMENTATION}
    implementation: Sourced | None = None


@dataclass(slots=True)
class Tools(Fact):
    """The tools with a command on the image's PATH."""

    KEYS: ClassVar[dict[str, str]] = {"includes": k.TOOLS_INCLUDES}
    includes: Sourced | None = None


@dataclass(slots=True)
class SearchPath(Fact):
    """Directories on the image's PATH that exist and are empty (``path.extra``)."""

    KEYS: ClassVar[dict[str, str]] = {"extra": k.PATH_EXTRA}
    extra: Sourced | None = None


@dataclass(slots=True)
class Kernel(Fact):
    """The kernel the user land's headers are for (``kernel.version``)."""

    KEYS: ClassVar[dict[str, str]] = {"version": k.KERNEL_VERSION}
    version: Sourced | None = None


TYPED: tuple[type[Fact], ...] = (App, Mpi, Compiler, Cuda, Rocm, CpuTarget, BaseOs, Libc, Fabric, Nccl, Python,
                                 Recipe, Shell, Tools, SearchPath, Kernel)
# full key -> (fact class, field)
FIELD_OF: dict[str, tuple[type[Fact], str]] = {key: (cls, name) for cls in TYPED for name, key in cls.KEYS.items()}


def fact_for(key: str, value: Sourced) -> Fact:
    """The one-field fact that holds ``key`` (a full key); ``Other`` for a key no typed fact has."""
    found = FIELD_OF.get(key)
    if found is None:
        return Other(key=key, value=value)
    cls, name = found
    return cls(**{name: value})


def to_annotations(facts: Iterable[Fact], into: Annotations | None = None) -> Annotations:
    """The annotations of ``facts``, set in order into ``into`` (a new ``Annotations`` by default).

    The one place a fact becomes an annotation: under its key constant, or the spelling its producer
    used, with its provenance.
    """
    if into is None:
        into = Annotations()
    for fact in facts:
        for key, sourced in fact.items():
            into.set(sourced.spelling or key, sourced.value, sourced.provenance)
    return into


def by_kind(annotations: Annotations) -> dict[type[Fact], Fact]:
    """The typed facts of ``annotations`` by kind (``Other`` left out)."""
    return {type(fact): fact for fact in from_annotations(annotations) if type(fact) is not Other}


def from_annotations(annotations: Annotations) -> list[Fact]:
    """The typed facts an annotation set holds, one per kind that has a value, in ``TYPED`` order; the
    keys no typed fact holds as ``Other``. What the image cross-check compares."""
    grouped: dict[type[Fact], dict[str, Sourced]] = {}
    others: list[Fact] = []
    for entry in annotations.entries():
        sourced = Sourced(entry.value, entry.provenance)
        found = FIELD_OF.get(entry.key)
        if found is None:
            others.append(Other(key=entry.key, value=sourced))
        else:
            grouped.setdefault(found[0], {})[found[1]] = sourced
    return [cls(**grouped[cls]) for cls in TYPED if cls in grouped] + others


# ----------------------------------------------------------------------------- facts across a process boundary
# A worker that evaluated a recipe (an easyconfig) sends its facts back as JSON. That reply is untrusted:
# the recipe's code ran in the worker and can write a reply of its own. So the form is small and explicit
# (kind, and per field set: value, line, fragment, note) and ``from_wire`` rebuilds a fact only from a
# reply of exactly that form; the layer and file come from the receiver, who knows what it asked about.
WIRE_KINDS: dict[str, type[Fact]] = {cls.__name__: cls for cls in TYPED}
WIRE_PLACE = ("line", "fragment", "note")
MAX_WIRE_TEXT = 64 * 1024  # characters of one value, fragment or note (genuine ones are under 1 KiB)


class WireError(ValueError):
    """A fact on the wire that is not of the form ``to_wire`` writes; ``str()`` says what is wrong."""


def to_wire(fact: Fact) -> dict:
    """``fact`` (a typed one) as plain JSON: ``{"kind": "Mpi", "values": {"version": {"value": ..., "line": ...,
    "fragment": ..., "note": ...}}}``, the fields that are set, in field order."""
    values = {}
    for name in fact.KEYS:
        sourced = getattr(fact, name)
        if sourced is not None:
            where = sourced.provenance
            values[name] = {"value": sourced.value, "line": where.line, "fragment": where.fragment, "note": where.note}
    return {"kind": type(fact).__name__, "values": values}


def from_wire(data: object, base: Provenance) -> Fact:
    """The typed fact ``data`` (``to_wire``'s form) describes, its provenance ``base`` with the line, fragment
    and note sent. Raises WireError for anything else: an unknown kind or field, a wrong type, a text over
    ``MAX_WIRE_TEXT``, a key too many or too few."""
    if not isinstance(data, dict) or set(data) != {"kind", "values"}:
        raise WireError("a fact is not {kind, values}")
    kind, values = data["kind"], data["values"]
    cls = WIRE_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireError(f"unknown fact kind {str(kind)[:40]!r}")
    if not isinstance(values, dict) or not values:
        raise WireError(f"{kind}: no values")
    made = {}
    for name, value in values.items():
        if name not in cls.KEYS:
            raise WireError(f"{kind}: unknown field {str(name)[:40]!r}")
        made[name] = _sourced_from_wire(f"{kind}.{name}", value, base)
    return cls(**made)


def _sourced_from_wire(where: str, data: object, base: Provenance) -> Sourced:
    if not isinstance(data, dict) or set(data) != {"value", *WIRE_PLACE}:
        raise WireError(f"{where}: not {{value, line, fragment, note}}")
    line = data["line"]
    if line is not None and (type(line) is not int or line < 1):
        raise WireError(f"{where}: the line is not a line number")
    for name in ("value", "fragment", "note"):
        text = data[name]
        if text is None and name != "value":
            continue
        if not isinstance(text, str):
            raise WireError(f"{where}: the {name} is not text")
        if len(text) > MAX_WIRE_TEXT:
            raise WireError(f"{where}: the {name} is over {MAX_WIRE_TEXT} characters")
    return Sourced(data["value"], replace(base, line=line, fragment=data["fragment"], note=data["note"]))
