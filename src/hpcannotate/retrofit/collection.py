"""MetaHub collections: a curated YAML of images per application and tag, made into annotated indexes.

The format is MetaHub community edition's (seeds 001/002)::

    manifests:
      - name: gromacs/mpich
        tag: "2021.5"
        annotations: {...}            # optional: on the index itself
        manifests:
          - image: quay.io/cqnib/gromacs/gcc-7.3.1/2021.5/mpich:x86_64_v4
            platform: {os: linux, arch: amd64, features: [cpu:zen3]}   # or "linux/amd64"; optional
            annotations:
              org.supercontainers.mpi.implementation: mpich

``apply`` writes, for each application, an OCI index ``name:tag`` whose descriptors carry the
platform, the features (as the ``org.supercontainers.platform.features`` annotation, since
``platform.features`` is reserved by OCI) and the image's annotations. The listed images are
not changed: curators rarely own them ("without access to the images, we might just collect
them"). Each image's manifest, with the curated annotations merged in, is written by digest
into the index's repository; its blobs are mounted there (same registry, no bytes move) or
copied when they live elsewhere. ``export`` writes the YAML back from an index.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hpcannotate import console
from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.annotations import Problem
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX, is_managed
from hpcannotate.model.inputs import check_key, load_structured
from hpcannotate.model.keynames import OCI_TITLE, PLATFORM_FEATURES
from hpcannotate.model.provenance import Layer, Provenance
from hpcannotate.oci.index import COMPLETE_TAG, build_index, descriptor_annotations, every_entry
from hpcannotate.oci.media import INDEX_TYPES, OCI_INDEX, sha256_digest
from hpcannotate.oci.store import Manifest
from hpcannotate.registry.client import RegistryClient
from hpcannotate.registry.compress import Compressed, compress_layers
from hpcannotate.registry.edit import AnnotationChange, KeyChange, blobs_of, serialise
from hpcannotate.registry.platform import Platform, choose_image, parse_platform
from hpcannotate.registry.reference import Reference, parse_reference
from hpcannotate.registry.repository import ImageRepository, LayoutRepository, manifest_json, open_repository
from hpcannotate.registry.transfer import TransferReport, ensure_blobs, put_file
from hpcannotate.retrofit.annotate import check_change, read_back_problems, rewrite_image, validated_annotations

FEATURES_KEY = PLATFORM_FEATURES
TITLE_KEY = OCI_TITLE
_FEATURE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+=-]*$")
TOP_KEYS = ("manifests",)
APP_KEYS = ("name", "tag", "annotations", "manifests")
IMAGE_KEYS = ("image", "platform", "annotations")
PLATFORM_KEYS = ("os", "arch", "architecture", "variant", "features")


# -- the file -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectionImage:
    image: str
    platform: Platform | None
    features: tuple[str, ...]
    annotations: dict[str, str]
    where: str


@dataclass(frozen=True)
class Application:
    name: str
    tag: str
    images: tuple[CollectionImage, ...]
    annotations: dict[str, str]
    where: str


@dataclass(frozen=True)
class Collection:
    source: str
    applications: tuple[Application, ...]


def load_collection(path: str | Path) -> Collection:
    """Read and validate a collection YAML; every error names the file and the place in it."""
    return parse_collection(load_structured(path, "MetaHub collection"), str(path))


def parse_collection(data: object, source: str) -> Collection:
    top = _mapping(data, source, TOP_KEYS, required=("manifests",))
    apps = _list(top["manifests"], f"{source}: manifests")
    applications = [_application(item, source, f"manifests[{n}]") for n, item in enumerate(apps)]
    seen: dict[tuple[str, str], str] = {}
    for app in applications:
        if (app.name, app.tag) in seen:
            raise InputError(f"{app.where}: {app.name}:{app.tag} is listed twice (also at {seen[(app.name, app.tag)]})")
        seen[(app.name, app.tag)] = app.where
    return Collection(source, tuple(applications))


def _application(item: object, source: str, path: str) -> Application:
    where = f"{source}: {path}"
    app = _mapping(item, where, APP_KEYS, required=("name", "tag", "manifests"))
    name = _text(app["name"], f"{where}.name")
    tag = _text(app["tag"], f"{where}.tag")
    try:
        parse_reference(f"localhost/{name}:{tag}")
    except InputError:
        raise InputError(f"{where}: {name}:{tag} is not a repository name and tag (lowercase letters, digits, "
                         "'.', '_', '-', '/'; tag: letters, digits, '.', '_', '-')") from None
    annotations = _annotations(app.get("annotations"), source, f"{path}.annotations")
    entries = _list(app["manifests"], f"{where}.manifests")
    images = tuple(_image(entry, source, f"{path}.manifests[{n}]") for n, entry in enumerate(entries))
    listed: dict[tuple, str] = {}
    for image in images:
        key = (image.image, str(image.platform))
        if key in listed:
            raise InputError(f"{image.where}: {image.image} is listed twice (also at {listed[key]})")
        listed[key] = image.where
    return Application(name, tag, images, annotations, where)


def _image(item: object, source: str, path: str) -> CollectionImage:
    where = f"{source}: {path}"
    entry = _mapping(item, where, IMAGE_KEYS, required=("image",))
    image = _text(entry["image"], f"{where}.image")
    try:
        parse_reference(image)
    except InputError as exc:
        raise InputError(f"{where}.image: {exc}") from None
    platform, features = _platform(entry.get("platform"), f"{where}.platform")
    annotations = _annotations(entry.get("annotations"), source, f"{path}.annotations")
    return CollectionImage(image, platform, features, annotations, where)


def _platform(value: object, where: str) -> tuple[Platform | None, tuple[str, ...]]:
    """A platform mapping (``os``, ``arch``, ``variant``, ``features``) or an ``os/arch[/variant]`` string."""
    if value is None:
        return None, ()
    if isinstance(value, str):
        return parse_platform(value, where), ()
    data = _mapping(value, where, PLATFORM_KEYS)
    if "arch" in data and "architecture" in data:
        raise InputError(f"{where}: give arch or architecture, not both")
    features = _features(data.get("features"), f"{where}.features")
    arch = data.get("arch", data.get("architecture"))
    if arch is None:
        if "os" in data or "variant" in data:
            raise InputError(f"{where}: os and variant need arch too")
        return None, features  # the platform comes from the image config
    os_name = _text(data.get("os", "linux"), f"{where}.os")
    text = "/".join([os_name, _text(arch, f"{where}.arch")] +
                    ([_text(data["variant"], f"{where}.variant")] if "variant" in data else []))
    return parse_platform(text, where), features


def _features(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [s.strip() for s in value.split(",")] if isinstance(value, str) else _list(value, where, empty_ok=True)
    features = []
    for n, item in enumerate(items):
        text = _text(item, f"{where}[{n}]")
        if not _FEATURE.match(text):
            raise InputError(f"{where}[{n}]: {text!r} is not a feature (such as cpu:zen3 or arch:cascadeLake)")
        if text not in features:
            features.append(text)
    return tuple(features)


def _annotations(value: object, source: str, path: str) -> dict[str, str]:
    where = f"{source}: {path}"
    if value is None:
        return {}
    data = _mapping(value, where)
    for key, item in data.items():
        check_key(key, where)
        _text(item, f"{where}.{key}")
    return validated_annotations(dict(data), Provenance(Layer.USER, source), where)


def _mapping(value: object, where: str, allowed: tuple[str, ...] | None = None,
             required: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping, got {_kind(value)}")
    if allowed is not None:
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise InputError(f"{where}: unknown key {unknown[0]!r} (expected: {', '.join(allowed)})")
    for key in required:
        if key not in value:
            raise InputError(f"{where}: {key} is missing")
    return value


def _list(value: object, where: str, empty_ok: bool = False) -> list:
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a list, got {_kind(value)}")
    if not value and not empty_ok:
        raise InputError(f"{where}: is empty")
    return value


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: expected text, got {_kind(value)}")
    return value.strip()


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "empty text" if not value.strip() else "text"
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), type(value).__name__)


# -- apply --------------------------------------------------------------------------------------------


@dataclass
class AppliedImage:
    """One listed image as it went into the index."""

    image: str
    platform: str
    features: tuple[str, ...]
    source_digest: str
    digest: str
    media_type: str
    changes: list[KeyChange]
    descriptor: dict[str, str]
    converted: bool = False
    status: list[Problem] = field(default_factory=list)
    transfer: TransferReport = field(default_factory=TransferReport)

    def to_json(self) -> dict:
        return {"image": self.image, "platform": self.platform, "features": list(self.features),
                "source_digest": self.source_digest, "digest": self.digest, "mediaType": self.media_type,
                "converted": self.converted, "changes": [c.to_dict() for c in self.changes],
                "annotations": dict(self.descriptor), "compliant": not self.status,
                "problems": [p.to_dict() for p in self.status], "transfer": self.transfer.to_dict()}


@dataclass
class AppliedCollection:
    """The index of one application: where it went, what it holds, and whether the read-back agreed."""

    name: str
    tag: str
    reference: str
    digest: str
    images: list[AppliedImage]
    annotations: dict[str, str]
    previous: str | None = None
    dry_run: bool = False
    written: bool = False
    verified: bool | None = None
    verification: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compression: dict = field(default_factory=dict)  # layers compressed for the push: how, bytes before/after
    complete: str | None = None  # the index listing every image, when the pulled one leaves some out

    def to_json(self) -> dict:
        return {"name": self.name, "tag": self.tag, "reference": self.reference, "digest": self.digest,
                "complete": self.complete,
                "previous": self.previous, "dry_run": self.dry_run, "written": self.written,
                "verified": self.verified, "verification": list(self.verification),
                "annotations": dict(self.annotations), "manifests": [i.to_json() for i in self.images],
                "warnings": list(self.warnings), "compression": dict(self.compression)}


@dataclass
class _Prepared:
    applied: AppliedImage
    source: ImageRepository
    manifest: Manifest
    blobs: list[tuple[str, int]]
    expected: dict[str, str]
    config: bytes | None = None  # the relabelled config (--labels): stored in the target, not copied
    files: dict[str, Path] = field(default_factory=dict)  # compressed layers: stored from these files


def apply_collection(
    collection: Collection | str | Path,
    *,
    push: str | None = None,
    dry_run: bool = False,
    convert_to_oci: bool = False,
    aliases: bool = False,
    labels: bool = False,
    compression: str | None = None,
    client: RegistryClient | None = None,
    authfile: str | Path | None = None,
    tls_verify: bool = True,
    plain_http: bool | None = None,
) -> list[AppliedCollection]:
    """Build (or, with ``dry_run``, plan) the annotated index of every application in the collection.

    ``push``: where the indexes go: a registry and namespace (``registry.example.org/metahub``:
    each index at ``PREFIX/NAME:TAG``), a full ``REF:tag`` for a one-application file, or
    ``oci:DIR`` (a layout per application in ``DIR/NAME``, tagged ``TAG``). Without it, the
    registry the images share, at ``REGISTRY/NAME:TAG``. ``aliases``: also write the seeds' spellings;
    ``labels``: make the images' changes to their config labels too (one small config blob each).
    ``compression`` (gzip, zstd, none): how the uncompressed layers of images read from an OCI layout
    are pushed; default gzip to a registry, none (as the builder wrote them) to a layout.
    """
    if not isinstance(collection, Collection):
        collection = load_collection(collection)
    own_client = client is None
    client = client or RegistryClient(authfile=authfile, insecure=not tls_verify, plain_http=plain_http)
    store = Compressed.create()
    try:
        # Every image of every application is read and checked before anything is written: a bad
        # image in the last application must not leave the first ones pushed.
        how = ApplyOptions(convert=convert_to_oci, aliases=aliases, labels=labels, compression=compression)
        plans = []
        for app in collection.applications:
            target = _target(push, app, len(collection.applications))
            console.progress(f"[{app.name}] reading {len(app.images)} image(s) for {target}")
            plans.append(_plan(app, target, dry_run, how, client, store))
        if not dry_run:
            for plan, app in zip(plans, collection.applications, strict=True):
                console.progress(f"[{app.name}] writing the annotated index {plan.target_ref}")
                _write(plan, client)
        return [plan.result for plan in plans]
    finally:
        store.cleanup()
        if own_client:
            client.close()


def _target(push: str | None, app: Application, count: int) -> Reference:
    if push is None:
        registries = {parse_reference(i.image).registry for i in app.images}
        if len(registries) != 1 or "" in registries:
            raise InputError(f"{app.where}: its images are not all in one registry; say where the index goes "
                             "with --push REF")
        return parse_reference(f"{registries.pop()}/{app.name}:{app.tag}")
    if push.startswith("oci:"):
        base = push[len("oci:"):].rstrip("/")
        if not base:
            raise InputError(f"--push {push}: no directory after 'oci:'")
        return parse_reference(f"oci:{Path(base) / app.name}:{app.tag}")
    last = push.rstrip("/").rsplit("/", 1)[-1]
    if "/" in push and (":" in last or "@" in last):
        if count != 1:
            raise InputError(f"--push {push}: a tagged reference needs a file with one application, this one "
                             f"has {count}; give a registry/namespace prefix instead")
        return parse_reference(push)
    return parse_reference(f"{push.rstrip('/')}/{app.name}:{app.tag}")


@dataclass(frozen=True)
class ApplyOptions:
    """How the images are rewritten: Docker v2 converted to OCI, the seeds' key spellings added, the
    config labels changed too."""

    convert: bool = False
    aliases: bool = False
    labels: bool = False
    compression: str | None = None  # None: gzip to a registry, none to a layout

    def compression_for(self, target: Reference) -> str:
        return self.compression or ("none" if target.is_layout else "gzip")


@dataclass
class _AppPlan:
    """One application's index, ready to write: what was read, and the result to fill in."""

    target_ref: Reference
    tag: str
    raw: bytes
    prepared: list[_Prepared]
    result: AppliedCollection
    complete: bytes | None = None  # every image, when the pulled index leaves some out (see oci.index)


