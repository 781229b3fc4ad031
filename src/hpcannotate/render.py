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
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import console
from .adapters.base import Inference, InferOptions, apply_target
from .annotations import Annotations
from .catalogue import OCI_PREFIX
from .catalogue import SUPERCONTAINERS_PREFIX as P
from .dockerfile_text import label_pair, quote, representable
from .errors import InputError
from .infer import infer
from .isolation import DEFAULT_TIMEOUT, run_isolated
from .oci.media import MANIFEST_LIMIT, MANIFEST_WARN
from .provenance import Layer, Provenance
from .recipedir import EnvSpec, RecipeDir, Variant
from .resources import render as render_template
from .resources import templates_dir

DEFAULT_SPACK_BUILD_BASE = "spack/ubuntu-jammy:0.23.1"
DEFAULT_SPACK_BASE = "ubuntu:22.04"
DEFAULT_EASYBUILD_BASE = "ubuntu:22.04"

# The recipe itself, embedded as build documentation, by format.
RECIPE_DOC_KEY = {
    "hpccm": P + "docs.build.hpccm.recipe",
    "spack": P + "docs.build.spack.env",
    "easybuild": P + "docs.build.easyconfig",
}
DOCKERFILE_DOC_KEY = P + "docs.build.dockerfile"


@dataclass
class RenderedContext:
    directory: Path
    recipe_dir: RecipeDir
    variant: Variant
    target: str
    annotations: Annotations
    dockerfile_labels: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    @property
    def dockerfile(self) -> Path:
        return self.directory / "Dockerfile"

    def oci_annotations(self) -> dict[str, str]:
        return self.annotations.to_oci()

    def labels(self) -> dict[str, str]:
        return self.annotations.to_labels()

    def argv_labels(self) -> dict[str, str]:
        """Labels the Dockerfile could not carry (line breaks, base64 docs): passed to the builder."""
        return {k: v for k, v in self.labels().items() if self.dockerfile_labels.get(k) != v}


