"""Recipe directories: ``recipes/<app>/hpcannotate.yaml`` and the variants it names.

A recipe directory describes one application as several variants (an HPCCM
recipe, a Spack environment, an easyconfig, a Debian-package Dockerfile
fragment), each built for a list of CPU targets: one image per target. The file
is checked against ``data/recipedir.schema.yaml`` and every error names the file
and the key.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import stat
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

from . import formats
from .errors import InputError
from .inputs import check_key, load_structured

CONFIG_NAME = "hpcannotate.yaml"
DEFAULT_SHELL = "/bin/bash"
DEFAULT_TARGETS = ("x86_64",)
# The schema's patterns, matched in full here: JSON Schema's ``$`` lets a trailing line break through
# (Python's re.search), and these names land in Dockerfile comments and in build directories.
APP_NAME = re.compile(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*")
VARIANT_NAME = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
SHELL = re.compile(r"/[^\s\x00-\x1f\x7f]*")  # an absolute path, one word: it becomes CMD ["<shell>", "-l"]


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
    import yaml

    text = resources.files("hpcannotate").joinpath("data/recipedir.schema.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


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


EASYCONFIGS_EXTRA = "pip install 'hpcannotate[easyconfigs]'"


def confined(directory: Path, name: str, where: str, *, directories: bool = False) -> Path:
    """The file ``name`` (as written in ``where``) inside the recipe directory ``directory``.

    A recipe directory may come from anyone, and what it names is read into the build context,
    the Dockerfile and the image's annotations: so it must name a regular file inside the
    directory (a directory too, when ``directories``). An absolute path, a ``..`` that climbs
    out, a symlink that resolves outside, a symlink loop and a special file (a FIFO would hang
    the read, a device never ends) are each an InputError naming ``where``.
    """
    if os.path.isabs(name) or name.startswith("~"):
        raise InputError(f"{where}: {name} is an absolute path; name a file inside the recipe directory "
                         f"{directory}")
    path = directory / name
    if not _within(os.path.normpath(os.path.abspath(path)), os.path.abspath(directory)):
        raise InputError(f"{where}: {name} climbs out of the recipe directory {directory}; name a file inside it")
    if not _within(os.path.realpath(path), os.path.realpath(directory)):
        raise InputError(f"{where}: {name} is a symlink to {os.path.realpath(path)}, outside the recipe directory "
                         f"{directory}; copy the file in instead")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{where}: {name} is a symlink loop") from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise InputError(f"{where}: {name} does not exist") from None
        raise InputError(f"{where}: {name}: cannot read: {exc.strerror}") from None
    if stat.S_ISREG(mode) or (directories and stat.S_ISDIR(mode)):
        return path
    kind = "a directory" if stat.S_ISDIR(mode) else "a special file (FIFO, socket or device)"
    raise InputError(f"{where}: {name} is {kind}, not a regular file")


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _recipe_path(directory: Path, config: Path, variant: str, fmt: str, name: str) -> Path:
    path = directory / name
    where = f"{config}: variants.{variant}.recipe"
    if os.path.lexists(path) or os.path.isabs(name) or ".." in Path(name).parts:
        return confined(directory, name, where)
    found = formats.get(fmt).locate(name, directory, where)
    if found is not None:
        return found
    raise InputError(f"{where}: {name} does not exist")


def spack_includes(recipe: Path) -> list[Path]:
    """The existing files and directories a Spack environment's ``include:`` names, inside its directory.

    They go into the build context (and the Spack adapter reads them): one that is absolute or
    leaves the environment's directory is an InputError, as for any file a recipe directory names.
    """
    import yaml

    from .files import read_text

    try:
        data = yaml.safe_load(read_text(recipe, "Spack environment"))
    except yaml.YAMLError as exc:
        raise InputError(f"{recipe}: cannot read the Spack environment: {exc}") from None
    except RecursionError:
        raise InputError(f"{recipe}: YAML nested too deeply to be a Spack environment") from None
    entries = data.get("spack", {}).get("include") if isinstance(data, dict) and isinstance(
        data.get("spack"), dict) else None
    if isinstance(entries, str):
        entries = [entries]
    found = []
    for entry in entries if isinstance(entries, list) else []:
        raw = entry.get("path") if isinstance(entry, dict) else entry
        if not isinstance(raw, str) or not raw.strip() or "$" in raw or "://" in raw:
            continue  # a Spack variable or a URL: resolved by Spack in the build, nothing of this machine's
        if not os.path.lexists(recipe.parent / raw) and not os.path.isabs(raw) and ".." not in Path(raw).parts:
            continue  # missing: the Spack adapter warns about it
        include = confined(recipe.parent, raw, f"{recipe}: include: {raw}", directories=True)
        if os.path.realpath(include) != os.path.realpath(recipe.parent):
            found.append(recipe.parent / os.path.relpath(os.path.normpath(include), recipe.parent))
    return found


def spack_lock(recipe: Path) -> Path:
    """The Spack environment's own lock file (``<stem>.lock``), inside its directory (InputError if not)."""
    return confined(recipe.parent, recipe.with_suffix(".lock").name, f"{recipe}: its lock file")


def _check_spack_names(recipe: Path) -> Path:
    """``recipe``, after checking that its includes and lock file stay in its directory: before the
    Spack adapter reads them for ``infer`` or ``render``."""
    spack_includes(recipe)
    if os.path.lexists(recipe.with_suffix(".lock")):
        spack_lock(recipe)
    return recipe


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
