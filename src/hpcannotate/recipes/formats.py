"""The recipe formats hpcannotate reads and renders, registered in one place.

``FORMATS`` maps a format's name to its ``RecipeFormat`` (see ``plugin.py``), in the order formats are
tried when a file is detected and listed in messages. The CLI's ``--format`` choices and the
``format:`` enum of ``data/recipedir.schema.yaml`` are read from it, and ``build.recipe.format`` takes
any format's name, so adding a format is: a folder ``recipes/<name>/`` with a ``plugin.py`` holding a
``RecipeFormat`` subclass (and its adapter beside it when it infers annotations), then one line in
``FORMATS`` below. ``register`` does the same at run time (for a plugin, or a test).
"""

from __future__ import annotations

from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.recipes.dockerfile.plugin import DockerfileFormat
from hpcannotate.recipes.easybuild.plugin import EasyBuildFormat
from hpcannotate.recipes.hpccm.plugin import HpccmFormat
from hpcannotate.recipes.plugin import RecipeFormat, check_reference
from hpcannotate.recipes.spack.plugin import SpackFormat

FORMATS: dict[str, RecipeFormat] = {
    fmt.name: fmt for fmt in (DockerfileFormat(), HpccmFormat(), SpackFormat(), EasyBuildFormat())
}

__all__ = ["FORMATS", "RecipeFormat", "check_reference", "detect", "get", "inferable", "names", "register",
           "unregister"]


def get(name: str) -> RecipeFormat:
    """The format called ``name``; InputError naming the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(f"unknown recipe format {name!r} (one of: {', '.join(names())})") from None


def names() -> list[str]:
    """Every format a recipe directory's variant may have (the schema's enum, ``init --format``)."""
    return list(FORMATS)


def inferable() -> list[str]:
    """The formats whose annotations are read from the recipe (``infer --format``)."""
    return [name for name, fmt in FORMATS.items() if fmt.inferable]


def files_phrase(formats: list[str] | None = None) -> str:
    """How recipes of ``formats`` (default: the inferable ones) look, for messages: ``HPCCM *.py, *.eb``."""
    return ", ".join(FORMATS[name].files for name in formats or inferable())


def detect(path: Path, formats: list[str] | None = None) -> str | None:
    """The format of a recipe file, by asking each format of ``formats`` (default: the inferable ones) in
    registry order; None when none claims it."""
    for name in formats or inferable():
        if get(name).detect(path):
            return name
    return None


def register(fmt: RecipeFormat) -> RecipeFormat:
    """Add (or replace) a format at run time; it is tried after the built-in ones."""
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove a format ``register`` added (tests put the registry back as it was)."""
    FORMATS.pop(name, None)
