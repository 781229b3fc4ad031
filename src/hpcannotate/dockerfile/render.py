"""Render a recipe variant for one CPU target into a build context.

The context holds the Dockerfile (the recipe's own stages, then the expected
image behaviour of seed 001: profile, ENV, tiny entrypoint, login-shell CMD,
labels), the profile and entrypoint scripts, the files the recipe needs, and
``annotations.json``. Annotations reach the builder as arguments, never as
pasted text; the Dockerfile also carries every label that fits on one line.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate import console
from hpcannotate.dockerfile.reader import final_base, parse_pairs, words
from hpcannotate.dockerfile.reader import parse as parse_dockerfile
from hpcannotate.dockerfile.text import exec_form, label_pair, quote, representable
from hpcannotate.errors import InputError
from hpcannotate.files import read_bytes, regular_only
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.inputs import key_problem
from hpcannotate.model.keynames import (
    BUILD_RECIPE_FORMAT,
    DOCS_BUILD_DOCKERFILE,
    DOCS_BUILD_QUICKSTART_BASE64,
    HARDWARE_CPU_OPTIMIZED_VERSION,
    OCI_BASE_NAME,
    OCI_DESCRIPTION,
    OCI_TITLE,
    OCI_VERSION,
    SHELL_IMPLEMENTATION,
)
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.oci.layout import current_umask
from hpcannotate.oci.media import MANIFEST_LIMIT, MANIFEST_WARN
from hpcannotate.recipes import formats
from hpcannotate.recipes.base import Inference, InferOptions, apply_target
from hpcannotate.recipes.infer import infer, name_target_source
from hpcannotate.recipes.isolation import DEFAULT_TIMEOUT
from hpcannotate.recipes.recipedir import DEFAULT_SHELL, EnvSpec, RecipeDir, Variant, confined
from hpcannotate.resources import render as render_template
from hpcannotate.resources import templates_dir

DOCKERFILE_DOC_KEY = DOCS_BUILD_DOCKERFILE

# A directory holding this file was written by render_variant: the only kind it replaces.
MARKER = ".hpcannotate-context"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")



@dataclass
class RenderedContext:
    directory: Path
    recipe_dir: RecipeDir
    variant: Variant
    target: str
    annotations: Annotations
    dockerfile_labels: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    aliases: bool = False  # labels and annotations also in the seeds' spellings (build --aliases)

    @property
    def dockerfile(self) -> Path:
        return self.directory / "Dockerfile"

    def oci_annotations(self) -> dict[str, str]:
        return self.annotations.to_oci(self.aliases)

    def labels(self) -> dict[str, str]:
        return self.annotations.to_labels(self.aliases)

    def argv_labels(self) -> dict[str, str]:
        """Labels the Dockerfile could not carry (line breaks, base64 docs): passed to the builder."""
        return {k: v for k, v in self.labels().items() if self.dockerfile_labels.get(k) != v}


def b64(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return base64.b64encode(data).decode("ascii")


def _in_dockerfile(key: str, value: str) -> bool:
    """Labels written into the Dockerfile: one-line values, and no large base64 documents."""
    return representable(value) and not key.startswith(P + "docs.") and len(value) <= 1024


def _dockerfile_body(variant: Variant, target: str, context: Path, timeout: float) -> tuple[str, EnvSpec]:
    """The recipe's own stages, and the environment its format implies."""
    return formats.get(variant.format).render(variant, target, context, timeout)


def login_shell(variant: Variant, annotations: Annotations) -> str:
    """The shell of ``CMD``: the variant's ``shell:``; else bash, unless the base image says it has no bash
    but has sh (busybox, alpine), where a ``/bin/bash`` CMD would fail on every start."""
    if variant.shell:
        return variant.shell
    shells = set(annotations.get(SHELL_IMPLEMENTATION, "").split(","))
    return "/bin/sh" if "bash" not in shells and shells & {"sh", "ash", "dash"} else DEFAULT_SHELL


