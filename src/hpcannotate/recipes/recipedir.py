"""Recipe directories: ``recipes/<app>/hpcannotate.yaml`` and the variants it names.

A recipe directory describes one application as several variants (an HPCCM
recipe, a Spack environment, an easyconfig, a Debian-package Dockerfile
fragment), each built for a list of CPU targets: one image per target. The file
is checked against ``data/recipedir.schema.yaml`` and every error names the file
and the key.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.model import datafiles
from hpcannotate.model.inputs import check_key, load_structured
from hpcannotate.recipes import formats
from hpcannotate.recipes.recipefiles import EnvSpec, confined

CONFIG_NAME = "hpcannotate.yaml"
DEFAULT_SHELL = "/bin/bash"
DEFAULT_TARGETS = ("x86_64",)
# The schema's patterns, matched in full here: JSON Schema's ``$`` lets a trailing line break through
# (Python's re.search), and these names land in Dockerfile comments and in build directories.
APP_NAME = re.compile(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*")
VARIANT_NAME = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
SHELL = re.compile(r"/[^\s\x00-\x1f\x7f]*")  # an absolute path, one word: it becomes CMD ["<shell>", "-l"]


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
    # where ``targets`` come from, for provenance: "variants.<name>.targets", "targets" or "" (the default)
    targets_from: str = field(default="", compare=False)

    @cached_property
    def recipe(self) -> Path:
        """The recipe file; InputError (naming hpcannotate.yaml and the key) when it does not exist."""
        path = _recipe_path(self.config.parent, self.config, self.name, self.format, self.recipe_name)
        return formats.get(self.format).checked_recipe(path)


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
def _schema_file() -> dict:
    return datafiles.load("recipedir.schema.yaml")


def _schema() -> dict:
    """The schema, with the ``format:`` enum of a variant filled from the format registry."""
    schema = _schema_file()
    variant = schema["$defs"]["variant"]
    return {**schema, "$defs": {**schema["$defs"], "variant": {**variant, "properties": {
        **variant["properties"], "format": {"enum": formats.names()}}}}}


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


def _recipe_path(directory: Path, config: Path, variant: str, fmt: str, name: str) -> Path:
    path = directory / name
    where = f"{config}: variants.{variant}.recipe"
    if os.path.lexists(path) or os.path.isabs(name) or ".." in Path(name).parts:
        return confined(directory, name, where)
    found = formats.get(fmt).locate(name, directory, where)
    if found is not None:
        return found
    raise InputError(f"{where}: {name} does not exist")


def _check_names(data: dict, config: Path) -> None:
    if not APP_NAME.fullmatch(data["name"]):
        raise InputError(f"{config}: name: {data['name']!r} is not an image name (lower-case letters, digits, "
                         "and . _ - / between them)")
    shells = [("shell", data.get("shell"))]
    shells += [(f"variants.{name}.shell", raw.get("shell")) for name, raw in data["variants"].items()]
    for where, shell in shells:
        if shell is not None and not SHELL.fullmatch(shell):
            raise InputError(f"{config}: {where}: {shell!r} is not a shell's absolute path (one word, no line "
                             "break or control character)")
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
    if not os.path.lexists(config):
        raise InputError(f"{directory}: no {CONFIG_NAME} (a recipe directory names its variants there)")
    confined(directory, config.name, str(config))  # not a symlink to a file elsewhere, nor a FIFO
    data = load_structured(config, "recipe directory configuration")
    if not isinstance(data, dict):
        raise InputError(f"{config}: expected a mapping at the top level")
    _check_schema(data, config)
    if "default" not in data:
        if len(data["variants"]) != 1:
            raise InputError(f"{config}: default: missing; with {len(data['variants'])} variants, name the one "
                             f"to build by default ({', '.join(data['variants'])})")
        data["default"] = next(iter(data["variants"]))  # one variant needs no default:
    _check_names(data, config)
    from hpcannotate.model import targets as cpu

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
        if "userargs" in raw and not formats.get(fmt).takes_userargs:
            only = " and ".join(n for n in formats.names() if formats.get(n).takes_userargs)
            raise InputError(f"{config}: variants.{name}.userargs: only {only} variants take userargs")
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
            targets_from=f"variants.{name}.targets" if raw.get("targets") else "targets" if data.get("targets")
            else "",
        )
    if data["default"] not in variants:
        raise InputError(f"{config}: default: no variant {data['default']!r} (variants: {', '.join(variants)})")
    for v in variants.values():
        if formats.get(v.format).needs_base and not v.base:
            raise InputError(f"{config}: variants.{v.name}.base: a {v.format} variant needs a base image")
    docs = {kind: confined(directory, name, f"{config}: docs.{kind}")
            for kind, name in (data.get("docs") or {}).items()}
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
