"""``resolve``: the one image of a reference to run on a host, pinned by digest.

A job script writes ``srun --container-image=$(hpcannotate resolve reg/gromacs:2023.3) ...``:
the answer must be the best image *for the node it runs on*, and must not move between the
choice and the pull, hence ``name@sha256:...``.

Every target is considered, not only what an index shows a first-match client: the entries of
the reference (an index and each child, or the single image) and the images of the per-target
tags ``TAG-TARGET`` of the same repository that ``build --push`` writes. An index that must keep
one entry per os/arch/variant for runtimes that pick by platform can then leave same-level
targets (zen4 and sapphirerapids are both x86-64-v4) out of the index and still be resolved.
``edf`` makes its choice here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpcannotate.errors import HpcAnnotateError
from hpcannotate.model.keynames import HARDWARE_CPU_OPTIMIZED_VERSION
from hpcannotate.verdict.choose import Verdict, judge, order_key

if TYPE_CHECKING:
    from hpcannotate.host import Fingerprint
    from hpcannotate.image.read import ImageRead, PlatformEntry, Transport


@dataclass
class Candidate:
    entry: PlatformEntry
    verdict: Verdict
    via: str  # the reference it was found through

    def to_json(self) -> dict:
        return {"pull": self.entry.pull, "digest": self.entry.digest, "via": self.via,
                "platform": self.entry.platform, "target": self.entry.annotations.get(
                    HARDWARE_CPU_OPTIMIZED_VERSION), **self.verdict.to_json()}


@dataclass
class Resolution:
    reference: str
    candidates: list[Candidate] = field(default_factory=list)  # best first
    warnings: list[str] = field(default_factory=list)
    read: ImageRead | None = None

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def use(self) -> Candidate | None:
        best = self.best
        return best if best is not None and best.verdict.runs else None

    def to_json(self) -> dict:
        use = self.use
        return {"reference": self.reference, "use": use.entry.pull if use else None,
                "candidates": [c.to_json() for c in self.candidates], "warnings": self.warnings}


def pinned(entry: PlatformEntry) -> str:
    """``registry/repo@sha256:...`` of an entry, whatever name it was found by."""
    from hpcannotate.registry.reference import parse_reference

    return str(parse_reference(entry.pull).with_digest(entry.digest))


def sibling_tags(ref: str, transport: Transport) -> tuple[list[str], str | None]:
    """The ``TAG-*`` tags of the repository (per-target images), or why they could not be listed."""
    from hpcannotate.registry.auth import RegistryError
    from hpcannotate.registry.reference import parse_reference

    reference = parse_reference(ref)
    if reference.is_layout or not reference.tag:
        return [], None
    client = transport.client()
    try:
        tags = client.list_tags(reference)
    except RegistryError as exc:
        return [], f"{reference.name}: the tags could not be listed, so per-target tags were not considered ({exc})"
    finally:
        client.close()
    return [str(reference.with_tag(t)) for t in sorted(tags) if t.startswith(reference.tag + "-")], None


def gather(ref: str, transport: Transport, *, siblings: bool = True) -> tuple[list[ImageRead], list[str]]:
    """``ref`` read (first) and its per-target sibling tags; raises when ``ref`` itself cannot be read."""
    warnings: list[str] = []
    extra: list[str] = []
    if siblings:
        extra, why = sibling_tags(ref, transport)
        if why:
            warnings.append(why)
    from hpcannotate.image.read import read_many

    reads = read_many([ref, *extra], transport)
    if reads[0].error:
        raise HpcAnnotateError(reads[0].error)
    warnings.extend(r.error for r in reads[1:] if r.error)
    return reads, warnings


def rank_reads(reads: list[ImageRead], host: Fingerprint) -> list[Candidate]:
    """Every entry of ``reads`` once (by digest), pinned, judged on ``host``, best first (stable)."""
    seen: set[str] = set()
    found = []
    for read in reads:
        if read.error:
            continue
        for entry in read.entries:
            if entry.digest in seen:
                continue
            seen.add(entry.digest)
            entry.pull = pinned(entry)
            found.append(Candidate(entry, judge(entry.annotations, entry.platform, host, entry.problems),
                                   read.reference))
    return sorted(found, key=lambda c: order_key(c.verdict))


def resolve(ref: str, host: Fingerprint, transport: Transport | None = None, *, siblings: bool = True) -> Resolution:
    """Every image ``ref`` reaches (see the module's doc), judged on ``host``, best first."""
    from hpcannotate.image.read import Transport

    reads, warnings = gather(ref, transport or Transport(), siblings=siblings)
    return Resolution(ref, rank_reads(reads, host), warnings, reads[0])
