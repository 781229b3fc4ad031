"""An overall deadline per registry request, on top of requests' per-read timeouts.

Why: a read timeout only limits the wait for the *next* byte. A registry that sends one byte every
five seconds never trips a 60 s read timeout and keeps ``inspect`` running forever. requests has no
overall deadline, so a watchdog timer shuts the request's socket down when the deadline passes; the
blocked read then fails at once and the client reports which request ran out of time.

Connections tell the watchdog which socket a request uses: the keep-alive path (lean.py) directly,
requests' pooled connections (heavy.py) through ``report_connection`` on every request, since a
pooled connection is reused.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import socket
import threading
import time

from hpcannotate.errors import InputError

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


class _Scheduler:
    """One timer thread for every watchdog of the process: a heap of due times.

    A thread per request cost more CPU than a loopback request itself when ranking hundreds of
    images. Entries are lazy: ``arm`` only pushes when the watchdog has none pending, and a popped
    entry whose watchdog was re-armed later is pushed again at the new time, so re-arming per
    chunk of a streamed blob never grows the heap.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watchdog]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._count = 0
        self.stale = 0  # entries of cancelled watchdogs still in the heap

    def compact(self) -> None:
        """Drop cancelled watchdogs' entries once they are most of the heap (a long crawl stays flat)."""
        if self.stale > 1024 and self.stale * 2 > len(self._heap):
            for _, _, watchdog in self._heap:
                if watchdog.done:
                    watchdog.pending = False
            self._heap = [entry for entry in self._heap if not entry[2].done]
            heapq.heapify(self._heap)
            self.stale = 0

    def schedule(self, watchdog: Watchdog, due: float) -> None:
        """Called with the condition held (``arm``): make sure ``watchdog`` is looked at by ``due``."""
        self._count += 1
        heapq.heappush(self._heap, (due, self._count, watchdog))
        if self._thread is None or self._pid != os.getpid():  # started lazily; again in a forked child
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="hpcannotate-deadline", daemon=True)
            self._thread.start()
        elif self._heap[0][2] is watchdog:
            self._wake.notify()

    def _run(self) -> None:
        with self._wake:
            while True:
                if not self._heap:
                    self._wake.wait()
                    continue
                due, _, watchdog = self._heap[0]
                now = time.monotonic()
                if due > now:
                    self._wake.wait(due - now)
                    continue
                heapq.heappop(self._heap)
                if watchdog.done:
                    watchdog.pending = False
                    self.stale = max(0, self.stale - 1)
                elif watchdog.due > now:
                    self._count += 1
                    heapq.heappush(self._heap, (watchdog.due, self._count, watchdog))  # re-armed meanwhile
                else:
                    watchdog.pending = False
                    watchdog.fire()


_SCHEDULER = _Scheduler()


class Watchdog:
    """Shuts the sockets of one request down when its deadline passes; ``expired`` says it did.

    ``arm`` only moves the due time (a clock read under a lock), so re-arming per chunk of a
    streamed blob is cheap; one shared thread (``_Scheduler``) watches every request.
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expired = False
        self.done = False
        self.pending = False
        self.due = 0.0
        self._connections: list = []

    def arm(self) -> None:
        """(Re)start the countdown: at the start of a request, and before each chunk of a streamed body."""
        with _SCHEDULER._wake:
            self.due = time.monotonic() + self.seconds
            if not self.pending and not self.done:
                self.pending = True
                _SCHEDULER.schedule(self, self.due)

    def cancel(self) -> None:
        with _SCHEDULER._wake:
            if self.pending and not self.done:
                _SCHEDULER.stale += 1
            self.done = True
            self._connections.clear()
            _SCHEDULER.compact()

    def watch(self, connection) -> None:
        """``connection``: anything with a ``sock`` attribute (urllib3's and http.client's connections)."""
        with _SCHEDULER._wake:
            if connection not in self._connections:
                self._connections.append(connection)

    def fire(self) -> None:
        """Called by the scheduler with its lock held."""
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


def report_connection(connection) -> None:
    """Called by a connection as it sends (heavy.py's urllib3 classes): the thread's watchdog watches it."""
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(connection)


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