def _plan(app: Application, target_ref: Reference, dry_run: bool, how: ApplyOptions,
          client: RegistryClient, store: Compressed) -> _AppPlan:
    compression = how.compression_for(target_ref)
    before, after = store.bytes_before, store.bytes_after
    prepared = [_prepare(image, client, how, store, compression) for image in app.images]
    entries = [(p.manifest, p.applied.platform, p.applied.descriptor) for p in prepared]
    index_annotations = _index_annotations(app, [p.applied.descriptor for p in prepared], how.aliases)
    built = build_index(entries, index_annotations)
    raw = built.raw
    tag = target_ref.tag or app.tag
    result = AppliedCollection(app.name, tag, str(target_ref), sha256_digest(raw),
                               [p.applied for p in prepared], index_annotations, dry_run=dry_run)
    layers = len({d for p in prepared for d in p.files})
    result.compression = {"compression": compression, "layers": layers,
                          "bytes_before": store.bytes_before - before, "bytes_after": store.bytes_after - after}
    for p in prepared:
        if p.applied.converted:
            result.warnings.append(f"{p.applied.image}: written as OCI (it was Docker v2 schema 2)")
    if built.complete is not None:
        result.complete = sha256_digest(built.complete)
        verb = "shares" if len(built.left_out) == 1 else "share"
        result.warnings.append(f"{', '.join(built.left_out)} {verb} a platform with a more generic image: clients "
                               f"pulling {tag} get that one; {tag}-{COMPLETE_TAG} lists every image (inspect and "
                               "match read it)")
    return _AppPlan(target_ref, tag, raw, prepared, result, built.complete)