# The RUN that gives a base without /etc/profile (busybox, scratch-based) one that loads profile.d;
# a base's own /etc/profile (Debian's, Alpine's: they load profile.d already) is left alone.
LOGIN_PROFILE_RUN = ("[ -e /etc/profile ] || [ -L /etc/profile ] || "
                     "cp /usr/share/hpcannotate/etc-profile.sh /etc/profile")

def _login_profile(base: str | None, target: str, warnings: list[str], where: str) -> str | None:
    """The instruction that gives the image an /etc/profile loading profile.d when its base has none.

    FROM scratch: there is no base file, so a COPY (no shell needed, no emulation for another
    architecture). Otherwise a RUN that copies only when /etc/profile is absent (busybox has none;
    Debian's and Alpine's load profile.d already): it runs in the image, so only for the host's
    architecture; a build for another one gets a warning instead. The RUN uses /bin/sh, not the login
    shell: a base that must be given an /etc/profile is one whose shell hpcannotate may not know
    (busybox pulled from a registry has no bash), and every base with a shell has /bin/sh.
    """
    from hpcannotate.model.targets import family_of
    from hpcannotate.registry.platform import platform_for

    if base is None:
        return None  # the template's COPY for scratch
    if platform_for(family_of(target)) != platform_for(platform.machine()):
        warnings.append(f"{where}: built for another architecture than this machine's, so the build cannot check "
                        "for /etc/profile: on a base without one, login shells will not load the profile")
        return None
    return "RUN " + exec_form(["/bin/sh", "-c", LOGIN_PROFILE_RUN])


RESERVED_IN_CONTEXT = ("Dockerfile", "hpcannotate", "annotations.json", MARKER)


def _copy_local_sources(body: str, recipe_dir: Path, context: Path, where: str) -> None:
    """What the recipe's COPY/ADD instructions take from the build context (``COPY run.sh /opt/``,
    hpccm's ``copy(src=...)``), copied from the recipe's directory; nothing else goes in.

    Sources must stay inside the recipe directory; URLs and ``--from`` copies need nothing here.
    """
    root = recipe_dir.resolve()
    for stage in parse_dockerfile(body, where).stages:
        for instruction in [*stage.all("COPY"), *stage.all("ADD")]:
            if instruction.flag("from") is not None or instruction.heredocs:
                continue
            rest = instruction.split_flags()[1]
            listed = instruction.exec_form() or [w for w, _ in words(rest, None)]
            for source in listed[:-1]:  # the last word is the destination
                if "://" in source or source.startswith("git@") or "$" in source:
                    continue  # fetched by the builder, or named through a build argument: not resolvable here
                matches = sorted(root.glob(source.lstrip("/"))) if any(c in source for c in "*?[") else [
                    root / source.lstrip("/")]
                for found in matches:
                    here = f"{where}: line {instruction.line}"
                    relative = _inside(found, root, here, source)
                    if relative.parts and relative.parts[0] in RESERVED_IN_CONTEXT:
                        raise InputError(f"{here}: {source} would replace hpcannotate's own {relative.parts[0]} "
                                         "in the build context; rename it")
                    if not os.path.lexists(found):
                        raise InputError(f"{here}: {instruction.keyword} {source}: no such file in {recipe_dir}")
                    confined(root, str(relative), f"{here}: {instruction.keyword} {source}", directories=True)
                    dest = context / relative
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    if found.is_dir():
                        whole = not relative.parts  # `COPY . /app`: not over hpcannotate's own files
                        shutil.copytree(found, dest, symlinks=True, dirs_exist_ok=True,
                                        ignore=_top_level_reserved(found) if whole else None,
                                        copy_function=regular_only(f"{here}: {instruction.keyword} {source}"))
                    else:
                        shutil.copy2(found, dest)


def _top_level_reserved(top: Path):
    """A copytree ``ignore`` that leaves out hpcannotate's own names at the top of ``top`` only."""
    return lambda directory, names: [n for n in names if n in RESERVED_IN_CONTEXT] if Path(directory) == top else []


