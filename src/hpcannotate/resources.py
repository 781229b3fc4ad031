"""Files shipped with hpcannotate: the Jinja2 templates and the data files.

The templates live inside the package (``src/hpcannotate/templates``), so a wheel, an editable
install and a source checkout all read them from the same place next to this module; the
top-level ``templates/`` of the checkout is a link to that directory.
"""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def templates_dir() -> Path:
    found = Path(__file__).resolve().parent / "templates"
    if not found.is_dir():
        raise FileNotFoundError(f"hpcannotate templates are missing from this installation ({found})")
    return found


@functools.cache
def jinja_env():
    """The Jinja2 environment for every template; undefined variables are errors, not empty text."""
    import shlex

    import jinja2

    from hpcannotate.dockerfile.text import comment, exec_form, quote

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - renders Dockerfiles and markdown, not HTML; values are escaped per format
    )
    # Every value that reaches a template goes through the escaping of the text it lands in.
    env.filters["shquote"] = shlex.quote
    env.filters["dquote"] = quote
    env.filters["exec_form"] = exec_form
    env.filters["comment"] = comment  # values inside `#` comments: a line break cannot end the comment
    return env


def render(template: str, **context) -> str:
    return jinja_env().get_template(template).render(**context)
