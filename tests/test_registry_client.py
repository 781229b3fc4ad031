"""The native registry client against a real registry (Debian's docker-registry), plus a fault proxy.

Content is pushed with the client itself (blobs, an OCI manifest, an OCI index, Docker v2 formats),
read back byte for byte, and the registry's own log is checked where it matters. Faults (503,
429 with Retry-After, dropped connections, stalls, lying digests) come from a small proxy in
this file that stands between the client and the real registry.
"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.oci import media
from hpcannotate.registry import (
    AuthenticationError,
    DigestMismatchError,
    Reference,
    RegistryClient,
    RegistryError,
    RetryPolicy,
    is_loopback,
    parse_reference,
)
from hpcannotate.registry.client import MANIFEST_ACCEPT
from tests.fixtures.registry import start_registry, stop

USER = "alice"
PASSWORD = "Pw-9f3b-known-secret"  # a test password, looked for in messages and logs
FAST = RetryPolicy(retries=3, total=10.0, backoff=0.01, max_backoff=0.05, retry_after_cap=2.0)
SHA = "sha256:" + "ab" * 32


@pytest.fixture(autouse=True)
def no_login_files(tmp_path, monkeypatch):
    """No credentials of the machine leak into a test (nor out of it)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg, proc = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    stop(proc)


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    reg, proc = start_registry(tmp_path_factory.mktemp("auth-registry"), USER, PASSWORD)
    yield reg
    stop(proc)


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with RegistryClient(retry=FAST) as c:
        yield c


# -- content pushed with the client ------------------------------------------------------------------


def config_blob(arch: str, label: str = "") -> bytes:
    config = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
              "config": {"Labels": {"test": label or arch}}}
    return json.dumps(config).encode()


def push_image(client: RegistryClient, ref: str, arch: str = "amd64", docker: bool = False) -> tuple[bytes, str]:
    """A one-layer image pushed with the client; returns the manifest bytes as written and its digest."""
    config = config_blob(arch, ref)
    layer = os.urandom(3000) + arch.encode()
    config_digest = client.push_blob(ref, config)
    layer_digest = client.push_blob(ref, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": media.DOCKER_MANIFEST if docker else media.OCI_MANIFEST,
        "config": {"mediaType": media.DOCKER_CONFIG if docker else media.OCI_CONFIG,
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": media.DOCKER_LAYER_GZIP if docker else media.OCI_LAYER_TAR,
                    "digest": layer_digest, "size": len(layer)}],
    }
    if not docker:
        manifest["annotations"] = {"org.supercontainers.test": arch}
    # Indented on purpose: the bytes read back must be these, not a re-serialisation.
    raw = json.dumps(manifest, indent=3).encode()
    media_type = media.DOCKER_MANIFEST if docker else media.OCI_MANIFEST
    return raw, client.put_manifest(ref, raw, media_type)


def push_index(client: RegistryClient, ref: str, docker: bool = False) -> tuple[bytes, str]:
    """Two platform images pushed by digest, then an index (or Docker list) under ``ref``'s tag."""
    base = parse_reference(ref)
    descriptors = []
    for arch in ("amd64", "arm64"):
        child_ref = str(base.with_tag(f"child-{arch}-{'d' if docker else 'o'}"))
        raw, digest = push_image(client, child_ref, arch, docker)
        assert client.put_manifest(base.with_digest(digest), raw, media.DOCKER_MANIFEST if docker
                                   else media.OCI_MANIFEST) == digest
        descriptors.append({"mediaType": media.DOCKER_MANIFEST if docker else media.OCI_MANIFEST,
                            "digest": digest, "size": len(raw), "platform": {"os": "linux", "architecture": arch}})
    index = {"schemaVersion": 2, "mediaType": media.DOCKER_LIST if docker else media.OCI_INDEX,
             "manifests": descriptors}
    raw = media.canonical_json(index)
    return raw, client.put_manifest(ref, raw, media.DOCKER_LIST if docker else media.OCI_INDEX)