def _inside(path: Path, root: Path, where: str, source: str) -> Path:
    """``path`` relative to ``root`` as written (``..`` folded, symlinks not followed: ``confined`` checks those)."""
    try:
        return Path(os.path.normpath(path)).relative_to(root)
    except ValueError:
        raise InputError(f"{where}: {source} is outside the recipe directory {root}") from None


def _inference(variant: Variant, target: str, timeout: float, target_source: str | None = None) -> Inference:
    if not formats.get(variant.format).inferable:  # its values are declared in hpcannotate.yaml
        inference = Inference(variant.format, variant.recipe)
        apply_target(inference, target)
        inference.set(BUILD_RECIPE_FORMAT, variant.format)
    else:
        options = InferOptions(target=target, userargs=dict(variant.userargs), timeout=timeout)
        inference = infer(variant.recipe, options, variant.format)
    name_target_source(inference, variant, target, target_source)
    return inference


def _declared(recipe_dir: RecipeDir, variant: Variant) -> Annotations:
    """What the recipe directory states: its yaml annotations and the standard OCI keys."""
    prov = Provenance(Layer.RECIPE, str(recipe_dir.config), note="declared in hpcannotate.yaml")
    declared = Annotations.from_mapping(variant.annotations, prov, source=str(recipe_dir.config))
    std = {OCI_TITLE: recipe_dir.name}
    if recipe_dir.version:
        std[OCI_VERSION] = recipe_dir.version
    if recipe_dir.description:
        std[OCI_DESCRIPTION] = recipe_dir.description
    if variant.base and not formats.get(variant.format).names_own_base:
        std[OCI_BASE_NAME] = variant.base
    for kind, doc in recipe_dir.docs.items():
        if kind in ("quickstart", "benchmark"):
            std[P + f"docs.{kind}.base64"] = b64(read_bytes(doc, f"docs.{kind} file"))
        elif kind == "build":
            std[DOCS_BUILD_QUICKSTART_BASE64] = b64(read_bytes(doc, "docs.build file"))
    return Annotations.from_mapping(std, prov).merge(declared)


def _recipe_doc(variant: Variant, inference: Inference) -> Annotations:
    """The recipe itself, embedded, where the format's adapter has not already done so (Spack, EasyBuild do)."""
    key = formats.get(variant.format).doc_key
    if key is None or key in inference.annotations:
        return Annotations()
    prov = Provenance(Layer.RECIPE, str(variant.recipe), note="the recipe file, base64")
    return Annotations.from_mapping({key: b64(read_bytes(variant.recipe, "recipe"))}, prov)


def _env_lines(env: EnvSpec, present: dict[str, tuple[str, ...]] | None = None,
               base_env: dict[str, str] | None = None) -> list[str]:
    """ENV instructions equal to what the profile sets, in the syntax every builder reads.

    Charliecloud's ``ch-image build`` refuses ``${VAR:+...}`` modifiers (its issue #774), so the
    lines use plain ``${VAR}``. PATH is set in every image (buildah, BuildKit and ch-image give
    one to a base that has none), so ``dirs:${PATH}`` keeps the base's. LD_LIBRARY_PATH often is
    not set, and ``dirs:`` with an empty tail would put the working directory in the search path:
    the base's value is appended only where the base (``base_env``) or the recipe's final stage
    (``present``) sets it. ``present`` holds the directories the final stage's own ENV already put
    in PATH / LD_LIBRARY_PATH (hpccm's ``ENV PATH=/usr/local/gromacs/bin:$PATH``): not added twice.
    """
    present = present or {}
    lines = []
    for var, dirs in (("PATH", env.path), ("LD_LIBRARY_PATH", env.ld_library_path)):
        dirs = tuple(d for d in dirs if d not in present.get(var, ()))
        if not dirs:
            continue
        inherited = var == "PATH" or var in present or bool((base_env or {}).get(var))
        lines.append(f"{var}={quote(':'.join(dirs))[:-1]}{f':${{{var}}}' if inherited else ''}\"")
    lines.extend(f"{key}={quote(value)}" for key, value in env.vars.items())
    return lines


