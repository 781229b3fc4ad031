"""Every platform entry of many references, as a host-side consumer sees them, read concurrently.

``match`` ranks dozens or hundreds of candidate images before anything is pulled, so it
reads only what ``inspect`` reads (the index, its descriptors, each child manifest and each
image config for its labels; never a layer) and reads many references at once: a thread
pool with one ``RegistryClient`` per thread (a client, its ``requests`` session and its token
cache are not thread-safe). One image's annotations are merged as a runtime would see them,
lowest first: the index's own annotations (shared defaults), the config labels (baked in
at build time), the manifest annotations, and the index descriptor's annotations (the most
specific, what a client reads before choosing a child).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.errors import HpcAnnotateError
from hpcannotate.model.annotations import Annotations, Problem
from hpcannotate.model.provenance import Layer, Provenance

if TYPE_CHECKING:
    from hpcannotate.image.inspect import ImageView, Inspection
    from hpcannotate.registry.client import RegistryClient

DEFAULT_WORKERS = 16


@dataclass(frozen=True)
class Transport:
    """How to reach registries: the options every registry command shares."""

    authfile: Path | None = None
    tls_verify: bool = True
    plain_http: bool | None = None

    def client(self) -> RegistryClient:
        from hpcannotate.registry.client import RegistryClient

        return RegistryClient(authfile=self.authfile, insecure=not self.tls_verify, plain_http=self.plain_http)


@dataclass
class PlatformEntry:
    """One runnable image of a reference (the reference itself, or one child of its index)."""

    reference: str  # what the user named
    pull: str  # a reference that names exactly this image (repo@sha256:... for an index child)
    digest: str
    platform: dict | None
    annotations: Annotations
    problems: list[Problem] = field(default_factory=list)
    config_digest: str | None = None
    index_digest: str | None = None
    config: dict | None = field(default=None, repr=False)  # as inspect read it (None: not read yet)

    @property
    def platform_text(self) -> str:
        from hpcannotate.registry.platform import platform_text

        return platform_text(self.platform)


@dataclass
class ImageRead:
    """What one reference holds, or why it could not be read."""

    reference: str
    digest: str | None = None
    media_type: str | None = None
    is_index: bool = False
    entries: list[PlatformEntry] = field(default_factory=list)
    error: str | None = None
    requests: int = 0
    bytes_received: int = 0
    seconds: float = 0.0


def entries_of(found: Inspection) -> list[PlatformEntry]:
    """The runnable images of an inspection (attestations and nested indexes left out), annotations merged."""
    from hpcannotate.registry.reference import parse_reference

    base = parse_reference(found.reference)
    index_layer = None
    if found.is_index and found.annotations:
        index_layer = Annotations.from_mapping(found.annotations, Provenance(Layer.BASE_IMAGE, "index"))
    entries = []
    for view in found.images:
        if view.kind != "image":
            continue
        merged = merged_annotations(view, index_layer)
        pull = str(base.with_digest(view.digest)) if found.is_index else found.reference
        entries.append(PlatformEntry(found.reference, pull, view.digest, view.platform, merged,
                                     list(view.problems), view.config_digest,
                                     found.digest if found.is_index else None, view.config))
    return entries


def merged_annotations(view: ImageView, index_layer: Annotations | None) -> Annotations:
    """Index < labels < manifest < descriptor (``ImageView.effective`` holds the last three)."""
    effective = view.effective()
    return index_layer.merge(effective) if index_layer is not None else effective


def read_one(ref: str, client: RegistryClient | None, transport: Transport = Transport(), *,
             configs: str = "always") -> ImageRead:
    """One reference; errors a user can fix are returned in ``error``, not raised.

    ``configs="needed"``: an image's config is read only when its manifest annotations lack a
    mandatory key (see ``inspect``); ``image_config`` fetches it later if a command needs it.
    """
    from hpcannotate.image.inspect import inspect

    before = (client.stats.requests, client.stats.bytes_received) if client else (0, 0)
    start = time.perf_counter()
    result = ImageRead(ref)
    try:
        found = inspect(ref, client=client, authfile=transport.authfile, tls_verify=transport.tls_verify,
                        plain_http=transport.plain_http, configs=configs)
    except HpcAnnotateError as exc:
        result.error = str(exc)
    else:
        result.reference = found.reference
        result.digest, result.media_type, result.is_index = found.digest, found.media_type, found.is_index
        result.entries = entries_of(found)
        if not result.entries:
            result.error = f"{found.reference}: holds no runnable image (only attestations or nested indexes)"
    result.seconds = time.perf_counter() - start
    if client is not None:
        result.requests = client.stats.requests - before[0]
        result.bytes_received = client.stats.bytes_received - before[1]
    return result


def read_many(
    refs: Sequence[str],
    transport: Transport = Transport(),
    *,
    workers: int = DEFAULT_WORKERS,
    client_factory: Callable[[], RegistryClient] | None = None,
    configs: str = "always",
) -> list[ImageRead]:
    """Read every reference, ``workers`` at a time; results in the order of ``refs``.

    Each worker thread makes its own client (``client_factory``, default ``transport.client()``)
    on first use; all are closed before returning. OCI layouts are read from disk without one.
    """
    from hpcannotate.registry.reference import parse_reference

    factory = client_factory or transport.client
    local = threading.local()
    clients: list[RegistryClient] = []
    lock = threading.Lock()

    def client_for_thread() -> RegistryClient:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = factory()
            with lock:
                clients.append(client)
        return client

    def job(ref: str) -> ImageRead:
        try:
            is_layout = parse_reference(ref).is_layout
        except HpcAnnotateError as exc:
            return ImageRead(ref, error=str(exc))
        return read_one(ref, None if is_layout else client_for_thread(), transport, configs=configs)

    try:
        if len(refs) <= 1 or workers <= 1:
            return [job(ref) for ref in refs]
        with ThreadPoolExecutor(max_workers=min(workers, len(refs))) as pool:
            return list(pool.map(job, refs))
    finally:
        for client in clients:
            client.close()


def image_config(ref: str, entry: PlatformEntry, transport: Transport = Transport()) -> dict:
    """The config of one entry (Entrypoint, Cmd, Env, WorkingDir, history): one small blob, no layer.

    The one ``inspect`` already read when there is one; fetched otherwise.
    """
    import json

    from hpcannotate.registry.repository import open_repository

    if entry.config is not None:
        return entry.config
    if not entry.config_digest:
        raise HpcAnnotateError(f"{entry.pull}: the manifest names no image config")
    repo = open_repository(ref, authfile=transport.authfile, tls_verify=transport.tls_verify,
                           plain_http=transport.plain_http)
    try:
        raw = repo.config(entry.config_digest)
    finally:
        repo.close()
    try:
        data = json.loads(raw)
    except ValueError:
        raise HpcAnnotateError(f"{entry.pull}: config {entry.config_digest} is not JSON") from None
    if not isinstance(data, dict):
        raise HpcAnnotateError(f"{entry.pull}: config {entry.config_digest} is not a JSON object")
    return data