# -- references ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest", "canonical"),
    [
        ("busybox", "docker.io", "library/busybox", "latest", None, "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None, "docker.io/library/busybox:1.36"),
        ("user/app:v2", "docker.io", "user/app", "v2", None, "docker.io/user/app:v2"),
        ("index.docker.io/library/alpine", "docker.io", "library/alpine", "latest", None,
         "docker.io/library/alpine:latest"),
        ("docker.io/alpine:3", "docker.io", "library/alpine", "3", None, "docker.io/library/alpine:3"),
        ("ghcr.io/org/team/app:1.0-rc.1", "ghcr.io", "org/team/app", "1.0-rc.1", None,
         "ghcr.io/org/team/app:1.0-rc.1"),
        ("localhost:5000/x", "localhost:5000", "x", "latest", None, "localhost:5000/x:latest"),
        ("localhost/x:t", "localhost", "x", "t", None, "localhost/x:t"),
        ("127.0.0.1:41234/a/b:tag", "127.0.0.1:41234", "a/b", "tag", None, "127.0.0.1:41234/a/b:tag"),
        (f"quay.io/a/b@{SHA}", "quay.io", "a/b", None, SHA, f"quay.io/a/b@{SHA}"),
        (f"quay.io/a/b:t@{SHA}", "quay.io", "a/b", "t", SHA, f"quay.io/a/b:t@{SHA}"),
        ("[::1]:5000/a:t", "[::1]:5000", "a", "t", None, "[::1]:5000/a:t"),
        ("docker://reg.example.com/a__b/c-d.e:x", "reg.example.com", "a__b/c-d.e", "x", None,
         "reg.example.com/a__b/c-d.e:x"),
    ],
)
def test_registry_references(text, registry, repository, tag, digest, canonical):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert not ref.is_layout
    assert str(ref) == canonical
    assert parse_reference(str(ref)) == ref


def test_docker_hub_api_host_and_manifest_ref():
    ref = parse_reference("alpine")
    assert ref.api_host == "registry-1.docker.io"
    assert ref.manifest_ref == "latest"
    assert parse_reference(f"a.io/x:t@{SHA}").manifest_ref == SHA
    assert parse_reference("a.io/x:t").with_digest(SHA) == Reference("a.io", "x", None, SHA)
    assert parse_reference(f"a.io/x@{SHA}").with_tag("v1") == Reference("a.io", "x", "v1", None)


@pytest.mark.parametrize(
    ("text", "path", "tag", "digest"),
    [
        ("oci:/tmp/layout", "/tmp/layout", None, None),
        ("oci:/tmp/layout:v1", "/tmp/layout", "v1", None),
        ("oci:relative/dir:latest", "relative/dir", "latest", None),
        ("oci:/data/a:b/c", "/data/a:b/c", None, None),  # the last ':' segment has a '/': no tag
        ("oci:/data/a:b/c:t", "/data/a:b/c", "t", None),
        (f"oci:/l@{SHA}", "/l", None, SHA),
    ],
)
def test_layout_references(text, path, tag, digest):
    ref = parse_reference(text)
    assert ref.is_layout
    assert (ref.layout_path, ref.tag, ref.digest) == (Path(path), tag, digest)
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty image reference"),
        ("oci:", "no layout path"),
        ("oci:/x:", "empty tag"),
        ("oci:/x:bad tag!", "malformed tag"),
        ("Busybox", "must be lowercase"),
        ("reg.io/UPPER/x", "must be lowercase"),
        ("reg.io/a//b", "malformed repository"),
        ("reg.io/a/b:", "malformed tag"),
        ("reg.io/a/b:-x", "malformed tag"),
        ("reg.io/a@sha256:1234", "malformed digest"),
        ("reg.io/a@sha512:" + "a" * 128, "only sha256"),
        ("https://reg.io/a", "no URL scheme"),
        ("reg.io:99999/a", "out of range"),
        ("reg_io:50/a", "malformed registry host"),
        ("reg.io/" + "a" * 300, "longer than 255"),
        ("reg.io/", "malformed repository"),
    ],
)
def test_malformed_references(text, reason):
    with pytest.raises(InputError) as err:
        parse_reference(text)
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_plain_http_only_for_loopback():
    assert all(is_loopback(h) for h in ("localhost", "localhost:5000", "127.0.0.1", "127.9.9.9:80", "[::1]:5000"))
    assert not any(is_loopback(h) for h in ("10.0.0.1:5000", "ghcr.io", "[2001:db8::1]:5000", "localhost.evil.io"))
    auto, plain, tls = RegistryClient(), RegistryClient(plain_http=True), RegistryClient(plain_http=False)
    assert auto.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert auto.base_url("registry.example.com") == "https://registry.example.com"
    assert plain.base_url("registry.example.com") == "http://registry.example.com"
    assert tls.base_url("localhost:5000") == "https://localhost:5000"
    assert RegistryClient(verify="/etc/ssl/ca.pem").verify == "/etc/ssl/ca.pem"
    assert RegistryClient(insecure=True).verify is False


