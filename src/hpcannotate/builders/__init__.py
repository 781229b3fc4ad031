"""Builder backends, one per tool, all behind ``base.Builder``."""

from __future__ import annotations

from ..errors import InputError
from .base import Builder, BuildOptions, BuildResult
from .buildah import BuildahBuilder
from .buildx import BuildxBuilder

BACKENDS: dict[str, type[Builder]] = {"buildah": BuildahBuilder, "buildx": BuildxBuilder}

__all__ = ["BACKENDS", "BuildOptions", "BuildResult", "Builder", "select_builder"]


def select_builder(name: str, options: BuildOptions) -> Builder:
    """``auto`` prefers buildah (daemonless, rootless-friendly), then docker buildx."""
    if name == "auto":
        for cls in BACKENDS.values():
            builder = cls(options)
            if builder.available():
                return builder
        raise InputError("no builder found: install buildah (apt-get install buildah) or docker buildx")
    if name not in BACKENDS:
        raise InputError(f"--backend {name}: unknown backend (one of: auto, {', '.join(BACKENDS)})")
    return BACKENDS[name](options)
