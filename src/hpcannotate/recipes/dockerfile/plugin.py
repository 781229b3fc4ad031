"""Dockerfile fragments: a variant's stages without FROM, over the ``base:`` hpcannotate.yaml names.

Nothing is inferred: the annotations of a dockerfile variant are declared in hpcannotate.yaml.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.errors import InputError
from hpcannotate.recipes.plugin import RecipeFormat, check_reference

if TYPE_CHECKING:
    from hpcannotate.recipes.recipedir import EnvSpec, Variant

NAME = re.compile(r"^(?:Dockerfile|Containerfile)(?:\..+)?$|\.(?:Dockerfile|Containerfile)$", re.I)


class DockerfileFormat(RecipeFormat):
    name = "dockerfile"
    files = "Dockerfile"
    copies_sources = True
    prebuilt = True
    needs_base = True

    def detect(self, path: Path) -> bool:
        return bool(NAME.search(path.name))

    def render(self, variant: Variant, target: str, context: Path, timeout: float) -> tuple[str, EnvSpec]:
        from hpcannotate.files import read_text
        from hpcannotate.recipes.recipefiles import EnvSpec

        fragment = read_text(variant.recipe, "Dockerfile fragment")
        if any(line.strip().upper().startswith("FROM ") for line in fragment.splitlines()):
            raise InputError(f"{variant.recipe}: a dockerfile variant is a fragment without FROM (the base comes from "
                             "hpcannotate.yaml)")
        base = check_reference(variant.base, f"variants.{variant.name}.base")
        return f"FROM {base}\n{fragment.rstrip()}\n", EnvSpec()