def test_layout_reference_is_not_sent_to_a_registry(client):
    with pytest.raises(InputError, match="read from disk"):
        client.get_manifest("oci:/tmp/somewhere:v1")


# -- reading and writing against the real registry -------------------------------------------------------


def test_oci_image_round_trip(client, registry):
    ref = f"{registry.host}/hpc/app:v1"
    raw, digest = push_image(client, ref)
    got = client.get_manifest(ref)
    assert got == (raw, media.OCI_MANIFEST, digest)
    assert media.sha256_digest(got.raw) == digest
    head = client.head_manifest(ref)
    assert head == (media.OCI_MANIFEST, digest, len(raw))
    by_digest = client.get_manifest(parse_reference(ref).with_digest(digest))
    assert by_digest.raw == raw
    manifest = json.loads(raw)
    config = manifest["config"]["digest"]
    layer = manifest["layers"][0]["digest"]
    assert client.blob_exists(ref, config) and client.blob_exists(ref, layer)
    assert not client.blob_exists(ref, SHA)
    assert json.loads(client.fetch_blob(ref, config))["architecture"] == "amd64"
    chunks = list(client.get_blob(ref, layer, chunk_size=1000))
    assert len(chunks) >= 3
    assert media.sha256_digest(b"".join(chunks)) == layer


def test_index_docker_manifest_and_list(client, registry):
    """All four media types come back as pushed: the Accept header names them all."""
    assert MANIFEST_ACCEPT.split(", ") == list(media.ALL_MANIFEST_TYPES)
    oci_raw, oci_digest = push_index(client, f"{registry.host}/hpc/multi:v1")
    docker_raw, docker_digest = push_image(client, f"{registry.host}/hpc/legacy:v1", docker=True)
    list_raw, list_digest = push_index(client, f"{registry.host}/hpc/legacy-list:v1", docker=True)
    assert client.get_manifest(f"{registry.host}/hpc/multi:v1") == (oci_raw, media.OCI_INDEX, oci_digest)
    assert client.get_manifest(f"{registry.host}/hpc/legacy:v1") == (docker_raw, media.DOCKER_MANIFEST, docker_digest)
    assert client.get_manifest(f"{registry.host}/hpc/legacy-list:v1") == (list_raw, media.DOCKER_LIST, list_digest)
    for child in json.loads(oci_raw)["manifests"]:
        got = client.get_manifest(f"{registry.host}/hpc/multi@{child['digest']}")
        assert (got.media_type, got.digest, len(got.raw)) == (media.OCI_MANIFEST, child["digest"], child["size"])
        assert json.loads(got.raw)["annotations"]["org.supercontainers.test"] == child["platform"]["architecture"]


