"""What a probe result is compared with: a recipe's claims, or the annotations an image already carries.

``recipe_claims`` accepts everything a user would point at: a recipe directory
with ``hpcannotate.yaml`` (rendered for one variant and target, as ``build``
would), a recipe file or directory ``hpcannotate infer`` reads, or an
annotation file (YAML/JSON mapping, ``infer --json`` output, a build context's
``annotations.json``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.provenance import Layer, Provenance

ANNOTATION_SUFFIXES = (".json", ".yaml", ".yml")


def _annotation_file(path: Path) -> Annotations:
    from hpcannotate.model.inputs import load_annotation_mapping, load_structured

    data = load_structured(path, "mapping of annotations")
    if isinstance(data, dict) and isinstance(data.get("annotations"), dict) and isinstance(data.get("provenance"),
                                                                                            dict):
        try:
            return Annotations.from_json(data)  # keeps where each claim came from
        except (TypeError, ValueError, KeyError):
            pass
    mapping = load_annotation_mapping(path)
    return Annotations.from_mapping(mapping, Provenance(Layer.RECIPE, str(path)), source=str(path))


def _recipe_dir(path: Path, variant: str | None, target: str | None) -> Annotations:
    from hpcannotate.dockerfile.render import render_variant
    from hpcannotate.recipes.recipedir import load_recipe_dir

    recipe_dir = load_recipe_dir(path)
    chosen = recipe_dir.variant(variant)
    target = target or chosen.targets[0]
    with tempfile.TemporaryDirectory(prefix="hpcannotate-claims-") as tmp:
        return render_variant(recipe_dir, chosen.name, target, Path(tmp) / "context").annotations


def recipe_claims(path: str | Path, *, variant: str | None = None, target: str | None = None) -> Annotations:
    """The annotations a recipe (directory, file, or annotation file) claims for its image."""
    from hpcannotate.recipes.infer import infer, resolve_recipe

    path = Path(path)
    if path.is_dir() and (path / "hpcannotate.yaml").is_file():
        return _recipe_dir(path, variant, target)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    try:
        fmt, _ = resolve_recipe(path)
    except InputError:
        if path.is_file() and path.suffix in ANNOTATION_SUFFIXES:
            return _annotation_file(path)
        raise
    from hpcannotate.recipes.base import InferOptions

    return infer(path, InferOptions(target=target), fmt).annotations


def image_claims(annotations: Mapping[str, str], labels: Mapping[str, str], where: str) -> Annotations:
    """What an image says about itself: its config labels, overridden by its manifest annotations."""
    def managed(data: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in data.items() if isinstance(v, str) and k.startswith(P)}

    from_labels = Annotations.from_mapping(managed(labels), Provenance(Layer.RECIPE, f"{where} config labels"))
    from_manifest = Annotations.from_mapping(managed(annotations),
                                             Provenance(Layer.RECIPE, f"{where} manifest annotations"))
    return from_labels.merge(from_manifest)