def _write(plan: _AppPlan, client: RegistryClient) -> None:
    """Blobs and image manifests first (by digest), the index under its tag last, then read it all back."""
    result, prepared, raw, tag = plan.result, plan.prepared, plan.raw, plan.tag
    target = open_repository(plan.target_ref, client=client, create=True)
    result.previous = _resolve(target)
    for p in prepared:
        config = p.config and sha256_digest(p.config)
        p.applied.transfer = ensure_blobs(p.source, target, [b for b in p.blobs
                                                             if b[0] != config and b[0] not in p.files])
        for digest, path in p.files.items():
            sent = put_file(target, path, digest)
            p.applied.transfer.bytes_copied += sent
            p.applied.transfer.copied += bool(sent)
            p.applied.transfer.present += not sent
        if p.config is not None:
            target.put_config(p.config)
        target.put(p.manifest.raw, p.manifest.media_type)  # by digest, before the index names it
    if plan.complete is not None:  # before the index that names it
        target.put(plan.complete, OCI_INDEX, f"{tag}-{COMPLETE_TAG}")
    target.put(raw, OCI_INDEX, tag)
    result.written = True
    result.verification = _verify(target, tag, raw, prepared)
    result.verified = not result.verification


def _resolve(repo: ImageRepository) -> str | None:
    try:
        return repo.resolve(repo.reference.tag)
    except (HpcAnnotateError, OSError):
        return None