def test_put_by_digest_checks_content(client, registry):
    raw, digest = push_image(client, f"{registry.host}/hpc/pin:v1")
    other = raw.replace(b'"amd64"', b'"arm64"')
    with pytest.raises(DigestMismatchError, match="has digest"):
        client.put_manifest(f"{registry.host}/hpc/pin@{digest}", other, media.OCI_MANIFEST)
    with pytest.raises(InputError, match="not a manifest media type"):
        client.put_manifest(f"{registry.host}/hpc/pin:v2", raw, "application/json")


def test_missing_things_are_one_line_errors(client, registry):
    ref = f"{registry.host}/hpc/none:nope"
    assert client.head_manifest(ref) is None
    with pytest.raises(RegistryError) as err:
        client.get_manifest(ref)
    assert err.value.status == 404
    assert err.value.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    assert str(err.value).startswith(f"{ref}: manifest not found (HTTP 404")
    assert "\n" not in str(err.value)
    with pytest.raises(RegistryError, match=r"blob sha256:abab.* not found"):
        client.fetch_blob(ref, SHA)


def test_mount_links_a_blob_without_uploading(client, registry):
    source = f"{registry.host}/hpc/mount-src:v1"
    raw, _ = push_image(client, source)
    layer = json.loads(raw)["layers"][0]["digest"]
    before = client.stats.requests
    target = f"{registry.host}/hpc/mount-dst:v1"
    assert client.push_blob(target, b"ignored: the digest is given", digest=layer, mount_from="hpc/mount-src") == layer
    assert client.stats.requests - before == 2  # HEAD (404) + POST ?mount= (201)
    assert client.blob_exists(target, layer)
    log = registry.log_text()
    assert "mount-dst/blobs/uploads/?mount=" in log
    assert not [line for line in log.splitlines() if '"PUT /v2/hpc/mount-dst/blobs/uploads/' in line]


def test_push_blob_from_file_and_existing_blob_skipped(client, registry, tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(200_000))
    ref = f"{registry.host}/hpc/files:v1"
    digest = client.push_blob(ref, blob)
    assert digest == media.sha256_digest(blob.read_bytes())
    before = client.stats.as_dict()
    assert client.push_blob(ref, blob) == digest
    assert client.stats.requests - before["requests"] == 1  # HEAD says it is there
    assert client.stats.bytes_sent - before["bytes_sent"] < 1024


def test_list_tags_follows_pages(client, registry):
    ref = f"{registry.host}/hpc/tags:t0"
    raw, _ = push_image(client, ref)
    for n in range(1, 5):
        client.put_manifest(f"{registry.host}/hpc/tags:t{n}", raw, media.OCI_MANIFEST)
    assert sorted(client.list_tags(ref)) == ["t0", "t1", "t2", "t3", "t4"]


def test_list_tags_follows_link_pages(proxy, registry):
    """distribution 2.8 ignores ``n``: the proxy pages its answer the way newer registries do (Link: rel=next)."""
    with RegistryClient(retry=FAST) as direct:
        raw, _ = push_image(direct, f"{registry.host}/hpc/paged:p0")
        for n in range(1, 5):
            direct.put_manifest(f"{registry.host}/hpc/paged:p{n}", raw, media.OCI_MANIFEST)
    proxy.plan = ["page"] * 3
    client = RegistryClient(retry=FAST)
    assert client.list_tags(f"{proxy.host}/hpc/paged:p0", page_size=2) == ["p0", "p1", "p2", "p3", "p4"]
    assert [path for _, path, _ in proxy.hits] == [
        "/v2/hpc/paged/tags/list?n=2",
        "/v2/hpc/paged/tags/list?n=2&last=p1",
        "/v2/hpc/paged/tags/list?n=2&last=p3",
    ]


