"""An overall deadline per registry request, on top of requests' per-read timeouts.

Why: a read timeout only limits the wait for the *next* byte. A registry that sends one byte every
five seconds never trips a 60 s read timeout and keeps ``inspect`` running forever. requests has no
overall deadline, so a watchdog timer shuts the request's socket down when the deadline passes; the
blocked read then fails at once and the client reports which request ran out of time.

The connection classes below tell the watchdog of the current thread which socket a request uses
(a pooled connection is reused, so they report it on every request, not only on connect).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..errors import InputError

DEADLINE_ENV = "HPCANNOTATE_REQUEST_DEADLINE"
DEFAULT_DEADLINE = 120.0  # seconds for one request's answer; a streamed blob gets this per chunk

_current = threading.local()


def default_deadline() -> float:
    """Seconds from ``$HPCANNOTATE_REQUEST_DEADLINE`` (a positive number), else DEFAULT_DEADLINE."""
    text = os.environ.get(DEADLINE_ENV, "").strip()
    if not text:
        return DEFAULT_DEADLINE
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise InputError(f"${DEADLINE_ENV}={text!r}: expected a positive number of seconds")
    return value


class Watchdog:
    """Shuts the sockets of one request down when its deadline passes; ``expired`` says it did.

    One timer thread per request; ``arm`` only moves the due time, so re-arming per chunk of a
    streamed blob costs a clock read, not a thread.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self._connections: list[HTTPConnection] = []
        self._due = 0.0
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._done = False

    def arm(self) -> None:
        """(Re)start the countdown: at the start of a request, and before each chunk of a streamed body."""
        with self._wake:
            self._due = time.monotonic() + self.seconds
            if self._thread is None and not self._done:
                self._thread = threading.Thread(target=self._watch, name="hpcannotate-deadline", daemon=True)
                self._thread.start()

    def cancel(self) -> None:
        with self._wake:
            self._done = True
            self._connections.clear()
            self._wake.notify_all()

    def watch(self, connection: HTTPConnection) -> None:
        with self._wake:
            if connection not in self._connections:
                self._connections.append(connection)

    def _watch(self) -> None:
        with self._wake:
            while not self._done:
                left = self._due - time.monotonic()
                if left <= 0:
                    self._fire()
                    return
                self._wake.wait(left)

    def _fire(self) -> None:
        self.expired = True
        for connection in self._connections:
            sock = getattr(connection, "sock", None)
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read in the requesting thread

    def __enter__(self) -> Watchdog:
        _current.watchdog = self
        self.arm()
        return self

    def __exit__(self, *exc: object) -> None:
        _current.watchdog = None


def _report(connection: HTTPConnection) -> None:
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(connection)


class _Watched:
    """Mixed into urllib3's connections: each request reports its connection to the thread's watchdog."""

    def connect(self) -> None:
        _report(self)  # type: ignore[arg-type]
        super().connect()  # type: ignore[misc]

    def request(self, *args, **kwargs):
        _report(self)  # type: ignore[arg-type]
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections the watchdog can shut down (direct and through a proxy)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy, **kwargs):
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


class ArmingReader:
    """A file sent as a request body that re-arms the watchdog on every read.

    An upload must keep moving, not finish, within the deadline: a 1 GiB layer on a slow link is
    fine, a stalled one is not. ``fileno``/``tell``/``seek`` let requests size the body as before
    (Content-Length, not chunked).
    """

    def __init__(self, raw, watchdog: Watchdog):
        self._raw = raw
        self._watchdog = watchdog

    def read(self, size: int = -1) -> bytes:
        self._watchdog.arm()
        return self._raw.read(size)

    def __getattr__(self, name: str):
        return getattr(self._raw, name)  # mode, name, ...: what requests asks of a file

    def fileno(self) -> int:
        return self._raw.fileno()

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def close(self) -> None:
        self._raw.close()
