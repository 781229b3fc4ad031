"""EasyBuild easyconfigs (``*.eb``): read by EasyBuild's own parser in a worker; built with ``eb``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.errors import InputError
from hpcannotate.model.keynames import DOCS_BUILD_EASYCONFIG
from hpcannotate.recipes.plugin import RecipeFormat, check_reference

if TYPE_CHECKING:
    from hpcannotate.recipes.recipedir import EnvSpec, Variant


class EasyBuildFormat(RecipeFormat):
    name = "easybuild"
    files = "*.eb"
    adapter_class = "hpcannotate.recipes.easybuild.adapter:EasyBuildAdapter"
    doc_key = DOCS_BUILD_EASYCONFIG
    default_base = "ubuntu:22.04"

    def render(self, variant: Variant, target: str, context: Path, timeout: float) -> tuple[str, EnvSpec]:
        from hpcannotate.recipes.recipefiles import EnvSpec
        from hpcannotate.resources import render as render_template

        eb_dir = context / "easyconfig"
        eb_dir.mkdir()
        shutil.copy2(variant.recipe, eb_dir / variant.recipe.name)
        base = check_reference(variant.base or self.default_base, "base")
        text = render_template(
            "easybuild.Dockerfile.j2",
            build_base=check_reference(variant.build_base or base, "build_base"),
            base=base,
            target=target,
            optarch=easybuild_optarch(target),
            easyconfig=variant.recipe.name,
        )
        name, _, rest = variant.recipe.stem.partition("-")
        return text, EnvSpec(path=(f"/opt/easybuild/software/{name}/{rest}/bin",))

    def locate(self, name: str, directory: Path, where: str) -> Path | None:
        """A bare easyconfig name (``GROMACS-2023.3-foss-2023a.eb``) in the installed easybuild-easyconfigs."""
        if "/" in name or not name.endswith(".eb"):
            return None
        from hpcannotate.recipes.easybuild.adapter import locate_by_name
        from hpcannotate.recipes.easybuild.evaluate import installed_easyconfigs
        from hpcannotate.recipes.recipefiles import EASYCONFIGS_EXTRA

        found = locate_by_name(name)
        if found:
            return found
        if not installed_easyconfigs():
            raise InputError(f"{where}: {name} is not in {directory}, and a bare easyconfig name is looked up in "
                             "the easybuild-easyconfigs package, which is not installed; install it with "
                             f"`{EASYCONFIGS_EXTRA}`")
        raise InputError(f"{where}: {name} is neither in {directory} nor in the installed easybuild-easyconfigs "
                         f"package (where a bare easyconfig name is looked up); check the name, or install the "
                         f"release that has it with `{EASYCONFIGS_EXTRA}`")

    def locate_path(self, path: Path) -> Path | None:
        """``hpcannotate infer NAME.eb`` for an easyconfig that is not a file here: the installed one."""
        from hpcannotate.recipes.easybuild.adapter import locate_by_name

        return locate_by_name(str(path))


def easybuild_optarch(target: str) -> str:
    """EasyBuild's --optarch for a target, from archspec's GCC flags (``GCC:march=znver3 -mtune=znver3``)."""
    import archspec.cpu

    try:
        flags = archspec.cpu.TARGETS[target].optimization_flags("gcc", "12.3.0")
    except (KeyError, ValueError, archspec.cpu.UnsupportedMicroarchitecture):
        flags = ""
    return f"GCC:{flags.lstrip('-')}" if flags else "GENERIC"
