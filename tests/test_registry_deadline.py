"""A registry that drips its answer (one byte every second or so) meets the per-request deadline.

A per-read timeout never fires when bytes keep trickling in; the deadline must, and the error must
name the request (method and URL, no credentials). A real loopback server drips the status line, the
headers, or the body; the deadline is 2 s through ``$HPCANNOTATE_REQUEST_DEADLINE``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time

import pytest

from hpcannotate.errors import InputError
from hpcannotate.registry import RegistryClient, RetryPolicy
from hpcannotate.registry.client import DeadlineError
from hpcannotate.registry.deadline import DEADLINE_ENV, default_deadline

DEADLINE = 2.0
DRIP = 0.7  # seconds between bytes: well inside any read timeout
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": "sha256:" + "0" * 64, "size": 2}, "layers": []}).encode()


class DripServer:
    """Answers every request on 127.0.0.1 with a manifest, sending the part named by ``where`` one byte
    at a time (``status``: from the first byte; ``body``: headers at once, then the body)."""

    def __init__(self, where: str, body: bytes = MANIFEST):
        self.where = where
        self.body = body
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            self.requests += 1
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                    f"Docker-Content-Digest: sha256:{hashlib.sha256(self.body).hexdigest()}\r\n"
                    f"Content-Length: {len(self.body)}\r\n\r\n").encode()
            slow = head + self.body if self.where == "status" else self.body
            if self.where == "body":
                conn.sendall(head)
            for byte in slow:
                if self.stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(DRIP)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(params=["status", "body"])
def dripping(request):
    server = DripServer(request.param)
    yield server
    server.close()


def test_cli_inspect_stops_at_the_deadline_and_names_the_request(run_cli, dripping, tmp_path):
    start = time.monotonic()
    r = run_cli("inspect", f"127.0.0.1:{dripping.port}/slow/app:v1",
                env={"HPCANNOTATE_REQUEST_DEADLINE": str(DEADLINE), "DOCKER_CONFIG": str(tmp_path),
                     "REGISTRY_AUTH_FILE": str(tmp_path / "none.json")}, timeout=60)
    elapsed = time.monotonic() - start
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"GET http://127.0.0.1:{dripping.port}/v2/slow/app/manifests/v1" in lines[0]
    assert f"within {DEADLINE:g} s" in lines[0]
    assert elapsed < DEADLINE + 10, elapsed  # not retried, not a read timeout of 60 s
    assert dripping.requests == 1


def test_a_streamed_blob_needs_each_chunk_within_the_deadline():
    body = b"x" * 64
    server = DripServer("body", body)
    try:
        client = RegistryClient(deadline=DEADLINE, retry=RetryPolicy(retries=0))
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        start = time.monotonic()
        with pytest.raises(DeadlineError, match=rf"GET http://127\.0\.0\.1:{server.port}/v2/r/blobs/{digest}"):
            for _ in client.get_blob(f"127.0.0.1:{server.port}/r:t", digest, chunk_size=1024):
                pass
        assert time.monotonic() - start < DEADLINE + 5
    finally:
        server.close()


def test_a_steady_answer_within_the_deadline_is_read_whole():
    server = DripServer("body", MANIFEST[:0] + b"{}")
    try:
        client = RegistryClient(deadline=DEADLINE * 2, retry=RetryPolicy(retries=0))
        body = client.fetch_blob(f"127.0.0.1:{server.port}/r:t", "sha256:" + hashlib.sha256(b"{}").hexdigest())
        assert body == b"{}"
    finally:
        server.close()


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_a_bad_deadline_setting_is_refused(monkeypatch, value):
    monkeypatch.setenv(DEADLINE_ENV, value)
    with pytest.raises(InputError, match=r"^\$HPCANNOTATE_REQUEST_DEADLINE=.*: expected a positive number of seconds$"):
        default_deadline()


def test_a_bad_deadline_setting_is_one_line_on_the_command_line(run_cli):
    r = run_cli("inspect", "127.0.0.1:9/x:y", env={DEADLINE_ENV: "soon"})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "hpcannotate: error: $HPCANNOTATE_REQUEST_DEADLINE='soon': expected a positive number of seconds"]


def test_an_upload_longer_than_the_deadline_goes_on_while_it_moves(registry, tmp_path, monkeypatch):
    """A blob upload re-arms the deadline per block read; its length is still sent (not chunked)."""
    import requests

    from hpcannotate.registry import deadline

    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(3 << 20))
    real_read = deadline.ArmingReader.read

    def slow_read(self, size=-1):
        time.sleep(0.002)  # 3 MiB in 16 KiB blocks: ~0.4 s or more in all, longer than the deadline
        return real_read(self, size)

    monkeypatch.setattr(deadline.ArmingReader, "read", slow_read)
    with blob.open("rb") as raw:
        assert requests.utils.super_len(deadline.ArmingReader(raw, deadline.Watchdog(1))) == 3 << 20
    client = RegistryClient(deadline=0.3, retry=RetryPolicy(retries=0))
    ref = f"{registry.host}/slow/upload:x"
    start = time.monotonic()
    digest = client.push_blob(ref, blob)
    assert time.monotonic() - start > 0.3
    assert client.blob_exists(ref, digest)
