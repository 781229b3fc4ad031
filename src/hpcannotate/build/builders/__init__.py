"""Builder backends, one per tool, all behind ``base.Builder``."""

from __future__ import annotations

from hpcannotate.build.builders.base import Builder, BuildOptions, BuildResult
from hpcannotate.build.builders.buildah import BuildahBuilder, BuildahOptions
from hpcannotate.build.builders.buildx import BuildxBuilder, BuildxOptions
from hpcannotate.errors import InputError

BACKENDS: dict[str, type[Builder]] = {"buildah": BuildahBuilder, "buildx": BuildxBuilder}

__all__ = ["BACKENDS", "BuildOptions", "BuildResult", "BuildahOptions", "Builder", "BuildxOptions",
           "select_builder"]


def select_builder(name: str, options: BuildOptions | None = None) -> Builder:
    """``auto`` prefers buildah (daemonless, rootless-friendly), then docker buildx.

    ``options`` may be the common ``BuildOptions`` or a backend's own: the chosen backend adopts
    what it shares with them (``BuildOptions.adopt``) and refuses what it cannot honour."""
    if name == "auto":
        chosen = next((b for b in (cls(options) for cls in BACKENDS.values()) if b.available()), None)
        if chosen is None:
            raise InputError("no builder found: install buildah (apt-get install buildah) or docker buildx")
    elif name not in BACKENDS:
        raise InputError(f"--backend {name}: unknown backend (one of: auto, {', '.join(BACKENDS)})")
    else:
        chosen = BACKENDS[name](options)
    if options is not None:
        chosen.options_type.refuse(options)
    return chosen
