"""Recipe directories: ``recipes/<app>/hpcannotate.yaml`` and the variants it names.

A recipe directory describes one application as several variants (an HPCCM
recipe, a Spack environment, an easyconfig, a Debian-package Dockerfile
fragment), each built for a list of CPU targets: one image per target. The file
is checked against ``data/recipedir.schema.yaml`` and every error names the file
and the key.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

from .errors import InputError
from .inputs import check_key, load_structured

CONFIG_NAME = "hpcannotate.yaml"
DEFAULT_SHELL = "/bin/bash"
DEFAULT_TARGETS = ("x86_64",)
# The schema's patterns, matched in full here: JSON Schema's ``$`` lets a trailing line break through
# (Python's re.search), and these names land in Dockerfile comments and in build directories.
APP_NAME = re.compile(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*")
VARIANT_NAME = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class EnvSpec:
    """The application's environment: written to /etc/profile.d and, identically, as ENV."""

    path: tuple[str, ...] = ()
    ld_library_path: tuple[str, ...] = ()
    vars: dict[str, str] = field(default_factory=dict)

    def merged(self, other: EnvSpec) -> EnvSpec:
        def joined(mine: tuple[str, ...], theirs: tuple[str, ...]) -> tuple[str, ...]:
            return theirs + tuple(p for p in mine if p not in theirs)

        return EnvSpec(joined(self.path, other.path), joined(self.ld_library_path, other.ld_library_path),
                       {**self.vars, **other.vars})


@dataclass(frozen=True)
class Variant:
    """One variant of a recipe directory.

    ``recipe_name`` is the ``recipe:`` value as written; ``recipe`` is the file it names, found on
    first use: a variant whose recipe is missing (an easyconfig of an extra that is not installed)
    is an error only for a command that uses that variant, never for the others.
    """

    name: str
    format: str
    recipe_name: str
    targets: tuple[str, ...]
    base: str | None
    annotations: dict[str, str]
    env: EnvSpec
    userargs: dict[str, str]
    usage: str | None
    shell: str | None  # None: not said; the login shell then follows the base image (see render.login_shell)
    build_base: str | None = None
    config: Path = field(default=Path(CONFIG_NAME), compare=False)

    @cached_property
    def recipe(self) -> Path:
        """The recipe file; InputError (naming hpcannotate.yaml and the key) when it does not exist."""
        return _recipe_path(self.config.parent, self.config, self.name, self.format, self.recipe_name)


@dataclass(frozen=True)
class RecipeDir:
    path: Path
    config: Path
    name: str
    version: str | None
    description: str | None
    default: str
    docs: dict[str, Path]
    variants: dict[str, Variant]

    def variant(self, name: str | None = None) -> Variant:
        """The variant to use (default: ``default``), its recipe file found: an error names a missing one."""
        chosen = name or self.default
        if chosen not in self.variants:
            raise InputError(f"{self.config}: no variant {chosen!r} (variants: {', '.join(self.variants)})")
        variant = self.variants[chosen]
        variant.recipe  # noqa: B018 - resolve it now: a missing recipe is reported before any work
        return variant


@functools.cache
def _schema() -> dict:
    import yaml

    text = resources.files("hpcannotate").joinpath("data/recipedir.schema.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _where(error) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _check_schema(data: object, config: Path) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if not errors:
        return
    error = errors[0]
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        message = f"unknown key {extra[0]!r} (known: {', '.join(allowed)})" if extra and allowed else error.message
    elif error.validator == "type":
        message = f"expected {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}"
    else:
        message = error.message
    raise InputError(f"{config}: {_where(error)}: {message}")


def _env(raw: dict | None) -> EnvSpec:
    raw = raw or {}
    return EnvSpec(tuple(raw.get("path", ())), tuple(raw.get("ld_library_path", ())), dict(raw.get("vars", {})))


EASYCONFIGS_EXTRA = "pip install 'hpcannotate[easyconfigs]'"


def _recipe_path(directory: Path, config: Path, variant: str, fmt: str, name: str) -> Path:
    path = directory / name
    if path.is_file():
        return path
    where = f"{config}: variants.{variant}.recipe"
    if fmt == "easybuild" and "/" not in name and name.endswith(".eb"):
        from .adapters.easybuild import locate_by_name
        from .adapters.easybuild_eval import installed_easyconfigs

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
    raise InputError(f"{where}: {name} does not exist")


def _check_names(data: dict, config: Path) -> None:
    if not APP_NAME.fullmatch(data["name"]):
        raise InputError(f"{config}: name: {data['name']!r} is not an image name (lower-case letters, digits, "
                         "and . _ - / between them)")
    for name in (*data["variants"], data["default"]):
        if not VARIANT_NAME.fullmatch(name):
            where = "default" if name == data["default"] else "variants"
            raise InputError(f"{config}: {where}: {name!r} is not a variant name (letters, digits, and . _ - "
                             "between them)")


def load_recipe_dir(path: str | Path) -> RecipeDir:
    """Read and check a recipe directory (or its hpcannotate.yaml)."""
    path = Path(path)
    config = path if path.is_file() else path / CONFIG_NAME
    directory = config.parent
    if not config.is_file():
        raise InputError(f"{directory}: no {CONFIG_NAME} (a recipe directory names its variants there)")
    data = load_structured(config, "recipe directory configuration")
    if not isinstance(data, dict):
        raise InputError(f"{config}: expected a mapping at the top level")
    _check_schema(data, config)
    _check_names(data, config)
    from . import targets as cpu

    variants = {}
    top_env = _env(data.get("env"))
    for name, raw in data["variants"].items():
        fmt = raw["format"]
        var_targets = tuple(raw.get("targets") or data.get("targets") or DEFAULT_TARGETS)
        for t in var_targets:
            if not cpu.is_target(t):
                hint = cpu.suggest_target(t)
                extra = f" (did you mean {hint!r}?)" if hint else ""
                raise InputError(f"{config}: variants.{name}.targets: {t!r} is not an archspec CPU target{extra}")
        if "userargs" in raw and fmt != "hpccm":
            raise InputError(f"{config}: variants.{name}.userargs: only hpccm variants take userargs")
        for where, table in (("annotations", data.get("annotations")), (f"variants.{name}.annotations",
                                                                         raw.get("annotations"))):
            for key in table or {}:
                check_key(key, f"{config}: {where}")
        variants[name] = Variant(
            name=name,
            format=fmt,
            recipe_name=raw["recipe"],
            targets=var_targets,
            base=raw.get("base") or data.get("base"),
            annotations={**data.get("annotations", {}), **raw.get("annotations", {})},
            env=top_env.merged(_env(raw.get("env"))),
            userargs=dict(raw.get("userargs", {})),
            usage=raw.get("usage", data.get("usage")),
            shell=raw.get("shell") or data.get("shell"),
            build_base=raw.get("build_base"),
            config=config,
        )
    if data["default"] not in variants:
        raise InputError(f"{config}: default: no variant {data['default']!r} (variants: {', '.join(variants)})")
    for fmt_name in ("dockerfile",):
        for v in variants.values():
            if v.format == fmt_name and not v.base:
                raise InputError(f"{config}: variants.{v.name}.base: a dockerfile variant needs a base image")
    docs = {}
    for kind, name in (data.get("docs") or {}).items():
        doc = directory / name
        if not doc.is_file():
            raise InputError(f"{config}: docs.{kind}: {name} does not exist")
        docs[kind] = doc
    return RecipeDir(
        path=directory,
        config=config,
        name=data["name"],
        version=data.get("version"),
        description=data.get("description"),
        default=data["default"],
        docs=docs,
        variants=variants,
    )
