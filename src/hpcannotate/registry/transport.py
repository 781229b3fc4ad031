"""What the registry client sees of HTTP, whichever path sent the request: answers and failures.

Why its own small types: most commands send only small bodiless requests (the keep-alive path in
``lean.py``), and importing requests with urllib3 costs more than such a command's whole work.
requests is imported only when a request needs it (uploads, streamed blobs, proxies, redirects);
its answers and exceptions are turned into these at that one boundary (``heavy.py``), so the
client's retry, deadline and error-message logic is written once.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from urllib.parse import urlsplit

LOGGER = "hpcannotate.registry"


def debug(message: str, *args: object) -> None:
    """A debug line of the registry client, for an application that configured ``logging``.

    Why not a module-level logger: importing ``logging`` (with traceback and textwrap) is a tenth of a
    short command's own start-up, and until something has imported and configured it no handler
    exists that would print a debug line (Python's last-resort handler shows warnings and above).
    """
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(LOGGER).debug(message, *args)


def warning(message: str, *args: object) -> None:
    """A warning of the registry client: always reaches ``logging`` (stderr unless configured)."""
    import logging

    logging.getLogger(LOGGER).warning(message, *args)


class TransportError(Exception):
    """The request got no complete answer. ``args[0]`` is the underlying exception (for reasons)."""


class ConnectFailed(TransportError):
    """No connection, or it broke before an answer (refused, reset, closed, name not resolved)."""


class TLSFailure(ConnectFailed):
    """The TLS handshake or certificate verification failed: retrying will not help."""


class ConnectTimeout(ConnectFailed):
    """No connection within the connect timeout."""


class ReadTimeout(TransportError):
    """Connected, but no byte of the answer within the read timeout."""


class CutOff(TransportError):
    """The answer stopped in the middle of its body."""


def read_limited(chunks: Iterable[bytes], limit: int, count: Callable[[int], None]) -> tuple[bytes, bool]:
    """A body from its chunks, at most ``limit`` bytes of it, and whether that was all of it.

    Both paths read answers whole where they arrive (inside the request's deadline); ``count``
    gets each chunk's size for the client's byte count.
    """
    kept, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        count(len(chunk))
        if size > limit:
            kept.append(chunk[: len(chunk) - (size - limit)])
            return b"".join(kept), False
        kept.append(chunk)
    return b"".join(kept), True


def loggable(url: str) -> str:
    """A URL without its query (upload state and token-server parameters stay out of logs)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class Headers(MutableMapping):
    """Case-insensitive header names, keeping the spelling the server used (like requests')."""

    def __init__(self, items=()) -> None:
        self._store: dict[str, tuple[str, str]] = {}
        for name, value in dict(items).items() if isinstance(items, MutableMapping) else items:
            self[name] = value

    def __setitem__(self, name: str, value: str) -> None:
        self._store[name.lower()] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._store[name.lower()][1]

    def __delitem__(self, name: str) -> None:
        del self._store[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def parse_links(value: str) -> dict[str, dict[str, str]]:
    """``Link: <url>; rel="next", ...`` as requests' ``Response.links`` gives it: keyed by rel (else url)."""
    strip = " '\""
    links: dict[str, dict[str, str]] = {}
    value = (value or "").strip(strip)
    if not value:
        return links
    for part in re.split(", *<", value):
        url, _, params = part.partition(";")
        link = {"url": url.strip("<> '\"")}
        for param in params.split(";") if params else []:
            key, sep, val = param.partition("=")
            if not sep or "=" in val:
                break
            link[key.strip(strip)] = val.strip(strip)
        links[link.get("rel") or link["url"]] = link
    return links


class Response:
    """An answer read whole: the attributes of ``requests.Response`` that the client uses."""

    def __init__(self, status_code: int, reason: str, headers: Headers, content: bytes, url: str) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self._content = content
        self._content_consumed = True
        self.url = url
        self.history: list[Response] = []

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def links(self) -> dict[str, dict[str, str]]:
        return parse_links(self.headers.get("Link", ""))

    def json(self):
        return json.loads(self._content)

    def iter_content(self, chunk_size: int = 1) -> Iterator[bytes]:
        for start in range(0, len(self._content), max(1, chunk_size)):
            yield self._content[start:start + chunk_size]

    def close(self) -> None:
        """Nothing to release: the body was read and the connection went back to its thread."""
