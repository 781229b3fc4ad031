"""What an image or index says about itself, read from manifests and configs only (never layers).

For a reference (registry or ``oci:PATH[:tag]``) this reads the top manifest; for an index,
its descriptors and each child manifest (narrowed with ``platforms``); and each image's config
for its labels. Every annotation set is grouped by the key catalogue's groups, and each image
is validated on what a consumer sees: labels, overridden by manifest annotations, overridden by
the index descriptor's annotations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate.errors import HpcAnnotateError
from hpcannotate.model.annotations import Annotations, Problem
from hpcannotate.model.catalogue import GROUPS, catalogue, is_managed
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.model.values import same_value
from hpcannotate.oci.index import every_entry
from hpcannotate.oci.media import DOCKER_CONFIG, INDEX_TYPES, OCI_CONFIG
from hpcannotate.registry.client import RegistryClient
from hpcannotate.registry.edit import annotations_of
from hpcannotate.registry.platform import Platform, is_attestation, parse_platform, platform_text
from hpcannotate.registry.repository import ImageRepository, manifest_json, open_repository

OTHER_GROUPS = ("unknown", "other")  # managed keys the catalogue does not know; other tools' keys
IMAGE_CONFIGS = (OCI_CONFIG, DOCKER_CONFIG)


def group_of(key: str) -> str:
    spec = catalogue().specs.get(catalogue().canonical(key))
    if spec is not None:
        return spec.group
    return "unknown" if is_managed(catalogue().canonical(key)) else "other"


def grouped(annotations: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``{group: {key: value}}`` in the catalogue's group order, then unknown and other keys."""
    groups: dict[str, dict[str, str]] = {}
    for key in sorted(annotations):
        groups.setdefault(group_of(key), {})[key] = annotations[key]
    order = [*GROUPS, *OTHER_GROUPS]
    return {g: groups[g] for g in sorted(groups, key=order.index)}


@dataclass
class ImageView:
    """One image manifest as a consumer sees it: its descriptor (in an index), manifest and config labels."""

    digest: str
    media_type: str
    size: int
    annotations: dict[str, str]
    descriptor_annotations: dict[str, str] = field(default_factory=dict)
    platform: dict | None = None
    config_digest: str | None = None
    labels: dict[str, str] | None = None
    kind: str = "image"  # image | attestation | index (a nested index, not read further)
    problems: list[Problem] = field(default_factory=list)
    config: dict | None = field(default=None, repr=False)  # the parsed config, kept for check and edf

    @property
    def platform_text(self) -> str:
        return platform_text(self.platform)

    def effective(self) -> Annotations:
        """Labels < manifest annotations < descriptor annotations, keys in canonical spelling.

        Computed once per content (inspect validates it, match merges it again): a copy is returned.
        """
        key = tuple(tuple(sorted(values.items())) for values in
                    (self.labels or {}, self.annotations, self.descriptor_annotations))
        cached = self.__dict__.get("_effective")
        if cached is None or cached[0] != key:
            layers = [(self.labels or {}, Layer.BASE_IMAGE, "config label"),
                      (self.annotations, Layer.PROBE, "manifest"),
                      (self.descriptor_annotations, Layer.USER, "index descriptor")]
            merged = Annotations()
            for values, layer, name in layers:
                merged = merged.merge(Annotations.from_mapping(values, Provenance(layer, name)))
            cached = self.__dict__["_effective"] = (key, merged)
        return cached[1].copy()

    @property
    def compliant(self) -> bool:
        return self.kind == "image" and not self.problems

    def sources(self) -> dict[str, list[str]]:
        """Canonical key -> where it is written (descriptor, manifest, label)."""
        found: dict[str, list[str]] = {}
        for name, values in (("descriptor", self.descriptor_annotations), ("manifest", self.annotations),
                             ("label", self.labels or {})):
            for key in values:
                found.setdefault(catalogue().canonical(key), []).append(name)
        return found

    def stale_labels(self) -> dict[str, tuple[str, str]]:
        """Labels that say something else than the manifest annotation (a retrofit cannot change labels).

        Values are compared as the catalogue reads them: accepted spellings normalised, and a comma
        list as a set (``bash,sh,dash`` is ``bash,dash,sh``).
        """
        canonical = {catalogue().canonical(k): v for k, v in self.annotations.items()}
        stale = {}
        for label, value in (self.labels or {}).items():
            key = catalogue().canonical(label)
            if key not in canonical:
                continue
            spec = catalogue().specs.get(key)
            same = same_value(spec, value, canonical[key]) if spec is not None else value == canonical[key]
            if not same:
                stale[label] = (value, canonical[key])
        return stale

    def to_json(self) -> dict:
        effective = dict(self.effective())
        return {
            "platform": self.platform,
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "kind": self.kind,
            "annotations": dict(self.descriptor_annotations),
            "manifest_annotations": dict(self.annotations),
            "config_digest": self.config_digest,
            "labels": self.labels,
            "groups": grouped(effective),
            "compliant": self.compliant,
            "problems": [p.to_dict() for p in self.problems],
            "stale_labels": {k: {"label": a, "annotation": b} for k, (a, b) in self.stale_labels().items()},
        }