def b64(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return base64.b64encode(data).decode("ascii")


def _in_dockerfile(key: str, value: str) -> bool:
    """Labels written into the Dockerfile: one-line values, and no large base64 documents."""
    return representable(value) and not key.startswith(P + "docs.") and len(value) <= 1024


def _check_reference(value: str, where: str) -> str:
    if not value or any(c.isspace() for c in value) or not representable(value):
        raise InputError(f"{where}: {value!r} is not an image reference")
    return value


def _dockerfile_body(variant: Variant, target: str, context: Path, timeout: float) -> tuple[str, EnvSpec]:
    """The recipe's own stages, and the environment its format implies."""
    fmt = variant.format
    if fmt == "dockerfile":
        fragment = variant.recipe.read_text(encoding="utf-8")
        if any(line.strip().upper().startswith("FROM ") for line in fragment.splitlines()):
            raise InputError(f"{variant.recipe}: a dockerfile variant is a fragment without FROM (the base comes from "
                             "hpcannotate.yaml)")
        base = _check_reference(variant.base, f"variants.{variant.name}.base")
        return f"FROM {base}\n{fragment.rstrip()}\n", EnvSpec()
    if fmt == "hpccm":
        reply = run_isolated(
            "hpcannotate.render_hpccm:render",
            {"recipe": str(variant.recipe), "target": target, "userargs": variant.userargs},
            timeout=timeout,
            what=str(variant.recipe),
        )
        return reply["dockerfile"].rstrip() + "\n", EnvSpec()
    if fmt == "spack":
        env_dir = context / "spack-env"
        env_dir.mkdir()
        for path in variant.recipe.parent.iterdir():
            if path.is_file() and path.suffix in (".yaml", ".yml", ".lock") and path.name != "hpcannotate.yaml":
                shutil.copy2(path, env_dir / ("spack.yaml" if path == variant.recipe else path.name))
        text = render_template(
            "spack.Dockerfile.j2",
            build_base=_check_reference(variant.build_base or DEFAULT_SPACK_BUILD_BASE, "build_base"),
            base=_check_reference(variant.base or DEFAULT_SPACK_BASE, "base"),
            target=target,
        )
        return text, EnvSpec(path=("/opt/view/bin",), ld_library_path=("/opt/view/lib", "/opt/view/lib64"))
    if fmt == "easybuild":
        eb_dir = context / "easyconfig"
        eb_dir.mkdir()
        shutil.copy2(variant.recipe, eb_dir / variant.recipe.name)
        base = _check_reference(variant.base or DEFAULT_EASYBUILD_BASE, "base")
        text = render_template(
            "easybuild.Dockerfile.j2",
            build_base=_check_reference(variant.build_base or base, "build_base"),
            base=base,
            target=target,
            optarch=easybuild_optarch(target),
            easyconfig=variant.recipe.name,
        )
        name, _, rest = variant.recipe.stem.partition("-")
        return text, EnvSpec(path=(f"/opt/easybuild/software/{name}/{rest}/bin",))
    raise InputError(f"variants.{variant.name}.format: {fmt!r} cannot be rendered")


def easybuild_optarch(target: str) -> str:
    """EasyBuild's --optarch for a target, from archspec's GCC flags (``GCC:march=znver3 -mtune=znver3``)."""
    import archspec.cpu

    try:
        flags = archspec.cpu.TARGETS[target].optimization_flags("gcc", "12.3.0")
    except (KeyError, ValueError, archspec.cpu.UnsupportedMicroarchitecture):
        flags = ""
    return f"GCC:{flags.lstrip('-')}" if flags else "GENERIC"


def _inference(variant: Variant, target: str, timeout: float) -> Inference:
    if variant.format == "dockerfile":
        inference = Inference("dockerfile", variant.recipe)
        apply_target(inference, target)
        inference.set(P + "build.recipe.format", "dockerfile")
        return inference
    options = InferOptions(target=target, userargs=dict(variant.userargs), timeout=timeout)
    return infer(variant.recipe, options, variant.format)


def _declared(recipe_dir: RecipeDir, variant: Variant) -> Annotations:
    """What the recipe directory states: its yaml annotations and the standard OCI keys."""
    prov = Provenance(Layer.RECIPE, str(recipe_dir.config), note="declared in hpcannotate.yaml")
    declared = Annotations.from_mapping(variant.annotations, prov, source=str(recipe_dir.config))
    std = {OCI_PREFIX + "title": recipe_dir.name}
    if recipe_dir.version:
        std[OCI_PREFIX + "version"] = recipe_dir.version
    if recipe_dir.description:
        std[OCI_PREFIX + "description"] = recipe_dir.description
    if variant.base and variant.format != "hpccm":
        std[OCI_PREFIX + "base.name"] = variant.base
    for kind, doc in recipe_dir.docs.items():
        if kind in ("quickstart", "benchmark"):
            std[P + f"docs.{kind}.base64"] = b64(doc.read_bytes())
        elif kind == "build":
            std[P + "docs.build.quickstart.base64"] = b64(doc.read_bytes())
    if variant.format in RECIPE_DOC_KEY:
        std[RECIPE_DOC_KEY[variant.format]] = b64(variant.recipe.read_bytes())
    return Annotations.from_mapping(std, prov).merge(declared)


def _env_lines(env: EnvSpec) -> list[str]:
    """ENV instructions equal to what the profile sets; ``${VAR:+:${VAR}}`` keeps the base image's value."""
    lines = []
    for var, dirs in (("PATH", env.path), ("LD_LIBRARY_PATH", env.ld_library_path)):
        if dirs:
            lines.append(f"{var}={quote(':'.join(dirs))[:-1]}${{{var}:+:${{{var}}}}}\"")
    lines.extend(f"{key}={quote(value)}" for key, value in env.vars.items())
    return lines


def _check_env(env: EnvSpec, config: Path) -> None:
    for name in env.vars:
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise InputError(f"{config}: env.vars: {name!r} is not a variable name")
    for value in (*env.path, *env.ld_library_path, *env.vars.values()):
        if not representable(value):
            raise InputError(f"{config}: env: {value!r} has a line break")
    for directory in (*env.path, *env.ld_library_path):
        if not directory.startswith("/") or ":" in directory:
            raise InputError(f"{config}: env: {directory!r} is not an absolute directory")


def final_base(dockerfile: str) -> str | None:
    """The image the final stage starts from, following stage aliases (None for scratch)."""
    stages: dict[str, str] = {}
    image = None
    for line in dockerfile.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "FROM":
            args = [w for w in words[1:] if not w.startswith("--")]
            image = stages.get(args[0].lower(), args[0])
            if len(args) >= 3 and args[1].upper() == "AS":
                stages[args[2].lower()] = image
    return None if image is None or image.lower() == "scratch" else image


def check_size(annotations: dict[str, str], where: str) -> list[str]:
    """Registries reject manifests over 4 MiB; warn far below that, refuse near it."""
    size = len(json.dumps(annotations).encode("utf-8"))
    if size > MANIFEST_LIMIT - 64 * 1024:
        raise InputError(f"{where}: annotations take {size} bytes; a registry rejects manifests over 4 MiB "
                         "(embed smaller docs, or link them with docs.*.link)")
    if size > MANIFEST_WARN:
        return [f"{where}: annotations take {size // 1024} KiB of the manifest (registries refuse 4 MiB)"]
    return []


def render_variant(
    recipe_dir: RecipeDir,
    variant_name: str | None,
    target: str,
    out_dir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    base_reader: Callable[[str], Annotations | None] | None = None,
) -> RenderedContext:
    """Write the build context for one variant and target into ``out_dir`` (replaced if it exists).

    ``base_reader`` returns the annotations of the final stage's base image (layer
    ``base image``): the lowest layer, which the recipe's values override visibly.
    """
    variant = recipe_dir.variant(variant_name)
    _check_env(variant.env, recipe_dir.config)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "hpcannotate").mkdir(parents=True)
    inference = _inference(variant, target, timeout)
    body, format_env = _dockerfile_body(variant, target, out_dir, timeout)
    env = format_env.merged(variant.env)
    annotations = inference.annotations.merge(_declared(recipe_dir, variant))
    base = final_base(body)
    inherited = base_reader(base) if base_reader and base else None
    if inherited is not None:
        annotations = inherited.merge(annotations)
    built_for = annotations.get(P + "hardware.cpu.optimized.version")
    if built_for != target:
        source = annotations.entry(P + "hardware.cpu.optimized.version").provenance.describe()
        raise InputError(f"{recipe_dir.config}: variant {variant.name}: the recipe pins CPU target {built_for} "
                         f"({source}); it cannot be built for {target}")
    problems = annotations.validate()
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"{recipe_dir.config}: variant {variant.name}, target {target}: {first}{more}")

    labels = annotations.to_labels()
    in_file = {k: v for k, v in labels.items() if _in_dockerfile(k, v)}
    cmd = json.dumps([variant.shell, "-l"])
    dockerfile = render_template(
        "Dockerfile.j2",
        recipe=str(variant.recipe.relative_to(recipe_dir.path) if variant.recipe.is_relative_to(recipe_dir.path)
                   else variant.recipe.name),
        variant=variant.name,
        target=target,
        body=body.rstrip(),
        usage=bool(variant.usage),
        env_lines=_env_lines(env),
        label_lines=[label_pair(k, v) for k, v in in_file.items()],
        cmd=cmd,
    )
    (out_dir / "Dockerfile").write_text(dockerfile, encoding="utf-8")
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
    (out_dir / "hpcannotate" / "profile.sh").write_text(profile, encoding="utf-8")
    entrypoint = out_dir / "hpcannotate" / "entrypoint.sh"
    shutil.copyfile(templates_dir() / "entrypoint.sh", entrypoint)
    entrypoint.chmod(0o755)
    if variant.usage:
        (out_dir / "hpcannotate" / "usage.txt").write_text(variant.usage.rstrip() + "\n", encoding="utf-8")

    annotations.set(DOCKERFILE_DOC_KEY, b64(dockerfile),
                    Provenance(Layer.RECIPE, str(out_dir / "Dockerfile"), note="the rendered Dockerfile"))
    warnings = list(inference.warnings) + check_size(annotations.to_oci(), f"{recipe_dir.name}:{target}")
    context = RenderedContext(out_dir, recipe_dir, variant, target, annotations, in_file, warnings)
    (out_dir / "annotations.json").write_text(json.dumps(annotations.to_json(), indent=2) + "\n", encoding="utf-8")
    return context


def warn_all(context: RenderedContext) -> None:
    for warning in context.warnings:
        console.warn(warning)
