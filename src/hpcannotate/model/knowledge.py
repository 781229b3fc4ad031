"""Host and matching knowledge kept as data: small readers of ``data/*.yaml``.

Facts that change with vendors' releases (CUDA driver minimums, GPU names), tables several
modules share (architecture names, shells) and the match policy live in data files beside
``keys.yaml``, so updating them is a data change that a reviewer can check against its
source. Each file is parsed once, on first use; a malformed file is a packaging bug and
raises at once with the file's name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from hpcannotate.model import datafiles


class KnowledgeError(RuntimeError):
    """A shipped data file is malformed (a bug in hpcannotate, not in the user's input)."""


@functools.cache
def _load(name: str) -> Any:
    # String scalars only (datafiles.LOADERS: "base"): 12.10 stays "12.10", never the float 12.1.
    data = datafiles.load(name)
    if not isinstance(data, dict):
        raise KnowledgeError(f"hpcannotate/data/{name}: expected a mapping")
    return data


def _get(name: str, key: str, kind: type) -> Any:
    value = _load(name).get(key)
    if not isinstance(value, kind):
        raise KnowledgeError(f"hpcannotate/data/{name}: {key}: expected a {kind.__name__}")
    return value


# -- CUDA and GPUs --------------------------------------------------------------------------


@functools.cache
def cuda_min_drivers() -> tuple[tuple[str, str], ...]:
    """(CUDA version, oldest Linux driver that runs it), newest CUDA first."""
    rows = _get("cuda.yaml", "min_driver", list)
    return tuple((row["cuda"], row["driver"]) for row in rows)


@functools.cache
def gpu_capabilities() -> tuple[tuple[str, str], ...]:
    """(product name, compute capability), most specific name first."""
    rows = _get("nvidia-gpus.yaml", "products", list)
    return tuple((row["name"], row["capability"]) for row in rows)


# -- architectures --------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    oci: str
    archspec: str
    uname: tuple[str, ...]


@functools.cache
def architectures() -> tuple[Architecture, ...]:
    rows = _get("architectures.yaml", "architectures", list)
    return tuple(Architecture(r["oci"], r["archspec"], tuple(r.get("uname") or ())) for r in rows)


@functools.cache
def oci_names() -> dict[str, str]:
    """Every spelling (uname -m, archspec family, OCI) -> the OCI architecture."""
    names: dict[str, str] = {}
    for arch in architectures():
        for spelling in (arch.oci, arch.archspec, *arch.uname):
            names.setdefault(spelling.lower(), arch.oci)
    return names


@functools.cache
def archspec_families() -> dict[str, str]:
    """OCI architecture -> archspec family (``amd64`` -> ``x86_64``)."""
    return {arch.oci: arch.archspec for arch in architectures()}


@functools.cache
def runs_also() -> dict[str, tuple[str, ...]]:
    """Host family -> other families whose code it runs (x86_64 -> x86)."""
    data = _get("architectures.yaml", "runs_also", dict)
    return {family: tuple(others) for family, others in data.items()}


# -- CPU features -----------------------------------------------------------------------------


@functools.cache
def not_emitted(family: str) -> frozenset[str]:
    """Features of archspec targets that compilers never generate code for on their own."""
    return frozenset((_get("cpu.yaml", "not_emitted", dict).get(family) or {}).keys())


@functools.cache
def linux_flag_names(family: str) -> dict[str, str]:
    """/proc/cpuinfo spelling -> archspec spelling (``pni`` -> ``sse3``)."""
    return dict(_get("cpu.yaml", "linux_flag_names", dict).get(family) or {})


@functools.cache
def vector_widths() -> dict[str, int]:
    """archspec target -> vector width in bits, where its features alone mislead."""
    return {name: int(bits) for name, bits in _get("cpu.yaml", "vector_width", dict).items()}


# -- shells -------------------------------------------------------------------------------------


@functools.cache
def shells() -> tuple[str, ...]:
    return tuple(_get("shells.yaml", "shells", list))


# -- match policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    green_from: int
    orange_from: int
    red_at_most: int
    unknown_score: int
    factors: dict[str, dict[str, float]]

    def factor(self, check: str, name: str) -> float:
        try:
            return self.factors[check][name]
        except KeyError:
            raise KnowledgeError(f"hpcannotate/data/match-policy.yaml: factors: {check}.{name} is missing") from None


@functools.cache
def policy() -> Policy:
    data = _load("match-policy.yaml")
    factors = {check: {name: float(value) for name, value in names.items()}
               for check, names in _get("match-policy.yaml", "factors", dict).items()}
    for check, names in factors.items():
        for name, value in names.items():
            if not 0.0 < value <= 1.0:
                raise KnowledgeError(f"hpcannotate/data/match-policy.yaml: factors: {check}.{name}: {value} is not "
                                     "in (0, 1]")
    return Policy(int(data["green_from"]), int(data["orange_from"]), int(data["red_at_most"]),
                  int(data["unknown_score"]), factors)
