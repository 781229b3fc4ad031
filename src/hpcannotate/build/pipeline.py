"""``hpcannotate build``: render, build one image per CPU target, assemble an annotated index, verify.

recipe -> facts -> annotations -> Dockerfile -> image -> registry (or OCI
layout). One image per target (seed 001: one binary set per image), then one
OCI index whose descriptors carry each target's platform and annotations, so a
registry client or ``hpcannotate match`` can pick the right image without
pulling layers. buildah 1.28 cannot annotate an index, so hpcannotate writes the
index itself, into the layout or through the registry client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate import console
from hpcannotate.build.builders import Builder, BuildOptions, select_builder
from hpcannotate.dockerfile.reader import base_images
from hpcannotate.dockerfile.render import RenderedContext, render_variant, warn_all
from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.annotations import Annotations
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.keynames import (
    APP_VERSION,
    HARDWARE_CPU_OPTIMIZED_VERSION,
    OCI_REF_NAME,
    OCI_TITLE,
    TOOLS_INCLUDES,
)
from hpcannotate.model.provenance import Layer
from hpcannotate.model.targets import family_of, is_target
from hpcannotate.oci.index import COMPLETE_TAG, build_index, descriptor_annotations, every_entry, first_not_baseline
from hpcannotate.oci.media import OCI_INDEX, canonical_json
from hpcannotate.recipes.recipedir import RecipeDir, load_recipe_dir
from hpcannotate.registry.platform import platform_for
from hpcannotate.registry.reference import parse_reference

if TYPE_CHECKING:
    from hpcannotate.registry.repository import ImageRepository

TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # an OCI distribution tag


@dataclass
class TargetResult:
    target: str
    platform: str
    reference: str
    digest: str
    annotations: dict[str, str]
    context: Path

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "platform": self.platform,
            "reference": self.reference,
            "digest": self.digest,
            "annotations": self.annotations,
            "context": str(self.context),
        }


@dataclass
class BuildReport:
    app: str
    variant: str
    reference: str
    digest: str
    targets: list[TargetResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    complete: str | None = None  # the index listing every target, when the pulled one leaves some out

    def to_json(self) -> dict:
        return {
            "conflicts": self.conflicts,
            "complete": self.complete,
            "app": self.app,
            "variant": self.variant,
            "reference": self.reference,
            "digest": self.digest,
            "mediaType": OCI_INDEX,
            "targets": [t.to_json() for t in self.targets],
            "warnings": self.warnings,
        }


@dataclass
class Destination:
    """Where the images and the index go: an OCI layout (default) or a registry repository.

    The store is opened on first use: a plan (``--dry-run``) names the destination without
    creating the layout or talking to the registry.
    """

    index_tag: str
    prefix: str  # the reference a builder writes to, without the tag: "oci:PATH" or "registry/repo"
    opener: Callable[[], ImageRepository] = field(repr=False, default=None)  # type: ignore[assignment]
    _store: ImageRepository | None = field(default=None, repr=False)

    @property
    def store(self) -> ImageRepository:
        if self._store is None:
            self._store = self.opener()
        return self._store

    def target_tag(self, target: str) -> str:
        return f"{self.index_tag}-{target}"

    def target_ref(self, target: str) -> str:
        return f"{self.prefix}:{self.target_tag(target)}"

    def index_ref(self) -> str:
        return f"{self.prefix}:{self.index_tag}"


def layout_destination(path: Path, tag: str) -> Destination:
    from hpcannotate.registry.repository import open_repository

    path = Path(path)
    return Destination(tag, f"oci:{path}", lambda: open_repository(f"oci:{path}", create=True))


def explicit_tag(ref: str) -> bool:
    """Whether a registry reference names its tag (``reg/app:1.0``), not just the repository (``reg/app``)."""
    name = ref.strip().removeprefix("docker://").partition("@")[0]
    return ":" in name.rpartition("/")[2]


def registry_destination(ref: str, options: BuildOptions, default_tag: str = "latest") -> Destination:
    """``--push REF``: REF's own tag, else ``default_tag`` (the version)."""
    from hpcannotate.registry.repository import open_repository

    reference = parse_reference(ref)
    tag = reference.tag if explicit_tag(ref) and reference.tag else default_tag
    return Destination(tag, f"{reference.registry}/{reference.repository}",
                       lambda: open_repository(reference, authfile=options.authfile, tls_verify=options.tls_verify,
                                               plain_http=options.plain_http))


