"""Spack environments (``spack.yaml``) and their lock files (``spack.lock``): one format, one adapter.

The adapter reads a lock beside the environment with it; rendering copies the environment, its lock
and its relative includes into the context and builds it with ``spack install`` in a build stage.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.errors import InputError
from hpcannotate.model.keynames import DOCS_BUILD_SPACK_ENV
from hpcannotate.recipes.plugin import RecipeFormat, check_reference

if TYPE_CHECKING:
    from hpcannotate.recipes.recipedir import EnvSpec, Variant

ENV_FILES = ("spack.yaml", "spack.yml")


class SpackFormat(RecipeFormat):
    name = "spack"
    files = "spack.yaml/spack.lock"
    adapter_class = "hpcannotate.recipes.spack.adapter:SpackAdapter"
    doc_key = DOCS_BUILD_SPACK_ENV
    default_base = "ubuntu:22.04"
    default_build_base = "spack/ubuntu-jammy:0.23.1"

    def render(self, variant: Variant, target: str, context: Path, timeout: float) -> tuple[str, EnvSpec]:
        from hpcannotate.recipes.recipefiles import EnvSpec
        from hpcannotate.resources import render as render_template

        env_dir = context / "spack-env"
        env_dir.mkdir()
        copy_environment(variant.recipe, env_dir)
        text = render_template(
            "spack.Dockerfile.j2",
            build_base=check_reference(variant.build_base or self.default_build_base, "build_base"),
            base=check_reference(variant.base or self.default_base, "base"),
            target=target,
        )
        return text, EnvSpec(path=("/opt/view/bin",), ld_library_path=("/opt/view/lib", "/opt/view/lib64"))

    def checked_recipe(self, path: Path) -> Path:
        from hpcannotate.recipes.recipefiles import check_spack_names

        return check_spack_names(path)

    def preferred(self, files: list[Path]) -> list[Path]:
        """A spack.lock beside a spack.yaml is read by the adapter with the yaml: the yaml is the recipe."""
        if len(files) > 1 and any(p.name in ENV_FILES for p in files):
            return [p for p in files if p.name in ENV_FILES]
        return files


def copy_environment(recipe: Path, env_dir: Path) -> None:
    """The recipe as ``spack.yaml``, its own lock file (``<stem>.lock``) as ``spack.lock``, and the
    relative ``include:`` files it names (inside the recipe directory), at their relative paths.
    Nothing else: a sibling ``spack.yaml`` of another recipe must not replace this one."""
    from hpcannotate.files import regular_only
    from hpcannotate.recipes.recipefiles import spack_includes, spack_lock

    shutil.copy2(recipe, env_dir / "spack.yaml")
    lock = recipe.with_suffix(".lock")
    if os.path.lexists(lock):
        shutil.copy2(spack_lock(recipe), env_dir / "spack.lock")
    for include in spack_includes(recipe):
        relative = include.relative_to(recipe.parent)
        if relative.parts[0] in ("spack.yaml", "spack.lock"):
            raise InputError(f"{recipe}: include: {relative} would replace the environment's own "
                             f"{relative.parts[0]} in the build context; rename it")
        dest = env_dir / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        if include.is_dir():
            shutil.copytree(include, dest, symlinks=True, dirs_exist_ok=True,
                            copy_function=regular_only(f"{recipe}: include: {relative}"))
        else:
            shutil.copy2(include, dest)
