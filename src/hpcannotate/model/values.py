"""Checks for one value of one kind, as the catalogue's ``kind`` names them.

Each checker answers the reason a value is wrong in words a user can act on,
or None. Value spellings (``libfabrics`` -> ``libfabric``, ``GenericMicro`` ->
``genericMicro``) are normalised before checking, by ``normalise_value``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlparse

from hpcannotate.model.catalogue import KeySpec, ValueSpec

# Characters that end a line for the Dockerfile parsers, or for Python's str.splitlines: no value may
# hold one (it would end a LABEL line and start an instruction), so the model refuses them on input.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00")

VERSION_RE = re.compile(r"[0-9]+(\.[0-9]+)*([.+~-]?[A-Za-z0-9]+)*")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
BASE64_RE = re.compile(r"([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
TRUE_FALSE = {"true": "true", "false": "false", "yes": "true", "no": "false", "1": "true", "0": "false"}


def as_text(value: object) -> str:
    """Annotation values are strings; numbers and booleans from YAML/JSON/Python become their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(f"a {type(value).__name__} is not an annotation value (expected a string)")


def _normalise_item(spec: ValueSpec, item: str) -> str:
    item = item.strip()
    if spec.kind == "enum":
        if item in spec.value_aliases:
            return spec.value_aliases[item]
        lowered = {v.lower(): v for v in spec.values}
        return lowered.get(item.lower(), spec.value_aliases.get(item.lower(), item))
    if spec.kind == "boolean":
        return TRUE_FALSE.get(item.lower(), item)
    return item


def normalise_value(key: KeySpec, value: str) -> str:
    """Rewrite accepted spellings of a value to the canonical one; other values come back as given."""
    if key.items is not None:
        return ",".join(_normalise_item(key.items, part) for part in value.split(",")) if value.strip() else value
    return _normalise_item(key.spec, value)


def same_value(key: KeySpec, first: str, second: str) -> bool:
    """Whether two values of ``key`` say the same: accepted spellings aside and, for a comma list, as sets.

    ``bash,sh,dash`` and ``bash,dash,sh`` name the same shells; the order of a comma list carries no
    meaning, so comparing the text would call equal values different.
    """
    first, second = normalise_value(key, first), normalise_value(key, second)
    if key.items is None:
        return first == second
    return {i.strip() for i in first.split(",") if i.strip()} == {i.strip() for i in second.split(",") if i.strip()}


def _check_enum(spec: ValueSpec, value: str) -> str | None:
    if value in spec.values:
        return None
    return f"{value!r} is not one of: {', '.join(spec.values)}"


def _check_version(_spec: ValueSpec, value: str) -> str | None:
    if VERSION_RE.fullmatch(value):
        return None
    return f"{value!r} is not a version (expected digits and dots, such as 4.1.5)"


def _check_target(_spec: ValueSpec, value: str) -> str | None:
    from hpcannotate.model import targets

    if targets.is_target(value):
        return None
    hint = targets.suggest_target(value)
    extra = f" (did you mean {hint!r}?)" if hint else " (see `archspec list` for the names)"
    return f"{value!r} is not an archspec CPU target{extra}"


def _check_path(_spec: ValueSpec, value: str) -> str | None:
    parts = value.split(":")
    for part in parts:
        if not part.startswith("/"):
            return f"{part!r} is not an absolute path"
        if "\n" in part or "\0" in part:
            return "a path cannot contain a newline or NUL"
    return None


def _check_url(_spec: ValueSpec, value: str) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme in ("http", "https") and parsed.netloc and not any(c.isspace() for c in value):
        return None
    return f"{value!r} is not an http(s) URL"


def _check_base64(_spec: ValueSpec, value: str) -> str | None:
    if len(value) % 4 or not BASE64_RE.fullmatch(value):
        return "is not valid base64 (standard alphabet, padded, no line breaks)"
    try:
        base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "does not decode to UTF-8 text"
    return None


def _check_boolean(_spec: ValueSpec, value: str) -> str | None:
    return None if value in ("true", "false") else f"{value!r} is not true or false"


def _check_pattern(spec: ValueSpec, value: str) -> str | None:
    if spec.pattern and re.fullmatch(spec.pattern, value):
        return None
    return f"{value!r} does not match {spec.pattern}"


def _check_text(_spec: ValueSpec, value: str) -> str | None:
    return "contains a NUL character" if "\0" in value else None


def _check_datetime(_spec: ValueSpec, value: str) -> str | None:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return f"{value!r} is not an RFC 3339 date and time"
    return None


def _check_digest(_spec: ValueSpec, value: str) -> str | None:
    return None if DIGEST_RE.fullmatch(value) else f"{value!r} is not a digest (sha256:<64 hex>)"


CHECKS: dict[str, Callable[[ValueSpec, str], str | None]] = {
    "enum": _check_enum,
    "version": _check_version,
    "archspec_target": _check_target,
    "path": _check_path,
    "url": _check_url,
    "base64": _check_base64,
    "boolean": _check_boolean,
    "pattern": _check_pattern,
    "text": _check_text,
    "datetime": _check_datetime,
    "digest": _check_digest,
}


def check_value(key: KeySpec, value: str) -> str | None:
    """Why ``value`` is not valid for ``key``, or None when it is."""
    if value.strip() == "":
        return "is empty"
    if key.items is None:
        return CHECKS[key.kind](key.spec, value)
    items = value.split(",")
    seen: set[str] = set()
    for item in items:
        item = item.strip()
        if not item:
            return f"{value!r} has an empty item in its comma list"
        reason = CHECKS[key.items.kind](key.items, item)
        if reason:
            return f"item {reason}"
        if item in seen:
            return f"item {item!r} is listed twice"
        seen.add(item)
    return None
