"""CPU targets, in archspec's vocabulary.

archspec already knows every target, its family and its ancestors; this module
only maps a target to the ``hardware.cpu.optimized.mode`` it implies, which the
seeds define as: a bare family is ``architecture``, a vendor-neutral level
(``x86_64_v3``, ``armv8.2a``) is ``genericMicro``, a named CPU is
``microarchitecture``.
"""

from __future__ import annotations

ARCHITECTURE = "architecture"
GENERIC_MICRO = "genericMicro"
MICROARCHITECTURE = "microarchitecture"


def _targets():
    import archspec.cpu

    return archspec.cpu.TARGETS


def known_targets() -> list[str]:
    return sorted(_targets())


def is_target(name: str) -> bool:
    return name in _targets()


def mode_for_target(name: str) -> str:
    """The optimisation mode a target implies; KeyError for an unknown target."""
    target = _targets()[name]
    if target.vendor == "generic":
        return ARCHITECTURE if target.family == target else GENERIC_MICRO
    return MICROARCHITECTURE


def targets_by_mode() -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {ARCHITECTURE: [], GENERIC_MICRO: [], MICROARCHITECTURE: []}
    for name in known_targets():
        grouped[mode_for_target(name)].append(name)
    return grouped


def family_of(name: str) -> str:
    return _targets()[name].family.name


def suggest_target(name: str) -> str | None:
    """The closest known target name, for 'did you mean' hints (zen-3 -> zen3)."""
    candidates = known_targets()
    squashed = {c.replace("_", "").replace("-", "").replace(".", "").lower(): c for c in candidates}
    key = name.replace("_", "").replace("-", "").replace(".", "").lower()
    if key in squashed:
        return squashed[key]
    import difflib  # only for a misspelt target's suggestion

    close = difflib.get_close_matches(name.lower(), candidates, n=1, cutoff=0.75)
    return close[0] if close else None
