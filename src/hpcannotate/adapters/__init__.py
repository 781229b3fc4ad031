"""Recipe adapters, one per format, all behind ``base.Adapter``.

Adapters are imported on demand: looking up the format of a path should not
import hpccm or EasyBuild.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from ..errors import InputError
from .base import Adapter, Inference, InferOptions

# format name -> "module:class"
ADAPTERS: dict[str, str] = {
    "hpccm": "hpcannotate.adapters.hpccm:HpccmAdapter",
    "spack": "hpcannotate.adapters.spack:SpackAdapter",
    "easybuild": "hpcannotate.adapters.easybuild:EasyBuildAdapter",
}

__all__ = ["ADAPTERS", "Adapter", "InferOptions", "Inference", "adapter", "detect_format"]


def adapter(name: str) -> Adapter:
    try:
        module_name, _, cls_name = ADAPTERS[name].partition(":")
    except KeyError:
        raise InputError(f"unknown recipe format {name!r} (one of: {', '.join(ADAPTERS)})") from None
    return getattr(import_module(module_name), cls_name)()


def detect_format(path: Path, formats: list[str] | None = None) -> str | None:
    """The format of a recipe file, by asking each adapter (of ``formats``); None when none claims it."""
    for name in formats or ADAPTERS:
        if adapter(name).detect(path):
            return name
    return None