@dataclass
class Inspection:
    """An image or an index: its own annotations and, for an index, each child it lists."""

    reference: str
    digest: str
    media_type: str
    size: int
    annotations: dict[str, str]
    images: list[ImageView] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # of the index's own annotations (values only)
    skipped: int = 0  # children left out by --platform

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def compliant(self) -> bool:
        """Every image read is HPC Container Compliant (attestations and nested indexes aside)."""
        images = [i for i in self.images if i.kind == "image"]
        return bool(images) and all(i.compliant for i in images) and not self.problems

    def to_json(self) -> dict:
        data: dict = {
            "reference": self.reference,
            "digest": self.digest,
            "mediaType": self.media_type,
            "size": self.size,
            "annotations": dict(self.annotations),
            "groups": grouped(self.annotations),
            "compliant": self.compliant,
            "problems": [p.to_dict() for p in self.problems],
        }
        if self.is_index:
            data["manifests"] = [image.to_json() for image in self.images]
            data["skipped"] = self.skipped
        elif self.images:
            image = self.images[0].to_json()
            for key in ("platform", "config_digest", "labels", "groups", "compliant", "problems", "stale_labels"):
                data[key] = image[key]
        return data


def inspect(
    ref: str,
    *,
    platforms: Iterable[str | Platform] = (),
    client: RegistryClient | None = None,
    repository: ImageRepository | None = None,
    authfile: str | Path | None = None,
    tls_verify: bool = True,
    plain_http: bool | None = None,
    configs: str = "always",
) -> Inspection:
    """Read ``ref`` (manifests and configs only) and validate each image it names.

    ``configs="needed"`` reads an image's config only when its manifest and descriptor
    annotations lack a mandatory key (the labels may hold it): what ``match`` needs to decide,
    at one request per image less. Such an image has ``labels`` and ``config`` None (not read).
    """
    if configs not in ("always", "needed"):
        raise ValueError(f"configs: {configs!r} is not 'always' or 'needed'")
    chosen = [p if isinstance(p, Platform) else parse_platform(p) for p in platforms]
    repo = repository or open_repository(ref, client=client, authfile=authfile, tls_verify=tls_verify,
                                         plain_http=plain_http)
    try:
        return _inspect(repo, chosen, configs == "always")
    finally:
        if repository is None and client is None:
            repo.close()


def _inspect(repo: ImageRepository, platforms: list[Platform], always: bool = True) -> Inspection:
    top = repo.get(None)
    where = repo.describe()
    data = manifest_json(top, where)
    own = annotations_of(data, where)
    result = Inspection(repo.describe(), top.digest, top.media_type, len(top.raw), own)
    if not result.is_index:
        image = _image(repo, top.digest, top.media_type, len(top.raw), data, None, {}, always)
        if platforms and not any(p.matches(image.platform) for p in platforms):
            raise HpcAnnotateError(f"{where}: is a single image for {image.platform_text}, not "
                                   f"{', '.join(map(str, platforms))}")
        result.images.append(image)
        return result
    own_set = Annotations.from_mapping(own)
    result.problems = [p for p in own_set.validate() if p.key in own_set]  # values only: images hold the rest
    for desc in every_entry(data, lambda digest: manifest_json(repo.get(digest), repo.describe(digest))):
        if not isinstance(desc, dict) or not desc.get("digest"):
            raise HpcAnnotateError(f"{where}: malformed index (a descriptor without a digest)")
        if platforms and not any(p.matches(desc.get("platform")) for p in platforms):
            result.skipped += 1
            continue
        result.images.append(_child(repo, desc, always))
    if platforms and not result.images:
        raise HpcAnnotateError(f"{where}: no manifest for {', '.join(map(str, platforms))}")
    return result


def _has_mandatory(image: ImageView) -> bool:
    """The manifest and descriptor annotations hold every mandatory key: the labels cannot change a decision."""
    keys = {catalogue().canonical(k) for k in (*image.annotations, *image.descriptor_annotations)}
    return all(spec.key in keys for spec in catalogue().mandatory())


def _child(repo: ImageRepository, desc: dict, always: bool = True) -> ImageView:
    digest = desc["digest"]
    descriptor = annotations_of(desc, f"{repo.describe()} descriptor {digest}")
    media_type = desc.get("mediaType") or ""
    if media_type in INDEX_TYPES:
        return ImageView(digest, media_type, int(desc.get("size") or 0), {}, descriptor, desc.get("platform"),
                         kind="index")
    child = repo.get(digest)
    data = manifest_json(child, repo.describe(digest))
    if child.media_type in INDEX_TYPES:
        return ImageView(digest, child.media_type, len(child.raw), annotations_of(data, repo.describe(digest)),
                         descriptor, desc.get("platform"), kind="index")
    image = _image(repo, digest, child.media_type, len(child.raw), data, desc.get("platform"), descriptor, always)
    if is_attestation(desc):
        image.kind = "attestation"
        image.problems = []
    return image


def _image(repo: ImageRepository, digest: str, media_type: str, size: int, data: dict, platform: dict | None,
           descriptor: dict[str, str], always: bool = True) -> ImageView:
    where = repo.describe(digest)
    image = ImageView(digest, media_type, size, annotations_of(data, where), descriptor, platform)
    config = data.get("config") or {}
    image.config_digest = config.get("digest")
    if not always and _has_mandatory(image):
        image.problems = image.effective().validate()
        return image
    if image.config_digest and config.get("mediaType") in IMAGE_CONFIGS:
        try:
            parsed = json.loads(repo.config(image.config_digest))
        except ValueError:
            raise HpcAnnotateError(f"{where}: config {image.config_digest} is not JSON") from None
        if not isinstance(parsed, dict):
            raise HpcAnnotateError(f"{where}: config {image.config_digest} is not a JSON object")
        image.config = parsed
        labels = (parsed.get("config") or {}).get("Labels") or {}
        image.labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
        if image.platform is None:
            image.platform = {k: parsed[k] for k in ("architecture", "os", "variant") if parsed.get(k)}
    image.problems = image.effective().validate()
    return image

