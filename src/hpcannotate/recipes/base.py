"""The one small interface every recipe adapter implements.

An adapter detects whether a path is a recipe of its format and turns it into
an ``Inference``: annotations with provenance (layer ``recipe``), the keys it
could not infer with the reason, and labels outside our namespace that the
recipe carries (hpccm's ``hpccm.*`` labels, a recipe's own ``label()``).
A wrong value is worse than no value: when a recipe does not say, an adapter
leaves the key out and records why in ``missing``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from hpcannotate.errors import InputError
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.keynames import HARDWARE_CPU_OPTIMIZED_MODE, HARDWARE_CPU_OPTIMIZED_VERSION
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.recipes.facts import CpuTarget, Fact, Sourced, fact_for, to_annotations
from hpcannotate.recipes.isolation import DEFAULT_TIMEOUT

TARGET_KEY = HARDWARE_CPU_OPTIMIZED_VERSION
MODE_KEY = HARDWARE_CPU_OPTIMIZED_MODE


@dataclass
class InferOptions:
    target: str | None = None
    userargs: dict[str, str] = field(default_factory=dict)
    robot_paths: tuple[Path, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    concretize: bool = False

    def __post_init__(self) -> None:
        if not check_timeout(self.timeout):
            raise InputError(f"--timeout {self.timeout!r}: must be a positive number of seconds")


def check_timeout(value: object) -> bool:
    """True for a usable timeout: a finite number of seconds above zero (not 0, -1, nan or inf)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value > 0)


@dataclass
class Inference:
    format: str
    path: Path
    annotations: Annotations = field(default_factory=Annotations)
    missing: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # every value the adapter found, typed, in the order found; ``annotations`` is made from them
    facts: list[Fact] = field(default_factory=list)

    def provenance(self, line: int | None = None, fragment: str | None = None, note: str | None = None,
                   file: Path | str | None = None) -> Provenance:
        """A recipe-layer provenance pointing into this recipe (or an included file)."""
        return Provenance(Layer.RECIPE, str(file or self.path), line, fragment, note)

    def sourced(self, value: str, line: int | None = None, fragment: str | None = None, note: str | None = None,
                file: Path | str | None = None) -> Sourced:
        """A value with a recipe-layer provenance pointing into this recipe (or an included file)."""
        return Sourced(value, self.provenance(line, fragment, note, file))

    def set(self, key: str, value: str, line: int | None = None, fragment: str | None = None,
            note: str | None = None, file: Path | str | None = None, *, check: bool = True) -> bool:
        """Set ``key`` when the catalogue accepts the value; otherwise warn, leave it out and say why.

        The value becomes the typed fact that holds ``key`` (``facts.fact_for``), added with ``add``.
        ``check=False`` is for what the image carries whatever we think of it (the recipe's own labels):
        an invalid value is then reported by validation, not dropped.
        """
        full = catalogue().canonical(key)
        sourced = Sourced(value, self.provenance(line, fragment, note, file), key if key != full else None)
        return self.add(fact_for(full, sourced), check=check)

    def add(self, fact: Fact, *, check: bool = True) -> bool:
        """Record ``fact``; its values become annotations (``facts.to_annotations``). A value the catalogue
        refuses is left out with a warning and the reason in ``missing``; False when one was."""
        values = list(fact.items())
        refused = []
        if check:
            for key, sourced in values:
                spelled = sourced.spelling or key
                problem = self._problem(key, sourced.value)
                if problem:
                    self.warnings.append(f"{spelled}: not set, the recipe's value {problem}")
                    self.miss(key, f"the recipe's value {sourced.value!r} is not valid here ({problem})")
                    refused.append(key)
        if refused:
            fact = fact.without(refused)
            values = [(key, sourced) for key, sourced in values if key not in refused]
        if not values:
            return not refused
        self.facts.append(fact)
        to_annotations([fact], self.annotations)
        for key, _ in values:  # fact keys are canonical
            self.missing.pop(key, None)
        return not refused

    def fact(self, kind: type[Fact]) -> Fact | None:
        """What the recipe says of one kind (``Mpi``), its values merged in the order found; None if nothing."""
        found = [f for f in self.facts if type(f) is kind]
        if not found:
            return None
        merged = found[0]
        for later in found[1:]:
            merged = merged.merged(later)
        return merged

    @staticmethod
    def _problem(key: str, value: str) -> str | None:
        """Why ``value`` is not valid for ``key`` (a canonical key; after the usual normalisation), or None."""
        from hpcannotate.model.values import check_value, normalise_value

        if value is None or str(value).strip() == "":
            return "is empty"
        spec = catalogue().specs.get(key)
        if spec is None:
            return None
        return check_value(spec, normalise_value(spec, str(value)))

    def miss(self, key: str, reason: str) -> None:
        """Record that ``key`` was not inferred, unless it already has a value."""
        if key not in self.annotations:
            self.missing.setdefault(catalogue().canonical(key), reason)

    def to_json(self) -> dict:
        data = self.annotations.to_json()
        data.update(
            format=self.format,
            path=str(self.path),
            missing=dict(sorted(self.missing.items())),
            labels=dict(sorted(self.labels.items())),
            warnings=list(self.warnings),
        )
        return data


class Adapter(ABC):
    """One recipe format. Subclasses are stateless; ``infer`` may start worker processes."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def detect(self, path: Path) -> bool:
        """True when ``path`` (a file) is a recipe of this format."""

    @abstractmethod
    def infer(self, path: Path, options: InferOptions) -> Inference:
        """Annotations from the recipe at ``path``; raise InputError for a recipe that cannot be read."""


def apply_target(inference: Inference, target: str | None, *, pinned_by_recipe: bool = False,
                 fragment: str | None = None, line: int | None = None, file: Path | str | None = None) -> None:
    """Set the CPU target and its mode from ``--target`` (or from the recipe when it pins one).

    The mode is derived from the target with archspec, so the two never disagree.
    """
    from hpcannotate.model import targets

    if not target:
        inference.miss(TARGET_KEY, "the recipe pins no CPU target and no --target was given")
        inference.miss(MODE_KEY, "follows hardware.cpu.optimized.version, which is unknown")
        return
    if not targets.is_target(target):
        hint = targets.suggest_target(target)
        extra = f" (did you mean {hint!r}?)" if hint else ""
        raise InputError(f"--target {target}: not an archspec CPU target{extra}")
    note = None if pinned_by_recipe else "from --target"
    inference.add(CpuTarget(
        target=inference.sourced(target, line=line, fragment=fragment, note=note, file=file),
        mode=inference.sourced(targets.mode_for_target(target), line=line, fragment=fragment,
                               note=f"derived from target {target}", file=file)))
