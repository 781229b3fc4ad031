"""Files shipped with hpcannotate: the Jinja2 templates and the data files.

In a wheel, ``templates/`` is installed as ``hpcannotate/templates`` (hatch
force-include); in a source checkout or editable install it is the top-level
``templates/`` directory. Both are found here so no other module cares.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path


@functools.cache
def templates_dir() -> Path:
    packaged = Path(str(resources.files("hpcannotate"))) / "templates"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "templates"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("hpcannotate templates are missing from this installation")


@functools.cache
def jinja_env():
    """The Jinja2 environment for every template; undefined variables are errors, not empty text."""
    import shlex

    import jinja2

    from .dockerfile_text import comment, exec_form, quote

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
