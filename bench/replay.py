"""The floor a registry crawl cannot beat: the same requests, replayed with bare ``http.client``.

Benches that time `match` or `discover` against Debian's docker-registry on loopback spend much
of their wall time in the registry itself (a few ms of CPU per manifest on the machines this
project runs on). To tell the client's cost from the server's, the requests the measured run
made are taken from the registry's access log and replayed, ``workers`` threads at a time, with
one keep-alive connection per thread, no authentication, no parsing and no checks: nothing a
real client could skip. The ratio measured / floor is the client's overhead.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from hpcannotate.oci.media import ALL_MANIFEST_TYPES

ACCEPT = ", ".join(ALL_MANIFEST_TYPES)
LOGGED = re.compile(r'"(GET|HEAD) (/v2/[^ ]+) HTTP/1\.1" (\d{3}) ')


def logged_requests(log_text: str) -> list[tuple[str, str]]:
    """(method, path) of every successful GET/HEAD in a docker-registry access log, in order."""
    return [(m.group(1), m.group(2)) for m in LOGGED.finditer(log_text) if m.group(3).startswith("2")]


def replay(host: str, requests: list[tuple[str, str]], workers: int) -> float:
    """Seconds to send ``requests`` to ``host`` and read every answer whole."""
    local = threading.local()

    def one(request: tuple[str, str]) -> int:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(host, timeout=30)
        method, path = request
        connection.request(method, path, headers={"Accept": ACCEPT})
        answer = connection.getresponse()
        body = answer.read()
        if answer.status >= 300:
            raise RuntimeError(f"replay: {method} {path} -> {answer.status}")
        return len(body)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, requests))
    return time.perf_counter() - start
