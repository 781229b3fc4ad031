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

if TYPE_CHECKING:
    from .fingerprint import Fingerprint

RUNS = ("green", "orange")


@dataclass(frozen=True)
class Verdict:
    verdict: str  # green | orange | unknown | red
    score: int
    reasons: tuple[dict, ...]  # {"check", "level", "score", "message"[, "detail"]}

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
    from .match import assess

    if problems is None:
        problems = validation_problems(annotations)
    found = assess(annotations, host, platform, problems)
    return Verdict(found.verdict, found.score, tuple(r.to_json() for r in found.reasons))


def validation_problems(annotations: Mapping[str, str]) -> list:
    from .annotations import Annotations

    return Annotations.from_mapping(dict(annotations)).validate()


def order_key(verdict: Verdict) -> tuple[int, int]:
    """Sort key, best first (ties keep their order in a stable sort), as ``match.rank`` orders."""
    from .match import RANK

    return (-RANK[verdict.verdict], -verdict.score)
