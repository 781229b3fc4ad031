"""Version numbers compared as numbers: ``5.10`` equals ``5.10.0``, ``550.54`` is older than ``550.54.14``.

``version_key`` reads the first run of dot-separated numbers in a text (``v4.1.5rc1`` -> 4.1.5,
``5.14.0-284.11.1.el9_2`` -> 5.14.0, ``Open MPI 4.1.6`` -> 4.1.6) and drops trailing zeros, so
plain tuple comparison pads the shorter version with zeros. Nothing is ever compared as text: a
value without a number has the key ``()``, which sorts before every version.

This is the project's one version comparer: ``domain`` (MPI ABI thresholds), the probe's
recipe/image cross-check (``versions_agree``), ``match`` and ``fingerprint`` all call it.
"""

from __future__ import annotations

import re

_NUMBERS = re.compile(r"\d+(?:\.\d+)*")
_TOKENS = re.compile(r"\d+|[A-Za-z]+")
RELEASE_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*(?:[.+~_-]?[A-Za-z0-9]+)*")
COMMIT = re.compile(r"[0-9a-f]{40}")


def is_release_version(version: str | None) -> bool:
    """``4.1.5``, ``5.0.0rc12``, ``2.3.7-1``: a release; not ``git.0123abc=main``, a commit hash or ``develop``."""
    if not version or "=" in version or COMMIT.fullmatch(version):
        return False
    return RELEASE_VERSION.fullmatch(version) is not None


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


def release_key(version: str | None, parts: int | None = None) -> tuple[int, ...] | None:
    """``version_key`` of a release version (``4.1.5``, ``5.0.0rc12``, ``2019.6-088``); None for anything
    else, where the digits are not the version (``git.0123abc=main``, a commit hash, ``develop``)."""
    version = (version or "").strip()
    return version_key(version, parts) if is_release_version(version) else None


def versions_agree(claimed: str, found: str) -> bool:
    """Whether two statements of one version agree, the less precise one being a prefix of the other:
    ``4.1`` and ``4.1.4`` agree, ``5.0.0rc12`` and ``5.0.0`` too; ``4.1.5`` and ``4.1.4`` do not, nor
    ``4.1.0`` and ``4.1.4`` (a written ``.0`` is a statement). Letters count (``4.1a`` is not ``4.1b``)."""
    a = _TOKENS.findall(claimed)
    b = _TOKENS.findall(found)
    n = min(len(a), len(b))
    return n > 0 and a[:n] == b[:n]


def version_at_least(version: str | None, minimum: str | None) -> bool:
    """Whether ``version`` is ``minimum`` or newer, numerically (``5.10`` >= ``5.10.0``)."""
    return version_key(version) >= version_key(minimum)
