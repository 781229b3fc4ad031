"""Writing values into Dockerfile text without changing its structure.

BuildKit, buildah (imagebuilder) and Docker read a double-quoted word with
three escapes: ``\\"``, ``\\\\`` and ``\\$`` (checked against buildah 1.28 in the
tests). Escaping those, and refusing line breaks, keeps any value (quotes,
``$``, backslashes, ``#``, unicode) inside its own LABEL or ENV word. A value
with a line break cannot be written in a Dockerfile at all: callers pass it to
the builder as an argument instead (``--label``), never pasted into text.
"""

from __future__ import annotations

import json

from hpcannotate.model.values import LINE_BREAKS


def representable(value: str) -> bool:
    """True when ``value`` can be written as one double-quoted Dockerfile word."""
    return not any(c in LINE_BREAKS for c in value)


def quote(value: str) -> str:
    """``value`` as a double-quoted Dockerfile word; ValueError for a value with a line break."""
    if not representable(value):
        raise ValueError("a value with a line break cannot be written in a Dockerfile")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def unquote(word: str) -> str:
    """The inverse of ``quote``, as BuildKit reads a double-quoted word (for tests and checks)."""
    if len(word) < 2 or word[0] != '"' or word[-1] != '"':
        raise ValueError(f"not a double-quoted word: {word!r}")
    out, i, inner = [], 0, word[1:-1]
    while i < len(inner):
        c = inner[i]
        if c == "\\" and i + 1 < len(inner) and inner[i + 1] in '"\\$':
            out.append(inner[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def label_pair(key: str, value: str) -> str:
    return f"{quote(key)}={quote(value)}"


def exec_form(argv: list[str]) -> str:
    """An exec-form instruction argument (``["a", "b"]``): JSON, which every parser reads."""
    return json.dumps(argv, ensure_ascii=False)


def comment(value: object) -> str:
    """``value`` for the inside of a ``#`` comment (Dockerfile or shell): line breaks become visible escapes.

    A comment ends at the line break, so a value holding one would start a new
    instruction (``v\\nRUN ...``); escaped, it stays text on the comment's line.
    """
    text = str(value)
    return "".join(f"\\x{ord(c):02x}" if c in LINE_BREAKS and ord(c) < 0x100 else
                   f"\\u{ord(c):04x}" if c in LINE_BREAKS else c for c in text)