def _check_env(env: EnvSpec, config: Path) -> None:
    for name in env.vars:
        if not ENV_NAME.fullmatch(name):
            raise InputError(f"{config}: env.vars: {name!r} is not a variable name")
    for value in (*env.path, *env.ld_library_path, *env.vars.values()):
        if not representable(value):
            raise InputError(f"{config}: env: {value!r} has a line break")
    for directory in (*env.path, *env.ld_library_path):
        if not directory.startswith("/") or ":" in directory:
            raise InputError(f"{config}: env: {directory!r} is not an absolute directory")


def _final_env_dirs(body: str, where: str) -> dict[str, tuple[str, ...]]:
    """Directories the final stage's ENV instructions put in PATH and LD_LIBRARY_PATH."""
    try:
        stage = parse_dockerfile(body, where).final
    except (InputError, ValueError, IndexError):
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for instruction in stage.all("ENV"):
        try:
            pairs = parse_pairs(instruction)
        except (InputError, ValueError):
            continue
        for key, value in pairs:
            if key in ("PATH", "LD_LIBRARY_PATH"):
                found[key] = found.get(key, ()) + tuple(d for d in value.split(":") if d.startswith("/"))
    return found


def check_size(annotations: dict[str, str], where: str) -> list[str]:
    """Registries reject manifests over 4 MiB; warn far below that, refuse near it."""
    size = len(json.dumps(annotations).encode("utf-8"))
    if size > MANIFEST_LIMIT - 64 * 1024:
        raise InputError(f"{where}: annotations take {size} bytes; a registry rejects manifests over 4 MiB "
                         "(embed smaller docs, or link them with docs.*.link)")
    if size > MANIFEST_WARN:
        return [f"{where}: annotations take {size // 1024} KiB of the manifest (registries refuse 4 MiB)"]
    return []


