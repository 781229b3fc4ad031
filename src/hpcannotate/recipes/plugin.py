"""The interface every recipe format implements, so that adding a format is one module.

A format says how to recognise its recipes (``detect``), how to read annotations from one
(``infer``: through the adapter in the format's own folder, ``adapter_class``), how to turn one variant into the
recipe's own Dockerfile stages (``render``), which key embeds the recipe as documentation
(``doc_key``) and which base images it builds on by default. Everything that used to ask
``if format == "spack"`` asks the format instead (see ``hpcannotate.recipes.formats`` for the registry).

Format modules import nothing heavy at the top: ``hpcannotate --help`` and the recipe-directory
schema read the registry, and must not import hpccm, EasyBuild or the template engine.
"""

from __future__ import annotations

from abc import ABC
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from hpcannotate.dockerfile.text import representable
from hpcannotate.errors import InputError

if TYPE_CHECKING:
    from hpcannotate.recipes.base import Adapter, Inference, InferOptions
    from hpcannotate.recipes.recipedir import EnvSpec, Variant


def check_reference(value: str, where: str) -> str:
    """``value`` when it can be an image reference in a FROM line (one word, printable); else InputError."""
    if not value or any(c.isspace() for c in value) or not representable(value):
        raise InputError(f"{where}: {value!r} is not an image reference")
    return value


class RecipeFormat(ABC):
    """One recipe format. Instances are stateless; the registry holds one of each."""

    name: ClassVar[str]
    # how the files of this format look, for messages: "spack.yaml/spack.lock"
    files: ClassVar[str]
    # "module:Class" of the adapter that infers annotations; None for a format whose values are declared
    adapter_class: ClassVar[str | None] = None
    # the key that embeds the recipe itself (base64) when the adapter has not set it
    doc_key: ClassVar[str | None] = None
    # the base image of the final stage, and of the build stage, when the variant names none
    default_base: ClassVar[str | None] = None
    default_build_base: ClassVar[str | None] = None
    # the variant's hpcannotate.yaml ``userargs:`` are passed to the recipe (HPCCM's USERARG)
    takes_userargs: ClassVar[bool] = False
    # the recipe's COPY/ADD sources come from the recipe directory into the build context
    copies_sources: ClassVar[bool] = False
    # the recipe names its own base image: a variant's ``base:`` is then not the image's base.name
    names_own_base: ClassVar[bool] = False
    # the recipe installs prebuilt binaries: it can only be built for the variant's ``targets:``
    prebuilt: ClassVar[bool] = False
    # the variant must name ``base:`` (the recipe has no FROM of its own)
    needs_base: ClassVar[bool] = False

    @property
    def inferable(self) -> bool:
        """True when annotations are read from the recipe; False when hpcannotate.yaml declares them."""
        return self.adapter_class is not None or type(self).infer is not RecipeFormat.infer

    def adapter(self) -> Adapter:
        """The adapter of this format, imported on first use (it may pull in hpccm or EasyBuild)."""
        if self.adapter_class is None:
            raise InputError(f"recipe format {self.name!r}: annotations are declared in hpcannotate.yaml, "
                             "not inferred")
        module_name, _, cls_name = self.adapter_class.partition(":")
        return getattr(import_module(module_name), cls_name)()

    def detect(self, path: Path) -> bool:
        """True when ``path`` (a file) is a recipe of this format."""
        return self.adapter().detect(path) if self.adapter_class else False

    def infer(self, path: Path, options: InferOptions) -> Inference:
        """Annotations (layer ``recipe``) from the recipe at ``path``; InputError for one that cannot be read."""
        return self.adapter().infer(path, options)

    def render(self, variant: Variant, target: str, context: Path, timeout: float) -> tuple[str, EnvSpec]:
        """The recipe's own Dockerfile stages for ``target``, and the environment the format implies.

        Files the stages need go into ``context`` (the build context being written).
        """
        raise InputError(f"variants.{variant.name}.format: {variant.format!r} cannot be rendered")

    def locate(self, name: str, directory: Path, where: str) -> Path | None:
        """The recipe a bare ``recipe:`` name means when ``directory`` has no such file; None: not found
        (the caller says so). A format that looks names up elsewhere raises InputError with the reason."""
        return None

    def locate_path(self, path: Path) -> Path | None:
        """The recipe ``hpcannotate infer PATH`` means when PATH does not exist here; None: no such recipe."""
        return None

    def checked_recipe(self, path: Path) -> Path:
        """``path``, after checking the files it pulls in (Spack's includes, its lock) stay in its directory."""
        return path

    def preferred(self, files: list[Path]) -> list[Path]:
        """Of several recipes of this format in one directory, the ones that are recipes in their own right."""
        return files