def test_stats_count_requests_and_bytes(client, registry):
    ref = f"{registry.host}/hpc/stats:v1"
    raw, _ = push_image(client, ref)
    client.stats.reset()
    client.put_manifest(ref, raw, media.OCI_MANIFEST)
    assert client.stats.requests == 1 and client.stats.by_method["PUT"] == 1
    assert len(raw) < client.stats.bytes_sent < len(raw) + 1024
    sent = client.stats.bytes_sent
    client.get_manifest(ref)
    assert client.stats.requests == 2
    assert client.stats.bytes_sent - sent < 1024
    assert len(raw) < client.stats.bytes_received < len(raw) + 2048


# -- basic auth against the real registry (htpasswd) ------------------------------------------------------


def test_basic_auth_with_explicit_credentials(auth_registry):
    with RegistryClient(username=USER, password=PASSWORD, retry=FAST) as client:
        _, digest = push_image(client, f"{auth_registry.host}/sec/app:v1")
        assert client.get_manifest(f"{auth_registry.host}/sec/app:v1").digest == digest
        assert PASSWORD not in repr(client)


def test_wrong_password_is_one_line_and_never_shown(auth_registry, caplog):
    caplog.set_level(logging.DEBUG)
    client = RegistryClient(username=USER, password=PASSWORD + "-wrong", retry=FAST)
    with pytest.raises(AuthenticationError) as err:
        client.get_manifest(f"{auth_registry.host}/sec/app:v1")
    assert str(err.value) == f"{auth_registry.host}: authentication failed for {USER} (HTTP 401)"
    assert client.stats.requests == 2  # challenge, one authenticated try; no retry loop
    for text in (str(err.value), repr(err.value), repr(client), repr(client.auth), caplog.text):
        assert PASSWORD not in text


def test_no_credentials_says_so(auth_registry):
    with pytest.raises(AuthenticationError, match="authentication required and no credentials found"):
        RegistryClient(retry=FAST).head_manifest(f"{auth_registry.host}/sec/app:v1")


# -- transport failures ------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_connection_retried_once_then_one_line():
    """A refused connection may be a registry restarting: one more try, not the whole retry budget."""
    port = _closed_port()
    client = RegistryClient(retry=FAST)
    with pytest.raises(RegistryError) as err:
        client.get_manifest(f"127.0.0.1:{port}/a:b")
    assert str(err.value) == f"127.0.0.1:{port}: cannot reach the registry (connection refused)"
    assert client.stats.requests == 2
    assert client.stats.retries == 1


def test_unresolvable_host_not_retried():
    client = RegistryClient(retry=FAST)
    with pytest.raises(RegistryError) as err:
        client.get_manifest("no-such-host.invalid/a:b")
    assert str(err.value) == "no-such-host.invalid: cannot reach the registry (host name does not resolve)"
    assert client.stats.requests == 1 and client.stats.retries == 0


def test_tls_to_a_plain_registry_fails_without_retries(registry):
    client = RegistryClient(plain_http=False, retry=FAST)
    with pytest.raises(RegistryError, match=rf"^{registry.host}: cannot reach the registry \(TLS error"):
        client.head_manifest(f"{registry.host}/hpc/app:v1")
    assert client.stats.requests == 1