def check_output_dir(out_dir: Path) -> None:
    """Refuse an output directory render_variant must not replace: a file, or a directory with
    content that an earlier render did not write (``-o .`` must never empty the working directory)."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise InputError(f"{out_dir}: not a directory; give -o a directory for the build context")
    if out_dir.is_dir() and not _rendered_here(out_dir) and any(out_dir.iterdir()):
        raise InputError(f"{out_dir}: is not empty and was not written by hpcannotate render (no {MARKER}); "
                         "refusing to replace it: render -o (or build --workdir) needs a new or empty directory")
    for parent in out_dir.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{out_dir}: {parent} is not a directory")


# What a context holds; a directory of exactly these, with the entrypoint, is one an older
# hpcannotate (before the marker) rendered.
_CONTEXT_ENTRIES = frozenset({MARKER, "Dockerfile", "annotations.json", "hpcannotate", "spack-env", "easyconfig"})


def _rendered_here(directory: Path) -> bool:
    if (directory / MARKER).is_file():
        return True
    names = {p.name for p in directory.iterdir()}
    return (names <= _CONTEXT_ENTRIES and (directory / "Dockerfile").is_file()
            and (directory / "hpcannotate" / "entrypoint.sh").is_file())


def _replace_dir(new: Path, out_dir: Path) -> None:
    """Put the finished ``new`` at ``out_dir``: renames only, the old context removed after the swap."""
    check_output_dir(out_dir)
    if not out_dir.exists():
        os.replace(new, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    os.replace(out_dir, old / "context")
    try:
        os.replace(new, out_dir)
    except OSError:
        os.replace(old / "context", out_dir)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def with_userargs(variant: Variant, userargs: dict[str, str] | None) -> Variant:
    """The variant with ``--userarg`` entries over its own ``userargs:`` (HPCCM recipes only take them)."""
    if not userargs:
        return variant
    if not formats.get(variant.format).takes_userargs:
        raise InputError(f"--userarg: variant {variant.name} is {variant.format}; only hpccm recipes take userargs")
    from dataclasses import replace

    return replace(variant, userargs={**variant.userargs, **userargs})


def render_variant(
    recipe_dir: RecipeDir,
    variant_name: str | None,
    target: str,
    out_dir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    base_reader: Callable[[str], Annotations | None] | None = None,
    target_source: str | None = None,
    userargs: dict[str, str] | None = None,
    base_env_reader: Callable[[str], dict[str, str] | None] | None = None,
) -> RenderedContext:
    """Write the build context for one variant and target into ``out_dir``.

    ``target_source`` is where ``target`` came from (``"--target"``); None: the variant's ``targets:``
    when it lists the target.

    The context is written into a new sibling directory and renamed into place
    when complete: a failure leaves ``out_dir`` as it was. An existing ``out_dir``
    is replaced only if it is empty or an earlier render wrote it (``MARKER``).

    ``base_reader`` returns the annotations of the final stage's base image (layer
    ``base image``): the lowest layer, which the recipe's values override visibly. ``base_env_reader``
    returns its environment (config ``Env``), None when unknown.
    """
    variant = with_userargs(recipe_dir.variant(variant_name), userargs)
    _check_env(variant.env, recipe_dir.config)
    from hpcannotate.model.targets import is_target

    if not is_target(target):
        raise InputError(f"--target {target!r}: not an archspec CPU target")
    _check_pinned_target(recipe_dir, variant, target)  # before any work; the recipe's own pins after inference
    out_dir = Path(out_dir)
    check_output_dir(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=out_dir.parent))
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot write the build context there: {exc.strerror or exc}") from None
    try:
        context = _render_into(recipe_dir, variant, target, work, out_dir, timeout, base_reader, base_env_reader,
                               target_source)
        work.chmod(0o777 & ~current_umask())  # mkdtemp makes it 0700; other users may build from it
        _replace_dir(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return context


def _check_passable(annotations: Annotations, where: str) -> None:
    """Refuse, at render, what no builder can pass on: a NUL in a value (labels are C strings, so the
    build would fail much later), or a key that is not one word. Names the file the value came from."""
    for entry in annotations.entries():
        source = entry.provenance.file or where
        problem = key_problem(entry.key)
        if problem is not None:
            raise InputError(f"{source}: annotation key {entry.key!r} {problem}; an annotation key is one word")
        if "\x00" in entry.value:
            raise InputError(f"{source}: {entry.key}: the value holds a NUL character, which no builder can pass "
                             "on (labels and annotations are C strings)")


def _render_into(recipe_dir: RecipeDir, variant: Variant, target: str, work: Path, out_dir: Path,
                 timeout: float, base_reader: Callable[[str], Annotations | None] | None,
                 base_env_reader: Callable[[str], dict[str, str] | None] | None = None,
                 target_source: str | None = None) -> RenderedContext:
    """Write the context files into ``work``; the context describes them at ``out_dir``, where they end up."""
    (work / "hpcannotate").mkdir(parents=True)
    (work / MARKER).write_text("written by hpcannotate render; `render -o` replaces this directory\n",
                               encoding="utf-8")
    inference = _inference(variant, target, timeout, target_source)
    body, format_env = _dockerfile_body(variant, target, work, timeout)
    env = format_env.merged(variant.env)
    annotations = inference.annotations.merge(_recipe_doc(variant, inference)).merge(_declared(recipe_dir, variant))
    base = final_base(body)
    inherited = base_reader(base) if base_reader and base else None
    if inherited is not None:
        annotations = inherited.merge(annotations)
    _check_pinned_target(recipe_dir, variant, target, annotations)
    _check_passable(annotations, f"{recipe_dir.config}: variant {variant.name}")
    problems = annotations.validate()
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"{recipe_dir.config}: variant {variant.name}, target {target}: {first}{more}")
    if formats.get(variant.format).copies_sources:
        _copy_local_sources(body, variant.recipe.parent, work, str(variant.recipe))

    shell = login_shell(variant, annotations)
    base_env = base_env_reader(base) if base_env_reader and base else None
    env_warnings = []
    if env.ld_library_path and base and base_env is None:
        env_warnings.append(f"{recipe_dir.name}:{target}: the environment of base image {base} is unknown "
                                  "(not in the builder's store): ENV LD_LIBRARY_PATH replaces any value it sets "
                                  "(the profile keeps it, for login shells and the entrypoint)")
    labels = annotations.to_labels()
    in_file = {k: v for k, v in labels.items() if _in_dockerfile(k, v)}
    dockerfile = render_template(
        "Dockerfile.j2",
        recipe=str(variant.recipe.relative_to(recipe_dir.path) if variant.recipe.is_relative_to(recipe_dir.path)
                   else variant.recipe.name),
        variant=variant.name,
        target=target,
        body=body.rstrip(),
        usage=bool(variant.usage),
        scratch=base is None,
        env_lines=_env_lines(env, _final_env_dirs(body, str(variant.recipe)), base_env),
        label_lines=[label_pair(k, v) for k, v in in_file.items()],
        login_profile=_login_profile(base, target, env_warnings, f"{recipe_dir.name}:{target}"),
        cmd=exec_form([shell, "-l"]),
    )
    (work / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    profile = render_template(
        "profile.sh.j2",
        name=recipe_dir.name,
        variant=variant.name,
        target=target,
        path=list(env.path),
        ld_library_path=list(env.ld_library_path),
        vars=list(env.vars.items()),
        usage=bool(variant.usage),
    )
    (work / "hpcannotate" / "profile.sh").write_text(profile, encoding="utf-8")
    entrypoint = work / "hpcannotate" / "entrypoint.sh"
    shutil.copyfile(templates_dir() / "entrypoint.sh", entrypoint)
    shutil.copyfile(templates_dir() / "etc-profile.sh", work / "hpcannotate" / "etc-profile.sh")
    entrypoint.chmod(0o755)
    if variant.usage:
        (work / "hpcannotate" / "usage.txt").write_text(variant.usage.rstrip() + "\n", encoding="utf-8")

    annotations.set(DOCKERFILE_DOC_KEY, b64(dockerfile),
                    Provenance(Layer.RECIPE, str(out_dir / "Dockerfile"), note="the rendered Dockerfile"))
    warnings = list(inference.warnings) + env_warnings + check_size(annotations.to_oci(), f"{recipe_dir.name}:{target}")
    context = RenderedContext(out_dir, recipe_dir, variant, target, annotations, in_file, warnings)
    (work / "annotations.json").write_text(json.dumps(annotations.to_json(), indent=2) + "\n", encoding="utf-8")
    return context


def pinned_targets(variant: Variant) -> tuple[tuple[str, ...], str] | None:
    """The only targets a variant's recipe can be built for, and why, when the recipe decides them.

    A dockerfile variant installs prebuilt binaries (Debian's packages): building it "for" another
    target compiles nothing, so the image would be labelled for a CPU its binaries do not use.
    """
    if formats.get(variant.format).prebuilt:
        return variant.targets, (f"format {variant.format}: it installs prebuilt binaries, compiled for its "
                                 "`targets:` in hpcannotate.yaml, not for the target it is built for")
    return None


def _check_pinned_target(recipe_dir: RecipeDir, variant: Variant, target: str,
                         annotations: Annotations | None = None) -> None:
    """Refuse a target the recipe cannot be built for: one it pins (a Spack ``target=``, a declared
    ``hardware.cpu.optimized.version``), or one outside a prebuilt variant's ``targets:``."""
    pinned = pinned_targets(variant)
    if pinned is not None and target not in pinned[0]:
        what = "target" if len(pinned[0]) == 1 else "targets"
        raise InputError(f"{recipe_dir.config}: variant {variant.name}: the recipe pins CPU {what} "
                         f"{', '.join(pinned[0])} ({pinned[1]}); it cannot be built for {target}")
    if annotations is None:
        return
    built_for = annotations.get(HARDWARE_CPU_OPTIMIZED_VERSION)
    if built_for != target:
        source = annotations.entry(HARDWARE_CPU_OPTIMIZED_VERSION).provenance.describe()
        raise InputError(f"{recipe_dir.config}: variant {variant.name}: the recipe pins CPU target {built_for} "
                         f"({source}); it cannot be built for {target}")


def warn_all(context: RenderedContext) -> None:
    for warning in context.warnings:
        console.warn(warning)