def _prepare(image: CollectionImage, client: RegistryClient, how: ApplyOptions, store: Compressed,
             compression: str) -> _Prepared:
    source = open_repository(image.image, client=client)
    top = source.get(None)
    where = f"{image.where}: {image.image}"
    platform = image.platform
    if top.media_type in INDEX_TYPES:
        if platform is None:
            raise InputError(f"{where}: is an index; give the platform of the image to take from it")
        desc = choose_image(manifest_json(top, where), platform, where)
        manifest = source.get(desc["digest"])
        if manifest.media_type in INDEX_TYPES:
            raise InputError(f"{where}: the {platform} entry is itself an index")
    else:
        manifest = top
    data = manifest_json(manifest, where)
    config = _config(source, data, where)
    found = {k: config[k] for k in ("architecture", "os", "variant") if config.get(k)}
    if platform is None:
        if not found.get("os") or not found.get("architecture"):
            raise InputError(f"{where}: its config names no os/architecture; give platform in the collection")
        platform = Platform(found["os"], found["architecture"], found.get("variant"))
    change = AnnotationChange(dict(image.annotations), sources=(image.where,), aliases=how.aliases)
    rewrite = rewrite_image(manifest, change, convert=how.convert, where=where,
                            labels_from=source if how.labels else None)
    status, introduced, _notes = check_change(where, rewrite.old_annotations, rewrite.annotations)
    if introduced:
        raise InputError(f"{where}: {introduced[0].key}: {introduced[0].message}")
    descriptor = {k: v for k, v in descriptor_annotations(rewrite.annotations).items() if is_managed(k) and v}
    if image.features:
        descriptor[FEATURES_KEY] = ",".join(image.features)
    applied = AppliedImage(image.image, str(platform), image.features, manifest.digest, rewrite.digest,
                           rewrite.media_type, rewrite.changes, dict(sorted(descriptor.items())),
                           rewrite.converted, status)
    raw, blobs, files = rewrite.raw, rewrite.blobs, {}
    if isinstance(source, LayoutRepository) and compression != "none":
        layout = source.layout
        compressed, changed = compress_layers(json.loads(raw), compression,
                                              lambda digest: layout.blob_path(digest).open("rb"), store, where)
        if changed:
            raw, blobs = serialise(compressed), blobs_of(compressed)
            files = {d: store.files[d] for d, _ in blobs if d in store.files}
            applied.digest = sha256_digest(raw)
    new_manifest = Manifest(raw, rewrite.media_type, sha256_digest(raw))
    return _Prepared(applied, source, new_manifest, blobs, rewrite.annotations, rewrite.config, files)


