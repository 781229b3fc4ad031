"""``check`` for what is not built yet: a Dockerfile, a build context, or a recipe directory;
and ``check`` itself, which sends a path here and a reference to ``check.check_reference``.

A Dockerfile is judged statically: its final stage's ENTRYPOINT, CMD, ENV and LABELs, and
the scripts it copies from the build context, which can be read here (unlike an image's
layers). The entrypoint script and the profiles it sources are read to see that it exec's its
arguments, picks no binaries at run time, and sets nothing that ENV does not also set.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.dockerfile.reader import Dockerfile, Instruction, Stage, parse, parse_pairs, substitute
from hpcannotate.errors import InputError
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.inputs import read_text
from hpcannotate.verdict.check import (
    TARGET,
    Check,
    CheckReport,
    Script,
    check_reference,
    judge_annotations,
    judge_cmd,
    judge_entrypoint,
    judge_environment,
    judge_one_target,
    target_flags,
)

if TYPE_CHECKING:
    from hpcannotate.image.read import Transport

DOCKERFILE_NAMES = ("Dockerfile", "Containerfile")
# Official bases whose CMD is a shell and that set no ENTRYPOINT (their repository, Docker Hub's library/ dropped).
SHELL_BASES = frozenset({
    "debian", "ubuntu", "rockylinux", "rockylinux/rockylinux", "almalinux", "centos", "fedora", "opensuse/leap",
    "opensuse/tumbleweed", "alpine", "busybox", "amazonlinux", "archlinux", "oraclelinux", "nvidia/cuda",
    "redhat/ubi8", "redhat/ubi9",
})
PROFILE_D = re.compile(r"/etc/profile\.d/[\w.+-]+")


def _base_repository(base: str) -> str | None:
    from hpcannotate.registry.reference import parse_reference

    try:
        return parse_reference(base).repository.removeprefix("library/")
    except InputError:
        return None


def _copy_sources(instruction: Instruction, variables: dict) -> tuple[list[str], str] | None:
    """(sources, destination) of a COPY or ADD, variables substituted where known."""
    words = instruction.exec_form()
    if words is None:
        try:
            words = shlex.split(instruction.split_flags()[1])
        except ValueError:
            return None
    if len(words) < 2:
        return None
    words = [substitute(w, variables) or w for w in words]
    return words[:-1], words[-1]


def _destination(sources: list[str], dest: str, workdir: str) -> list[tuple[str, str]]:
    """(source, path in the image) of each source: ``dest/`` or several sources means a directory."""
    dest = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    if dest.endswith("/") or len(sources) > 1:
        return [(s, posixpath.join(dest, posixpath.basename(s.rstrip("/")))) for s in sources]
    return [(sources[0], dest)]


class StageFiles:
    """Files a stage puts at paths in the image: which instruction, and the text when readable."""

    def __init__(self, dockerfile: Dockerfile, stage: Stage, context: Path):
        self.dockerfile, self.stage, self.context = dockerfile, stage, context

    def locate(self, path: str) -> tuple[Script | None, str | None]:
        """The script at ``path`` in the image, or why it cannot be read here."""
        workdir = "/"
        found: tuple[Script | None, str | None] | None = None
        for n, instruction in enumerate(self.stage.instructions):
            variables = self.dockerfile.variables(self.stage, n)
            if instruction.keyword == "WORKDIR":
                workdir = posixpath.join(workdir, substitute(instruction.args, variables) or instruction.args)
            elif instruction.keyword in ("COPY", "ADD"):
                hit = self._copied(instruction, variables, path, workdir)
                found = hit or found
            elif instruction.keyword == "RUN" and path in instruction.args and (
                    found is None or re.search(rf">\s*{re.escape(path)}(\s|$)", instruction.args)):
                found = (None, f"it is made by RUN ({self.dockerfile.path}:{instruction.line}), which check does "
                               "not run")
        if found is not None:
            return found
        return None, f"it is not added by this Dockerfile (it comes from {self.dockerfile.final_base()})"

    def _copied(self, instruction: Instruction, variables: dict, path: str, workdir: str):
        parsed = _copy_sources(instruction, variables)
        if parsed is None:
            return None
        sources, dest = parsed
        heredocs = dict(instruction.heredocs)
        for source, target in _destination(sources, dest, workdir):
            if target != path:
                continue
            name = source.lstrip("<-").strip("'\"")
            if source.startswith("<<") and name in heredocs:
                return Script(f"{self.dockerfile.path}:{instruction.line} heredoc", heredocs[name]), None
            origin = instruction.flag("from")
            if origin:
                return None, f"it is copied from {origin} ({self.dockerfile.path}:{instruction.line}), which check " \
                             "does not build"
            if instruction.keyword == "ADD" and re.match(r"^[a-z]+://", source):
                return None, f"it is downloaded by ADD ({self.dockerfile.path}:{instruction.line})"
            local = (self.context / source.lstrip("/")).resolve()
            if not local.is_relative_to(self.context.resolve()) or not local.is_file():
                return None, f"{source} is not a file in the build context {self.context}"
            return Script(str(local.relative_to(self.context.resolve())), read_text(local, "script")), None
        return None

    def profile_scripts(self) -> list[str]:
        """Paths under /etc/profile.d that the stage writes (COPY, ADD or RUN)."""
        found: list[str] = []
        workdir = "/"
        for n, instruction in enumerate(self.stage.instructions):
            variables = self.dockerfile.variables(self.stage, n)
            if instruction.keyword in ("COPY", "ADD"):
                parsed = _copy_sources(instruction, variables)
                if parsed:
                    for _, target in _destination(*parsed, workdir):
                        if target.startswith("/etc/profile.d/"):
                            found.append(target)
            elif instruction.keyword == "RUN":
                found += PROFILE_D.findall(instruction.args + "".join(b for _, b in instruction.heredocs))
            elif instruction.keyword == "WORKDIR":
                workdir = posixpath.join(workdir, instruction.args)
        return sorted(set(found))


def _environment(dockerfile: Dockerfile, stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for n, instruction in enumerate(stage.instructions):
        if instruction.keyword == "ENV":
            env.update(parse_pairs(instruction, dockerfile.variables(stage, n)))
    return env


def _chain(dockerfile: Dockerfile) -> list[Stage]:
    """The final stage and the stages it builds on (``FROM builder``), oldest first."""
    chain, stage, seen = [dockerfile.final], dockerfile.final, set()
    while (parent := dockerfile.stage_named(stage.base)) is not None and id(parent) not in seen:
        seen.add(id(parent))
        chain.insert(0, parent)
        stage = parent
    return chain


def _labels(dockerfile: Dockerfile) -> tuple[dict[str, str], list[str]]:
    """LABELs of the final image (values substituted), and the keys whose value comes from an unset ARG."""
    labels: dict[str, str] = {}
    unresolved: list[str] = []
    for stage in _chain(dockerfile):
        for n, instruction in enumerate(stage.instructions):
            if instruction.keyword != "LABEL":
                continue
            missing: list[str] = []
            for key, value in parse_pairs(instruction, dockerfile.variables(stage, n), missing):
                if key in missing:
                    unresolved.append(key)
                else:
                    labels[key] = value
    return labels, unresolved


def _build_texts(dockerfile: Dockerfile) -> list[str]:
    texts = []
    for stage in dockerfile.stages:
        for n, instruction in enumerate(stage.instructions):
            if instruction.keyword in ("RUN", "ARG", "ENV"):
                text = instruction.args + " " + "".join(b for _, b in instruction.heredocs)
                texts.append(substitute(text, dockerfile.variables(stage, n)) or text)
    return texts


def check_dockerfile(path: Path, context: Path) -> CheckReport:
    """Every check on a Dockerfile, reading scripts it copies from ``context``."""
    from hpcannotate.model.annotations import Annotations

    dockerfile = parse(read_text(path, "Dockerfile"), str(path))
    stage = dockerfile.final
    base = dockerfile.final_base()
    base_repo = _base_repository(base) if base.lower() != "scratch" else None
    shell_instruction = stage.last("SHELL")
    shell = (shell_instruction.exec_form() if shell_instruction else None) or ["/bin/sh", "-c"]
    files = StageFiles(dockerfile, stage, context)

    entry_instruction = stage.last("ENTRYPOINT")
    entrypoint = entry_instruction.argv(shell) if entry_instruction else []
    if entry_instruction is not None and entry_instruction.exec_form() is None:
        entry = Check("entrypoint", False, f"ENTRYPOINT in shell form ({path}:{entry_instruction.line}) runs "
                                           f"{shell[0]} -c, which ignores CMD and the command given to the image")
        selection = Check("runtime-selection", True, "the entrypoint is shell code in the Dockerfile, not a "
                                                     "script that picks binaries")
        script, sets = None, None
    else:
        script, unreadable = files.locate(entrypoint[0]) if entrypoint else (None, None)
        entry, selection = judge_entrypoint(entrypoint, None, script, unreadable)
        sets = script.sets() if script else None
        if script is not None:
            extra = []
            for sourced in script.sourced():
                profile, _ = files.locate(sourced)
                if profile is not None:
                    sets = (sets or set()) | profile.sets()
                    extra += profile.selections()
            if extra and selection.passed:
                selection = Check("runtime-selection", False, "a profile the entrypoint sources inspects the "
                                                              f"machine to pick binaries: {', '.join(extra[:3])}",
                                  tuple(extra))
    if entry_instruction is None and base_repo not in SHELL_BASES and base.lower() != "scratch":
        entry = Check("entrypoint", entry.passed, f"{entry.reason} (none set here; {base}'s own, if any, is "
                                                  "inherited)")

    cmd_instruction = stage.last("CMD")
    cmd = cmd_instruction.argv(shell) if cmd_instruction else []
    inherited = base if cmd_instruction is None and base_repo in SHELL_BASES and not entrypoint else None
    labels, unresolved = _labels(dockerfile)
    annotations = Annotations.from_mapping(labels, source=str(path))
    annotation_check = judge_annotations(annotations)
    if unresolved:
        annotation_check = Check("annotations", False, f"LABEL {', '.join(unresolved)} come from build arguments "
                                                       "without a default: cannot check them here",
                                 annotation_check.details)
    targets = [(labels[k], f"LABEL in {path}") for k in labels if annotations_key(k) == TARGET]
    checks = [
        annotation_check,
        entry,
        selection,
        judge_cmd(cmd, entrypoint, inherited),
        judge_environment(entrypoint, _environment(dockerfile, stage), files.profile_scripts(), sets),
        judge_one_target(targets, target_flags(_build_texts(dockerfile))),
    ]
    return CheckReport(str(path), "dockerfile", checks)


def annotations_key(name: str) -> str:
    return catalogue().canonical(name)


def check_recipe_dir(path: Path) -> CheckReport:
    """Render the default variant for each of its targets (into a temporary directory) and check each."""
    from hpcannotate.dockerfile.render import render_variant
    from hpcannotate.recipes.recipedir import load_recipe_dir

    recipe_dir = load_recipe_dir(path)
    variant = recipe_dir.variant(None)
    report = CheckReport(str(path), "recipe")
    with tempfile.TemporaryDirectory(prefix="hpcannotate-check-") as tmp:
        for target in variant.targets:
            context = render_variant(recipe_dir, variant.name, target, Path(tmp) / target)
            part = check_dockerfile(context.dockerfile, context.directory)
            # labels the Dockerfile cannot carry reach the builder as arguments: judge the full set
            part.checks[0] = judge_annotations(context.annotations)
            part.subject = f"{path} (variant {variant.name}, target {target})"
            part.label = f"{variant.name} {target}"
            report.parts.append(part)
    return report


def check_path(path: Path, transport: Transport | None = None) -> CheckReport:
    """A Dockerfile, a build context, a recipe directory or an OCI layout."""
    if path.is_file():
        return check_dockerfile(path, path.parent)
    if (path / "oci-layout").is_file():
        return check_reference(f"oci:{path}", transport)
    for name in DOCKERFILE_NAMES:
        if (path / name).is_file():
            report = check_dockerfile(path / name, path)
            report.kind = "context"
            return report
    if (path / "hpcannotate.yaml").is_file():
        return check_recipe_dir(path)
    raise InputError(f"{path}: no Dockerfile, Containerfile, hpcannotate.yaml or OCI layout in this directory")


def looks_like_path(text: str) -> bool:
    name = Path(text).name
    return text.startswith(("/", "./", "../", "~")) or "Dockerfile" in name or "Containerfile" in name \
        or text in (".", "..")


def check(subject: str, transport: Transport | None = None, layers: bool | None = None) -> CheckReport:
    """Check a reference, a Dockerfile, or a directory (build context, recipe directory, OCI layout).

    ``layers``: read the image's layers for /etc/profile (None: for local images only)."""
    path = Path(subject).expanduser()
    if path.exists():
        if (path / "oci-layout").is_file() and layers is not None:
            return check_reference(f"oci:{path}", transport, layers)
        return check_path(path, transport)
    if looks_like_path(subject):
        raise InputError(f"{subject}: no such file or directory")
    return check_reference(subject, transport, layers)
