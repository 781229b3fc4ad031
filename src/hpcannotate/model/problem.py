"""``Problem``: one reason an annotation set is not compliant.

Below both ``annotations`` (which collects input problems) and ``validation`` (which finds the
rest), so neither imports the other at load time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason an annotation set is not compliant."""

    key: str
    message: str
    value: str | None = None

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"

    def to_dict(self) -> dict:
        data = {"key": self.key, "message": self.message}
        if self.value is not None:
            data["value"] = self.value
        return data
