"""Reading annotation files (YAML or JSON) strictly.

Values are read as text, never as YAML numbers or booleans: ``12.10`` must stay
``12.10`` and ``1.6`` must not become a float. Duplicate keys are an error
rather than a silent last-one-wins.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError

MAX_FILE_BYTES = 16 * 1024 * 1024


def read_text(path: str | Path, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a small input file, or an InputError naming it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise InputError(f"{path}: is a directory, expected a {what}")
        if size > max_bytes:
            raise InputError(f"{path}: {size} bytes is too large for a {what} (limit {max_bytes})")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a {what}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _yaml_loader():
    import yaml

    class StrictStringLoader(yaml.BaseLoader):
        """YAML with every scalar as a string and duplicate keys refused."""

    def construct_mapping(loader, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a string", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen[key] = True
        return yaml.BaseLoader.construct_mapping(loader, node, deep=deep)

    StrictStringLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictStringLoader


def parse_yaml(text: str, source: str):
    """Parse one YAML document with string scalars; errors name the file and line."""
    import yaml

    try:
        docs = list(yaml.load_all(text, Loader=_yaml_loader()))  # BaseLoader builds no objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        reason = exc.problem or exc.context or "syntax error"
        raise InputError(f"{source}{line}: malformed YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: malformed YAML: {exc}") from None
    if len(docs) > 1:
        raise InputError(f"{source}: holds {len(docs)} YAML documents, expected one")
    return docs[0] if docs else None


def _no_duplicates(source: str):
    def hook(pairs):
        result = {}
        for key, value in pairs:
            if key in result:
                raise InputError(f"{source}: duplicate key {key!r}")
            result[key] = value
        return result

    return hook


def parse_json(text: str, source: str):
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates(source))
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}:{exc.lineno}: malformed JSON: {exc.msg}") from None


def load_structured(path: str | Path, what: str = "file"):
    """A JSON (by extension) or YAML document from a file."""
    text = read_text(path, what)
    source = str(path)
    if not text.strip():
        raise InputError(f"{source}: is empty, expected a {what}")
    if str(path).endswith(".json"):
        return parse_json(text, source)
    return parse_yaml(text, source)


def load_annotation_mapping(path: str | Path) -> dict[str, str]:
    """A flat mapping of annotation key -> value text, from a YAML or JSON file.

    The output of ``hpcannotate infer --json`` (an object with an ``annotations``
    mapping) is accepted too, so commands chain.
    """
    source = str(path)
    data = load_structured(path, "mapping of annotations")
    if isinstance(data, dict) and isinstance(data.get("annotations"), dict):
        data = data["annotations"]
    if not isinstance(data, dict):
        kind = {list: "list", str: "single text value"}.get(type(data), type(data).__name__)
        raise InputError(f"{source}: expected a mapping of annotation keys to values, got a {kind}")
    result: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.strip():
            raise InputError(f"{source}: every key must be a non-empty string, got {key!r}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)) and source.endswith(".json"):
            value = json.dumps(value)
        if value is None:
            raise InputError(f"{source}: {key}: has no value (an annotation value is a string)")
        if not isinstance(value, str):
            kind = "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else type(value).__name__
            raise InputError(f"{source}: {key}: a {kind} is not an annotation value (expected a string)")
        result[key] = value
    return result


def parse_assignments(pairs, option: str) -> dict[str, str]:
    """``KEY=VALUE`` arguments (the value may hold ``=``) into a mapping, for ``--set`` and ``--userarg``.

    A key given twice with different values is an error naming both (the same value twice is harmless).
    """
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} {pair!r}: expected KEY=VALUE")
        key = key.strip()
        if key in result and result[key] != value:
            raise InputError(f"{option} {key}: given twice ({key}={result[key]} and {key}={value}); give it once")
        result[key] = value
    return result
