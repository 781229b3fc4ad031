"""Retrofit annotations onto an image or index that already exists, without rebuilding it.

Only manifests move: the merged annotations go into a rewritten manifest that points at the
same config and layers, so nothing but a few KiB of JSON is sent and no blob is uploaded.

For an index, each changed child is PUT by digest first, then the index (its descriptors'
digest and size rewritten) under its tag last: at every moment the tag points either at the
old, complete index or at the new, complete one. Before the tag is written it is read again;
if another writer moved it, the merge is redone on their version (bounded), so their keys are
never silently dropped. After the write everything is read back and checked, and once a writer
that read the tag just before ours landed would have written too, the tag is read again: a change
another writer overwrote is merged again (bounded), or ``LostUpdateError`` (exit 1), never success.

What goes where:
- every selected child manifest (all, or those of ``--platform``) gets the change;
- the index's own annotations get it too when no ``--platform`` narrows the selection;
- a descriptor's annotations are kept in step for the keys it already carries, and get every
  set key (documents and long values excepted) with ``descriptor=True``.

A new manifest has a new digest: signatures, attestations and referrers attached to the old
digest stay with it (the result's warnings say so).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.annotations import LAYOUT_ONLY_KEYS, Annotations, Problem
from hpcannotate.model.catalogue import catalogue
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.oci.index import COMPLETE_KEY, descriptor_annotations
from hpcannotate.oci.media import DOCKER_MANIFEST, INDEX_TYPES, sha256_digest
from hpcannotate.oci.store import Manifest
from hpcannotate.registry.auth import RegistryError
from hpcannotate.registry.client import RegistryClient
from hpcannotate.registry.edit import (
    AnnotationChange,
    KeyChange,
    annotations_of,
    blobs_of,
    canonical_key,
    diff,
    docker_to_oci,
    is_docker,
    serialise,
    with_annotations,
)
from hpcannotate.registry.platform import Platform, is_attestation, parse_platform, platform_text
from hpcannotate.registry.reference import is_loopback
from hpcannotate.registry.repository import ImageRepository, RegistryRepository, manifest_json, open_repository

DEFAULT_ATTEMPTS = 3
# After a write, wait SETTLE_FACTOR times as long as the check-and-write took (within these bounds)
# before reading the tag back: long enough for a writer that checked the tag just before ours landed.
SETTLE_FACTOR = 1.5
SETTLE_MIN = 0.05
SETTLE_MAX = 5.0
CONVERT_FLAG = "--convert-to-oci"


class RetrofitError(HpcAnnotateError):
    """A retrofit stopped; the message says what state the tag was left in."""


class ConcurrentUpdateError(RetrofitError):
    """The tag kept moving under us (another writer): nothing was written under the tag."""


class LostUpdateError(RetrofitError):
    """This command's change was written, then overwritten by another writer, every time it was tried.

    Exit 1, not 2: the input was fine, and running the command again is the fix.
    """

    exit_code = 1


# -- what to change ----------------------------------------------------------------------------------


def load_from(path: str | Path) -> tuple[dict[str, str], Provenance, list[str]]:
    """Annotations from ``--from``: a YAML/JSON mapping, or a build recipe (inferred with ``infer``)."""
    from hpcannotate.model.inputs import load_annotation_mapping
    from hpcannotate.recipes.adapters import detect_format

    path = Path(path)
    if path.is_dir() or (path.is_file() and detect_format(path)):
        from hpcannotate.recipes.infer import infer

        inference = infer(path)
        return dict(inference.annotations), Provenance(Layer.RECIPE, str(inference.path)), list(inference.warnings)
    return load_annotation_mapping(path), Provenance(Layer.USER, str(path)), []


def make_change(
    set: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    from_path: str | Path | None = None,
    aliases: bool = False,
) -> tuple[AnnotationChange, list[str]]:
    """Validated, canonical keys to set and remove; ``set`` wins over ``from_path``. Also returns warnings.

    Each value is checked against the key catalogue here, before anything is read or written,
    so a typo fails fast with the key and the reason. ``aliases``: the image gets the seeds'
    spellings of its keys too (``mpi.provider`` beside ``mpi.implementation``).
    """
    values: dict[str, str] = {}
    warnings: list[str] = []
    sources: list[str] = []
    if from_path is not None:
        loaded, provenance, warnings = load_from(from_path)
        given = validated_annotations(loaded, provenance, str(from_path))
        values.update(given)
        sources.append(str(from_path))
    if set:
        values.update(validated_annotations(dict(set), Provenance(Layer.USER, "--set"), "--set"))
        sources.append("--set")
    for name in [*(loaded if from_path is not None else {}), *(set or {})]:
        notice = catalogue().foreign_notice(name) if isinstance(name, str) else None
        if notice and notice not in warnings:
            warnings.append(notice)
    removed: list[str] = []
    for name in unset:
        if not isinstance(name, str) or not name.strip():
            raise InputError("--unset: empty key")
        key = canonical_key(name)
        if key not in removed:
            removed.append(key)
    if not values and not removed and not aliases:
        raise InputError("nothing to change: give --set KEY=VALUE, --unset KEY or --from FILE")
    return AnnotationChange(values, tuple(removed), tuple(sources), aliases), warnings


def validated_annotations(mapping: dict[str, str], provenance: Provenance, source: str) -> dict[str, str]:
    """Canonical key -> value of a user's mapping; the first invalid value is an error naming ``source``."""
    try:
        annotations = Annotations.from_mapping(mapping, provenance, source=source)
    except TypeError as exc:
        raise InputError(str(exc)) from None
    problems = [p for p in annotations.validate() if p.key in annotations]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        first = problems[0]
        raise InputError(f"{source}: {first.key}: {first.message}{more}")
    return dict(annotations)