def _config(source: ImageRepository, data: dict, where: str) -> dict:
    digest = (data.get("config") or {}).get("digest")
    if not digest:
        return {}
    try:
        config = json.loads(source.config(digest))
    except ValueError:
        raise HpcAnnotateError(f"{where}: config {digest} is not JSON") from None
    return config if isinstance(config, dict) else {}


def _index_annotations(app: Application, descriptors: list[dict[str, str]], aliases: bool = False) -> dict[str, str]:
    """What every image shares (CPU target and features aside), the application's own keys, and its title."""
    shared = dict(descriptors[0]) if descriptors else {}
    for other in descriptors[1:]:
        shared = {k: v for k, v in shared.items() if other.get(k) == v}
    shared = {k: v for k, v in shared.items()
              if not k.startswith(SUPERCONTAINERS_PREFIX + "hardware.cpu.") and k != FEATURES_KEY}
    return AnnotationChange(dict(app.annotations), aliases=aliases).apply({**shared, TITLE_KEY: app.name})


def _verify(target: ImageRepository, tag: str, raw: bytes, prepared: list[_Prepared]) -> list[str]:
    problems: list[str] = []
    digest = sha256_digest(raw)
    try:
        now = target.resolve(tag)
        if now != digest:
            problems.append(f"{target.describe(tag)} points at {now}, not at the index written ({digest})")
        index = manifest_json(target.get(digest), target.describe(digest))
        read_back = {p.applied.digest for p in prepared}  # fetched below: a GET proves them there
        for desc in every_entry(index, lambda d: manifest_json(target.get(d), target.describe(d))):
            if desc["digest"] not in read_back and not target.exists(desc["digest"]):
                problems.append(f"the index points at {desc['digest']}, which is missing")
        for p in prepared:
            where = target.describe(p.applied.digest)
            got = manifest_json(target.get(p.applied.digest), where)
            problems += read_back_problems(f"{p.applied.image} ({where})", got, p.expected, p.blobs)
    except HpcAnnotateError as exc:
        problems.append(f"could not read the result back: {exc}")
    return problems


