"""The one place where discovery, the site report and ``resolve`` ask the matcher for a verdict.

``match.assess`` judges one image on one host and ``match``'s ranking orders them. Site
discovery needs both for thousands of (image, partition) pairs from a catalog, without the
``ImageRead`` objects ``match.rank`` walks. Keeping the calls here means a new ranking model
in ``match`` changes this file only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpcannotate.model.keynames import OCI, SUPERCONTAINERS

if TYPE_CHECKING:
    from hpcannotate.host import Fingerprint

RUNS = ("green", "orange")


@dataclass(frozen=True)
class Verdict:
    verdict: str  # green | orange | unknown | red
    score: int
    reasons: tuple[dict, ...]  # {"check", "level", "score", "message"[, "detail"]}
    order: tuple = ()  # match.speed_order: the ranking key ``match`` itself sorts by

    @property
    def runs(self) -> bool:
        return self.verdict in RUNS

    def to_json(self) -> dict:
        return {"verdict": self.verdict, "score": self.score, "reasons": list(self.reasons)}


def judge(annotations: Mapping[str, str], platform: dict | None, host: Fingerprint,
          problems: Sequence | None = None) -> Verdict:
    """The matcher's verdict for one image (its merged annotations and platform) on ``host``.

    ``problems``: the validation problems of the annotations (``Annotations.validate``); when
    None they are computed here.
    """
    from hpcannotate.verdict.match import TARGET, assess, speed_order

    if problems is None:
        problems = validation_problems(annotations)
    found = assess(annotations, host, platform, problems)
    order = speed_order(found.verdict, found.factor, found.reasons, annotations.get(TARGET))
    return Verdict(found.verdict, found.score, tuple(r.to_json() for r in found.reasons), order)


def validation_problems(annotations: Mapping[str, str]) -> list:
    from hpcannotate.model.annotations import Annotations

    return Annotations.from_mapping(dict(annotations)).validate()


def order_key(verdict: Verdict) -> tuple:
    """Sort key, best first (ties keep their order in a stable sort): the order ``match`` ranks by
    (verdict, expected speed, CPU fit, the deeper target)."""
    return verdict.order


# Keys that describe an image to people (its name, version, docs, OCI's title and URLs): judging
# an image on a host never depends on them, so images that differ only there share one verdict.
DESCRIPTIVE_PREFIXES = (SUPERCONTAINERS + "docs.", OCI, SUPERCONTAINERS + "app.")


class VerdictCache:
    """Verdicts of many images on a few hosts, computed once per distinct (annotations, platform, host).

    A site report judges every image on every partition (10,000 x 20); images of one build matrix
    differ in version and docs, not in what the matcher reads, so most pairs are repeats.
    """

    def __init__(self) -> None:
        self._found: dict[tuple, Verdict] = {}
        self.computed = 0

    def judge(self, annotations: Mapping[str, str], platform: dict | None, host_name: str, host: Fingerprint,
              problems: Sequence) -> Verdict:
        relevant = frozenset((k, v) for k, v in annotations.items() if not k.startswith(DESCRIPTIVE_PREFIXES))
        key = (relevant, tuple(sorted((platform or {}).items())), tuple(str(p) for p in problems), host_name)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = judge(annotations, platform, host, problems)
            self.computed += 1
        return found