class FaultProxy:
    """Forwards to the real registry, except for the faults queued in ``plan`` (one per request).

    Faults: ``"503"``/``"500"``/``"400"`` (answer that status), ``"429:N"`` (429 with Retry-After N),
    ``"drop"`` (close without answering), ``"stall"`` (wait longer than the client's read timeout),
    ``"digest"`` (forward, but lie in Docker-Content-Digest), ``"body"`` (forward with one byte changed
    and no digest header).
    """

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.plan: list[str] = []
        self.hits: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    action = proxy.plan.pop(0) if proxy.plan else "pass"
                    proxy.hits.append((self.command, self.path, action))
                proxy.act(self, action, body)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def act(self, handler, action: str, body: bytes) -> None:
        if action == "drop":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        if action == "stall":
            time.sleep(1.5)
            handler.close_connection = True
            return
        if action.split(":")[0] in ("400", "429", "500", "503"):
            status, _, after = action.partition(":")
            handler.send_response(int(status))
            if after:
                handler.send_header("Retry-After", after)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        status, headers, payload = self.forward(handler, body)
        if action == "digest":
            headers["Docker-Content-Digest"] = SHA
        if action == "page":
            payload, link = self.page(handler.path, payload)
            headers["Content-Length"] = str(len(payload))
            if link:
                headers["Link"] = link
        if action == "body" and payload:
            payload = bytes([payload[0] ^ 1]) + payload[1:]
            headers.pop("Docker-Content-Digest", None)
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)

    @staticmethod
    def page(path: str, payload: bytes) -> tuple[bytes, str | None]:
        """Cut a full tag list to the page ``?n=N&last=TAG`` asks for, with a Link to the next one."""
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query))
        data = json.loads(payload)
        tags = sorted(t for t in data["tags"] if t > query.get("last", ""))
        size = int(query["n"])
        data["tags"] = tags[:size]
        link = None
        if len(tags) > size:
            base = urllib.parse.urlsplit(path).path
            link = f'<{base}?n={size}&last={tags[size - 1]}>; rel="next"'
        return json.dumps(data).encode(), link

    def forward(self, handler, body: bytes) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.upstream, timeout=10)
        skip = {"connection", "transfer-encoding", "keep-alive"}
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in skip}
        conn.request(handler.command, handler.path, body=body or None, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in skip}
        conn.close()
        return resp.status, out, payload

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(registry):
    fault = FaultProxy(registry.host)
    yield fault
    fault.close()


@pytest.fixture(scope="module")
def stored(registry):
    """An image and its digest in the real registry, for the fault tests to read."""
    with RegistryClient(retry=FAST) as client:
        raw, digest = push_image(client, f"{registry.host}/hpc/faults:v1")
    return raw, digest


def test_5xx_retried_then_succeeds(proxy, stored):
    proxy.plan = ["503", "500"]
    client = RegistryClient(retry=FAST)
    assert client.get_manifest(f"{proxy.host}/hpc/faults:v1").raw == stored[0]
    assert [a for _, _, a in proxy.hits] == ["503", "500", "pass"]
    assert client.stats.retries == 2


def test_429_honours_retry_after(proxy, stored):
    proxy.plan = ["429:1"]
    client = RegistryClient(retry=FAST)
    start = time.monotonic()
    assert client.head_manifest(f"{proxy.host}/hpc/faults:v1").digest == stored[1]
    assert time.monotonic() - start >= 1.0
    proxy.plan = ["429:3600"]  # capped at retry_after_cap (0.2 s here)
    start = time.monotonic()
    capped = RegistryClient(retry=RetryPolicy(retries=2, backoff=0.01, retry_after_cap=0.2))
    assert capped.head_manifest(f"{proxy.host}/hpc/faults:v1").digest == stored[1]
    assert time.monotonic() - start < 2


def test_4xx_never_retried(proxy):
    proxy.plan = ["400"]
    client = RegistryClient(retry=FAST)
    with pytest.raises(RegistryError, match=r"\(HTTP 400\)$") as err:
        client.get_manifest(f"{proxy.host}/hpc/faults:v1")
    assert err.value.status == 400
    assert len(proxy.hits) == 1 and client.stats.retries == 0


def test_retries_bounded_in_count(proxy):
    proxy.plan = ["503"] * 20
    client = RegistryClient(retry=FAST)
    with pytest.raises(RegistryError, match=r"\(HTTP 503\)$") as err:
        client.get_manifest(f"{proxy.host}/hpc/faults:v1")
    assert err.value.status == 503
    assert len(proxy.hits) == FAST.retries + 1


