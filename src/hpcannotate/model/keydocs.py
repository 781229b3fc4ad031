"""The generated reference page of the key catalogue (docs/keys.md)."""

from __future__ import annotations

from hpcannotate.model.catalogue import GROUPS, SUPERCONTAINERS_PREFIX, KeySpec, catalogue
from hpcannotate.resources import jinja_env


def _kind_text(key: KeySpec) -> str:
    """The value column; pipes are escaped because they would split the markdown table."""
    values = key.allowed_values()
    if values:
        text = ", ".join(f"`{v}`" for v in values)
    elif key.kind in ("pattern", "comma_list"):
        text = f"`{key.spec.pattern or key.items.pattern}`"
    else:
        text = key.kind.replace("_", " ")
    if key.kind == "comma_list":
        text = f"comma list of {text}"
    return text.replace("|", "\\|")


def reference_markdown() -> str:
    env = jinja_env()
    env.filters.setdefault("kind_text", _kind_text)
    env.filters.setdefault("short", lambda k: k.removeprefix(SUPERCONTAINERS_PREFIX))
    cat = catalogue()
    groups = [(g, cat.in_group(g)) for g in GROUPS if cat.in_group(g)]
    return env.get_template("keys.md.j2").render(specs=list(cat), groups=groups)