# -- export -------------------------------------------------------------------------------------------


def export_collection(
    ref: str,
    *,
    name: str | None = None,
    client: RegistryClient | None = None,
    authfile: str | Path | None = None,
    tls_verify: bool = True,
    plain_http: bool | None = None,
) -> dict:
    """The collection YAML (as data) of the index ``ref``: images pinned by digest, platform, features, keys."""
    from hpcannotate.image.inspect import inspect

    found = inspect(ref, client=client, authfile=authfile, tls_verify=tls_verify, plain_http=plain_http)
    reference = parse_reference(ref)
    if not found.is_index:
        raise InputError(f"{ref}: is a single image; collection export reads an index")
    # A registry repository names the application; a layout's directory name is only its last part
    # (oci:DIR/gromacs/debian is "debian"), so there the title `apply` wrote says it in full.
    if reference.layout_path:
        app_name = name or found.annotations.get(TITLE_KEY) or reference.layout_path.name
    else:
        app_name = name or reference.repository
    app: dict = {"name": app_name, "tag": reference.tag or "latest"}
    own = {k: v for k, v in found.annotations.items() if is_managed(k) and not (k == TITLE_KEY and v == app_name)}
    if own:
        app["annotations"] = dict(sorted(own.items()))
    images = []
    for image in found.images:
        if image.kind != "image":
            continue
        source = image.descriptor_annotations or {k: v for k, v in descriptor_annotations(image.annotations).items()}
        keys = {k: v for k, v in source.items() if is_managed(k) and v and k != FEATURES_KEY}
        entry: dict = {"image": f"{reference.name}@{image.digest}"}
        platform = dict(image.platform or {})
        features = [f for f in source.get(FEATURES_KEY, "").split(",") if f] + list(platform.get("features") or [])
        shown: dict = {"os": platform.get("os", "linux"), "arch": platform.get("architecture", "")}
        if platform.get("variant"):
            shown["variant"] = platform["variant"]
        if features:
            shown["features"] = list(dict.fromkeys(features))
        entry["platform"] = shown
        if keys:
            entry["annotations"] = dict(sorted(keys.items()))
        images.append(entry)
    if not images:
        raise InputError(f"{ref}: the index lists no images")
    app["manifests"] = images
    return {"manifests": [app]}


def dump_collection(data: Mapping) -> str:
    """YAML text a person can edit; every value stays a string (``12.0`` is quoted, not a float)."""
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
