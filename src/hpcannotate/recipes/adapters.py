"""Recipe adapters, one per format, all behind ``base.Adapter``.

Which adapter reads which format is registered with the formats, in ``hpcannotate.recipes.formats``; this
package keeps the adapters themselves. Adapters are imported on demand: looking up the format of a
path should not import hpccm or EasyBuild.
"""

from __future__ import annotations

from pathlib import Path

from hpcannotate.errors import InputError
from hpcannotate.recipes import formats as _formats
from hpcannotate.recipes.base import Adapter, Inference, InferOptions

__all__ = ["Adapter", "InferOptions", "Inference", "adapter", "detect_format"]


def adapter(name: str) -> Adapter:
    """The adapter of the inferable format ``name``."""
    if name not in _formats.inferable():
        raise InputError(f"unknown recipe format {name!r} (one of: {', '.join(_formats.inferable())})")
    return _formats.get(name).adapter()


def detect_format(path: Path, formats: list[str] | None = None) -> str | None:
    """The format of a recipe file, by asking each inferable format (of ``formats``); None when none claims it."""
    return _formats.detect(path, formats)
