"""Where hpcannotate keeps what it can make again: bases, unpacked archives, probed layers.

``HPCANNOTATE_CACHE``, else ``$XDG_CACHE_HOME/hpcannotate``, else ``~/.cache/hpcannotate``. A module
of its own, below everything that caches, so reading the location imports nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("HPCANNOTATE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hpcannotate"
    )
    return Path(base)
