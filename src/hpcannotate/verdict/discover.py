"""Crawl a registry into a catalog: every platform entry of every tag, with its annotations.

Why a crawl and not ``match`` on a list: a site's users do not know the references; the
report (``report.py``) and ``resolve`` need every image the registry holds, and a nightly job
must not re-read ten thousand manifests that did not change.

What is read: ``/v2/_catalog`` (``Link`` pages), ``tags/list`` of each repository under the
prefix, then each tag as ``inspect`` reads it (index, child manifests, configs; never a layer),
``workers`` at a time with one client per thread. Incremental: with the previous catalog, a
tag is first asked with one ``HEAD`` (its digest, no body); when the digest is one the previous
catalog (or this run) already read, its entries are reused as they are: a manifest is
addressed by its content, so the same digest means the same index, children and configs.
Only what the crawl keeps goes into the catalog (annotations, platform, digests): configs are
dropped as soon as their labels are merged, so memory grows with the catalog, not the bytes read.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.model.keynames import APP_VERSION, OCI_VERSION

if TYPE_CHECKING:
    from hpcannotate.image.read import ImageRead, Transport
    from hpcannotate.registry.client import RegistryClient

CATALOG_FORMAT = "hpcannotate-catalog/1"
APP_VERSION_KEYS = (APP_VERSION, OCI_VERSION)
Progress = Callable[[int, int, int], None]  # (done, total, reused)


@dataclass
class CrawlStats:
    """What one crawl did: the bench and the command's summary print it."""

    repositories: int = 0
    references: int = 0
    entries: int = 0
    reused: int = 0
    read: int = 0
    errors: int = 0
    requests: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Catalog:
    """The crawl's result; ``images`` are records as ``image_record`` writes them."""

    source: str
    images: list[dict] = field(default_factory=list)
    generated: str = ""
    stats: CrawlStats = field(default_factory=CrawlStats)

    def to_json(self) -> dict:
        return {"format": CATALOG_FORMAT, "source": self.source, "generated": self.generated,
                "stats": self.stats.to_json(), "images": self.images}

    def save(self, path: Path) -> None:
        """Written next to ``path`` and renamed over it: a reader never sees half a catalog."""
        write_atomic(path, json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Catalog:
        where = str(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{where}: cannot read ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise InputError(f"{where}: not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != CATALOG_FORMAT:
            raise InputError(f"{where}: not an hpcannotate catalog (expected format {CATALOG_FORMAT!r}; "
                             "write one with `hpcannotate discover`)")
        images = data.get("images")
        if not isinstance(images, list) or not all(isinstance(i, dict) and isinstance(i.get("reference"), str)
                                                   for i in images):
            raise InputError(f"{where}: images: expected a list of records with a reference")
        return cls(str(data.get("source") or ""), images, str(data.get("generated") or ""))

    def by_digest(self) -> dict[str, dict]:
        return {i["digest"]: i for i in self.images if i.get("digest") and not i.get("error")}

    def by_reference(self) -> dict[str, dict]:
        return {i["reference"]: i for i in self.images}


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def write_atomic(path: Path, text: str) -> None:
    """Written beside ``path`` and renamed over it, with the umask's mode (a site serves these files).

    The temporary name is unique per process and thread, created exclusively: no ``mkstemp`` and
    ``chmod`` per file, which were a third of the time a report of 10,000 pages spent writing.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    created = False
    try:
        try:
            fd = os.open(tmp, _CREATE, 0o666)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, _CREATE, 0o666)
        except FileExistsError:  # left by a process that died with this pid: never followed, replaced
            tmp.unlink()
            fd = os.open(tmp, _CREATE, 0o666)
        created = True
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if created:
            tmp.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def split_target(text: str) -> tuple[str, str]:
    """``REGISTRY[/PREFIX]`` -> (registry, prefix); the registry part must look like a host."""
    from hpcannotate.registry.reference import parse_reference

    text = text.strip().rstrip("/")
    host, _, prefix = text.partition("/")
    if not host or ("." not in host and ":" not in host and host != "localhost"):
        raise InputError(f"{text!r}: expected REGISTRY[/PREFIX] with a registry host (registry.example.org, "
                         "127.0.0.1:5000)")
    parse_reference(f"{host}/{prefix or 'x'}:latest")  # checks host, port and the prefix's form
    return host, prefix


def in_prefix(repository: str, prefix: str) -> bool:
    return not prefix or repository == prefix or repository.startswith(prefix + "/")


def image_record(read: ImageRead, repository: str, tag: str) -> dict:
    """What the catalog keeps of one tag: digests, platform, merged annotations, problems."""
    from hpcannotate.verdict.match import app_of
    from hpcannotate.verdict.resolve import pinned

    record: dict = {"reference": read.reference, "repository": repository, "tag": tag, "digest": read.digest,
                    "mediaType": read.media_type, "index": read.is_index, "entries": [], "error": read.error}
    for entry in read.entries:
        values = dict(entry.annotations)
        record["entries"].append({
            "digest": entry.digest,
            "pull": pinned(entry),
            "platform": entry.platform,
            "app": app_of(values),
            "version": next((values[k] for k in APP_VERSION_KEYS if values.get(k)), None),
            "annotations": values,
            "problems": [p.to_dict() for p in entry.problems],
            "run": run_facts(entry),
        })
    return record


def run_facts(entry) -> dict:
    """What an EDF needs from the config (kept instead of the config): workdir, entrypoint wanted."""
    from hpcannotate.verdict.edf import wants_entrypoint

    if entry.config is None:
        return {}
    inner = entry.config.get("config") or {}
    facts: dict = {"entrypoint": wants_entrypoint(entry, entry.config)}
    if inner.get("WorkingDir"):
        facts["workdir"] = str(inner["WorkingDir"])
    return facts


def reuse(previous: dict, reference: str, tag: str) -> dict:
    """A record read before (maybe under another tag or repository): the same content under this name."""
    from hpcannotate.registry.reference import parse_reference

    base = parse_reference(reference)
    record = {**previous, "reference": reference, "repository": base.repository, "tag": tag, "reused": True}
    record["entries"] = [{**e, "pull": str(base.with_digest(e["digest"]))} for e in previous.get("entries") or []]
    return record


class _Clients:
    """One ``RegistryClient`` per worker thread (a client and its session are not thread-safe)."""

    def __init__(self, transport: Transport):
        self._transport = transport
        self._local = threading.local()
        self._lock = threading.Lock()
        self.all: list[RegistryClient] = []

    def get(self) -> RegistryClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._transport.client()
            with self._lock:
                self.all.append(client)
        return client

    def close(self, stats: CrawlStats) -> None:
        for client in self.all:
            stats.requests += client.stats.requests
            stats.bytes_received += client.stats.bytes_received
            stats.bytes_sent += client.stats.bytes_sent
            client.close()


def discover(target: str, transport: Transport, *, previous: Catalog | None = None, workers: int = 16,
             progress: Progress | None = None) -> Catalog:
    """Crawl ``REGISTRY[/PREFIX]``; ``previous`` makes it incremental (see the module's doc)."""
    from hpcannotate.image.read import read_one
    from hpcannotate.registry.auth import RegistryError

    host, prefix = split_target(target)
    start = time.perf_counter()
    catalog = Catalog(f"{host}/{prefix}" if prefix else host)
    stats = catalog.stats
    known: dict[str, dict] = previous.by_digest() if previous else {}
    lock = threading.Lock()
    clients = _Clients(transport)
    try:
        try:
            repositories = [r for page in clients.get().list_repositories(host) for r in page if in_prefix(r, prefix)]
        except RegistryError as exc:
            raise HpcAnnotateError(f"{target}: cannot list repositories ({exc})") from None
        stats.repositories = len(repositories)

        def tags_of(repository: str) -> tuple[str, list[str], str | None]:
            from hpcannotate.registry.reference import Reference

            try:
                return repository, sorted(clients.get().list_tags(Reference(host, repository))), None
            except RegistryError as exc:
                return repository, [], str(exc)

        done = reused = 0
        records: list[dict] = []

        def crawl(job: tuple[str, str]) -> dict:
            nonlocal done, reused
            repository, tag = job
            reference = f"{host}/{repository}:{tag}"
            client = clients.get()
            record = None
            if previous is not None:
                try:
                    head = client.head_manifest(reference)
                except RegistryError as exc:
                    head, record = None, {"reference": reference, "repository": repository, "tag": tag,
                                          "digest": None, "entries": [], "error": str(exc)}
                if head is not None:
                    with lock:
                        seen = known.get(head.digest)
                    if seen is not None:
                        record = reuse(seen, reference, tag)
            if record is None:
                record = image_record(read_one(reference, client, transport), repository, tag)
            with lock:
                if record.get("reused"):
                    reused += 1
                elif record.get("digest") and not record.get("error"):
                    known[record["digest"]] = record
                done += 1
                if progress is not None:
                    progress(done, len(jobs), reused)
            return record

        jobs: list[tuple[str, str]] = []
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for repository, tags, error in pool.map(tags_of, repositories):
                if error:
                    records.append({"reference": f"{host}/{repository}", "repository": repository, "tag": None,
                                    "digest": None, "entries": [], "error": error})
                jobs.extend((repository, t) for t in tags)
            if progress is not None:
                progress(0, len(jobs), 0)
            records.extend(pool.map(crawl, jobs))
    finally:
        clients.close(stats)
    for record in records:
        record.pop("reused", None)
    catalog.images = records
    stats.references = len(jobs)
    stats.reused = reused
    stats.read = len(jobs) - reused
    stats.errors = sum(1 for r in records if r.get("error"))
    stats.entries = sum(len(r.get("entries") or []) for r in records)
    stats.seconds = round(time.perf_counter() - start, 3)
    catalog.generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return catalog


class ProgressBar:
    """A bar on a terminal; on a log (not a tty), one line every ``every`` seconds and at the end."""

    def __init__(self, label: str, stream=None, every: float = 5.0):
        self.label, self.stream, self.every = label, stream or sys.stderr, every
        self.tty = self.stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, done: int, total: int, reused: int) -> None:
        now = time.monotonic()
        end = total > 0 and done >= total
        if self.tty:
            width = 30
            filled = width * done // total if total else width
            text = f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
            if reused:
                text += f" ({reused} unchanged)"
            self.stream.write(text + ("\n" if end else ""))
            self.stream.flush()
        elif end or now - self._last >= self.every or done == 0:
            self._last = now
            line = f"{self.label}: {done}/{total} references, {reused} unchanged, {now - self._start:.1f} s"
            self.stream.write(line + "\n")
            self.stream.flush()


def entries(catalog: Catalog) -> Iterable[tuple[dict, dict]]:
    """Every (image record, platform entry) of a catalog, records with errors left out."""
    for image in catalog.images:
        if image.get("error"):
            continue
        for entry in image.get("entries") or []:
            yield image, entry
