"""Whether a login shell in an image loads /etc/profile.d: the one check that reads layers.

A CMD of ``sh -l`` promises that the application's environment (``/etc/profile.d/*.sh``)
loads, but that holds only when the image has an ``/etc/profile`` that sources profile.d:
busybox and scratch-based images have none. The file lives in a layer, so the layers are
streamed (``probe.layers``: bounded memory, only /etc/profile kept) and the claim is made
only from what the file says. ``check`` does this for local images (OCI layouts, archives)
and, with ``--layers``, for registry images.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROFILE = "etc/profile"
PROFILE_LIMIT = 64 * 1024
SOURCES_PROFILE_D = re.compile(r"/etc/profile\.d\b")


class _ProfileOnly:
    """Keep /etc/profile (its first 64 KiB), count nothing else."""

    def limit(self, path: str) -> int | None:
        return PROFILE_LIMIT if path.strip("/") == PROFILE else None


@dataclass(frozen=True)
class LoginProfile:
    """What /etc/profile in an image does for a login shell."""

    loads: bool
    reason: str


def judge_profile(text: str | None, link: str | None = None) -> LoginProfile:
    """The verdict from /etc/profile's text (None: the image has no /etc/profile)."""
    if link is not None:
        return LoginProfile(False, f"/etc/profile is a link to {link}, which check does not follow")
    if text is None:
        return LoginProfile(False, "the image has no /etc/profile, so a login shell loads nothing from "
                                   "/etc/profile.d")
    if SOURCES_PROFILE_D.search(text):
        return LoginProfile(True, "/etc/profile sources /etc/profile.d")
    return LoginProfile(False, "/etc/profile does not source /etc/profile.d")


def login_profile(pull: str, platform: str, options: object | None = None) -> LoginProfile:
    """Read the layers of ``pull`` (one image: ``oci:PATH@digest``, ``repo@sha256:...``) for /etc/profile."""
    from hpcannotate.cache import cache_dir
    from hpcannotate.image.probe.layers import apply_layer
    from hpcannotate.image.probe.sources import open_source
    from hpcannotate.image.probe.tree import ImageTree

    cache = cache_dir()
    (cache / "scratch").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="check-", dir=cache / "scratch"))
    try:
        with open_source(pull, platform=platform, cache=cache, options=options) as source:
            tree = ImageTree()
            numbers = iter(range(1, 1 << 30))
            for index, layer in enumerate(source.layers):
                with source.open_layer(layer) as raw:
                    apply_layer(tree, raw, digest=layer.digest, index=index, wanted=_ProfileOnly(),
                                scratch=scratch, counter=lambda: next(numbers), where=source.reference)
            node = tree.lookup("/" + PROFILE, follow_last=False)
            if node is not None and node.link is not None:
                return judge_profile(None, node.link)
            return judge_profile(tree.read_text("/" + PROFILE))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
