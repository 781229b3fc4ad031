"""Registry authentication: challenge parsing, login files and helpers, bearer tokens per scope.

Credential sources are exercised with a temporary HOME, DOCKER_CONFIG, XDG_RUNTIME_DIR and
REGISTRY_AUTH_FILE and a real ``docker-credential-test`` script on PATH. Bearer auth runs against
a token server and a registry front written here (http.server on 127.0.0.1): the registry answers
401 Bearer challenges and checks each token's scopes, the token server checks the user and
records every token it issues. Basic auth runs against the real docker-registry with htpasswd.
"""

from __future__ import annotations

import base64
import http.server
import json
import logging
import sys
import threading
import time
import typing
import urllib.parse
from pathlib import Path

import pytest

from hpcannotate.errors import InputError
from hpcannotate.oci import media
from hpcannotate.registry import (
    AuthenticationError,
    Credentials,
    RegistryClient,
    RegistryError,
    RetryPolicy,
    find_credentials,
    parse_reference,
    parse_www_authenticate,
)
from hpcannotate.registry.auth import (
    DOCKER_HUB_SERVER_URL,
    auth_file_paths,
    merge_scopes,
    normalize_auth_key,
    run_credential_helper,
)
from tests.fixtures.registry import start_registry, stop

USER = "bob"
PASSWORD = "Secret-7c1e-never-printed"  # looked for in messages and logs
IDENTITY = "refresh-4d2a-never-printed"
FAST = RetryPolicy(retries=2, total=10.0, backoff=0.01, max_backoff=0.05)


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """A HOME of our own and none of the machine's login files or variables."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def inline(user: str, password: str) -> dict:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


REF = parse_reference("reg.example.com/team/app:v1")


# -- challenges and scopes -------------------------------------------------------------------------


def test_bearer_challenge_with_quoted_commas():
    (challenge,) = parse_www_authenticate(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push repository:base/img:pull",error="insufficient_scope"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:team/app:pull,push repository:base/img:pull",
        "error": "insufficient_scope",
    }
    assert challenge.scopes() == ["repository:team/app:pull,push", "repository:base/img:pull"]


def test_several_challenges_escapes_and_bare_values():
    basic, bearer = parse_www_authenticate(
        'Basic realm="say \\"hi\\", please" , BEARER Realm=https://t.example/tok, service=svc'
    )
    assert (basic.scheme, basic.params) == ("basic", {"realm": 'say "hi", please'})
    assert (bearer.scheme, bearer.params) == ("bearer", {"realm": "https://t.example/tok", "service": "svc"})
    assert parse_www_authenticate("") == []
    assert parse_www_authenticate(None) == []


def test_scopes_merge_per_repository():
    assert merge_scopes(["repository:a:pull"], ["repository:a:push,pull", "repository:b:pull"]) == (
        "repository:a:pull,push",
        "repository:b:pull",
    )


# -- credential sources ---------------------------------------------------------------------------------


def test_docker_config_inline_auth(tmp_path, monkeypatch):
    write_json(tmp_path / "dc" / "config.json", {"auths": {"reg.example.com": inline(USER, PASSWORD)}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    creds = find_credentials(REF)
    assert (creds.username, creds.password) == (USER, PASSWORD)
    assert creds.source == str(tmp_path / "dc" / "config.json")
    assert find_credentials(parse_reference("other.example.com/x")) is None
    assert PASSWORD not in repr(creds) and PASSWORD not in str(creds)


def test_home_docker_config_and_docker_hub_key(clean_env):
    write_json(clean_env / ".docker" / "config.json", {"auths": {
        DOCKER_HUB_SERVER_URL: inline("hubuser", "hubpass"),
        "https://reg.example.com": {"username": "u2", "password": "p2"},
    }})
    assert find_credentials(parse_reference("busybox")).username == "hubuser"
    assert find_credentials(parse_reference("index.docker.io/library/alpine")).username == "hubuser"
    assert find_credentials(REF).password == "p2"
    assert normalize_auth_key("https://index.docker.io/v1/") == "docker.io"
    assert normalize_auth_key("quay.io/org") == "quay.io/org"


def test_containers_auth_files_in_order(clean_env, tmp_path, monkeypatch):
    """XDG_RUNTIME_DIR (podman login) before ~/.config before docker; most specific key first."""
    docker = write_json(clean_env / ".docker" / "config.json", {"auths": {"reg.example.com": inline("d", "d")}})
    config = write_json(clean_env / ".config" / "containers" / "auth.json", {"auths": {
        "reg.example.com": inline("cfg", "x"),
    }})
    assert find_credentials(REF).username == "cfg"
    runtime = tmp_path / "run"
    write_json(runtime / "containers" / "auth.json", {"auths": {
        "reg.example.com": inline("podman", "x"),
        "reg.example.com/team": inline("team", "x"),
        "reg.example.com/team/app": inline("app", "x"),
    }})
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert find_credentials(REF).username == "app"
    assert find_credentials(parse_reference("reg.example.com/team/other")).username == "team"
    assert find_credentials(parse_reference("reg.example.com/solo")).username == "podman"
    assert auth_file_paths({"HOME": str(clean_env), "XDG_RUNTIME_DIR": str(runtime)}) == [
        runtime / "containers" / "auth.json", config, docker,
    ]


def test_registry_auth_file_is_the_only_file(clean_env, tmp_path, monkeypatch):
    write_json(clean_env / ".docker" / "config.json", {"auths": {"reg.example.com": inline("docker", "x")}})
    authfile = write_json(tmp_path / "auth.json", {"auths": {"elsewhere.example.com": inline("e", "x")}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(authfile))
    assert find_credentials(REF) is None  # as with podman --authfile: the docker login is not consulted
    assert find_credentials(parse_reference("elsewhere.example.com/x")).username == "e"
    explicit = write_json(tmp_path / "explicit.json", {"auths": {"reg.example.com": inline("given", "x")}})
    assert find_credentials(REF, authfile=explicit).username == "given"


def test_malformed_login_files_name_the_file_not_the_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text('{"auths": {"reg.example.com": {"auth": "' + PASSWORD + '"')
    with pytest.raises(InputError) as err:
        find_credentials(REF)
    assert str(err.value).startswith(f"{tmp_path / 'config.json'}: not valid JSON")
    assert PASSWORD not in str(err.value)
    write_json(tmp_path / "config.json", {"auths": {"reg.example.com": {"auth": PASSWORD}}})
    with pytest.raises(InputError, match="not base64 of user:password") as err:
        find_credentials(REF)
    assert PASSWORD not in str(err.value)


HELPER = """#!{python}
import json, os, sys, time
if os.environ.get("HELPER_SLEEP"):
    time.sleep(float(os.environ["HELPER_SLEEP"]))
