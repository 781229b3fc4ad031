"""Reading annotation files (YAML or JSON) strictly.

Values are read as text, never as YAML numbers or booleans: ``12.10`` must stay
``12.10`` and ``1.6`` must not become a float. Duplicate keys are an error
rather than a silent last-one-wins.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from hpcannotate import files
from hpcannotate.errors import InputError
from hpcannotate.files import MAX_FILE_BYTES
from hpcannotate.model.values import LINE_BREAKS

# Beyond these a document is not an annotation file, a collection or a recipe-directory configuration:
# deeper nesting crashes recursive code downstream, and YAML aliases can make a small file name a huge tree.
MAX_DEPTH = 64
MAX_NODES = 1_000_000


def read_text(path: str | Path, what: str = "file", max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a small input file, or an InputError naming it (see ``files``: regular files only)."""
    return files.read_text(path, what, max_bytes)


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
    except RecursionError:
        raise InputError(f"{source}: YAML nested too deeply (more than {MAX_DEPTH} levels)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        reason = exc.problem or exc.context or "syntax error"
        raise InputError(f"{source}{line}: malformed YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: malformed YAML: {exc}") from None
    if len(docs) > 1:
        raise InputError(f"{source}: holds {len(docs)} YAML documents, expected one")
    if not docs:
        return None
    check_size(docs[0], source)
    return docs[0]


def check_size(data, source: str) -> None:
    """Refuse a parsed document nested more than MAX_DEPTH deep, or of more than MAX_NODES values once
    YAML aliases are expanded, or that contains itself; linear in the distinct values (shared ones count once)."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (height, expanded node count)
    busy: set[int] = set()
    stack: list[tuple[object, bool]] = [(data, False)]
    while stack:
        value, done = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        children = [c for c in (value.values() if isinstance(value, dict) else value) if isinstance(c, (dict, list))]
        key = id(value)
        if done:
            busy.discard(key)
            height = 1 + max((sizes[id(c)][0] for c in children), default=0)
            count = 1 + len(value) + sum(sizes[id(c)][1] for c in children)
            if height > MAX_DEPTH:
                raise InputError(f"{source}: nested too deeply (more than {MAX_DEPTH} levels)")
            if count > MAX_NODES:
                raise InputError(f"{source}: more than {MAX_NODES} values once YAML aliases are expanded")
            sizes[key] = (height, count)
            continue
        if key in sizes:
            continue
        if key in busy:
            raise InputError(f"{source}: a YAML alias makes the document contain itself")
        busy.add(key)
        stack.append((value, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


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
        data = json.loads(text, object_pairs_hook=_no_duplicates(source))
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{source}: JSON nested too deeply (more than {MAX_DEPTH} levels)") from None
    check_size(data, source)
    return data


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
        check_key(key.strip(), source)
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


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an annotation or label key (None when it can): one word, no control characters.

    A line break in a key would end a Dockerfile LABEL line, a NUL cannot be passed to a builder at all,
    and a space splits ``--set KEY=VALUE`` and ``--label`` arguments differently from tool to tool.
    """
    for char in key:
        if char == "\x00":
            return "holds a NUL character"
        if char in LINE_BREAKS:
            return "holds a line break"
        if char.isspace():
            return "holds whitespace"
        if unicodedata.category(char) in ("Cc", "Cf"):
            return f"holds the control character U+{ord(char):04X}"
    return None


def check_key(key: str, source: str) -> str:
    """``key``, or an InputError naming the file and the key (shown escaped) when it cannot be a key."""
    problem = key_problem(key)
    if problem is not None:
        raise InputError(f"{source}: key {key!r} {problem}; an annotation key is one word")
    return key


def parse_assignments(pairs, option: str) -> dict[str, str]:
    """``KEY=VALUE`` arguments (the value may hold ``=``) into a mapping, for ``--set`` and ``--userarg``.

    A key given twice with different values is an error naming both (the same value twice is harmless).
    """
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} {pair!r}: expected KEY=VALUE")
        key = check_key(key.strip(), option)
        if key in result and result[key] != value:
            raise InputError(f"{option} {key}: given twice ({key}={result[key]} and {key}={value}); give it once")
        result[key] = value
    return result
