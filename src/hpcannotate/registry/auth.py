"""Registry authentication: challenges, credentials from the usual login files, one bearer token per scope.

Why our own: the registry client must PUT manifests under a ``pull,push`` token while reading
others under ``pull``, and must not reuse a read-only token for a write (oras-py keeps a single
token for everything). Credentials are read where ``docker login``, ``podman login``, ``buildah
login`` and ``skopeo login`` leave them, so a user logged in with any of those needs nothing else.

Secrets (passwords, identity tokens, bearer tokens) never appear in ``repr()``, log records or
exception messages: messages name the registry and the *user name* only.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hpcannotate.errors import HpcAnnotateError, InputError
from hpcannotate.registry import transport
from hpcannotate.registry.reference import DOCKER_HUB, DOCKER_HUB_ALIASES, Reference

# The key docker uses for Docker Hub in config.json and when it asks a credential helper.
DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 30.0
# A token is renewed this long before the registry says it expires (at most a tenth of its life).
TOKEN_MARGIN = 10.0
DEFAULT_TOKEN_LIFETIME = 60  # distribution's token spec: assume 60 s when expires_in is absent


# -- errors ------------------------------------------------------------------------------------------


class RegistryError(HpcAnnotateError):
    """A registry answered with an error or could not be reached; one line naming the registry.

    ``status`` (HTTP status, None when no answer) and ``code`` (the registry's error code such as
    ``MANIFEST_UNKNOWN``) let callers tell "not found" from "refused" without parsing the text.
    """

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class AuthenticationError(RegistryError):
    """Credentials missing, wrong, or not allowed the requested access."""


class DigestMismatchError(RegistryError):
    """Content whose sha256 is not the digest the registry or the reference claims."""


# -- credentials --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A user name and secret; ``identity_token`` is an OAuth2 refresh token (``docker login`` to some registries)."""

    username: str
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)
    source: str = ""  # where they came from (a file path or a helper name), for messages

    @property
    def label(self) -> str:
        """How messages name the user: never the secret."""
        return "identity token" if self.identity_token and not self.password else self.username

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>, source={self.source!r})"

    __str__ = __repr__


def find_credentials(
    ref: Reference,
    *,
    authfile: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    helper_timeout: float = HELPER_TIMEOUT,
) -> Credentials | None:
    """Credentials for ``ref``'s registry from the login files, or None (anonymous).

    Order, as in containers/image (podman, buildah, skopeo): ``authfile`` or ``$REGISTRY_AUTH_FILE``
    if given (and then only that file, as ``--authfile`` means there); otherwise
    ``$XDG_RUNTIME_DIR/containers/auth.json``, ``$XDG_CONFIG_HOME`` (``~/.config``)
    ``/containers/auth.json``, then docker's ``$DOCKER_CONFIG/config.json`` (``~/.docker/config.json``).
    Within a file: ``credHelpers`` for the registry, then ``credsStore``, then inline ``auths``.
    """
    env = os.environ if env is None else env
    check_authfile(authfile)
    for path in auth_file_paths(env, authfile):
        creds = _from_file(path, ref, env, helper_timeout)
        if creds is not None:
            return creds
    return None


def check_authfile(authfile: str | Path | None) -> None:
    """A login file named on purpose must exist: a typo must not quietly mean anonymous access."""
    if authfile and not Path(authfile).is_file():
        from hpcannotate.files import kind_of

        kind = kind_of(os.stat(authfile).st_mode) if os.path.exists(authfile) else None
        raise InputError(f"--authfile {authfile}: {f'is {kind}, not a file' if kind else 'no such file'}")


def auth_file_paths(env: Mapping[str, str], authfile: str | Path | None = None) -> list[Path]:
    """The login files to read, in order (see ``find_credentials``)."""
    explicit = authfile or env.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    home = Path(env.get("HOME") or Path.home())
    paths = []
    if env.get("XDG_RUNTIME_DIR"):
        paths.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    paths.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "containers" / "auth.json")
    docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
    paths.append(docker_dir / "config.json")
    return paths