def test_retries_bounded_in_time(proxy):
    proxy.plan = ["503"] * 200
    client = RegistryClient(retry=RetryPolicy(retries=100, total=0.6, backoff=0.1, max_backoff=0.1))
    start = time.monotonic()
    with pytest.raises(RegistryError, match="HTTP 503"):
        client.head_manifest(f"{proxy.host}/hpc/faults:v1")
    assert time.monotonic() - start < 1.5
    assert 2 <= len(proxy.hits) < 15


def test_dropped_connections_and_stalls_retried(proxy, stored):
    proxy.plan = ["drop", "stall"]
    client = RegistryClient(retry=FAST, timeout=(2.0, 0.5))
    assert client.get_manifest(f"{proxy.host}/hpc/faults:v1").digest == stored[1]
    assert [a for _, _, a in proxy.hits] == ["drop", "stall", "pass"]


def test_stall_past_the_budget_names_the_reason(proxy):
    proxy.plan = ["stall"] * 5
    client = RegistryClient(retry=RetryPolicy(retries=1, backoff=0.01), timeout=(2.0, 0.3))
    with pytest.raises(RegistryError) as err:
        client.get_manifest(f"{proxy.host}/hpc/faults:v1")
    assert str(err.value) == f"{proxy.host}: cannot reach the registry (no answer within 0.3 s)"


def test_lying_digest_header_is_caught(proxy, stored):
    client = RegistryClient(retry=FAST)
    proxy.plan = ["digest"]
    with pytest.raises(DigestMismatchError, match="the registry says manifest"):
        client.get_manifest(f"{proxy.host}/hpc/faults:v1")
    proxy.plan = ["digest"]
    with pytest.raises(DigestMismatchError, match="the registry stored"):
        client.put_manifest(f"{proxy.host}/hpc/faults:v1", stored[0], media.OCI_MANIFEST)


def test_altered_content_is_caught(proxy, stored):
    raw, digest = stored
    client = RegistryClient(retry=FAST)
    proxy.plan = ["body"]
    with pytest.raises(DigestMismatchError, match="served has digest"):
        client.get_manifest(f"{proxy.host}/hpc/faults@{digest}")
    layer = json.loads(raw)["layers"][0]["digest"]
    proxy.plan = ["body"]
    with pytest.raises(DigestMismatchError, match="content of another digest"):
        b"".join(client.get_blob(f"{proxy.host}/hpc/faults:v1", layer))
    proxy.plan = ["body"]
    with pytest.raises(DigestMismatchError):
        client.fetch_blob(f"{proxy.host}/hpc/faults:v1", json.loads(raw)["config"]["digest"])


# -- which path a request takes ------------------------------------------------------------------------


def test_small_reads_do_not_import_requests(registry, tmp_path):
    """inspect-sized work (HEAD, GET manifest and config) runs on the keep-alive path alone."""
    import subprocess
    import sys

    with RegistryClient() as client:
        push_image(client, f"{registry.host}/hpc/lean:v1")
    code = ("import sys\nfrom hpcannotate.registry import RegistryClient\n"
            f"c = RegistryClient()\nc.head_manifest('{registry.host}/hpc/lean:v1')\n"
            f"c.get_manifest('{registry.host}/hpc/lean:v1')\n"
            "print('requests' in sys.modules, 'urllib3' in sys.modules, c.stats.requests)")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False", "2"]


def test_proxy_variables_are_obeyed_through_requests(registry, monkeypatch):
    """With a proxy in the environment, requests' rules (and its no_proxy) decide, as before the lean path."""
    with RegistryClient() as client:
        push_image(client, f"{registry.host}/hpc/proxied:v1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]  # nothing listens once the socket is closed
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{dead}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(RegistryError, match="cannot reach the registry"):
        RegistryClient(retry=FAST).get_manifest(f"{registry.host}/hpc/proxied:v1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert RegistryClient(retry=FAST).get_manifest(f"{registry.host}/hpc/proxied:v1").digest.startswith("sha256:")