def plan_destination(recipe_dir: RecipeDir, push: str | None, output: str | None, workdir: Path,
                     options: BuildOptions, version: str | None = None) -> Destination:
    """``--push REF``, ``--output oci:PATH`` or the default layout ``WORKDIR/<app>/oci``.

    The tag is REF's own, else the version: hpcannotate.yaml's ``version:``, else ``version``
    (what the rendered images say, see ``image_version``), else ``latest``.
    """
    if push and output:
        raise InputError("--push and --output are exclusive: one destination per build")
    tag = recipe_dir.version or version or "latest"
    if push:
        return registry_destination(push, options, tag)
    if output is not None:
        path = output.removeprefix("oci:")
        if not path:
            raise InputError(f"--output {output!r}: expected oci:PATH (an OCI image layout directory)")
        return layout_destination(Path(path), tag)
    return layout_destination(workdir / recipe_dir.name / "oci", tag)


def image_version(contexts: list[RenderedContext]) -> tuple[str | None, str | None]:
    """The version every rendered target states (``app.version``), for the tag; else None and why not."""
    key = APP_VERSION
    versions = {c.target: c.annotations.get(key) for c in contexts}
    found = set(versions.values())
    if not versions or found == {None}:
        return None, None
    if len(found) > 1:
        listing = ", ".join(f"{t}: {v or 'none'}" for t, v in versions.items())
        return None, f"the targets state different {key} ({listing}): tagged latest"
    (version,) = found
    longest = max(len(t) for t in versions) + 1
    if not TAG_RE.fullmatch(version) or len(version) + longest > 128:
        return None, f"{key} {version!r} is not an image tag: tagged latest"
    return version, None


@dataclass
class TargetPlan:
    """One target, rendered and ready: the exact builder command and where it writes."""

    target: str
    platform: str
    reference: str
    context: RenderedContext
    log: Path
    argv: list[str]

    def to_json(self) -> dict:
        return {"target": self.target, "platform": self.platform, "reference": self.reference,
                "context": str(self.context.directory), "log": str(self.log), "argv": self.argv}


@dataclass
class BuildPlan:
    """Everything ``build`` will do, decided before the first (long) build: ``--dry-run`` prints it."""

    recipe_dir: RecipeDir
    variant: str
    builder: Builder
    destination: Destination
    targets: list[TargetPlan]
    warnings: list[str] = field(default_factory=list)
    available: bool = True

    def to_json(self) -> dict:
        return {"app": self.recipe_dir.name, "variant": self.variant, "backend": self.builder.name,
                "backend_available": self.available, "index": self.destination.index_ref(),
                "targets": [t.to_json() for t in self.targets], "warnings": self.warnings}


def base_reader(builder: Builder, allow_make: bool, make: bool = True, work: Path | None = None):
    """Reads the final stage's base annotations as the builder will build on it (``Builder.base_annotations``),
    making the base first if need be. With ``make=False`` (a dry run) no base is made."""

    def read(ref: str):
        return builder.base_annotations(ref, allow_make=allow_make, make=make, work=work or Path("build"))

    return read


def base_env_reader(builder: Builder):
    """Reads the final stage's base environment from the builder's store (None where it has none).

    Called after ``base_reader``, which puts the base in the store when it can."""
    return builder.base_env


def probe_target(reference: str, context: RenderedContext, options: BuildOptions):
    """Read the built image's user land (layer ``image probe``) and merge it over the recipe's values.

    Where the recipe and the image disagree (the recipe says Open MPI, the image holds only
    MPICH libraries) the conflict is reported loudly; the image's own files win.
    """
    from hpcannotate.image.probe import cross_check, probe_image

    result = probe_image(reference, store_options=options)
    conflicts = cross_check(context.annotations, result)
    for conflict in conflicts:
        console.warn(f"recipe and image disagree: {conflict}")
    merged = context.annotations.merge(result.annotations)
    tools = TOOLS_INCLUDES
    if tools in context.annotations and tools in result.annotations:
        # the probe only knows its own list of tools: keep what the recipe declared too
        items = dict.fromkeys(context.annotations[tools].split(",") + result.annotations[tools].split(","))
        merged.set(tools, ",".join(items), merged.entry(tools).provenance)
    (context.directory / "annotations.json").write_text(json.dumps(merged.to_json(), indent=2) + "\n")
    return merged, conflicts


