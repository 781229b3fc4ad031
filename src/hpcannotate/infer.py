"""Recipe -> annotations: pick the adapter for a path and run it.

This is the library entry point behind ``hpcannotate infer``; the build
pipeline calls it too.
"""

from __future__ import annotations

from pathlib import Path

from .adapters import ADAPTERS, adapter, detect_format
from .adapters.base import Inference, InferOptions
from .errors import InputError

RECIPE_DIR_CONFIG = "hpcannotate.yaml"


def _candidates(directory: Path, only: str | None) -> dict[str, list[Path]]:
    """Recipe files directly inside ``directory``, by format."""
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        name = detect_format(path, [only] if only else None)
        if name:
            found.setdefault(name, []).append(path)
    # a spack.lock beside a spack.yaml is read by the spack adapter with the yaml
    spack = found.get("spack", [])
    if len(spack) > 1 and any(p.name in ("spack.yaml", "spack.yml") for p in spack):
        found["spack"] = [p for p in spack if p.name in ("spack.yaml", "spack.yml")]
    return found


def resolve_recipe(path: Path, format: str | None = None) -> tuple[str, Path]:
    """The format and the recipe file for a file or a recipe directory."""
    if format is not None and format not in ADAPTERS:
        raise InputError(f"--format {format}: unknown format (one of: {', '.join(ADAPTERS)})")
    if not path.exists():
        from .adapters.easybuild import locate_by_name

        found = locate_by_name(str(path)) if format in (None, "easybuild") else None
        if found is None:
            raise InputError(f"{path}: no such file or directory")
        path = found
    if path.is_file():
        name = format or detect_format(path)
        if name:
            return name, path
        raise InputError(f"{path}: not a recognised recipe (HPCCM *.py, spack.yaml/spack.lock, *.eb); use --format")
    if (path / RECIPE_DIR_CONFIG).is_file():
        return _from_recipe_dir(path, format)
    found = _candidates(path, format)
    if not found:
        what = f"{format} recipe" if format else "recipe (HPCCM *.py, spack.yaml/spack.lock, *.eb)"
        raise InputError(f"{path}: holds no {what}")
    if len(found) > 1:
        listing = "; ".join(f"{name}: {', '.join(p.name for p in files)}" for name, files in found.items())
        raise InputError(f"{path}: holds recipes of several formats ({listing}); pick one with --format")
    ((name, files),) = found.items()
    if len(files) > 1:
        # recipes/osu_benchmarks/ holds osu_benchmarks.py and the common.py it includes
        named = [p for p in files if p.stem == path.resolve().name]
        if len(named) != 1:
            listing = ", ".join(p.name for p in files)
            raise InputError(f"{path}: holds several {name} recipes ({listing}); name the file")
        files = named
    return name, files[0]


def _from_recipe_dir(path: Path, format: str | None) -> tuple[str, Path]:
    """A recipe directory says which recipe is which: its default variant, or the one of ``format``."""
    from .recipedir import load_recipe_dir

    recipe_dir = load_recipe_dir(path)
    if format is None:
        variant = recipe_dir.variant()
        if variant.format in ADAPTERS:
            return variant.format, variant.recipe
        others = sorted({v.format for v in recipe_dir.variants.values() if v.format in ADAPTERS})
        hint = f"pick another with --format ({', '.join(others)})" if others else "it has no recipe to read"
        raise InputError(f"{path}: its default variant {variant.name!r} is a {variant.format} recipe, whose "
                         f"annotations are declared in {RECIPE_DIR_CONFIG} (see `hpcannotate render "
                         f"{path} --explain`); {hint}")
    matching = [v for v in recipe_dir.variants.values() if v.format == format]
    if len(matching) != 1:
        what = "no" if not matching else f"{len(matching)}"
        raise InputError(f"{path}: {what} {format} variants in {RECIPE_DIR_CONFIG}; name the recipe file")
    return format, matching[0].recipe


def infer(path: str | Path, options: InferOptions | None = None, format: str | None = None) -> Inference:
    """Annotations (layer ``recipe``) inferred from the recipe at ``path``."""
    name, recipe = resolve_recipe(Path(path), format)
    return adapter(name).infer(recipe, options or InferOptions())
