"""Assembling an OCI image index whose descriptors say which image is which, safe for every client.

``platform.features`` is reserved by the OCI spec, so what tells two amd64
images apart (their CPU target, MPI, CUDA) goes into each descriptor's
annotations, where a client reads it with the index alone.

Clients choose among index entries by ``platform`` only, each in its own way
(issue 12, tried with the real tools):

- podman, docker (classic store) and skopeo take the FIRST entry of the host's
  os/architecture, whatever its variant; so the most generic image comes first;
- containerd (2.0 and later, and Docker with the containerd image store) picks the
  highest amd64 level ``v2``/``v3``/``v4`` the host runs; so each amd64 entry says
  the x86-64 level of its target in ``platform.variant`` (a named CPU its level:
  zen3 -> v3), computed from archspec's feature data. The baseline (level 1) carries
  no variant: it is the default, and containerd normalises ``v1`` away;
- Charliecloud refuses an index with two entries of one architecture/variant, and
  umoci calls such a tag ambiguous.

So the index clients pull holds ONE image per os/architecture/variant: the most
generic target of each (a level's own generic target, ``x86_64_v4``, before a
named CPU of that level, ``zen4``). When targets share a platform, the others are
left out of it; a second index listing every target (same order, same
annotations) is stored beside it, and the pulled index names it by digest in
``org.supercontainers.index.complete``. ``inspect``, ``match`` and ``edf`` read
that one, so they still see every target; every target also keeps its own tag.
Other architectures (arm64, ppc64le, ...) get no variant: what containerd does
with arm64 variants (v8, v9, v8.2) is not what archspec's levels are, so nothing
is claimed there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hpcannotate.model.keynames import HARDWARE_CPU_OPTIMIZED_VERSION, INDEX_COMPLETE, OCI_REF_NAME, PLATFORM_FEATURES
from hpcannotate.oci.media import OCI_INDEX, canonical_json, sha256_digest
from hpcannotate.oci.store import Manifest

# Per-descriptor annotations stay small: no embedded documents, no long values.
MAX_DESCRIPTOR_VALUE = 512
TARGET_KEY = HARDWARE_CPU_OPTIMIZED_VERSION
COMPLETE_KEY = INDEX_COMPLETE
FEATURES_KEY = PLATFORM_FEATURES  # MetaHub's cpu:zen3 (collection YAML)
LEVELS = ("x86_64_v2", "x86_64_v3", "x86_64_v4")
COMPLETE_TAG = "all"  # build: the complete index's tag is TAG-all (no archspec target is named "all")


def descriptor_annotations(annotations: dict[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in annotations.items()
        if ".docs." not in k and len(v) <= MAX_DESCRIPTOR_VALUE and k != OCI_REF_NAME
    }


def x86_64_level(target: str) -> int | None:
    """The x86-64 microarchitecture level (1-4) whose features ``target`` has; None for another family.

    From archspec's feature lists: level N when every feature of ``x86_64_vN`` is among the target's
    (zen3 and haswell: 3; zen4, sapphirerapids and skylake_avx512: 4; core2: 1).
    """
    import archspec.cpu

    known = archspec.cpu.TARGETS.get(target)
    if known is None or known.family.name != "x86_64":
        return None
    features = set(known.features)
    level = 1
    for n, name in enumerate(LEVELS, start=2):
        if set(archspec.cpu.TARGETS[name].features) <= features:
            level = n
    return level


def amd64_variant(target: str | None) -> str | None:
    """``platform.variant`` of an amd64 image built for ``target``: ``v2``..``v4``, None for the baseline."""
    level = x86_64_level(target) if target else None
    return f"v{level}" if level and level > 1 else None


def cpu_target(annotations: dict[str, str] | None) -> str | None:
    """The CPU target a descriptor names: its optimized.version, else a MetaHub feature ``cpu:NAME``."""
    annotations = annotations or {}
    if annotations.get(TARGET_KEY):
        return annotations[TARGET_KEY]
    for feature in annotations.get(FEATURES_KEY, "").split(","):
        kind, _, name = feature.strip().partition(":")
        if kind == "cpu" and name:
            return name
    return None


def _platform(text: str, target: str | None) -> dict[str, str]:
    os_name, _, rest = text.partition("/")
    arch, _, variant = rest.partition("/")
    platform = {"architecture": arch, "os": os_name}
    if not variant and arch == "amd64":
        variant = amd64_variant(target) or ""
    if variant:
        platform["variant"] = variant
    return platform


@dataclass
class _Entry:
    desc: dict
    order: int  # position in the caller's list (the recipe's target order)

    @property
    def target(self) -> str | None:
        return cpu_target(self.desc.get("annotations"))

    @property
    def key(self) -> tuple[str, str, str]:
        p = self.desc["platform"]
        return p["os"], p["architecture"], p.get("variant", "")

    def generality(self) -> tuple[int, int, int]:
        """Lower sorts first: fewer CPU features (more hosts run it), then a vendor-neutral target, then order."""
        import archspec.cpu

        known = archspec.cpu.TARGETS.get(self.target or "")
        if known is None:
            return (1 << 16, 1, self.order)
        return (len(known.features), 0 if known.vendor == "generic" else 1, self.order)


def arrange(descriptors: list[dict]) -> tuple[list[dict], list[dict]]:
    """(every descriptor, most generic first per platform; the ones clients pull: one per os/arch/variant).

    Platforms keep the order they first appear in; within one os/architecture the variants go up
    (none, v2, v3, v4), so a first-match client takes the image every host of that architecture runs.
    """
    entries = [_Entry(d, n) for n, d in enumerate(descriptors)]
    arch_order: dict[tuple[str, str], int] = {}
    for entry in entries:
        arch_order.setdefault(entry.key[:2], len(arch_order))

    def sort_key(entry: _Entry) -> tuple:
        variant = entry.key[2]
        return (arch_order[entry.key[:2]], (0, "") if not variant else (1, variant), entry.generality())

    ordered = sorted(entries, key=sort_key)
    pulled, seen = [], set()
    for entry in ordered:
        if entry.key not in seen:
            seen.add(entry.key)
            pulled.append(entry.desc)
    return [e.desc for e in ordered], pulled


@dataclass
class BuiltIndex:
    """The index clients pull and, when targets share a platform, the complete one ``match`` reads."""

    raw: bytes
    complete: bytes | None = None
    left_out: tuple[str, ...] = ()  # targets (or digests) only the complete index lists

    def first_entries(self) -> list[dict]:
        import json

        return json.loads(self.raw)["manifests"]


def build_index(entries: list[tuple[Manifest, str, dict[str, str]]], annotations: dict[str, str]) -> BuiltIndex:
    """The indexes for (manifest, "os/arch[/variant]", descriptor annotations) entries (see the module doc)."""
    descriptors = []
    for manifest, platform, desc_annotations in entries:
        desc = {
            "mediaType": manifest.media_type,
            "digest": manifest.digest,
            "size": len(manifest.raw),
            "platform": _platform(platform, cpu_target(desc_annotations)),
        }
        if desc_annotations:
            desc["annotations"] = dict(sorted(desc_annotations.items()))
        descriptors.append(desc)
    ordered, pulled = arrange(descriptors)
    own = {k: v for k, v in annotations.items() if k != COMPLETE_KEY}

    def index(manifests: list[dict], extra: dict[str, str]) -> bytes:
        data: dict = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        merged = {**own, **extra}
        if merged:
            data["annotations"] = dict(sorted(merged.items()))
        return canonical_json(data)

    if len(pulled) == len(ordered):
        return BuiltIndex(index(ordered, {}))
    complete = index(ordered, {})
    left = tuple(cpu_target(d.get("annotations")) or d["digest"] for d in ordered if d not in pulled)
    return BuiltIndex(index(pulled, {COMPLETE_KEY: sha256_digest(complete)}), complete, left)


def first_not_baseline(built: BuiltIndex) -> list[str]:
    """Warnings for architectures whose first entry is not the family baseline (a first-match client
    gives it to hosts that may not run it)."""
    import archspec.cpu

    warnings, seen = [], set()
    for desc in built.first_entries():
        p = desc.get("platform") or {}
        arch = (p.get("os"), p.get("architecture"))
        if arch in seen:
            continue
        seen.add(arch)
        target = (desc.get("annotations") or {}).get(TARGET_KEY)
        known = archspec.cpu.TARGETS.get(target or "")
        if known is not None and known.family != known:
            warnings.append(f"podman, docker and skopeo give {target} (the first {arch[0]}/{arch[1]} entry) to "
                            f"every {arch[1]} host; add the target {known.family.name} for hosts that cannot run "
                            f"{target}")
    return warnings


def every_entry(index: dict, read: Callable[[str], dict]) -> list[dict]:
    """The descriptors of every image an index stands for: those of its complete index when it names one
    (``read(digest)`` gives that index's JSON), else its own."""
    complete = (index.get("annotations") or {}).get(COMPLETE_KEY)
    if not complete:
        return list(index.get("manifests") or [])
    return list(read(complete).get("manifests") or [])