def write_post_build(store: ImageRepository, tag: str, annotations: Annotations, aliases: bool = False):
    """Post-build annotations (probe values; dropping the empty ``base.digest`` buildah writes for
    FROM scratch) written into the manifest in place: same config and layers, no blob upload."""
    manifest = store.get(tag)
    data = manifest.json()
    current = data.get("annotations") or {}
    wanted = {k: v for k, v in current.items() if v != ""}
    wanted.update({k: v for k, v in annotations.to_oci(aliases).items() if k != OCI_REF_NAME})
    if wanted == current:
        return manifest
    data["annotations"] = dict(sorted(wanted.items()))
    store.put(canonical_json(data), manifest.media_type, tag)
    return store.get(tag)


def verify(store: ImageRepository, index_ref: str, expected: dict[str, dict[str, str]],
           probed: dict[str, set[str]] | None = None) -> None:
    """Read the index and each image back and check every annotation and label arrived exactly."""
    probed = probed or {}
    index = store.get(index_ref).json()
    by_digest = {d["digest"]: d for d in every_entry(index, lambda digest: store.get(digest).json())}
    for target, want in expected.items():
        desc = next((d for d in by_digest.values()
                     if d.get("annotations", {}).get(HARDWARE_CPU_OPTIMIZED_VERSION) == target), None)
        if desc is None:
            raise HpcAnnotateError(f"{store.describe(index_ref)}: the index has no entry for target {target}")
        manifest = store.get(desc["digest"]).json()
        got = manifest.get("annotations", {})
        missing = [k for k, v in want.items() if got.get(k) != v]
        if missing:
            raise HpcAnnotateError(f"{store.describe(index_ref)}: target {target}: annotation {missing[0]} "
                                   f"did not arrive intact ({len(missing)} in all)")
        labels = json.loads(store.config(manifest["config"]["digest"])).get("config", {}).get("Labels") or {}
        # labels are the recipe's values; post-build (probe) values live in the manifest only
        wrong = [k for k, v in want.items() if k.startswith(P) and k in labels and labels.get(k) != v
                 and catalogue().canonical(k) not in probed.get(target, ())]  # an alias follows its key
        if wrong:
            raise HpcAnnotateError(f"{store.describe(index_ref)}: target {target}: label {wrong[0]} is not in the "
                                   "image config")


def plan(
    path: str | Path,
    *,
    variant: str | None = None,
    targets: list[str] | None = None,
    backend: str = "auto",
    push: str | None = None,
    output: str | None = None,
    workdir: Path = Path("build"),
    options: BuildOptions | None = None,
    allow_make_base: bool = True,
    dry_run: bool = False,
    userargs: dict[str, str] | None = None,
) -> BuildPlan:
    """Check the inputs, choose the builder and destination, and render every target.

    All targets are rendered and validated before anything is built, so a bad target
    fails in seconds, not after the builds of the ones before it. ``dry_run`` makes no
    base image and opens no store; an unavailable explicit backend is then reported, not refused.
    """
    options = options or BuildOptions()
    recipe_dir = load_recipe_dir(path)
    chosen = recipe_dir.variant(variant)

    wanted = list(targets or chosen.targets)
    for target in wanted:
        if not is_target(target):
            raise InputError(f"--target {target!r}: not an archspec CPU target")
    plan_destination(recipe_dir, push, output, workdir, options)  # a bad --push/--output fails before rendering
    builder = select_builder(backend, options)
    available = builder.available()
    if not available and not dry_run:
        raise HpcAnnotateError(f"the {builder.name} backend is not available on this machine: "
                               f"{builder.unavailable_reason()}")
    work = workdir / recipe_dir.name / chosen.name
    reader = base_reader(builder, allow_make_base, make=not dry_run, work=work)
    warnings: list[str] = []
    contexts = []
    for target in wanted:
        console.progress(f"[{target}] rendering {chosen.format} recipe")
        context = render_variant(recipe_dir, chosen.name, target, work / target / "context", base_reader=reader,
                                 target_source="--target" if targets else None, userargs=userargs,
                                 base_env_reader=base_env_reader(builder))
        context.aliases = options.aliases  # the alias labels the Dockerfile lacks go to the builder as arguments
        warn_all(context)
        warnings.extend(context.warnings)
        contexts.append(context)
    for context in contexts:  # buildx: every stage's base, not only the final one, goes in as a named context
        builder.plan_bases(base_images(context.dockerfile.read_text()), allow_make=allow_make_base,
                           make=not dry_run, work=work)
    # every target rendered: the tag is the version they state, when hpcannotate.yaml has none
    version, why_not = (None, None) if recipe_dir.version else image_version(contexts)
    if why_not and not (push and explicit_tag(push)):
        console.warn(why_not)
        warnings.append(why_not)
    destination = plan_destination(recipe_dir, push, output, workdir, options, version)
    result = BuildPlan(recipe_dir, chosen.name, builder, destination, [], warnings, available=available)
    for context in contexts:
        platform = platform_for(family_of(context.target))
        reference = destination.target_ref(context.target)
        result.targets.append(TargetPlan(context.target, platform, reference, context,
                                         work / context.target / "build.log",
                                         builder.build_argv(context, reference, platform)))
    return result


