"""Where hpcannotate keeps what it can make again: local base images, unpacked archives, scratch space.

One function, at the bottom of the package, because readers (archives, layer checks), the
registry client (compression scratch) and the builders all use it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$HPCANNOTATE_CACHE``, else ``$XDG_CACHE_HOME/hpcannotate``, else ``~/.cache/hpcannotate``."""
    base = os.environ.get("HPCANNOTATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hpcannotate"
    )
    return Path(base)
