"""``probe_image``: an image's system annotations, read from its own layers.

The build calls it after an image is built (before the final push of
annotations) and ``hpcannotate probe`` calls it for any image: an OCI layout,
a registry image, or one in buildah's store. Layers are streamed once each,
bottom to top, into an ``ImageTree`` that keeps only what ``userland.TABLE``
asks for; ``userland.infer_userland`` then reads the values as typed facts
(``recipes/facts.py``), which ``facts.to_annotations`` turns into annotations.
Every value has provenance layer ``image probe`` and the image path it came from.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.image.probe.layers import LayerStats, apply_layer
from hpcannotate.image.probe.model import Evidence, Finding
from hpcannotate.image.probe.sources import SourceStats, open_source
from hpcannotate.image.probe.tree import ImageTree
from hpcannotate.image.probe.userland import Selection, infer_userland
from hpcannotate.model.annotations import Annotations
from hpcannotate.recipes.facts import Fact, to_annotations

FRAGMENT_LIMIT = 400


@dataclass
class ProbeResult:
    reference: str
    manifest_digest: str
    annotations: Annotations  # layer PROBE, file = the image path each value came from
    evidence: list[Evidence] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # libraries found (MPI, UCX, ...), annotated or not
    missing: dict[str, str] = field(default_factory=dict)  # key -> why the image does not tell it
    layers: list[LayerStats] = field(default_factory=list)
    files_read: list[str] = field(default_factory=list)  # image paths whose bytes were extracted
    bytes_read: int = 0  # layer blob bytes read, as stored (compressed)
    seconds: float = 0.0
    source: SourceStats = field(default_factory=SourceStats)
    warnings: list[str] = field(default_factory=list)
    image_annotations: dict[str, str] = field(default_factory=dict)  # the manifest's own annotations
    labels: dict[str, str] = field(default_factory=dict)  # the image config's labels
    facts: list[Fact] = field(default_factory=list)  # what ``annotations`` is made of, typed, in the order read

    def to_json(self) -> dict:
        data = self.annotations.to_json()
        data.update(
            reference=self.reference,
            digest=self.manifest_digest,
            findings=[f.to_json() for f in self.findings],
            missing=dict(sorted(self.missing.items())),
            layers=[layer.to_json() for layer in self.layers],
            files_read=list(self.files_read),
            bytes_read=self.bytes_read,
            seconds=round(self.seconds, 3),
            source=self.source.to_json(),
            warnings=list(self.warnings),
        )
        return data


def _shorten(text: str | None) -> str | None:
    if text is None or len(text) <= FRAGMENT_LIMIT:
        return text
    return text[: FRAGMENT_LIMIT - 1] + "…"


def _shortened(fact: Fact) -> Fact:
    """``fact`` with each value's fragment cut to ``FRAGMENT_LIMIT`` (a banner, a long PATH) for annotations."""
    return replace(fact, **{name: replace(value, provenance=replace(value.provenance,
                                                                    fragment=_shorten(value.provenance.fragment)))
                            for name in fact.KEYS if (value := getattr(fact, name)) is not None})


def default_platform() -> str:
    from hpcannotate.registry.platform import machine_oci_arch

    return f"linux/{machine_oci_arch()}"


def probe_image(
    ref: str,
    *,
    store_options: object | None = None,
    cache: str | Path | None = None,
    platform: str | None = None,
    keep: Path | None = None,
) -> ProbeResult:
    """Read ``ref``'s layers and infer its user land (libc, OS, python, shells, tools, MPI, fabrics, CUDA).

    ``ref``: ``oci:PATH[:tag]``, ``containers-storage:NAME`` (buildah's store; ``store_options`` gives
    ``root``/``runroot``/``storage_driver``, as ``BuildOptions`` has them) or a registry reference
    (``store_options`` may give ``authfile`` and ``tls_verify``). ``cache``: the directory of the blob cache
    and of the scratch directory (default: hpcannotate's cache). ``keep``: extract into this directory and
    leave the files there (for inspection, ``files.json`` says which is which) instead of a temporary one.
    """
    from hpcannotate.cache import cache_dir

    started = time.monotonic()
    cache_root = Path(cache) if cache is not None else cache_dir()
    platform = platform or default_platform()
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        if any(keep.iterdir()):
            raise InputError(f"{keep}: not empty; the probe keeps its files in an empty directory")
        scratch = keep
    else:
        (cache_root / "scratch").mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="probe-", dir=cache_root / "scratch"))
    try:
        with open_source(ref, platform=platform, cache=cache_root, options=store_options) as source:
            tree = ImageTree()
            numbers = itertools.count(1)
            selection = Selection()
            layers = []
            for index, layer in enumerate(source.layers):
                with source.open_layer(layer) as raw:
                    layers.append(apply_layer(tree, raw, digest=layer.digest, index=index, wanted=selection,
                                              scratch=scratch, counter=lambda: next(numbers),
                                              where=source.reference))
            userland = infer_userland(tree, source.config)
            result = ProbeResult(source.reference, source.manifest_digest, Annotations(),
                                 image_annotations=source.annotations, labels=source.labels)
            result.source = source.stats
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    result.facts = [_shortened(fact) for fact in userland.facts]
    to_annotations(result.facts, result.annotations)
    result.evidence = userland.evidence
    result.findings = list(userland.findings)
    result.missing = dict(userland.missing)
    result.layers = layers
    result.files_read = [path for layer in layers for path in layer.files_kept]
    result.bytes_read = sum(layer.bytes_read for layer in layers)
    result.warnings = [w for layer in layers for w in layer.warnings]
    if keep is not None:  # which numbered file is which image path
        names = {name: path for layer in layers for name, path in layer.blobs.items()}
        (keep / "files.json").write_text(json.dumps(names, indent=2) + "\n")
    result.seconds = time.monotonic() - started
    return result
