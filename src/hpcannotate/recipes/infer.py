"""Recipe -> annotations: pick the adapter for a path and run it.

This is the library entry point behind ``hpcannotate infer``; the build
pipeline calls it too.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.errors import InputError
from hpcannotate.recipes import formats
from hpcannotate.recipes.base import Inference, InferOptions

if TYPE_CHECKING:
    from hpcannotate.recipes.recipedir import Variant

RECIPE_DIR_CONFIG = "hpcannotate.yaml"


def _candidates(directory: Path, only: str | None) -> dict[str, list[Path]]:
    """Recipe files directly inside ``directory``, by format."""
    found: dict[str, list[Path]] = {}
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        name = formats.detect(path, [only] if only else None)
        if name:
            found.setdefault(name, []).append(path)
    # of several files of one format, the recipes (a spack.lock beside its spack.yaml is read with the yaml)
    return {name: formats.get(name).preferred(files) for name, files in found.items()}


def resolve_recipe(path: Path, format: str | None = None) -> tuple[str, Path]:
    """The format and the recipe file for a file or a recipe directory."""
    readable = formats.inferable()
    if format is not None and format not in readable:
        raise InputError(f"--format {format}: unknown format (one of: {', '.join(readable)})")
    if not path.exists():
        # a name some format looks up elsewhere: an installed easyconfig
        wanted = [format] if format else readable
        found = next(filter(None, (formats.get(name).locate_path(path) for name in wanted)), None)
        if found is None:
            raise InputError(f"{path}: no such file or directory")
        path = found
    if path.is_file():
        name = format or formats.detect(path)
        if name:
            return name, path
        raise InputError(f"{path}: not a recognised recipe ({formats.files_phrase()}); use --format")
    if not path.is_dir():
        from hpcannotate.files import kind_of

        raise InputError(f"{path}: is {kind_of(path.stat().st_mode)}, not a recipe file or directory")
    if (path / RECIPE_DIR_CONFIG).is_file():
        chosen = recipe_dir_variant(path, format)
        return chosen.format, chosen.recipe
    found = _candidates(path, format)
    if not found:
        what = f"{format} recipe" if format else f"recipe ({formats.files_phrase()})"
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


def recipe_dir_variant(path: Path, format: str | None = None, variant: str | None = None):
    """The variant of a recipe directory to read: ``variant`` by name, else the one of ``format``, else
    the default. Only variants in a recipe format can be read (a Dockerfile variant declares its values)."""
    from hpcannotate.recipes.recipedir import load_recipe_dir

    recipe_dir = load_recipe_dir(path)
    readable = sorted(v.name for v in recipe_dir.variants.values() if formats.get(v.format).inferable)
    if variant is None and format is not None:
        matching = [v.name for v in recipe_dir.variants.values() if v.format == format]
        if len(matching) != 1:
            what = (f"{len(matching)} {format} variants ({', '.join(matching)})" if matching
                    else f"no {format} variant")
            raise InputError(f"{path}: {what} in {RECIPE_DIR_CONFIG}; pick one with --variant")
        variant = matching[0]
    chosen = recipe_dir.variant(variant)
    if not formats.get(chosen.format).inferable:
        hint = f"pick one with --variant ({', '.join(readable)})" if readable else "it has no recipe to read"
        raise InputError(f"{path}: variant {chosen.name!r} is a {chosen.format} recipe whose annotations are "
                         f"declared in {RECIPE_DIR_CONFIG}, not inferred; {hint}")
    if format is not None and chosen.format != format:
        raise InputError(f"{path}: variant {chosen.name!r} is a {chosen.format} recipe, not {format}")
    return chosen


def infer(path: str | Path, options: InferOptions | None = None, format: str | None = None,
          variant: str | None = None) -> Inference:
    """Annotations (layer ``recipe``) inferred from the recipe at ``path``.

    For a recipe directory with an ``hpcannotate.yaml``, ``variant`` (or ``format``) picks the recipe,
    and that variant's userargs and first target are the defaults of ``options``, as ``build`` uses them.
    """
    path = Path(path)
    options = options or InferOptions()
    if path.is_dir() and (path / RECIPE_DIR_CONFIG).is_file():
        chosen = recipe_dir_variant(path, format, variant)
        given = options.target
        options = replace(options, userargs={**chosen.userargs, **options.userargs},
                          target=options.target or (chosen.targets[0] if chosen.targets else None))
        inference = formats.get(chosen.format).infer(chosen.recipe, options)
        name_target_source(inference, chosen, options.target, "--target" if given else None)
        return inference
    if variant is not None:
        raise InputError(f"--variant {variant}: {path} is not a recipe directory with an {RECIPE_DIR_CONFIG}")
    name, recipe = resolve_recipe(path, format)
    return formats.get(name).infer(recipe, options)


def name_target_source(inference: Inference, variant: Variant, target: str, source: str | None) -> None:
    """The adapters say "from --target" for a target they were given; in a render it may be the
    variant's ``targets:`` or hpcannotate's default instead: say which."""
    from hpcannotate.model.provenance import Layer, Provenance
    from hpcannotate.recipes.base import MODE_KEY, TARGET_KEY
    from hpcannotate.recipes.facts import CpuTarget, Sourced

    entry = inference.annotations.entry(TARGET_KEY) if TARGET_KEY in inference.annotations else None
    if entry is None or entry.provenance.note != "from --target":
        return
    if source is None and target in variant.targets:
        if variant.targets_from:
            source = f"{variant.targets_from} in hpcannotate.yaml"
        else:
            source = "hpcannotate's default target (hpcannotate.yaml names no targets:)"
    if source is None or source == "--target":
        return
    file = str(variant.config) if variant.targets_from else None
    fragment = f"{variant.targets_from}: [{', '.join(variant.targets)}]" if variant.targets_from else None
    prov = Provenance(Layer.RECIPE, file, None, fragment, f"from {source}")
    mode = inference.annotations.get(MODE_KEY)
    derived = Provenance(Layer.RECIPE, file, None, fragment, f"derived from target {target}")
    inference.add(CpuTarget(target=Sourced(target, prov), mode=None if mode is None else Sourced(mode, derived)),
                  check=False)
