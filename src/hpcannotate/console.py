"""Printing for people and for programs: aligned tables, colour on terminals, JSON.

Commands hand their results here instead of formatting inline, so every
command's ``--json`` and table output look alike.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence

import click

VERDICT_COLOURS = {"green": "green", "orange": "yellow", "red": "red", "unknown": "bright_black"}


def emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False))


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters (values can hold newlines and long base64)."""
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(rows: Sequence[Sequence[str]], headers: Sequence[str] | None = None, indent: int = 0) -> None:
    """Columns aligned to their widest cell; the last column is not padded."""
    all_rows = [list(map(str, headers))] if headers else []
    all_rows += [list(map(str, r)) for r in rows]
    if not all_rows:
        return
    widths = [max(len(r[i]) for r in all_rows if i < len(r)) for i in range(max(map(len, all_rows)))]
    pad = " " * indent
    for n, row in enumerate(all_rows):
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        line = pad + "  ".join(cells)
        click.echo(click.style(line, bold=True) if headers and n == 0 else line)


def heading(text: str) -> None:
    click.echo(click.style(text, bold=True))


def ok(text: str) -> None:
    click.echo(click.style(text, fg="green"))


def bad(text: str) -> None:
    click.echo(click.style(text, fg="red"))


def notice(text: str) -> None:
    """Something the user should know that is not wrong (a key passed through untouched): stderr."""
    click.echo(f"notice: {text}", err=True)


def warn(text: str) -> None:
    """A warning goes to stderr so that ``--json`` output stays parseable."""
    click.echo(click.style(f"warning: {text}", fg="yellow"), err=True)


_QUIET = [os.environ.get("HPCANNOTATE_QUIET", "") not in ("", "0")]
_STARTED = [time.monotonic()]


def set_quiet(quiet: bool) -> None:
    """``hpcannotate --quiet`` (or HPCANNOTATE_QUIET=1): no progress lines (warnings and errors still)."""
    _QUIET[0] = quiet or _QUIET[0]


def progress(text: str) -> None:
    """A step of long work (build, probe, collection apply) on stderr, with the time since the command
    started: on a terminal and in CI logs and pipes alike, so a slow step shows where the time goes."""
    if _QUIET[0]:
        return
    elapsed = time.monotonic() - _STARTED[0]
    click.echo(click.style(f"[{elapsed:6.1f}s] {text}", dim=True), err=True)


def status(text: str) -> None:
    """A short note for a person watching (a file written): on a terminal only, and not with --quiet."""
    if sys.stderr.isatty() and not _QUIET[0]:
        click.echo(click.style(text, dim=True), err=True)
