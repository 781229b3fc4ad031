"""The JSON Schema of an annotation set, derived from the catalogue.

Other tools (CI linters, registries' admission policies) can validate images
with any JSON Schema implementation, without hpcannotate. The schema mirrors the
per-key checks in ``values`` and the mode/target rule; the few cross-key rules
it cannot express are only in ``hpcannotate validate``.
"""

from __future__ import annotations

import re

from hpcannotate.model.catalogue import KeySpec, ValueSpec, catalogue
from hpcannotate.model.values import BASE64_RE, DIGEST_RE, VERSION_RE

SCHEMA_ID = "https://hpcannotate.invalid/schema/annotations.json"
MANAGED_NAMESPACE = r"^org\.(supercontainers|opencontainers\.image)\."
PATH_PATTERN = r"^/[^:\n\x00]*(:/[^:\n\x00]*)*$"


def _item_pattern(spec: ValueSpec) -> str:
    if spec.kind == "enum":
        return "(" + "|".join(re.escape(v) for v in spec.values) + ")"
    if spec.kind == "pattern" and spec.pattern:
        return f"({spec.pattern})"
    raise ValueError(f"comma list items of kind {spec.kind} have no pattern")


def value_schema(key: KeySpec) -> dict:
    """The schema of one key's value."""
    from hpcannotate.model import targets

    kind, spec = key.kind, key.spec
    schema: dict = {"type": "string", "minLength": 1}
    if kind == "enum":
        schema["enum"] = list(spec.values)
    elif kind == "archspec_target":
        schema["enum"] = targets.known_targets()
    elif kind == "version":
        schema["pattern"] = f"^{VERSION_RE.pattern}$"
    elif kind == "comma_list":
        item = _item_pattern(key.items)
        schema["pattern"] = f"^{item}(,{item})*$"
    elif kind == "pattern":
        schema["pattern"] = f"^({spec.pattern})$"
    elif kind == "path":
        schema["pattern"] = PATH_PATTERN
    elif kind == "url":
        schema.update(format="uri", pattern=r"^https?://[^\s/]+\S*$")
    elif kind == "base64":
        schema.update(contentEncoding="base64", pattern=f"^{BASE64_RE.pattern}$")
    elif kind == "boolean":
        schema["enum"] = ["true", "false"]
    elif kind == "datetime":
        schema["format"] = "date-time"
    elif kind == "digest":
        schema["pattern"] = f"^({DIGEST_RE.pattern})$"
    elif kind == "text":
        schema["pattern"] = r"^[^\x00]*$"
    return schema


def _mode_rules() -> list[dict]:
    from hpcannotate.model import targets
    from hpcannotate.model.validation import MODE, TARGET

    return [
        {
            "if": {"properties": {MODE: {"const": mode}}, "required": [MODE, TARGET]},
            "then": {"properties": {TARGET: {"enum": names}}},
        }
        for mode, names in targets.targets_by_mode().items()
    ]


def annotation_schema() -> dict:
    """A JSON Schema (2020-12) for a mapping of annotations in canonical or alias spelling."""
    properties: dict[str, dict] = {}
    for key in catalogue():
        properties[key.key] = {
            "description": key.description,
            "examples": [key.example],
            "x-group": key.group,
            **value_schema(key),
        }
        for alias in key.aliases:
            properties[alias.key] = {
                "description": f"Older spelling of {key.key}.",
                "deprecated": True,
                **value_schema(key),
            }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "HPC container annotations (org.supercontainers.*)",
        "description": "An image is HPC Container Compliant when it validates against this schema.",
        "type": "object",
        "properties": properties,
        "required": [k.key for k in catalogue().mandatory()],
        "additionalProperties": {"type": "string"},
        "propertyNames": {"anyOf": [{"enum": sorted(properties)}, {"not": {"pattern": MANAGED_NAMESPACE}}]},
        "allOf": _mode_rules(),
    }
