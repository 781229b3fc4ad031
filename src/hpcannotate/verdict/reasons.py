"""One finding of ``match``: which check, what it does to the expected speed, and why in words.

A finding is red (the image cannot run here), unknown (nothing says how it runs), a note
(said, but changes nothing), or a speed factor from the match policy
(``data/match-policy.yaml``): the fraction of bare-metal speed left after it. Its level
follows from the factor (green from the policy's ``green_from``, else orange), so no check
decides a colour on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

GREEN, ORANGE, RED, UNKNOWN, NOTE = "green", "orange", "red", "unknown", "note"
VERDICTS = (GREEN, ORANGE, UNKNOWN, RED)  # best first
RANK = {GREEN: 3, ORANGE: 2, UNKNOWN: 1, RED: 0}


@dataclass(frozen=True)
class Reason:
    """One finding: the check, its level, its score (the factor in percent), and why in words."""

    check: str
    level: str
    score: int
    message: str
    detail: str | None = None
    factor: float = 1.0  # expected fraction of bare-metal speed left after this finding (0: cannot run)

    def to_json(self) -> dict:
        data = {"check": self.check, "level": self.level, "score": self.score, "factor": round(self.factor, 4),
                "message": self.message}
        if self.detail:
            data["detail"] = self.detail
        return data


def factor(check: str, name: str) -> float:
    from hpcannotate.model.knowledge import policy

    return policy().factor(check, name)


def speed(check: str, name: str, message: str, detail: str | None = None, *, policy_check: str | None = None,
          value: float | None = None) -> Reason:
    """A finding that runs: its factor from the policy (``policy_check.name``, or ``value``), its level from that."""
    from hpcannotate.model.knowledge import policy

    f = value if value is not None else factor(policy_check or check, name)
    level = GREEN if f * 100 >= policy().green_from - 1e-9 else ORANGE
    return Reason(check, level, round(f * 100), message, detail, f)


def red(check: str, message: str, detail: str | None = None) -> Reason:
    return Reason(check, RED, 0, message, detail, 0.0)


def note(check: str, message: str) -> Reason:
    return Reason(check, NOTE, 100, message)


def unknown(check: str, message: str) -> Reason:
    from hpcannotate.model.knowledge import policy

    return Reason(check, UNKNOWN, policy().unknown_score, message)
