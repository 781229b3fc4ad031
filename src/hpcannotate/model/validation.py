"""Validation: every problem of an annotation set, not just the first.

Per-key checks come from the catalogue (``values.check_value``); the rules
below are the few that relate two keys to each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hpcannotate.model.catalogue import catalogue, is_managed
from hpcannotate.model.keynames import (
    COMMUNICATION_FRAMEWORK,
    HARDWARE_CPU_OPTIMIZED_MODE,
    HARDWARE_CPU_OPTIMIZED_VERSION,
    MPI_ABI_VERSION,
    MPI_IMPLEMENTATION,
    MPI_PORTABILITY_MODE,
    MPI_VERSION,
)
from hpcannotate.model.problem import Problem
from hpcannotate.model.values import check_value

if TYPE_CHECKING:
    from hpcannotate.model.annotations import Annotations

MODE = HARDWARE_CPU_OPTIMIZED_MODE
TARGET = HARDWARE_CPU_OPTIMIZED_VERSION
MPI = MPI_IMPLEMENTATION
MPI_MODE = MPI_PORTABILITY_MODE
FRAMEWORK = COMMUNICATION_FRAMEWORK

# Implementations that share the MPICH ABI (libmpi.so.12), so mpich_replace can swap them.
MPICH_ABI = frozenset({"mpich", "mvapich2", "intelmpi", "cray-mpich"})


def _unknown_key(key: str, value: str | None = None) -> Problem:
    suggestion = catalogue().suggest(key)
    hint = f" (did you mean {suggestion}?)" if suggestion else ""
    return Problem(key, f"unknown key in a namespace hpcannotate manages{hint}", value)


def foreign_notices(annotations: Annotations) -> list[str]:
    """One notice per key outside the catalogue's namespaces: it passes through, but the user should know."""
    notices = []
    for entry in annotations.entries():
        notice = catalogue().foreign_notice(entry.spelled or entry.key)
        if notice:
            notices.append(notice)
    return notices


def _check_mode(values: dict[str, str]) -> list[Problem]:
    from hpcannotate.model import targets

    mode, target = values.get(MODE), values.get(TARGET)
    if not mode or not target or not targets.is_target(target):
        return []
    expected = targets.mode_for_target(target)
    if mode == expected:
        return []
    return [Problem(MODE, f"{mode!r} does not fit target {target!r}, which is {expected!r}", mode)]


def _check_mpi_none(values: dict[str, str]) -> list[Problem]:
    if values.get(MPI) != "none":
        return []
    problems = []
    for key in (MPI_VERSION, MPI_ABI_VERSION):
        if key in values:
            problems.append(Problem(key, "set although mpi.implementation is 'none'", values[key]))
    if values.get(MPI_MODE, "none") != "none":
        problems.append(Problem(MPI_MODE, "an image without MPI has no MPI to replace", values[MPI_MODE]))
    return problems


def _check_portability(values: dict[str, str]) -> list[Problem]:
    mode, impl = values.get(MPI_MODE), values.get(MPI)
    frameworks = set(values.get(FRAMEWORK, "").split(",")) if FRAMEWORK in values else None
    problems = []
    if mode == "mpich_replace" and impl and impl != "none" and impl not in MPICH_ABI:
        problems.append(Problem(MPI_MODE, f"mpich_replace needs an MPICH-ABI MPI, not {impl!r}", mode))
    needs = {"ucx_replace": "ucx", "libfabric_inject": "libfabric"}.get(mode or "")
    if needs and frameworks is not None and needs not in frameworks:
        problems.append(Problem(MPI_MODE, f"{mode} but communication.framework does not include {needs}", mode))
    return problems


def _check_conditional_aliases(annotations: Annotations) -> list[Problem]:
    values = dict(annotations)
    problems = []
    for entry in annotations.entries():
        found = catalogue().resolve(entry.spelled) if entry.spelled else None
        alias = found[1] if found else None
        if alias is None or not alias.when:
            continue
        for key, wanted in alias.when:
            if key in values and values[key] != wanted:
                message = f"spelled {alias.key}, which implies {key}={wanted}, but it is {values[key]!r}"
                problems.append(Problem(entry.key, message, entry.value))
    return problems


CROSS_KEY_RULES: tuple[Callable[[dict[str, str]], list[Problem]], ...] = (
    _check_mode,
    _check_mpi_none,
    _check_portability,
)


def validate(annotations: Annotations) -> list[Problem]:
    problems = list(annotations.input_problems)
    specs = catalogue().specs
    for entry in annotations.entries():
        spec = specs.get(entry.key)
        if spec is None:
            if is_managed(entry.key):
                problems.append(_unknown_key(entry.spelled or entry.key, entry.value))
            continue
        reason = check_value(spec, entry.value)
        if reason:
            problems.append(Problem(entry.key, reason, entry.value))
    for spec in catalogue().mandatory():
        if spec.key not in annotations:
            problems.append(Problem(spec.key, "mandatory key is missing"))
    values = dict(annotations)
    for rule in CROSS_KEY_RULES:
        problems.extend(rule(values))
    problems.extend(_check_conditional_aliases(annotations))
    return problems