# -- results -----------------------------------------------------------------------------------------


@dataclass
class PlaceDiff:
    """The changes to one annotation set: the image, the index, a child, or a child's descriptor."""

    where: str
    changes: list[KeyChange]
    old_digest: str | None = None
    new_digest: str | None = None
    converted: bool = False

    def to_dict(self) -> dict:
        return {"where": self.where, "old_digest": self.old_digest, "new_digest": self.new_digest,
                "converted": self.converted, "changes": [c.to_dict() for c in self.changes]}


@dataclass
class RetrofitResult:
    """What ``annotate`` did (or, for a dry run, would do), and whether the read-back confirmed it."""

    reference: str
    media_type: str
    old_digest: str
    new_digest: str
    diff: list[PlaceDiff] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False
    verified: bool | None = None
    verification: list[str] = field(default_factory=list)
    attempts: int = 1
    backend: str = "native"
    converted: bool = False
    status: dict[str, list[Problem]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    stats: dict | None = None
    command: list[str] | None = None  # the crane command line (crane backend)

    @property
    def changed(self) -> bool:
        return self.old_digest != self.new_digest

    @property
    def compliant(self) -> bool:
        """Every image (each child of an index) is HPC Container Compliant after the change."""
        return not any(problems for where, problems in self.status.items() if where != "index")

    def to_json(self) -> dict:
        return {
            "reference": self.reference,
            "mediaType": self.media_type,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "changed": self.changed,
            "dry_run": self.dry_run,
            "written": self.written,
            "verified": self.verified,
            "verification": list(self.verification),
            "attempts": self.attempts,
            "backend": self.backend,
            "converted": self.converted,
            "diff": [d.to_dict() for d in self.diff],
            "compliant": self.compliant,
            "status": {where: [p.to_dict() for p in problems] for where, problems in self.status.items()},
            "warnings": list(self.warnings),
            "stats": self.stats,
            **({"command": self.command} if self.command else {}),
        }


# -- planning (reads only) -------------------------------------------------------------------------------


@dataclass
class _Write:
    """A child manifest to PUT by digest, and what its read-back must show."""

    raw: bytes
    media_type: str
    digest: str
    expected: dict[str, str]
    blobs: list[tuple[str, int]]
    config: bytes | None = None  # its rewritten config (--labels), stored before the manifest


@dataclass
class _Rewritten:
    """A manifest as read and the bytes to store in its place (the same bytes when nothing changed)."""

    old: Manifest
    raw: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @property
    def changed(self) -> bool:
        return self.raw != self.old.raw


@dataclass
class _Plan(_Rewritten):
    """The top-level manifest's rewrite, with the children to PUT first and what the user is shown."""

    is_index: bool
    children: list[_Write] = field(default_factory=list)
    diff: list[PlaceDiff] = field(default_factory=list)
    status: dict[str, list[Problem]] = field(default_factory=dict)
    introduced: list[tuple[str, Problem]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)
    blobs: list[tuple[str, int]] = field(default_factory=list)
    converted: bool = False
    config: bytes | None = None  # the single image's rewritten config (--labels)


@dataclass(frozen=True)
class _Options:
    change: AnnotationChange
    platforms: tuple[Platform, ...]
    descriptor: bool
    convert: bool
    labels: bool = False


ATTESTATION_DIGEST = "vnd.docker.reference.digest"


def _docker_error(where: str) -> InputError:
    return InputError(f"{where}: a Docker v2 schema 2 manifest cannot carry annotations; rerun with "
                      f"{CONVERT_FLAG} to rewrite it as OCI (media types only, same layers, no upload)")


def _problems(values: Mapping[str, str]) -> list[Problem]:
    annotations = Annotations.from_mapping(dict(values), Provenance(Layer.USER, "image"))
    return annotations.validate()


def _plan(repo: ImageRepository, options: _Options) -> _Plan:
    old = repo.get(None)
    where = repo.describe()
    data = manifest_json(old, where)
    if old.media_type in INDEX_TYPES:
        return _plan_index(repo, old, data, options)
    return _plan_image(repo, old, data, options)


@dataclass
class Rewrite(_Rewritten):
    """One image manifest after the change: the bytes to store (the old ones when nothing changed)."""

    old_annotations: dict[str, str]
    annotations: dict[str, str]
    changes: list[KeyChange]
    blobs: list[tuple[str, int]]
    converted: bool = False
    config: bytes | None = None  # the rewritten config blob to store first (labels changed), else None
    label_changes: list[KeyChange] = field(default_factory=list)


def rewrite_image(old: Manifest, change: AnnotationChange, *, convert: bool, where: str,
                  labels_from: ImageRepository | None = None) -> Rewrite:
    """Apply ``change`` to one image manifest; Docker v2 needs ``convert`` (else the error names the flag).

    Only ``annotations`` (and, when converting, media types) differ from the old manifest, so the
    new one points at the same config and layers. With ``labels_from`` (the repository holding the
    config: ``--labels``) the change is made to the config's labels too, for the readers that see
    only labels (``skopeo inspect``, ``docker inspect``, Apptainer, Charliecloud): one small new
    config blob, the layers and the diff_ids untouched.
    """
    data = manifest_json(old, where)
    new_data, media_type = data, old.media_type
    if is_docker(old.media_type) and convert:
        new_data, media_type = docker_to_oci(data, old.media_type, where)
    elif is_docker(old.media_type) and not change.is_empty():
        raise _docker_error(where)
    old_annotations = annotations_of(data, where)
    new_annotations = change.apply(old_annotations)
    changes = diff(old_annotations, new_annotations)
    converted = media_type != old.media_type
    config, label_changes = None, []
    if labels_from is not None:
        config, label_changes = _relabel(labels_from, data, change, where)
        if config is not None:
            new_data = {**new_data, "config": {**new_data["config"], "digest": sha256_digest(config),
                                               "size": len(config)}}
    touched = changes or converted or config is not None
    raw = serialise(with_annotations(new_data, new_annotations)) if touched else old.raw
    return Rewrite(old, raw, media_type, old_annotations, new_annotations, changes, blobs_of(new_data), converted,
                   config, label_changes)


def _relabel(repo: ImageRepository, data: Mapping, change: AnnotationChange,
             where: str) -> tuple[bytes | None, list[KeyChange]]:
    """The config with ``change`` made to its labels (None when they already say it), and the label diff."""
    config = _config(repo, data, where)
    inner = config.get("config")
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise RegistryError(f"{where}: config {data['config']['digest']}: its config field is not an object")
    old_labels = inner.get("Labels") or {}
    if not isinstance(old_labels, dict):
        raise RegistryError(f"{where}: config {data['config']['digest']}: Labels is not an object")
    label_change = AnnotationChange({k: v for k, v in change.set.items() if k not in LAYOUT_ONLY_KEYS},
                                    change.unset, change.sources, change.aliases)
    new_labels = label_change.apply(old_labels)
    changes = diff(old_labels, new_labels)
    if not changes:
        return None, []
    new_config = {**config, "config": {**inner, "Labels": new_labels}}
    return serialise(new_config), changes


def check_change(where: str, old: Mapping[str, str], new: Mapping[str, str], *,
                 image: bool = True) -> tuple[list[Problem], list[Problem], list[str]]:
    """Validation status of ``new``; the problems the change introduced (these stop a write); notes.

    Problems the image already had are reported, never blocking: a curator fixing one key must
    not be stopped by another. Removing a mandatory key is allowed with a note. An index's own
    annotations hold what its images share, so only their values are checked (``image=False``).
    """
    before = set(_problems(old))
    after = [p for p in _problems(new) if image or p.key in new]
    introduced = [p for p in after if p not in before and p.key in new]
    notes = [f"{where}: {p.key}: {p.message}" for p in after if p not in before and p.key not in new]
    return after, introduced, notes


def _check(plan: _Plan, where: str, old: Mapping[str, str], new: Mapping[str, str], image: bool = True) -> None:
    status, introduced, notes = check_change(where, old, new, image=image)
    plan.status[where] = status
    plan.introduced += [(where, p) for p in introduced]
    plan.warnings += notes


def _plan_image(repo: ImageRepository, old: Manifest, data: dict, options: _Options) -> _Plan:
    where = repo.describe()
    if options.platforms:
        config = _config(repo, data, where)
        if not any(p.matches(config) for p in options.platforms):
            have = platform_text(config)
            wanted = ", ".join(map(str, options.platforms))
            raise InputError(f"{where}: is a single image for {have}, not {wanted}")
    rewrite = rewrite_image(old, options.change, convert=options.convert, where=where,
                            labels_from=repo if options.labels else None)
    plan = _Plan(old, rewrite.raw, rewrite.media_type, False, converted=rewrite.converted,
                 expected=rewrite.annotations, blobs=rewrite.blobs, config=rewrite.config)
    plan.diff.append(PlaceDiff("image", rewrite.changes, old.digest, rewrite.digest, rewrite.converted))
    if rewrite.label_changes:
        plan.diff.append(PlaceDiff("image labels", rewrite.label_changes))
    _check(plan, "image", rewrite.old_annotations, rewrite.annotations)
    return plan


def _plan_index(repo: ImageRepository, old: Manifest, data: dict, options: _Options) -> _Plan:
    where = repo.describe()
    change = options.change
    descriptors = data.get("manifests")
    if not isinstance(descriptors, list) or not all(isinstance(d, dict) and d.get("digest") for d in descriptors):
        raise RegistryError(f"{where}: malformed index (its manifests are not a list of descriptors)")
    selected = [
        n for n, d in enumerate(descriptors)
        if not is_attestation(d) and (not options.platforms or any(p.matches(d.get("platform"))
                                                                   for p in options.platforms))
    ]
    if options.platforms and not selected:
        have = ", ".join(sorted({platform_text(d.get("platform")) for d in descriptors if not is_attestation(d)}))
        raise InputError(f"{where}: no manifest for {', '.join(map(str, options.platforms))} (it has: {have})")
    index_data, media_type = data, old.media_type
    if is_docker(old.media_type):
        if not options.convert:
            raise _docker_error(where)
        index_data, media_type = docker_to_oci(data, old.media_type, where)
    plan = _Plan(old, old.raw, media_type, True, converted=media_type != old.media_type)
    labels = _labels(descriptors)
    new_descriptors = []
    for n, desc in enumerate(descriptors):
        new_descriptors.append(_plan_child(repo, plan, desc, labels[n], n in selected, options))
    new_descriptors = _follow_attestations(descriptors, new_descriptors)
    old_annotations = annotations_of(data, where)
    new_annotations = change.apply(old_annotations) if not options.platforms else old_annotations
    if options.platforms:
        stale = sorted(k for k in old_annotations if canonical_key(k) in change.named)
        for key in stale:
            plan.warnings.append(f"the index's own {key} is unchanged (--platform narrows the change to "
                                 "some images)")
    if new_annotations.get(COMPLETE_KEY) and new_descriptors != descriptors:
        # the complete index still lists the old images: naming it would show their old annotations
        new_annotations = {k: v for k, v in new_annotations.items() if k != COMPLETE_KEY}
        plan.warnings.append(f"the index named {old_annotations[COMPLETE_KEY]} as its complete index (targets that "
                             "share a platform); that one is unchanged and no longer named: annotate it too (the "
                             "build's TAG-all) to keep the left-out targets in step")
    index_changes = diff(old_annotations, new_annotations)
    plan.diff.insert(0, PlaceDiff("index", index_changes, old.digest, None, plan.converted))
    plan.expected = new_annotations
    _check(plan, "index", old_annotations, new_annotations, image=False)
    descriptors_changed = new_descriptors != descriptors
    if index_changes or descriptors_changed or plan.converted:
        new_index = with_annotations({**index_data, "manifests": new_descriptors}, new_annotations)
        plan.raw = serialise(new_index)
    plan.diff[0].new_digest = plan.digest
    return plan


def _follow_attestations(old: Sequence[dict], new: list[dict]) -> list[dict]:
    """buildx's attestation entries name the image they describe by digest: point them at its new digest."""
    moved = {o["digest"]: n["digest"] for o, n in zip(old, new, strict=True) if o["digest"] != n["digest"]}
    result = []
    for desc in new:
        annotations = desc.get("annotations") or {}
        subject = annotations.get(ATTESTATION_DIGEST)
        if is_attestation(desc) and subject in moved:
            desc = with_annotations(desc, {**annotations, ATTESTATION_DIGEST: moved[subject]})
        result.append(desc)
    return result


def _labels(descriptors: Sequence[dict]) -> list[str]:
    """How the diff names each child: its platform, with a short digest when platforms repeat."""
    texts = [platform_text(d.get("platform")) for d in descriptors]
    return [t if texts.count(t) == 1 else f"{t} {d['digest'][7:19]}" for t, d in zip(texts, descriptors, strict=True)]


def _plan_child(repo: ImageRepository, plan: _Plan, desc: dict, label: str, touch: bool,
                options: _Options) -> dict:
    """The new descriptor for one child, planning the child's rewrite when it changes."""
    convert_child = options.convert and desc.get("mediaType") == DOCKER_MANIFEST
    if desc.get("mediaType") in INDEX_TYPES:
        if touch:
            raise InputError(f"{repo.describe()}: {label} is itself an index; annotate it by its digest "
                             f"({repo.describe(desc['digest'])})")
        return desc
    if not touch and not convert_child:
        return desc
    child = repo.get(desc["digest"])
    where = f"{repo.describe(desc['digest'])} ({label})"
    if child.media_type in INDEX_TYPES:
        raise InputError(f"{where}: is itself an index; annotate it by its digest")
    change = options.change if touch else AnnotationChange()
    rewrite = rewrite_image(child, change, convert=options.convert, where=where,
                            labels_from=repo if options.labels and touch else None)
    new_desc = dict(desc)
    if rewrite.changed:
        plan.children.append(_Write(rewrite.raw, rewrite.media_type, rewrite.digest, rewrite.annotations,
                                    rewrite.blobs, rewrite.config))
        new_desc.update(mediaType=rewrite.media_type, digest=rewrite.digest, size=len(rewrite.raw))
    plan.diff.append(PlaceDiff(label, rewrite.changes, child.digest, new_desc["digest"], rewrite.converted))
    if rewrite.label_changes:
        plan.diff.append(PlaceDiff(f"{label} labels", rewrite.label_changes))
    if touch:
        _check(plan, label, rewrite.old_annotations, rewrite.annotations)
        old_desc_annotations = annotations_of(desc, f"{where} descriptor")
        sub = options.change.restricted(old_desc_annotations)  # keys the descriptor carries stay in step
        if options.descriptor:
            wanted = descriptor_annotations(options.change.set)  # no documents or long values in an index
            sub = AnnotationChange({**wanted, **sub.set}, options.change.unset)
        new_desc_annotations = sub.apply(old_desc_annotations)
        desc_changes = diff(old_desc_annotations, new_desc_annotations)
        if desc_changes:
            new_desc = with_annotations(new_desc, new_desc_annotations)
            plan.diff.append(PlaceDiff(f"{label} descriptor", desc_changes))
    return new_desc



def _config(repo: ImageRepository, data: Mapping, where: str) -> dict:
    digest = (data.get("config") or {}).get("digest")
    if not digest:
        raise RegistryError(f"{where}: the manifest names no config")
    try:
        config = json.loads(repo.config(digest))
    except ValueError:
        raise RegistryError(f"{where}: config {digest} is not JSON") from None
    return config if isinstance(config, dict) else {}


# -- writing -----------------------------------------------------------------------------------------


def _write(repo: ImageRepository, plan: _Plan, warnings: list[str]) -> bool:
    """PUT children by digest, re-check the tag, PUT the top under its name; False if the tag moved.

    A rewritten config (``--labels``) is stored before the manifest that names it."""
    for config in [c.config for c in plan.children if c.config is not None] + [plan.config] * bool(plan.config):
        try:
            repo.put_config(config)
        except HpcAnnotateError as exc:
            raise RetrofitError(f"{repo.describe()}: storing a relabelled config failed ({exc}); "
                                f"the tag is unchanged at {plan.old.digest}") from None
    for child in plan.children:
        try:
            repo.put(child.raw, child.media_type)
        except HpcAnnotateError as exc:
            raise RetrofitError(f"{repo.describe()}: writing child {child.digest} failed ({exc}); "
                                f"the tag is unchanged at {plan.old.digest}") from None
    tag = repo.reference.tag
    if (tag is not None or repo.reference.is_layout) and repo.resolve(tag) != plan.old.digest:
        return False
    try:
        repo.put_named(plan.raw, plan.media_type)
    except HpcAnnotateError as exc:
        now = _where_now(repo)
        if now == plan.digest:
            warnings.append(f"the registry reported an error ({exc}) but stored the new manifest")
            return True
        state = f"the tag is unchanged at {now}" if now == plan.old.digest else (
            f"the tag now points at {now}" if now else "the tag's state could not be read")
        raise RetrofitError(f"{repo.describe()}: writing the {'index' if plan.is_index else 'manifest'} "
                            f"failed ({exc}); {state}") from None
    return True


def _where_now(repo: ImageRepository) -> str | None:
    try:
        return repo.resolve(repo.reference.tag)
    except HpcAnnotateError:
        return None


def _settled_tag(repo: ImageRepository, took: float, written_at: float) -> str | None:
    """Where the tag points once a writer that read it just before our write would have written too.

    The distribution API has no conditional PUT: another command that checked the tag before ours
    landed may still overwrite it, one PUT later. Reading the tag again a few times as long after our
    write as our own check-and-write ``took`` catches that (``_annotate_native`` then merges again).
    The read-back of what was written counts towards the wait.
    """
    settle = min(SETTLE_MAX, max(SETTLE_MIN, SETTLE_FACTOR * took))
    time.sleep(max(0.0, written_at + settle - time.monotonic()))
    return repo.resolve(repo.reference.tag)


def _verify(repo: ImageRepository, plan: _Plan, new_digest: str, exact: bool = True,
            moved_ok: bool = False) -> list[str]:
    """Read everything back: the tag, the top manifest, every child of the index, annotations and blobs.

    ``exact``: the stored bytes must be the ones written (native); crane writes its own bytes and
    config, so then only the annotations and the layers are compared. ``moved_ok``: the tag was moved
    by a later writer whose manifest keeps this change (checked by the caller).
    """
    problems: list[str] = []
    try:
        if (repo.reference.tag is not None or repo.reference.is_layout) and not moved_ok:
            now = repo.resolve(repo.reference.tag)
            if now != new_digest:
                problems.append(f"the tag points at {now}, not at the {new_digest} written "
                                "(another writer wrote after this one)")
        top = repo.get(new_digest)
        data = manifest_json(top, repo.describe(new_digest))
        if exact and top.raw != plan.raw:
            problems.append(f"{new_digest}: the stored manifest differs from the one written")
        blobs = None if plan.is_index else plan.blobs if exact else plan.blobs[1:]
        problems += read_back_problems(repo.describe(new_digest), data, plan.expected, blobs, exact)
        if plan.is_index:
            read_back = {child.digest for child in plan.children}  # fetched below: a GET proves them there
            for desc in data.get("manifests") or []:
                if desc["digest"] not in read_back and not repo.exists(desc["digest"]):
                    problems.append(f"the index points at {desc['digest']}, which is missing")
            for child in plan.children:
                got = manifest_json(repo.get(child.digest), repo.describe(child.digest))
                problems += read_back_problems(repo.describe(child.digest), got, child.expected, child.blobs)
    except HpcAnnotateError as exc:
        problems.append(f"could not read the result back: {exc}")
    return problems


def read_back_problems(where: str, data: Mapping, expected: Mapping[str, str], blobs: list | None,
                       exact: bool = True) -> list[str]:
    """How a manifest read back differs from what was written: annotations (values, and keys that
    should be gone) and, unless ``blobs`` is None, its config and layers."""
    got = annotations_of(data, where)
    problems = [f"{where}: annotation {k} is {got.get(k)!r}, expected {v!r}" for k, v in expected.items()
                if got.get(k) != v]
    problems += [f"{where}: annotation {k} should be gone" for k in got if k not in expected]
    found = blobs_of(data) if exact else blobs_of(data)[1:]
    if blobs is not None and found != blobs:
        problems.append(f"{where}: {'config or layers' if exact else 'layers'} changed")
    return problems


# -- the entry point ------------------------------------------------------------------------------------


def annotate(
    ref: str,
    *,
    set: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    from_path: str | Path | None = None,
    change: AnnotationChange | None = None,
    platforms: Iterable[str | Platform] = (),
    descriptor: bool = False,
    convert_to_oci: bool = False,
    labels: bool = False,
    dry_run: bool = False,
    backend: str = "native",
    client: RegistryClient | None = None,
    repository: ImageRepository | None = None,
    authfile: str | Path | None = None,
    tls_verify: bool = True,
    plain_http: bool | None = None,
    max_attempts: int = DEFAULT_ATTEMPTS,
    verify: bool = True,
) -> RetrofitResult:
    """Merge annotations into the image or index ``ref`` names (a registry reference or ``oci:PATH[:tag]``).

    ``set``/``unset``/``from_path`` (or a ready ``change``) say what; ``platforms`` narrows an
    index to some children; ``descriptor`` also writes the keys on the index's descriptors;
    ``labels`` makes the change to each image's config labels too (one small config blob each).
    Returns old and new digests, the diff, the validation status and the read-back verdict.
    Raises ``InputError`` for bad input or an invalid value (nothing written), ``RetrofitError``
    when a write fails (the message says where the tag was left).
    """
    warnings: list[str] = []
    if change is None:
        change, warnings = make_change(set, unset, from_path)
    if backend not in ("native", "crane"):
        raise InputError(f"--backend {backend}: unknown backend (native or crane)")
    chosen = tuple(p if isinstance(p, Platform) else parse_platform(p) for p in platforms)
    if labels and backend == "crane":
        raise InputError("--labels: the crane backend rewrites configs its own way; use --backend native")
    options = _Options(change, chosen, descriptor, convert_to_oci, labels)
    repo = repository or open_repository(ref, client=client, authfile=authfile, tls_verify=tls_verify,
                                         plain_http=plain_http)
    before = repo.stats.as_dict() if repo.stats else None
    try:
        _check_pinned(repo)
        if backend == "crane":
            result = _annotate_crane(repo, options, dry_run, authfile, tls_verify, plain_http)
        else:
            result = _annotate_native(repo, options, dry_run, max_attempts, verify)
    finally:
        if repository is None and client is None:
            repo.close()
    result.warnings[:0] = warnings
    if before is not None and repo.stats is not None:
        after = repo.stats.as_dict()
        result.stats = {k: after[k] - before[k] for k in ("requests", "bytes_sent", "bytes_received", "retries")}
    return result


def _check_pinned(repo: ImageRepository) -> None:
    ref = repo.reference
    if ref.tag and ref.digest:
        now = repo.resolve(ref.tag)
        if now != ref.digest:
            raise InputError(f"{ref}: the tag points at {now}, not at the digest named; nothing written")


def _result(repo: ImageRepository, plan: _Plan, dry_run: bool) -> RetrofitResult:
    return RetrofitResult(
        reference=repo.describe(), media_type=plan.media_type, old_digest=plan.old.digest,
        new_digest=plan.digest, diff=[d for d in plan.diff if d.changes or d.converted], dry_run=dry_run,
        converted=plan.converted, status=plan.status, warnings=list(plan.warnings),
    )


def _raise_introduced(repo: ImageRepository, plan: _Plan) -> None:
    if plan.introduced:
        where, problem = plan.introduced[0]
        more = f" (and {len(plan.introduced) - 1} more)" if len(plan.introduced) > 1 else ""
        raise InputError(f"{repo.describe()}: {where}: {problem.key}: {problem.message}{more}; nothing written")


def _annotate_native(repo: ImageRepository, options: _Options, dry_run: bool, max_attempts: int,
                     verify: bool) -> RetrofitResult:
    lost: list[str] = []  # where the tag was each time another writer overwrote this command's change
    for attempt in range(1, max(1, max_attempts) + 1):
        plan = _plan(repo, options)
        _raise_introduced(repo, plan)
        result = _result(repo, plan, dry_run)
        result.attempts = attempt
        if dry_run or not plan.changed:
            return result
        started = time.monotonic()
        if not _write(repo, plan, result.warnings):
            continue  # the tag moved: merge again onto what the other writer left
        result.written = True
        written_at = time.monotonic()
        if verify:  # what was written, by digest; the tag is judged below, by what it holds
            result.verification = _verify(repo, plan, plan.digest, moved_ok=True)
            result.verified = not result.verification
        now: str | None = plan.digest  # no name (a digest reference): nothing another writer can move
        if repo.reference.tag is not None or repo.reference.is_layout:
            try:
                now = _settled_tag(repo, written_at - started, written_at)
            except HpcAnnotateError as exc:  # not known to be kept: never reported as verified
                now, problem = plan.digest, f"could not read the tag back: {exc}"
            else:
                problem = "the tag is gone after the write (another writer deleted it)" if now is None else ""
            if problem:
                result.verification.append(problem)
                result.verified = False
        moved = now is not None and now != plan.digest
        if moved and _plan(repo, options).changed:
            lost.append(str(now))  # a writer that read the tag before ours landed wrote over it: merge again
            time.sleep(random.uniform(0, SETTLE_MIN))  # noqa: S311 - jitter, so two writers do not retry in step
            continue
        result.warnings.append(_signature_warning(plan.old.digest, plan.digest))
        if moved:
            result.warnings.append(f"another writer moved the tag to {now} after this command wrote; "
                                   "what it holds keeps this command's change")
        return result
    if lost:
        raise LostUpdateError(
            f"{repo.describe()}: another writer overwrote this command's change {len(lost)} time(s) (the tag is "
            f"at {lost[-1]}, without it); nothing else is wrong: run the command again"
        )
    raise ConcurrentUpdateError(
        f"{repo.describe()}: the tag moved {max_attempts} times while annotating (another writer is busy); "
        "nothing was written under the tag; try again"
    )


def _signature_warning(old: str, new: str) -> str:
    return (f"the manifest has a new digest ({old} -> {new}): signatures, attestations and referrers attached "
            f"to {old} stay with it; sign {new} again if you rely on them")


def _annotate_crane(repo: ImageRepository, options: _Options, dry_run: bool, authfile, tls_verify: bool,
                    plain_http: bool | None) -> RetrofitResult:
    from hpcannotate.registry import crane

    if not isinstance(repo, RegistryRepository):
        raise InputError(f"{repo.describe()}: --backend crane works on registry references, not OCI layouts; "
                         "use --backend native")
    plan = _plan(repo, options)
    if plan.is_index:
        raise InputError(f"{repo.describe()}: is an index; crane mutate cannot annotate an index (and would "
                         "replace it with one platform); use --backend native")
    if plan.converted:
        raise InputError(f"{repo.describe()}: crane cannot rewrite Docker v2 as OCI; use --backend native "
                         f"{CONVERT_FLAG}")
    _raise_introduced(repo, plan)
    changes = plan.diff[0].changes if plan.diff else []
    removed = [c.key for c in changes if c.new is None]
    if removed:
        raise InputError(f"{repo.describe()}: crane cannot remove {removed[0]}; use --backend native")
    result = _result(repo, plan, dry_run)
    result.backend = "crane"
    if not changes:
        return result
    reference = repo.reference
    insecure = not tls_verify or bool(plain_http and not is_loopback(reference.registry))
    argv = crane.mutate_argv(str(reference), {c.key: c.new for c in changes if c.new is not None},
                             insecure=insecure, executable=crane.available() or "crane")
    result.command = argv
    if dry_run:
        return result
    new_digest = crane.run_mutate(argv, authfile=authfile)
    result.written = True
    result.new_digest = new_digest
    result.warnings.append(_signature_warning(plan.old.digest, new_digest))
    result.warnings.append("crane re-serialises the image config: the config digest may change")
    result.verification = _verify(repo, plan, new_digest, exact=False)
    result.verified = not result.verification
    return result
