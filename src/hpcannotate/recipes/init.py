"""``hpcannotate init``: a recipe directory (``hpcannotate.yaml``) from a recipe the user already has.

The way to a first own image should be one command before ``build``: the user points at their
Dockerfile, spack.yaml, HPCCM recipe or easyconfig, and gets an ``hpcannotate.yaml`` beside it with
one variant (so no ``default:``) and the CPU targets the recipe itself pins. Where the recipe pins
none, the target is what the build will really produce, said in a comment: a Dockerfile that passes
no CPU flags compiles for its architecture's baseline.

A Dockerfile variant is a fragment without ``FROM`` (the base is ``base:``), so a single-stage
Dockerfile is split: its ``FROM`` image becomes ``base:`` and the rest goes to ``<name>.Dockerfile``
beside it, where its ``COPY`` sources still are. The scaffold is loaded back with the same checks as
``build`` before the command reports success.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hpcannotate.errors import InputError
from hpcannotate.model.keynames import APP_NAME
from hpcannotate.recipes import formats
from hpcannotate.recipes.recipedir import CONFIG_NAME, load_recipe_dir

MARCH = re.compile(r"(?<![\w-])-m(?:arch|cpu)=([\w.+-]+)")
NAME_CHARS = re.compile(r"[^a-z0-9._-]+")


@dataclass
class Scaffold:
    """What ``init`` wrote (or would write): the config, the recipe it names, and how targets were chosen."""

    directory: Path
    config: Path
    name: str
    format: str
    recipe: Path
    targets: list[str]
    targets_reason: str
    base: str | None = None
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "directory": str(self.directory), "config": str(self.config), "name": self.name,
            "format": self.format, "recipe": str(self.recipe), "targets": self.targets,
            "targets_reason": self.targets_reason, "base": self.base,
            "written": [str(p) for p in self.written], "notes": self.notes,
        }


def detect_format(path: Path) -> str:
    """The recipe format of ``path`` by name first (Dockerfile, spack.yaml, *.eb), then by content."""
    found = formats.detect(path, formats.names())
    if found is None:
        raise InputError(f"{path}: not a recognised recipe ({formats.files_phrase(formats.names())}; "
                         "give --format)")
    return found


def host_family() -> str:
    """The CPU family images are built for here (buildah builds for the host's architecture)."""
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def image_name(text: str) -> str:
    """An image name from a file or directory name: lower case, the characters an image name allows."""
    name = NAME_CHARS.sub("-", text.lower()).strip("-._")
    return name or "app"


def targets_from_flags(flags: list[str]) -> list[str]:
    """archspec targets whose GCC flags are exactly ``-march=X`` for the ``X`` a recipe passes."""
    import archspec.cpu

    found = []
    for flag in dict.fromkeys(flags):
        for name, target in archspec.cpu.TARGETS.items():
            try:
                wanted = target.optimization_flags("gcc", "13.2.0")
            except (ValueError, archspec.cpu.UnsupportedMicroarchitecture):
                continue
            if f"-march={flag}" in wanted.split() or f"-mcpu={flag}" in wanted.split():
                found.append(name)
                break
    return found


def scaffold(recipe: Path, directory: Path | None = None, name: str | None = None, fmt: str | None = None,
             force: bool = False, dry_run: bool = False) -> Scaffold:
    """Write ``hpcannotate.yaml`` (and a Dockerfile fragment) for ``recipe``; InputError on anything unusable."""
    recipe = Path(recipe)
    if not recipe.is_file():
        raise InputError(f"{recipe}: no such file")
    fmt = fmt or detect_format(recipe)
    if fmt not in formats.names():
        raise InputError(f"--format {fmt}: one of {', '.join(formats.names())}")
    directory = Path(directory) if directory else recipe.resolve().parent
    config = directory / CONFIG_NAME
    if config.exists() and not force:
        raise InputError(f"{config}: already exists (--force replaces it)")
    if directory.resolve() != recipe.resolve().parent:
        raise InputError(f"{directory}: the recipe directory must be the one {recipe.name} is in, where its "
                         f"COPY sources and includes are ({recipe.resolve().parent})")
    if fmt == "dockerfile":
        result = _dockerfile(recipe, directory, config, name, force)
    else:
        result = _recipe(recipe, directory, config, name, fmt)
    data = {"name": result.name, "targets": result.targets, "variants": {
        fmt: {"format": fmt, "recipe": result.recipe.name, **({"base": result.base} if result.base else {})}}}
    text = (f"# Written by `hpcannotate init {recipe.name}`. Targets: {result.targets_reason}.\n"
            "# Add annotations: (org.supercontainers.*), env:, usage:, docs: as needed; see README.md.\n"
            + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
    if dry_run:
        return result
    if fmt == "dockerfile":
        result.written.append(result.recipe)  # written by _dockerfile
    config.write_text(text, encoding="utf-8")
    result.written.append(config)
    try:
        load_recipe_dir(directory).variant()
    except InputError as exc:  # the scaffold must load: a failure here is ours, said with the file
        raise InputError(f"{config}: written, but it does not load: {exc}") from None
    return result


def _recipe(recipe: Path, directory: Path, config: Path, name: str | None, fmt: str) -> Scaffold:
    from hpcannotate.recipes.base import MODE_KEY, TARGET_KEY, InferOptions
    from hpcannotate.recipes.infer import infer

    inference = infer(recipe, InferOptions(), fmt)
    app = inference.annotations.get(APP_NAME)
    chosen = image_name(name or app or (recipe.stem if fmt != "spack" else directory.resolve().name))
    pinned = inference.annotations.get(TARGET_KEY)
    entry = inference.annotations.entry(TARGET_KEY) if pinned else None
    family = host_family()
    if pinned and entry is not None and entry.provenance.note != "from --target":
        where = entry.provenance.describe()
        mode = inference.annotations.get(MODE_KEY)
        reason = f"the recipe pins {pinned} ({where})" if mode != "architecture" or fmt != "hpccm" else \
            f"{pinned}: {entry.provenance.note or where}"
        targets = [pinned]
    else:
        targets = [family]
        reason = (f"{family}, this machine's architecture: the recipe pins none, and `build` hands each target "
                  f"listed here to the {fmt} build; add the ones your hosts have (zen3, x86_64_v3 ...)")
    notes = [f"warning: {w}" for w in inference.warnings]
    why = inference.missing.get(TARGET_KEY, "")
    if "build host" in why and fmt == "hpccm":
        notes.append(f"warning: {why.split(', so the image')[0]}: the image is built for the build host's CPU "
                     "whatever target it is labelled with; make the recipe name one")
    return Scaffold(directory, config, chosen, fmt, recipe, targets, reason, notes=notes)


def _dockerfile(recipe: Path, directory: Path, config: Path, name: str | None, force: bool) -> Scaffold:
    from hpcannotate.dockerfile.reader import parse

    text = recipe.read_text(encoding="utf-8", errors="replace")
    parsed = parse(text, str(recipe))
    if len(parsed.stages) > 1:
        raise InputError(f"{recipe}: a multi-stage Dockerfile ({len(parsed.stages)} FROM lines); a dockerfile "
                         "variant is one stage on its base: make the build stages an image of their own, or "
                         "write the recipe directory by hand (README: Recipe directories)")
    base = parsed.final.base
    if "$" in base:
        raise InputError(f"{recipe}:{parsed.final.line}: FROM {base} uses a build argument; write the image name")
    chosen = image_name(name or (recipe.parent.resolve().name if recipe.name.lower() in ("dockerfile",
                                                                                      "containerfile")
                                 else recipe.name.split(".")[0]))
    lines = text.splitlines(keepends=True)
    start, end = _from_lines(lines, parsed.final.line)
    fragment_lines = [line for i, line in enumerate(lines) if not (start <= i < end)]
    fragment_lines = [line for line in fragment_lines if not _is_global_arg(line, parsed, lines)]
    fragment = directory / f"{chosen}.Dockerfile"
    if fragment.resolve() == recipe.resolve():
        fragment = directory / f"{chosen}.fragment.Dockerfile"
    if fragment.exists() and not force:
        raise InputError(f"{fragment}: already exists (--force replaces it)")
    flags = MARCH.findall(text)
    family = host_family()
    if "native" in flags:
        raise InputError(f"{recipe}: compiles with -march=native, for whatever CPU builds it; pass a named "
                         "-march, then run init again")
    targets = targets_from_flags(flags) if flags else []
    if flags and not targets:
        raise InputError(f"{recipe}: -march/-mcpu={flags[0]} is not one archspec target; write targets: by hand")
    if len(targets) > 1:
        raise InputError(f"{recipe}: compiles for several CPUs ({', '.join(targets)}); one image is one target")
    reason = (f"the Dockerfile compiles with -march={flags[0]}, archspec {targets[0]}" if targets else
              f"{family}: the Dockerfile passes no -march/-mcpu, so what it compiles is the compilers' default, "
              f"the baseline of {family} (this machine's architecture, which buildah builds for)")
    fragment.write_text("".join(fragment_lines).lstrip("\n"), encoding="utf-8")
    return Scaffold(directory, config, chosen, "dockerfile", fragment, targets or [family], reason, base=base,
                    notes=[f"{fragment.name}: {recipe.name} without its FROM {base} (now base: in {CONFIG_NAME})"])


def _from_lines(lines: list[str], line: int) -> tuple[int, int]:
    """0-based [start, end) of the FROM instruction at 1-based ``line``, continuation lines included."""
    start = line - 1
    end = start + 1
    while lines[end - 1].rstrip("\r\n").endswith("\\") and end < len(lines):
        end += 1
    return start, end


def _is_global_arg(line: str, parsed, lines: list[str]) -> bool:
    """An ARG before FROM only served the FROM line, which is gone."""
    index = lines.index(line) if line in lines else -1
    return index != -1 and index < parsed.final.line - 1 and line.strip().upper().startswith("ARG ")