def build(
    path: str | Path,
    *,
    variant: str | None = None,
    targets: list[str] | None = None,
    backend: str = "auto",
    push: str | None = None,
    output: str | None = None,
    workdir: Path = Path("build"),
    options: BuildOptions | None = None,
    allow_make_base: bool = True,
    probe: bool = True,
    userargs: dict[str, str] | None = None,
) -> BuildReport:
    """Build every target of a recipe directory's variant and publish an annotated index."""
    options = options or BuildOptions()
    the_plan = plan(path, variant=variant, targets=targets, backend=backend, push=push, output=output,
                    workdir=workdir, options=options, allow_make_base=allow_make_base, userargs=userargs)
    return execute(the_plan, options, allow_make_base=allow_make_base, probe=probe)


def execute(the_plan: BuildPlan, options: BuildOptions, *, allow_make_base: bool = True,
            probe: bool = True) -> BuildReport:
    """Build the planned targets, annotate and index them, and verify what arrived."""
    recipe_dir, builder, destination = the_plan.recipe_dir, the_plan.builder, the_plan.destination
    destination.store  # noqa: B018 - open it (create the layout, read credentials) before the first build
    report = BuildReport(recipe_dir.name, the_plan.variant, "", "", warnings=list(the_plan.warnings))
    expected: dict[str, dict[str, str]] = {}
    probed: dict[str, set[str]] = {}
    entries = []
    for step in the_plan.targets:
        target, context, reference = step.target, step.context, step.reference
        for ref in base_images(context.dockerfile.read_text()):
            builder.ensure_base(ref, allow_make=allow_make_base)
        console.progress(f"[{target}] building {reference} with {builder.name} (log: {step.log})")
        builder.build(context, reference, step.platform, step.log)
        final = context.annotations
        if probe:
            console.progress(f"[{target}] probing {reference}")
            final, conflicts = probe_target(reference, context, options)
            report.conflicts.extend(f"{target}: {c}" for c in conflicts)
        manifest = write_post_build(destination.store, destination.target_tag(target), final, options.aliases)
        values = {k: v for k, v in final.to_oci(options.aliases).items() if k != OCI_REF_NAME}
        entries.append((manifest, step.platform, descriptor_annotations(values)))
        expected[target] = values
        probed[target] = {e.key for e in final.entries() if e.provenance.layer == Layer.PROBE}
        report.targets.append(TargetResult(target, step.platform, reference, manifest.digest, values,
                                           context.directory))
    built = build_index(entries, _index_annotations(recipe_dir, report))
    if built.complete is not None:  # stored first: the index clients pull names it by digest
        report.complete = destination.store.put(built.complete, OCI_INDEX, destination.target_tag(COMPLETE_TAG))
        verb = "shares" if len(built.left_out) == 1 else "share"
        note = (f"{', '.join(built.left_out)} {verb} a platform with a more generic target: clients pulling "
                f"{destination.index_tag} get that one; each stays reachable by its own tag and in "
                f"{destination.target_tag(COMPLETE_TAG)}, which inspect and match read")
        console.warn(note)
        report.warnings.append(note)
    for note in first_not_baseline(built):
        console.warn(note)
        report.warnings.append(note)
    report.digest = destination.store.put(built.raw, OCI_INDEX, destination.index_tag)
    report.reference = destination.store.describe(destination.index_tag)
    console.progress(f"verifying annotations in {report.reference}")
    verify(destination.store, destination.index_tag, expected, probed)
    return report


def _index_annotations(recipe_dir: RecipeDir, report: BuildReport) -> dict[str, str]:
    return index_annotations(recipe_dir.name, [t.annotations for t in report.targets])


def index_annotations(title: str, targets: list[dict[str, str]]) -> dict[str, str]:
    """Keys every target shares (application, MPI, ...) also go on the index itself."""
    per_target = [descriptor_annotations(values) for values in targets]
    shared = dict(per_target[0]) if per_target else {}
    for other in per_target[1:]:
        shared = {k: v for k, v in shared.items() if other.get(k) == v}
    shared = {k: v for k, v in shared.items() if not k.startswith(P + "hardware.cpu.")}
    shared[OCI_TITLE] = title
    return shared