def _from_file(path: Path, ref: Reference, env: Mapping[str, str], timeout: float) -> Credentials | None:
    config = _load_json(path)
    if config is None:
        return None
    helper = _lookup(config.get("credHelpers"), ref) or config.get("credsStore")
    if helper:
        creds = run_credential_helper(str(helper), helper_server(ref), env=env, timeout=timeout)
        if creds is not None:
            return creds
    entry = _lookup(config.get("auths"), ref)
    if isinstance(entry, dict):
        return _from_entry(entry, path)
    return None


def _load_json(path: Path) -> dict | None:
    from hpcannotate.files import read_text

    if not os.path.exists(path):  # a dangling link counts as absent, as before
        return None
    text = read_text(path, "file of registry credentials")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # No excerpt of the file in the message: it holds secrets.
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of registry credentials")
    return data


def _lookup(table: Any, ref: Reference) -> Any:
    """The entry of ``table`` for ``ref``: the most specific ``host/namespace`` key wins (containers' rule)."""
    if not isinstance(table, dict):
        return None
    keyed = {}
    for key, value in table.items():
        keyed.setdefault(normalize_auth_key(str(key)), value)
    for candidate in _candidates(ref):
        if candidate in keyed:
            return keyed[candidate]
    return None


def _candidates(ref: Reference) -> list[str]:
    parts = ref.repository.split("/") if ref.repository else []
    return [f"{ref.registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)] + [ref.registry]


def normalize_auth_key(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``quay.io/ns`` stays (a URL's path is an API version)."""
    had_scheme = "://" in key
    key = key.split("://", 1)[1] if had_scheme else key
    host, _, path = key.rstrip("/").partition("/")
    host = DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host
    return host if had_scheme or not path else f"{host}/{path}"


def _from_entry(entry: dict, path: Path) -> Credentials | None:
    token = entry.get("identitytoken") or None
    if entry.get("auth"):
        user, password = _decode_auth(str(entry["auth"]), path)
    else:
        user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if not (user or token):
        return None
    return Credentials(user or "<token>", password, token, str(path))


def _decode_auth(value: str, path: Path) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InputError(f"{path}: an 'auth' entry is not base64 of user:password") from None
    user, colon, password = decoded.partition(":")
    if not colon:
        raise InputError(f"{path}: an 'auth' entry is not base64 of user:password")
    return user, password.strip("\n")


def helper_server(ref: Reference) -> str:
    """What docker writes on a helper's stdin: Docker Hub's legacy URL, else the registry host."""
    return DOCKER_HUB_SERVER_URL if ref.registry == DOCKER_HUB else ref.registry


def run_credential_helper(
    helper: str, server: str, *, env: Mapping[str, str] | None = None, timeout: float = HELPER_TIMEOUT
) -> Credentials | None:
    """``docker-credential-HELPER get`` with ``server`` on stdin; None when it has nothing for it.

    Its output is never echoed (it holds the secret): failures name the helper and the exit status.
    """
    import shutil  # only when a helper is configured: every other command starts without them
    import subprocess

    env = dict(os.environ if env is None else env)
    name = f"docker-credential-{helper}"
    exe = shutil.which(name, path=env.get("PATH"))
    if exe is None:
        raise AuthenticationError(f"{server}: credential helper {name} is not on PATH")
    try:
        proc = subprocess.run([exe, "get"], input=server, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AuthenticationError(f"{server}: credential helper {name} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise AuthenticationError(f"{server}: cannot run credential helper {name} ({exc.strerror})") from None
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise AuthenticationError(f"{server}: credential helper {name} failed (exit status {proc.returncode})")
    return _helper_credentials(proc.stdout, name)


def _helper_credentials(output: str, name: str) -> Credentials | None:
    try:
        data = json.loads(output)
        user, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    except (json.JSONDecodeError, AttributeError):
        raise AuthenticationError(f"credential helper {name} printed something that is not its JSON answer") from None
    if not secret:
        return None
    if user == "<token>":
        return Credentials("<token>", "", secret, name)
    return Credentials(user, secret, None, name)


def basic_header(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


# -- challenges --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (lower case) and its parameters (names lower case)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    def scopes(self) -> list[str]:
        return self.params.get("scope", "").split()


_PARAM_RE = re.compile(
    r"""\s*,?\s*(?P<name>[^\s,="]+)\s*(?:=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^,\s]*)))?"""
)


def parse_www_authenticate(header: str | None) -> list[Challenge]:
    """Parse ``Bearer realm="...",service="...",scope="repository:a:pull,push"`` (commas inside quotes kept).

    Several challenges may share one header (``Basic realm="x", Bearer realm="y"``): a name not
    followed by ``=`` starts a new challenge.
    """
    challenges: list[Challenge] = []
    if not header:
        return challenges
    pos = 0
    while pos < len(header):
        match = _PARAM_RE.match(header, pos)
        if not match or match.end() == pos:
            break
        pos = match.end()
        value = match.group("quoted")
        value = re.sub(r"\\(.)", r"\1", value) if value is not None else match.group("bare")
        if value is None:
            challenges.append(Challenge(match.group("name").lower()))
        elif challenges:
            challenges[-1].params[match.group("name").lower()] = value
    return challenges


def choose_challenge(challenges: Sequence[Challenge]) -> Challenge | None:
    """Bearer over Basic (a token limits what a leaked header can do); unknown schemes ignored."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def merge_scopes(*groups: Iterable[str]) -> tuple[str, ...]:
    """Union of scopes, actions merged per resource (``a:pull`` + ``a:pull,push`` -> ``a:pull,push``)."""
    actions: dict[str, list[str]] = {}
    for scope in (s for group in groups for s in group):
        resource, _, acts = scope.rpartition(":")
        if not resource:
            resource, acts = scope, ""
        merged = actions.setdefault(resource, [])
        merged.extend(a for a in acts.split(",") if a and a not in merged)
    return tuple(sorted(f"{r}:{','.join(sorted(a))}" if a else r for r, a in actions.items()))


# -- tokens ------------------------------------------------------------------------------------------


class TokenReply(Protocol):
    status_code: int

    def json(self) -> Any: ...


# (method, url, headers, params, form data) -> reply; the client sends it with its TLS, retry and stats rules.
TokenSender = Callable[[str, str, dict, dict, dict | None], TokenReply]


@dataclass
class _Token:
    value: str = field(repr=False)
    expires: float


class Authenticator:
    """What to put in ``Authorization`` for a request, learnt from the registry's 401 challenges.

    Nothing is sent to a registry before it asks. A bearer token is cached per (realm, service,
    user, scopes): a ``pull`` token is never used for a push, and a ``pull,push`` token is fetched
    only when writing.
    """

    def __init__(
        self,
        send: TokenSender,
        credentials_for: Callable[[Reference], Credentials | None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self._send = send
        self._credentials_for = credentials_for
        self._clock = clock
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple, _Token] = {}
        self._creds: dict[tuple[str, str], Credentials | None] = {}
        self.token_requests = 0

    def __repr__(self) -> str:
        return f"Authenticator(hosts={sorted(self._challenges)}, tokens={len(self._tokens)})"

    def credentials(self, ref: Reference) -> Credentials | None:
        key = (ref.registry, ref.repository)
        if key not in self._creds:
            self._creds[key] = self._credentials_for(ref)
        return self._creds[key]

    def user_label(self, ref: Reference) -> str:
        creds = self.credentials(ref)
        return creds.label if creds else "anonymous"

    def authorization(self, ref: Reference, scopes: Sequence[str]) -> str | None:
        """The header value for a request needing ``scopes``, or None until the registry has challenged."""
        challenge = self._challenges.get(ref.api_host)
        if challenge is None:
            return None
        creds = self.credentials(ref)
        if challenge.scheme == "basic":
            return basic_header(creds) if creds and creds.password else None
        return "Bearer " + self._token(ref, challenge, tuple(scopes), creds)

    def unauthorized(self, ref: Reference, header: str | None, scopes: Sequence[str]) -> tuple[str, ...]:
        """Learn from a 401; returns the scopes to retry with. Raises when a retry cannot help."""
        challenge = choose_challenge(parse_www_authenticate(header))
        if challenge is None:
            raise AuthenticationError(f"{ref.registry}: HTTP 401 without a usable authentication challenge", 401)
        self._challenges[ref.api_host] = challenge
        wanted = merge_scopes(scopes, challenge.scopes())
        creds = self.credentials(ref)
        if challenge.scheme == "basic" and not (creds and creds.password):
            raise AuthenticationError(
                f"{ref.registry}: authentication required and no credentials found "
                "(log in with docker, podman or skopeo login, or pass a user name)",
                401,
            )
        if wanted == merge_scopes(scopes):
            # The token sent had the scopes the registry wants and was refused (expired, revoked): renew it.
            # When the registry wants more (insufficient_scope), the sent token stays good for its own scopes.
            self._tokens.pop(self._token_key(challenge, wanted, creds), None)
        return wanted

    def failed(self, ref: Reference) -> AuthenticationError:
        """The error after a retry with fresh credentials was still refused."""
        return AuthenticationError(f"{ref.registry}: authentication failed for {self.user_label(ref)} (HTTP 401)", 401)

    def _token_key(self, challenge: Challenge, scopes: Sequence[str], creds: Credentials | None) -> tuple:
        user = creds.username if creds else ""
        return (challenge.params.get("realm"), challenge.params.get("service"), user, merge_scopes(scopes))

    def _token(self, ref: Reference, challenge: Challenge, scopes: tuple[str, ...], creds: Credentials | None) -> str:
        key = self._token_key(challenge, scopes, creds)
        cached = self._tokens.get(key)
        if cached and cached.expires > self._clock():
            return cached.value
        token = self._fetch_token(ref, challenge, key[3], creds)
        self._tokens[key] = token
        return token.value

    def _fetch_token(
        self, ref: Reference, challenge: Challenge, scopes: tuple[str, ...], creds: Credentials | None
    ) -> _Token:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationError(f"{ref.registry}: bearer challenge without a realm", 401)
        service = challenge.params.get("service")
        self.token_requests += 1
        transport.debug("token request to %s for %s", realm, " ".join(scopes))
        if creds and creds.identity_token:
            reply = self._send("POST", realm, {}, {}, _refresh_form(service, scopes, creds))
        else:
            params: dict = {"scope": list(scopes)} if scopes else {}
            if service:
                params["service"] = service
            headers = {"Authorization": basic_header(creds)} if creds and creds.password else {}
            reply = self._send("GET", realm, headers, params, None)
        return self._parse_token(ref, reply)

    def _parse_token(self, ref: Reference, reply: TokenReply) -> _Token:
        if reply.status_code in (401, 403):
            raise AuthenticationError(
                f"{ref.registry}: authentication failed for {self.user_label(ref)} (HTTP {reply.status_code})",
                reply.status_code,
            )
        if reply.status_code != 200:
            raise AuthenticationError(f"{ref.registry}: token server answered HTTP {reply.status_code}",
                                      reply.status_code)
        try:
            data = reply.json()
            value = data.get("token") or data.get("access_token")
            lifetime = float(data.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            value = None
        value = str(value).strip() if value else ""
        if not value:
            raise AuthenticationError(f"{ref.registry}: token server answered without a token")
        if not value.isprintable() or " " in value:
            raise AuthenticationError(f"{ref.registry}: token server answered with a malformed token")
        margin = min(TOKEN_MARGIN, lifetime / 10)
        return _Token(str(value), self._clock() + lifetime - margin)


def _refresh_form(service: str | None, scopes: Sequence[str], creds: Credentials) -> dict:
    """OAuth2 refresh-token grant (distribution's token spec), for identity tokens from ``docker login``."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": creds.identity_token or "",
        "client_id": "hpcannotate",
        "scope": " ".join(scopes),
    }
    if service:
        form["service"] = service
    return form
