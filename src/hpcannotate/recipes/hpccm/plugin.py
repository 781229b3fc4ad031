"""HPCCM recipes (``*.py``): run in a sandboxed worker, for inference and for the Dockerfile."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.model.keynames import DOCS_BUILD_HPCCM_RECIPE
from hpcannotate.recipes.plugin import RecipeFormat

if TYPE_CHECKING:
    from hpcannotate.recipes.recipedir import EnvSpec, Variant


class HpccmFormat(RecipeFormat):
    name = "hpccm"
    files = "HPCCM *.py"
    adapter_class = "hpcannotate.recipes.hpccm.adapter:HpccmAdapter"
    doc_key = DOCS_BUILD_HPCCM_RECIPE
    takes_userargs = True
    copies_sources = True
    names_own_base = True

    def render(self, variant: Variant, target: str, context: Path, timeout: float) -> tuple[str, EnvSpec]:
        from hpcannotate.recipes.isolation import malformed, run_isolated
        from hpcannotate.recipes.recipefiles import EnvSpec

        reply = run_isolated(
            "hpcannotate.recipes.hpccm.render:render",
            {"recipe": str(variant.recipe.resolve()), "target": target, "userargs": variant.userargs},
            timeout=timeout,
            what=str(variant.recipe),
            reads=[str(variant.config.parent.resolve())],
        )
        dockerfile = reply.get("dockerfile") if isinstance(reply, dict) else None
        if not isinstance(dockerfile, str):
            raise malformed(str(variant.recipe), TypeError("no Dockerfile text"))
        return dockerfile.rstrip() + "\n", EnvSpec()
