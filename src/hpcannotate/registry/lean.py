"""A keep-alive HTTP/1.1 path on ``http.client`` for small requests (manifests, configs, lists, tags).

Why: ranking or crawling hundreds of images is hundreds of small GETs and HEADs. Through
requests each costs ~2.5 ms of CPU on top of the round trip (request preparation, hooks,
adapters, urllib3's pool, header merging), several times what the registry spends answering;
with the GIL, 16 worker threads then wait on each other rather than on the network. This path
sends the same request with the standard library's connection class and hands back the
``transport.Response`` the rest of the client reads (requests' answers look the same to it), so
retries, authentication, deadlines and byte counts are unchanged.

It only takes what it can do exactly as requests would: a body already in memory (a manifest
PUT) or none, no proxy for the URL, no redirect (a 3xx answer is handed back to requests, which
follows it), an answer read whole. Everything else (uploads, streamed blobs, proxies, client certificates) goes through
requests. Connections are per thread and per origin; an idle one the server has closed is
noticed before reuse (as urllib3 does), so a stale socket never costs a retry.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from hpcannotate.registry.deadline import Watchdog
from hpcannotate.registry.transport import (
    ConnectFailed,
    ConnectTimeout,
    CutOff,
    Headers,
    ReadTimeout,
    Response,
    TLSFailure,
    read_limited,
)

CHUNK = 1024 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
LEAN_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})


class TooLarge(Exception):
    """The answer is longer than the caller's limit (the client turns it into its own error)."""


class _Connection(http.client.HTTPConnection):
    """Connects within the connect timeout, then reads with the read timeout (requests' pair)."""

    def __init__(self, host: str, port: int | None, timeouts: tuple[float, float]):
        super().__init__(host, port, timeout=timeouts[0])
        self.read_timeout = timeouts[1]

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _TLSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, timeouts: tuple[float, float], context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeouts[0], context=context)
        self.read_timeout = timeouts[1]

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


_contexts: dict[bool | str, ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS settings requests would use: its CA bundle (certifi's) or the given one, or no checks."""
    with _contexts_lock:
        context = _contexts.get(verify)
        if context is None:
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                if verify is True:
                    import certifi  # requests' own CA bundle (DEFAULT_CA_BUNDLE_PATH)

                    bundle = certifi.where()
                else:
                    bundle = verify
                if os.path.isdir(bundle):
                    context = ssl.create_default_context(capath=bundle)
                else:
                    context = ssl.create_default_context(cafile=bundle)
            _contexts[verify] = context
        return context


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle keep-alive socket that is readable has been closed (or spoken to) by the server."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class LeanTransport:
    """Per-thread keep-alive connections; ``send`` answers None for what it leaves to requests."""

    def __init__(self, timeouts: tuple[float, float]):
        self.timeouts = timeouts
        self._local = threading.local()

    def usable(self, method: str, body: object, settings: dict) -> bool:
        """Requests whose body (if any) is already in memory: a manifest PUT, a bodiless POST."""
        return method in LEAN_METHODS and (body is None or isinstance(body, bytes)) \
            and not settings.get("proxies") and not settings.get("cert")

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        verify: bool | str,
        read: int,
        error_limit: int,
        watchdog: Watchdog,
        count_received: Callable[[int], None],
    ) -> Response | None:
        """One request; None when the answer is a redirect (its body already read) for requests to follow.

        A successful answer longer than ``read`` raises TooLarge; an error answer is kept to its
        first ``error_limit`` bytes (enough for the registry's error message), as requests' path does.
        """
        parts = urlsplit(url)
        connection = self._connection(parts.scheme, parts.hostname or "", parts.port, verify)
        watchdog.watch(connection)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(method, target, body=body, headers=headers)
            answer = connection.getresponse()
            limit = read if answer.status < 300 else min(read, error_limit)
            body, whole = read_limited(_chunks(answer), limit, count_received)  # a HEAD too: its empty body
        except BaseException as exc:
            connected = connection.sock is not None
            self._forget(connection)
            raise _transport_error(exc, connected) from None
        if not whole:
            self._forget(connection)  # the rest of the answer is still on the socket
            if answer.status < 300:
                raise TooLarge
        elif answer.will_close:
            self._forget(connection)
        if answer.status in REDIRECTS:
            return None
        return _response(answer, body, url)

    def close(self) -> None:
        for connection in getattr(self._local, "connections", {}).values():
            connection.close()
        self._local.connections = {}

    def _connection(self, scheme: str, host: str, port: int | None, verify: bool | str) -> http.client.HTTPConnection:
        connections: dict = getattr(self._local, "connections", None) or {}
        self._local.connections = connections
        key = (scheme, host, port, verify if scheme == "https" else None)
        connection = connections.get(key)
        if connection is not None and _dropped(connection):
            connection.close()
            connection = None
        if connection is None:
            if scheme == "https":
                connection = _TLSConnection(host, port, self.timeouts, tls_context(verify))
            else:
                connection = _Connection(host, port, self.timeouts)
            connections[key] = connection
        return connection

    def _forget(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        connections = getattr(self._local, "connections", {})
        for key, value in list(connections.items()):
            if value is connection:
                del connections[key]


def _chunks(answer: http.client.HTTPResponse) -> Iterator[bytes]:
    while chunk := answer.read(CHUNK):
        yield chunk
    if answer.length:  # http.client's sized reads return short instead of raising
        raise http.client.IncompleteRead(b"", answer.length)


def _response(answer: http.client.HTTPResponse, body: bytes, url: str) -> Response:
    """The answer as the client reads it: status, headers (repeats joined, as urllib3 does), body."""
    headers = Headers()
    for name, value in answer.getheaders():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Response(answer.status, answer.reason, headers, body, url)


def _transport_error(exc: BaseException, connected: bool) -> BaseException:
    """The transport error for what http.client, socket or ssl raised, wrapping it so reasons stay readable."""
    if isinstance(exc, ssl.SSLError):
        return TLSFailure(exc)
    if isinstance(exc, socket.timeout):
        return ReadTimeout(exc) if connected else ConnectTimeout(exc)
    if isinstance(exc, http.client.IncompleteRead):
        return CutOff(exc)
    if isinstance(exc, (OSError, http.client.HTTPException)):
        return ConnectFailed(exc)
    return exc
