"""Where a value came from: the layer that set it and the exact place in its source.

The seeds describe annotations as layered (base image, then the build, then
after the build); keeping the layer with every value is what lets a later layer
win while the loser stays visible in ``--explain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Layer(IntEnum):
    """Precedence of annotation sources: a higher layer overrides a lower one."""

    BASE_IMAGE = 10
    RECIPE = 20
    PROBE = 30
    USER = 40

    @property
    def label(self) -> str:
        return {10: "base image", 20: "recipe", 30: "image probe", 40: "user"}[self.value]

    @classmethod
    def parse(cls, text: str) -> Layer:
        wanted = text.strip().lower().replace("_", " ").replace("-", " ")
        for layer in cls:
            if wanted in (layer.label, layer.name.lower().replace("_", " ")):
                return layer
        if wanted in ("curator", "override", "overrides"):
            return cls.USER
        if wanted == "probe":
            return cls.PROBE
        raise ValueError(f"unknown layer {text!r} (base image, recipe, image probe, user)")


@dataclass(frozen=True)
class Provenance:
    layer: Layer = Layer.USER
    file: str | None = None
    line: int | None = None
    fragment: str | None = None
    note: str | None = None

    def describe(self) -> str:
        """One short phrase for tables: ``recipe recipes/gromacs/spack.yaml:12 (gromacs+mpi)``."""
        where = self.file or ""
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        parts = [self.layer.label]
        if where:
            parts.append(where)
        if self.fragment:
            parts.append(f"({self.fragment})")
        if self.note:
            parts.append(f"- {self.note}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        data: dict = {"layer": self.layer.label}
        for name in ("file", "line", "fragment", "note"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Provenance:
        return cls(
            layer=Layer.parse(data.get("layer", "user")),
            file=data.get("file"),
            line=data.get("line"),
            fragment=data.get("fragment"),
            note=data.get("note"),
        )
