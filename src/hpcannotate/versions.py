"""Version numbers compared as numbers: ``5.10`` equals ``5.10.0``, ``550.54`` is older than ``550.54.14``.

``version_key`` reads the first run of dot-separated numbers in a text (``v4.1.5rc1`` -> 4.1.5,
``5.14.0-284.11.1.el9_2`` -> 5.14.0, ``Open MPI 4.1.6`` -> 4.1.6) and drops trailing zeros, so
plain tuple comparison pads the shorter version with zeros. Nothing is ever compared as text: a
value without a number has the key ``()``, which sorts before every version.
"""

from __future__ import annotations

import re

_NUMBERS = re.compile(r"\d+(?:\.\d+)*")


def version_key(version: str | None, parts: int | None = None) -> tuple[int, ...]:
    """A sortable key for ``version``: its numbers, the first ``parts`` of them when given, without trailing zeros.

    ``version_key("5.10") == version_key("5.10.0")``; ``version_key("12.4.1", 2) == (12, 4)``.
    """
    found = _NUMBERS.search(version or "")
    numbers = [int(n) for n in found.group(0).split(".")] if found else []
    if parts is not None:
        numbers = numbers[:parts]
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def version_at_least(version: str | None, minimum: str | None) -> bool:
    """Whether ``version`` is ``minimum`` or newer, numerically (``5.10`` >= ``5.10.0``)."""
    return version_key(version) >= version_key(minimum)