server = sys.stdin.read()
with open(os.environ["HELPER_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "stdin": server}}) + "\\n")
store = json.load(open(os.environ["HELPER_STORE"]))
if server not in store:
    print("credentials not found in native keychain")
    sys.exit(1)
print(json.dumps({{"ServerURL": server, **store[server]}}))
"""


@pytest.fixture
def helper(tmp_path, monkeypatch):
    """``docker-credential-test`` on PATH; returns (store file, call log)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "docker-credential-test"
    script.write_text(HELPER.format(python=sys.executable))
    script.chmod(0o755)
    store, calls = tmp_path / "store.json", tmp_path / "calls.jsonl"
    write_json(store, {})
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("HELPER_STORE", str(store))
    monkeypatch.setenv("HELPER_LOG", str(calls))

    def logged() -> list[dict]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return store, logged


def test_cred_helpers_called_with_server_on_stdin(tmp_path, monkeypatch, helper):
    store, calls = helper
    write_json(store, {"reg.example.com": {"Username": USER, "Secret": PASSWORD},
                       DOCKER_HUB_SERVER_URL: {"Username": "hub", "Secret": "h"}})
    write_json(tmp_path / "dc" / "config.json", {"credHelpers": {"reg.example.com": "test", "docker.io": "test"}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    creds = find_credentials(REF)
    assert (creds.username, creds.password, creds.source) == (USER, PASSWORD, "docker-credential-test")
    assert find_credentials(parse_reference("alpine")).username == "hub"
    assert calls() == [{"argv": ["get"], "stdin": "reg.example.com"},
                       {"argv": ["get"], "stdin": DOCKER_HUB_SERVER_URL}]
    assert find_credentials(parse_reference("nohelper.example.com/x")) is None
    assert len(calls()) == 2  # credHelpers is per registry: no call for another one


def test_creds_store_then_inline_fallback(tmp_path, monkeypatch, helper):
    store, calls = helper
    write_json(store, {"reg.example.com": {"Username": USER, "Secret": PASSWORD}})
    write_json(tmp_path / "dc" / "config.json", {"credsStore": "test", "auths": {
        "fallback.example.com": inline("inline-user", "x"),
    }})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    assert find_credentials(REF).password == PASSWORD
    assert find_credentials(parse_reference("fallback.example.com/x")).username == "inline-user"
    assert [c["stdin"] for c in calls()] == ["reg.example.com", "fallback.example.com"]


def test_identity_token_from_helper(helper):
    store, _ = helper
    write_json(store, {"reg.example.com": {"Username": "<token>", "Secret": IDENTITY}})
    creds = run_credential_helper("test", "reg.example.com")
    assert (creds.identity_token, creds.password, creds.label) == (IDENTITY, "", "identity token")
    assert IDENTITY not in repr(creds)


def test_helper_failures_are_one_line(helper, monkeypatch):
    with pytest.raises(AuthenticationError, match="docker-credential-missing is not on PATH"):
        run_credential_helper("missing", "reg.example.com")
    monkeypatch.setenv("HELPER_SLEEP", "5")
    start = time.monotonic()
    with pytest.raises(AuthenticationError, match=r"did not answer within 0\.3 s"):
        run_credential_helper("test", "reg.example.com", timeout=0.3)
    assert time.monotonic() - start < 3
    monkeypatch.setenv("HELPER_SLEEP", "")
    monkeypatch.setenv("HELPER_STORE", "/nonexistent/store.json")
    with pytest.raises(AuthenticationError, match=r"docker-credential-test failed \(exit status 1\)"):
        run_credential_helper("test", "reg.example.com")


# -- basic auth end to end (real registry, htpasswd) -------------------------------------------------------


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory):
    reg, proc = start_registry(tmp_path_factory.mktemp("basic"), USER, PASSWORD)
    yield reg
    stop(proc)


def _manifest() -> bytes:
    empty = b"{}"
    return media.canonical_json({
        "schemaVersion": 2, "mediaType": media.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": media.sha256_digest(empty), "size": 2},
        "layers": [],
    })


def test_basic_auth_from_login_files(basic_registry, tmp_path, monkeypatch, helper):
    ref = f"{basic_registry.host}/files/app:v1"
    write_json(tmp_path / "dc" / "config.json", {"auths": {basic_registry.host: inline(USER, PASSWORD)}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    with RegistryClient(retry=FAST) as client:
        client.push_blob(ref, b"{}")
        digest = client.put_manifest(ref, _manifest(), media.OCI_MANIFEST)
    store, calls = helper
    write_json(store, {basic_registry.host: {"Username": USER, "Secret": PASSWORD}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(write_json(tmp_path / "auth.json", {"credsStore": "test"})))
    with RegistryClient(retry=FAST) as client:
        assert client.get_manifest(ref).digest == digest
        assert client.get_manifest(ref).digest == digest
    assert len(calls()) == 1  # the helper runs once per registry and client


def test_basic_auth_wrong_password_from_login_file(basic_registry, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(write_json(
        tmp_path / "auth.json", {"auths": {basic_registry.host: inline(USER, PASSWORD + "x")}})))
    client = RegistryClient(retry=FAST)
    with pytest.raises(AuthenticationError) as err:
        client.get_manifest(f"{basic_registry.host}/files/app:v1")
    assert str(err.value) == f"{basic_registry.host}: authentication failed for {USER} (HTTP 401)"
    for text in (str(err.value), repr(err.value), repr(client), caplog.text):
        assert PASSWORD not in text


# -- bearer tokens (token server + registry front in this file) -----------------------------------------


class Bearer:
    """A token server and a registry front that demands its tokens.

    The registry stores manifests in memory; GET/HEAD need ``pull`` and PUT needs ``push`` on the
    repository (``special/*`` needs ``push`` even to read: that is how insufficient_scope is tested).
    The token server grants what is asked to ``bob`` with the right password (or identity token),
    and only ``pull`` to anonymous callers.
    """

    def __init__(self, lifetime: int = 300):
        self.lifetime = lifetime
        self.tokens: dict[str, set[str]] = {}
        self.issued: list[dict] = []
        self.registry_hits: list[tuple[str, str, str]] = []
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.realm_override: str | None = None
        self.token_text: str | None = None  # what the token server hands out instead of a good token
        self.tags_next: str | None = None  # a Link: rel="next" URL for the tag list
        self.token_server = self._serve(self._token_handler())
        self.registry_server = self._serve(self._registry_handler())
        self.token_host = f"127.0.0.1:{self.token_server.server_address[1]}"
        self.host = f"127.0.0.1:{self.registry_server.server_address[1]}"

    @staticmethod
    def _serve(handler) -> http.server.ThreadingHTTPServer:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server

    def close(self) -> None:
        for server in (self.token_server, self.registry_server):
            server.shutdown()
            server.server_close()

    # token server
    def grant(self, user: str | None, scopes: list[str]) -> dict:
        granted = set()
        for scope in scopes:
            resource, _, actions = scope.rpartition(":")
            for action in actions.split(","):
                if user == USER or action == "pull":
                    granted.add(f"{resource}:{action}")
        token = f"tok-{len(self.issued)}"
        self.tokens[token] = granted
        self.issued.append({"user": user, "scopes": sorted(scopes), "token": token})
        return {"token": self.token_text or token, "expires_in": self.lifetime}

    def _token_handler(self):
        bearer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status: int, data: dict | None = None) -> None:
                body = json.dumps(data or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header:
                    name, _, password = base64.b64decode(header.split()[1]).decode().partition(":")
                    if (name, password) != (USER, PASSWORD):
                        return self.reply(401, {"details": "bad credentials"})
                    user = name
                assert query["service"] == ["fake-registry"]
                return self.reply(200, bearer.grant(user, query.get("scope", [])))

            def do_POST(self):
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                if form.get("grant_type") != ["refresh_token"] or form.get("refresh_token") != [IDENTITY]:
                    return self.reply(401)
                return self.reply(200, bearer.grant(USER, form["scope"][0].split()))

        return Handler

    # registry front
    def challenge(self, scope: str | None, error: str | None = None) -> str:
        realm = self.realm_override or f"http://{self.token_host}/token"
        text = f'Bearer realm="{realm}",service="fake-registry"'
        if scope:
            text += f',scope="{scope}"'
        if error:
            text += f',error="{error}"'
        return text

    def _registry_handler(self):
        bearer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status: int, headers: dict | None = None, body: bytes = b"") -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_one(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                repo, _, ref = self.path[len("/v2/"):].removesuffix("/tags/list").partition("/manifests/")
                action = "push" if self.command == "PUT" or repo.startswith("special/") else "pull"
                needed = f"repository:{repo}:pull" + (",push" if action == "push" else "")
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                bearer.registry_hits.append((self.command, self.path, token))
                if not token:
                    return self.answer(401, {"WWW-Authenticate": bearer.challenge(needed)})
                if token not in bearer.tokens:
                    return self.answer(401, {"WWW-Authenticate": bearer.challenge(needed, "invalid_token")})
                if f"repository:{repo}:{action}" not in bearer.tokens[token]:
                    return self.answer(401, {"WWW-Authenticate": bearer.challenge(needed, "insufficient_scope")})
                if self.path.endswith("/tags/list"):
                    link = {"Link": f'<{bearer.tags_next}>; rel="next"'} if bearer.tags_next else {}
                    return self.answer(200, {"Content-Type": "application/json", **link}, b'{"tags":["v1"]}')
                if self.command == "PUT":
                    bearer.manifests[(repo, ref)] = (body, self.headers["Content-Type"])
                    return self.answer(201, {"Docker-Content-Digest": media.sha256_digest(body)})
                if (repo, ref) not in bearer.manifests:
                    return self.answer(404, {"Content-Type": "application/json"},
                                       b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')
                raw, media_type = bearer.manifests[(repo, ref)]
                return self.answer(200, {"Content-Type": media_type,
                                         "Docker-Content-Digest": media.sha256_digest(raw)}, raw)

            do_GET = do_HEAD = do_PUT = handle_one

        return Handler


@pytest.fixture
def bearer():
    servers = Bearer()
    yield servers
    servers.close()


def test_one_token_per_scope(bearer):
    client = RegistryClient(username=USER, password=PASSWORD, retry=FAST)
    ref = f"{bearer.host}/team/app:v1"
    raw = _manifest()
    client.put_manifest(ref, raw, media.OCI_MANIFEST)  # 401, push token, PUT
    assert client.get_manifest(ref).raw == raw  # a pull token of its own
    assert client.get_manifest(ref).raw == raw  # cached
    client.put_manifest(ref, raw, media.OCI_MANIFEST)  # the push token again
    assert [t["scopes"] for t in bearer.issued] == [["repository:team/app:pull,push"], ["repository:team/app:pull"]]
    assert [t["user"] for t in bearer.issued] == [USER, USER]
    push_token, pull_token = (t["token"] for t in bearer.issued)
    assert [(m, tok) for m, _, tok in bearer.registry_hits] == [
        ("PUT", ""), ("PUT", push_token), ("GET", pull_token), ("GET", pull_token), ("PUT", push_token),
    ]
    assert client.auth.token_requests == 2


def test_insufficient_scope_gets_a_wider_token(bearer):
    client = RegistryClient(username=USER, password=PASSWORD, retry=FAST)
    client.put_manifest(f"{bearer.host}/special/app:v1", _manifest(), media.OCI_MANIFEST)
    before = len(bearer.issued)
    # The registry's challenge is known now, so the client first tries a pull token for the read.
    assert client.get_manifest(f"{bearer.host}/special/app:v1").raw == _manifest()
    assert [t["scopes"] for t in bearer.issued[before:]] == [["repository:special/app:pull"]]
    assert client.head_manifest(f"{bearer.host}/special/other:v1") is None
    assert [t["scopes"] for t in bearer.issued[before + 1:]] == [
        ["repository:special/other:pull"],  # refused with insufficient_scope ...
        ["repository:special/other:pull,push"],  # ... so a token for what the registry asked
    ]


def test_revoked_and_expired_tokens_are_renewed(bearer):
    client = RegistryClient(username=USER, password=PASSWORD, retry=FAST)
    ref = f"{bearer.host}/team/app:v1"
    client.put_manifest(ref, _manifest(), media.OCI_MANIFEST)
    bearer.tokens.clear()  # the registry forgets every token: invalid_token
    client.put_manifest(ref, _manifest(), media.OCI_MANIFEST)
    assert len(bearer.issued) == 2
    bearer.lifetime = 1
    client.get_manifest(ref)
    client.get_manifest(ref)
    assert len(bearer.issued) == 3
    time.sleep(1.0)  # 1 s life, renewed 0.1 s early
    client.get_manifest(ref)
    assert len(bearer.issued) == 4


def test_anonymous_pull_but_not_push(bearer):
    bearer.manifests[("pub/app", "v1")] = (_manifest(), media.OCI_MANIFEST)
    client = RegistryClient(retry=FAST)
    assert client.get_manifest(f"{bearer.host}/pub/app:v1").raw == _manifest()
    assert bearer.issued[0]["user"] is None
    with pytest.raises(AuthenticationError) as err:
        client.put_manifest(f"{bearer.host}/pub/app:v1", _manifest(), media.OCI_MANIFEST)
    assert str(err.value) == f"{bearer.host}: authentication failed for anonymous (HTTP 401)"


def test_wrong_password_at_the_token_server(bearer, caplog):
    caplog.set_level(logging.DEBUG)
    client = RegistryClient(username=USER, password=PASSWORD + "-wrong", retry=FAST)
    with pytest.raises(AuthenticationError) as err:
        client.get_manifest(f"{bearer.host}/team/app:v1")
    assert str(err.value) == f"{bearer.host}: authentication failed for {USER} (HTTP 401)"
    assert err.value.status == 401
    for text in (str(err.value), repr(err.value), repr(client), repr(client.auth), caplog.text):
        assert PASSWORD not in text
    assert bearer.issued == []


def test_identity_token_uses_the_refresh_grant(bearer, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    write_json(tmp_path / "dc" / "config.json", {"auths": {bearer.host: {"identitytoken": IDENTITY}}})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dc"))
    client = RegistryClient(retry=FAST)
    client.put_manifest(f"{bearer.host}/team/app:v1", _manifest(), media.OCI_MANIFEST)
    assert bearer.issued == [{"user": USER, "scopes": ["repository:team/app:pull,push"], "token": "tok-0"}]
    assert IDENTITY not in caplog.text and "tok-0" not in caplog.text


def test_credentials_never_sent_over_plain_http_to_a_remote_realm(bearer):
    bearer.realm_override = "http://auth.example.com/token"
    client = RegistryClient(username=USER, password=PASSWORD, retry=FAST)
    with pytest.raises(AuthenticationError, match=r"over plain HTTP to auth\.example\.com$"):
        client.get_manifest(f"{bearer.host}/team/app:v1")


def test_credentials_repr_hides_secrets():
    creds = Credentials(USER, PASSWORD, IDENTITY, "somewhere")
    for text in (repr(creds), str(creds), f"{creds}"):
        assert PASSWORD not in text and IDENTITY not in text


def test_malformed_token_is_refused_without_echoing_it(bearer, capsys):
    """A token with a line break would end up in an invalid header, whose error quotes the value."""
    bearer.token_text = "SUPERSECRET-token\nX-Evil: 1"
    client = RegistryClient(username=USER, password=PASSWORD, retry=FAST)
    with pytest.raises(AuthenticationError) as err:
        client.get_manifest(f"{bearer.host}/team/app:v1")
    assert str(err.value) == f"{bearer.host}: token server answered with a malformed token"
    assert "SUPERSECRET" not in repr(client.auth._tokens)


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Another origin the registry may name: records what arrives, answers an empty tag page."""

    seen: typing.ClassVar[list] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        _Recorder.seen.append(self.headers.get("Authorization"))
        body = b'{"tags":["v2"]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_credentials_stay_with_the_registry_origin(bearer):
    """A URL the registry hands back (Link, upload Location) on another origin gets no Authorization."""
    other = Bearer._serve(_Recorder)
    _Recorder.seen = []
    try:
        bearer.tags_next = f"http://127.0.0.1:{other.server_address[1]}/v2/team/app/tags/list?last=v1"
        client = RegistryClient(username=USER, password=PASSWORD, retry=FAST)
        assert client.list_tags(f"{bearer.host}/team/app") == ["v1", "v2"]
        assert _Recorder.seen == [None]
        assert bearer.registry_hits[-1][2].startswith("tok-")  # the registry itself did get its token
    finally:
        other.shutdown()
        other.server_close()


def test_plain_http_address_from_a_tls_registry_is_refused():
    client = RegistryClient(username=USER, password=PASSWORD, retry=FAST)
    ref = parse_reference("registry.example.com/team/app:v1")
    with pytest.raises(RegistryError, match=r"plain-HTTP address on proxy\.example\.com; refusing"):
        client._url(ref, "http://proxy.example.com/v2/team/app/blobs/uploads/1")
    assert client._url(ref, "/v2/team/app/blobs/uploads/1") == (
        "https://registry.example.com/v2/team/app/blobs/uploads/1", True)
    assert client._url(ref, "https://storage.example.com/x")[1] is False
