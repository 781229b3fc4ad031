"""Retrofits under faults: a proxy between the client and the real registry breaks requests at random.

The proxy drops connections before or after forwarding (so a write may land while its answer is
lost), answers 500/503/429, stalls past the client's read timeout, or cuts an answer short.
Each of 200+ retrofits (seeded, so a failure replays) must end in one of two states, checked
directly on the registry: the tag unchanged, or the tag at a complete new index whose children
all exist and carry every new annotation (and still every old one). Never a tag at a missing
child, never an index with half the change, never an exception that is not a one-line error.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from hpcannotate.errors import HpcAnnotateError
from hpcannotate.model.catalogue import SUPERCONTAINERS_PREFIX as P
from hpcannotate.registry import RegistryClient, RetryPolicy
from hpcannotate.retrofit.annotate import annotate

from .test_retrofit import KEEP, Images, no_login_files, push_images  # noqa: F401 - fixture

SEED = 20261123
RETROFITS = 210
FAULTS = {"500": 2, "503": 2, "429": 2, "drop-before": 2, "drop-after": 3, "stall": 1, "cut": 1}
RATES = (0.0, 0.05, 0.15, 0.3, 0.6)  # per retrofit, the share of its requests that fail
READ_TIMEOUT = 0.2
POLICY = RetryPolicy(retries=3, total=5.0, backoff=0.002, max_backoff=0.01, retry_after_cap=0.01)


class FaultProxy:
    """Forwards to the registry; each request meets a fault with probability ``rate`` (seeded)."""

    def __init__(self, upstream: str, seed: int):
        self.upstream = upstream
        self.rng = random.Random(seed)
        self.rate = 0.0
        self.faults = Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once (no delayed-ACK stalls)

            def log_message(self, *args):
                pass

            def handle_one(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with contextlib.suppress(OSError):  # the client gave up (its timeout): nothing to answer
                    proxy.handle(self, body, proxy.pick())

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def pick(self) -> str:
        with self.lock:
            if self.rng.random() >= self.rate:
                return "pass"
            fault = self.rng.choices(list(FAULTS), weights=list(FAULTS.values()))[0]
            self.faults[fault] += 1
            return fault

    def handle(self, handler, body: bytes, fault: str) -> None:
        if fault == "drop-before":
            return self._drop(handler)
        if fault == "stall":
            time.sleep(READ_TIMEOUT * 1.5)
            return self._drop(handler)
        if fault in ("500", "503", "429"):
            handler.send_response(int(fault))
            if fault == "429":
                handler.send_header("Retry-After", "0")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        status, headers, payload = self._forward(handler, body)
        if fault == "drop-after":  # the registry did it; the client never hears
            return self._drop(handler)
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload[: len(payload) // 2] if fault == "cut" else payload)
        if fault == "cut":
            self._drop(handler)
        return None

    @staticmethod
    def _drop(handler) -> None:
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)

    def _forward(self, handler, body: bytes) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(self.upstream, timeout=10)
        skip = {"connection", "transfer-encoding", "keep-alive", "host"}
        conn.request(handler.command, handler.path, body=body or None,
                     headers={k: v for k, v in handler.headers.items() if k.lower() not in skip})
        resp = conn.getresponse()
        payload = resp.read()
        headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in skip]
        conn.close()
        return resp.status, headers, payload

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class State:
    digest: str
    complete: bool
    applied: bool
    problem: str = ""


def observe(direct: RegistryClient, ref: str, old: str, wanted: dict[str, str]) -> State:
    """Where the tag points, read straight from the registry, and whether that index is whole."""
    got = direct.get_manifest(ref)
    if got.digest == old:
        return State(got.digest, True, False)
    import json

    index = json.loads(got.raw)
    name = ref.rsplit(":", 1)[0]
    for key, value in wanted.items():
        if (index.get("annotations") or {}).get(key) != value:
            return State(got.digest, True, False, f"the index lacks {key}")
    for desc in index["manifests"]:
        if direct.head_manifest(f"{name}@{desc['digest']}") is None:
            return State(got.digest, False, False, f"the tag points at an index whose child {desc['digest']} "
                                                   "is missing")
        child = json.loads(direct.get_manifest(f"{name}@{desc['digest']}").raw)["annotations"]
        missing = [k for k, v in {**wanted, KEEP: "yes"}.items() if child.get(k) != v]
        if missing:
            return State(got.digest, True, False, f"child {desc['digest']} lacks {missing[0]}")
    return State(got.digest, True, True)


@pytest.fixture(scope="module")
def images(buildah_store, registry, tmp_path_factory) -> Images:
    return push_images(buildah_store, registry, "hpc/faults", tmp_path_factory.mktemp("fault-images"))


def run_retrofits(images: Images, count: int, seed: int) -> Counter:
    """``count`` retrofits through the fault proxy; returns the outcomes; fails on a broken invariant."""
    rng = random.Random(seed)
    proxy = FaultProxy(images.registry.host, seed)
    outcomes: Counter = Counter()
    direct = RegistryClient()
    try:
        for n in range(count):
            ref = images.fresh("index")
            old = direct.head_manifest(ref).digest
            wanted = {"org.example.run": str(n), P + "app.version": f"r{n}"}
            proxy.rate = rng.choice(RATES)
            through = ref.replace(images.registry.host, proxy.host, 1)
            client = RegistryClient(retry=POLICY, timeout=(1.0, READ_TIMEOUT))
            result = None
            try:
                result = annotate(through, set=wanted, client=client)
            except HpcAnnotateError as exc:  # anything else is a bug and fails the test
                assert "\n" not in str(exc) and "Traceback" not in str(exc)
            finally:
                client.close()
            proxy.rate = 0.0
            state = observe(direct, ref, old, wanted)
            assert state.complete and not state.problem, f"retrofit {n}: {state.problem}"
            if result is not None and result.verified:
                assert state.applied, f"retrofit {n}: reported verified, but {state.problem or 'the tag is old'}"
                outcomes["applied and verified"] += 1
            elif result is not None:
                outcomes["applied, read-back failed" if state.applied else "BROKEN"] += 1
            elif state.applied:
                outcomes["error, yet applied whole"] += 1
            else:
                outcomes["error, tag unchanged"] += 1
        outcomes.update({f"fault {k}": v for k, v in proxy.faults.items()})
    finally:
        direct.close()
        proxy.close()
    assert outcomes["BROKEN"] == 0
    return outcomes


def test_retrofits_under_faults_end_whole_or_not_at_all(images, capsys):
    started = time.monotonic()
    outcomes = run_retrofits(images, RETROFITS, SEED)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\n{RETROFITS} retrofits through the fault proxy in {elapsed:.1f} s (seed {SEED}):")
        for name, value in sorted(outcomes.items()):
            print(f"  {name:32} {value}")
    finals = sum(v for k, v in outcomes.items() if not k.startswith("fault "))
    assert finals == RETROFITS
    assert outcomes["applied and verified"] > RETROFITS // 2
    assert outcomes["error, tag unchanged"] > 0  # the faults were strong enough to stop some
    assert sum(v for k, v in outcomes.items() if k.startswith("fault ")) > RETROFITS
