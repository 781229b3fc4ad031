"""User-facing errors.

Anything raised as ``HpcAnnotateError`` is a problem with the user's input or
environment: the CLI prints its message on one line and exits 2. Any other
exception is a bug and shows a traceback only with ``--debug``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NOT_COMPLIANT = 1
EXIT_ERROR = 2


class HpcAnnotateError(Exception):
    """A failure the user can fix; ``str()`` is one line that names the file/key/reference."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(" ".join(message.split()) if "\n" in message else message)
        # A traceback from a worker process, shown only with --debug.
        self.detail = detail


class IsolatedError(HpcAnnotateError):
    """Evaluating a recipe in its worker process failed, timed out or crashed."""


class InputError(HpcAnnotateError):
    """A file or argument that cannot be read or does not have the expected shape."""
