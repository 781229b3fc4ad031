"""A small OCI distribution client: manifests as raw bytes, blobs by digest, tags.

Why not oras-py: it cannot PUT an index, keeps one token for all scopes and re-serialises
manifests (so their digest changes). Retrofitting annotations needs the exact bytes a registry
serves, their sha256 checked against what the registry and the reference claim, and a PUT whose
returned digest is checked against what was sent. ``annotate`` only moves manifests: the blob
upload here exists for completeness (``build --push``), never for retrofits.

Transport rules: TLS verified; plain HTTP only for loopback registries (as crane does) or when
asked; every request has a timeout; connection errors, 429 and 5xx are retried with backoff,
bounded in count and in total time; a 4xx is never retried except 429, and 401 once after
re-authenticating. ``stats`` counts requests and bytes both ways (the retrofit bench reports them).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple
from urllib.parse import urlencode, urljoin, urlsplit

from hpcannotate.errors import InputError
from hpcannotate.files import open_regular
from hpcannotate.oci.media import ALL_MANIFEST_TYPES, MANIFEST_LIMIT, sha256_digest
from hpcannotate.registry import transport
from hpcannotate.registry.auth import (
    AuthenticationError,
    Authenticator,
    Credentials,
    DigestMismatchError,
    RegistryError,
    check_authfile,
    find_credentials,
    merge_scopes,
    pull_scope,
    push_scope,
)
from hpcannotate.registry.deadline import DEADLINE_ENV, Watchdog, default_deadline
from hpcannotate.registry.lean import LeanTransport, TooLarge
from hpcannotate.registry.reference import Reference, is_loopback, parse_reference
from hpcannotate.registry.transport import (
    ConnectTimeout,
    CutOff,
    ReadTimeout,
    Response,
    TLSFailure,
    TransportError,
    loggable,
)

if TYPE_CHECKING:
    import requests

MANIFEST_ACCEPT = ", ".join(ALL_MANIFEST_TYPES)
CHUNK = 1024 * 1024
CONFIG_LIMIT = 64 * 1024 * 1024  # fetch_blob is for configs and small JSON, not layers
ERROR_BODY_LIMIT = 64 * 1024
USER_AGENT = "hpcannotate-registry/1"
# 501 Not Implemented and 505 will not change on a retry; the other 5xx may.
RETRY_STATUSES = frozenset({429, *range(500, 600)}) - {501, 505}

Body = bytes | Callable[[], IO[bytes]] | None


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``retries`` after the first attempt, all within ``total`` seconds."""

    retries: int = 5
    total: float = 120.0
    backoff: float = 0.5  # first delay; doubles each retry, with jitter
    max_backoff: float = 8.0
    retry_after_cap: float = 30.0  # a Retry-After above this is treated as this

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        base = min(self.max_backoff, self.backoff * (2**attempt))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not cryptography


@dataclass
class TransferStats:
    """What the client did on the wire: requests (retries and token requests included) and bytes.

    Bytes are request line, headers and body sent; status line, headers and the body read.
    """

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    retries: int = 0
    by_method: Counter = field(default_factory=Counter)

    def reset(self) -> None:
        self.requests = self.bytes_sent = self.bytes_received = self.retries = 0
        self.by_method.clear()

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "retries": self.retries,
            "by_method": dict(self.by_method),
        }


class DeadlineError(RegistryError):
    """A request whose answer did not arrive within the client's deadline; it is not retried."""


class RawManifest(NamedTuple):
    """A manifest exactly as served: its bytes, media type and (verified) sha256 digest."""

    raw: bytes
    media_type: str
    digest: str


class ManifestHead(NamedTuple):
    media_type: str
    digest: str
    size: int


class RegistryClient:
    """Talks the OCI distribution API to any number of registries.

    Credentials: ``username``/``password`` if given (for every registry this client talks to),
    else the login files (see ``auth.find_credentials``; ``authfile`` like ``--authfile``).
    ``plain_http``: None = HTTP for loopback registries only, True = always HTTP, False = always
    HTTPS. ``verify``: True, or a CA bundle path; ``insecure=True`` turns TLS verification off.
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        authfile: str | Path | None = None,
        plain_http: bool | None = None,
        verify: bool | str = True,
        insecure: bool = False,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,  # a caller's own: then every request goes through it
        sleep: Callable[[float], None] = time.sleep,
        deadline: float | None = None,
        lean: bool = True,
    ):
        self._explicit = Credentials(username, password or "", None, "caller") if username else None
        check_authfile(authfile)
        self._authfile = authfile
        self.plain_http = plain_http
        self.verify: bool | str = False if insecure else verify
        self.timeout = timeout
        # One request's whole answer (a streamed blob: each chunk of it) must arrive within this.
        self.deadline = deadline if deadline is not None else default_deadline()
        self.retry = retry or RetryPolicy()
        self.stats = TransferStats()
        self._sleep = sleep
        # Small bodiless requests skip requests' machinery (see lean.py) unless the caller brought a session;
        # requests itself is imported when a request first needs it (heavy.py).
        self._lean = LeanTransport(timeout) if lean and session is None else None
        self._session = session
        self._insecure = insecure
        self._settings_cache: dict[tuple[str, str], dict] = {}
        self.auth = Authenticator(self._token_send, self._find_credentials)
        if insecure:
            transport.warning("TLS certificate verification is off (insecure requested)")

    def __repr__(self) -> str:
        return f"RegistryClient(plain_http={self.plain_http}, verify={self.verify!r}, stats={self.stats.as_dict()})"

    def close(self) -> None:
        if self._lean is not None:
            self._lean.close()
        if self._session is not None:
            self._session.close()

    def _requests_session(self) -> requests.Session:
        """requests' session, made (and requests imported) on first need."""
        if self._session is None:
            from hpcannotate.registry import heavy

            self._session = heavy.new_session(USER_AGENT, self._insecure)
        return self._session

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- manifests ---------------------------------------------------------------------------------

    def get_manifest(self, ref: Reference | str) -> RawManifest:
        """The manifest or index ``ref`` names, as raw bytes; its sha256 is checked before returning."""
        ref = as_reference(ref)
        resp = self._request(
            "GET", ref, f"manifests/{ref.manifest_ref}", [pull_scope(ref.repository)],
            headers={"Accept": MANIFEST_ACCEPT}, read=MANIFEST_LIMIT, what="manifest",
        )
        raw = resp.content
        digest = sha256_digest(raw)
        self._check_digest(ref, digest, resp.headers.get("Docker-Content-Digest"), "manifest")
        return RawManifest(raw, _media_type(resp.headers.get("Content-Type"), raw, ref), digest)

    def head_manifest(self, ref: Reference | str) -> ManifestHead | None:
        """Media type, digest and size of ``ref`` without its body; None if it does not exist."""
        ref = as_reference(ref)
        resp = self._request(
            "HEAD", ref, f"manifests/{ref.manifest_ref}", [pull_scope(ref.repository)],
            headers={"Accept": MANIFEST_ACCEPT}, missing_ok=True, what="manifest",
        )
        if resp.status_code == 404:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        media_type = _bare_type(resp.headers.get("Content-Type"))
        if not digest or not digest.startswith("sha256:") or media_type not in ALL_MANIFEST_TYPES:
            got = self.get_manifest(ref)  # some registries omit the digest on HEAD
            return ManifestHead(got.media_type, got.digest, len(got.raw))
        if ref.digest and digest != ref.digest:
            raise DigestMismatchError(f"{ref}: the registry names it {digest}")
        return ManifestHead(media_type, digest, int(resp.headers.get("Content-Length") or 0))

    def put_manifest(self, ref: Reference | str, raw: bytes, media_type: str) -> str:
        """Store ``raw`` under ``ref``'s tag (or its digest when it has no tag); returns the verified digest."""
        ref = as_reference(ref)
        if media_type not in ALL_MANIFEST_TYPES:
            raise InputError(f"{ref}: {media_type!r} is not a manifest media type")
        if len(raw) > MANIFEST_LIMIT:
            raise InputError(f"{ref}: manifest of {len(raw)} bytes; registries refuse more than {MANIFEST_LIMIT}")
        digest = sha256_digest(raw)
        if ref.digest and ref.digest != digest:
            raise DigestMismatchError(f"{ref}: the manifest to write has digest {digest}")
        resp = self._request(
            "PUT", ref, f"manifests/{ref.tag or digest}", [push_scope(ref.repository)],
            headers={"Content-Type": media_type}, body=raw, ok=(200, 201, 202), what="manifest upload",
        )
        returned = resp.headers.get("Docker-Content-Digest")
        if returned and returned != digest:
            raise DigestMismatchError(f"{ref}: the registry stored {returned}, not the {digest} that was sent")
        return digest

    # -- blobs -------------------------------------------------------------------------------------

    def blob_exists(self, ref: Reference | str, digest: str) -> bool:
        ref = as_reference(ref)
        resp = self._request(
            "HEAD", ref, f"blobs/{digest}", [pull_scope(ref.repository)], missing_ok=True, what=f"blob {digest}"
        )
        return resp.status_code != 404

    def get_blob(self, ref: Reference | str, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Stream blob ``digest``; raises ``DigestMismatchError`` at the end if the bytes do not match.

        A generator: nothing is requested until iteration starts. Consumers write chunks to a
        temporary file and keep it only when the iteration ends without an error.
        """
        ref = as_reference(ref)
        resp = self._request(
            "GET", ref, f"blobs/{digest}", [pull_scope(ref.repository)], read=None, what=f"blob {digest}"
        )
        hasher = hashlib.sha256()
        watchdog: Watchdog | None = getattr(resp, "watchdog", None)
        chunks = resp.iter_content(chunk_size)
        if not isinstance(resp, Response):  # requests' streamed answer: its errors become transport errors
            from hpcannotate.registry import heavy

            chunks = heavy.iter_body(resp, chunk_size)
        try:
            for chunk in chunks:
                hasher.update(chunk)
                self.stats.bytes_received += len(chunk)
                if watchdog is not None:
                    watchdog.arm()  # each chunk within the deadline: slow but steady transfers go on
                yield chunk
        except TransportError as exc:
            if watchdog is not None and watchdog.expired:
                raise self._deadline_error("GET", resp.url) from None
            raise RegistryError(f"{ref.registry}: blob {digest} cut off ({_reason(exc, self.timeout)})") from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
            resp.close()
        if "sha256:" + hasher.hexdigest() != digest:
            raise DigestMismatchError(f"{ref.name}: blob {digest} has content of another digest")

    def fetch_blob(self, ref: Reference | str, digest: str, limit: int = CONFIG_LIMIT) -> bytes:
        """A small blob (an image config) in memory, retried whole on failure and digest-checked."""
        ref = as_reference(ref)
        resp = self._request(
            "GET", ref, f"blobs/{digest}", [pull_scope(ref.repository)], read=limit, what=f"blob {digest}"
        )
        if sha256_digest(resp.content) != digest:
            raise DigestMismatchError(f"{ref.name}: blob {digest} has content of another digest")
        return resp.content

    def push_blob(
        self,
        ref: Reference | str,
        data: bytes | Path,
        *,
        digest: str | None = None,
        mount_from: Reference | str | None = None,
    ) -> str:
        """Upload a blob (monolithic POST + PUT) unless the repository has it; returns its digest.

        ``mount_from`` (a repository on the same registry) asks the registry to link the blob
        from there instead of receiving it. Retrofits never call this.
        """
        ref = as_reference(ref)
        digest = digest or _digest_of(data)
        if self.blob_exists(ref, digest):
            return digest
        location = self._start_upload(ref, digest, mount_from)
        if location is None:
            return digest
        try:
            resp = self._request(
                "PUT", ref, _with_query(location, {"digest": digest}), [push_scope(ref.repository)],
                headers={"Content-Type": "application/octet-stream"}, body=_body(data), ok=(201, 204),
                what=f"blob {digest} upload",
            )
        except RegistryError as exc:
            # A retried PUT after a lost answer finds its upload session closed: the blob may be there.
            if exc.status == 404 and self.blob_exists(ref, digest):
                return digest
            raise
        self._check_digest(ref.with_digest(digest), digest, resp.headers.get("Docker-Content-Digest"), "blob")
        return digest

    def _start_upload(self, ref: Reference, digest: str, mount_from: Reference | str | None) -> str | None:
        """POST an upload; returns its Location, or None when the registry mounted the blob."""
        scopes = [push_scope(ref.repository)]
        path = "blobs/uploads/"
        if mount_from is not None:
            source = mount_from.repository if isinstance(mount_from, Reference) else str(mount_from)
            scopes.append(pull_scope(source))
            path += "?" + urlencode({"mount": digest, "from": source})
        resp = self._request("POST", ref, path, scopes, ok=(201, 202), what="blob upload")
        if resp.status_code == 201:
            return None
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"{ref.registry}: upload started without a Location", resp.status_code)
        return location

    # -- tags --------------------------------------------------------------------------------------

    def list_tags(self, ref: Reference | str, page_size: int | None = None) -> list[str]:
        """Every tag of ``ref``'s repository, following ``Link: <...>; rel="next"`` pages."""
        ref = as_reference(ref)
        path = "tags/list" + (f"?n={page_size}" if page_size else "")
        tags: list[str] = []
        seen: set[str] = set()
        while path and path not in seen:
            seen.add(path)
            resp = self._request("GET", ref, path, [pull_scope(ref.repository)], read=MANIFEST_LIMIT, what="tag list")
            try:
                tags.extend(resp.json().get("tags") or [])
            except (ValueError, AttributeError):
                raise RegistryError(f"{ref.name}: the tag list is not JSON", resp.status_code) from None
            path = resp.links.get("next", {}).get("url")
        return tags

    def list_repositories(self, registry: str, page_size: int | None = 1000) -> Iterator[list[str]]:
        """The registry's repositories (``/v2/_catalog``), one page at a time, following ``Link`` pages.

        Pages are yielded as they arrive so a crawl can start on the first page; the scope is
        ``registry:catalog:*`` (a token server may grant it only to some users).
        """
        ref = Reference(registry=registry, repository="_catalog")
        path: str | None = "/v2/_catalog" + (f"?n={page_size}" if page_size else "")
        seen: set[str] = set()
        while path and path not in seen:
            seen.add(path)
            resp = self._request("GET", ref, path, ["registry:catalog:*"], read=MANIFEST_LIMIT,
                                 what="repository catalog")
            try:
                names = resp.json().get("repositories") or []
            except (ValueError, AttributeError):
                raise RegistryError(f"{registry}: the repository catalog is not JSON", resp.status_code) from None
            yield [str(n) for n in names]
            path = resp.links.get("next", {}).get("url")

    # -- plumbing ----------------------------------------------------------------------------------

    def base_url(self, host: str) -> str:
        """``http://`` for loopback hosts (or when plain_http), else ``https://``."""
        plain = self.plain_http if self.plain_http is not None else is_loopback(host)
        return f"{'http' if plain else 'https'}://{host}"

    def _url(self, ref: Reference, path: str) -> tuple[str, bool]:
        """The URL for ``path`` and whether it is the registry's own origin (the only one sent credentials).

        ``path`` is relative to ``/v2/REPO/``, or an absolute path/URL the registry handed back
        (upload Location, Link). Such a URL gets the same plain-HTTP rule as the registry itself.
        """
        base = self.base_url(ref.api_host)
        if not path.startswith(("/", "http://", "https://")):
            return f"{base}/v2/{ref.repository}/{path}", True
        url = urljoin(base + "/", path)
        parts, own = urlsplit(url), urlsplit(base)
        if parts.scheme == "http" and own.scheme != "http" and not (self.plain_http or is_loopback(parts.netloc)):
            raise RegistryError(f"{ref.registry}: the registry sent a plain-HTTP address on {parts.netloc}; "
                                "refusing (pass --plain-http if that is intended)")
        return url, (parts.scheme, parts.netloc) == (own.scheme, own.netloc)

    def _find_credentials(self, ref: Reference) -> Credentials | None:
        return self._explicit or find_credentials(ref, authfile=self._authfile)

    def _request(
        self,
        method: str,
        ref: Reference,
        path: str,
        scopes: Sequence[str],
        *,
        headers: dict | None = None,
        body: Body = None,
        ok: Sequence[int] = (200,),
        missing_ok: bool = False,
        read: int | None = ERROR_BODY_LIMIT,
        what: str,
    ) -> Response:
        """One API call with authentication (challenge, then at most one re-authenticated retry).

        The body of a successful answer is read (up to ``read`` bytes) so the connection goes back
        to the pool; ``read=None`` leaves it to stream (blobs).
        """
        url, own_origin = self._url(ref, path)
        wanted = merge_scopes(scopes)
        # Another host named by the registry (an upload Location, say) is never sent our credentials.
        auth = self.auth.authorization(ref, wanted) if own_origin else None
        resp = self._send(method, url, ref.registry, _with_auth(headers, auth), body, read)
        if resp.status_code == 401 and own_origin:
            _discard(resp, self.stats)
            wanted = self.auth.unauthorized(ref, resp.headers.get("WWW-Authenticate"), wanted)
            auth = self.auth.authorization(ref, wanted)
            resp = self._send(method, url, ref.registry, _with_auth(headers, auth), body, read)
            if resp.status_code == 401:
                _discard(resp, self.stats)
                raise self.auth.failed(ref)
        if resp.status_code in ok or (missing_ok and resp.status_code == 404):
            return resp
        raise self._error(ref, resp, what)

    def _error(self, ref: Reference, resp: Response, what: str) -> RegistryError:
        code, message = _registry_error(resp, self.stats)
        status = resp.status_code
        detail = f"HTTP {status}" + (f" {code}" if code else "")
        if status == 403:
            user = self.auth.user_label(ref)
            return AuthenticationError(f"{ref}: access to the {what} denied for {user} ({detail})", status, code)
        if status == 404:
            return RegistryError(f"{ref}: {what} not found ({detail})", status, code)
        text = f": {message}" if message else ""
        return RegistryError(f"{ref}: {what} failed{text} ({detail})", status, code)

    def _send(
        self, method: str, url: str, registry: str, headers: dict, body: Body, read: int | None
    ) -> Response:
        """Send with retries (connection errors, 429, 5xx), bounded by count and total time."""
        policy = self.retry
        deadline = time.monotonic() + policy.total
        attempt = 0
        while True:
            try:
                resp = self._send_once(method, url, headers, body, read)
            except TransportError as exc:
                delay = policy.delay(attempt)
                if attempt >= _retries_for(exc, policy) or time.monotonic() + delay > deadline:
                    raise RegistryError(f"{registry}: cannot reach the registry ({_reason(exc, self.timeout)})") \
                        from None
                transport.debug("%s %s: %s; retrying in %.1f s", method, loggable(url), type(exc).__name__, delay)
            else:
                if resp.status_code not in RETRY_STATUSES or attempt >= policy.retries:
                    return resp
                delay = policy.delay(attempt, _retry_after(resp))
                if time.monotonic() + delay > deadline:
                    return resp
                _discard(resp, self.stats)
                transport.debug("%s %s: HTTP %s; retrying in %.1f s", method, loggable(url), resp.status_code, delay)
            attempt += 1
            self.stats.retries += 1
            self._sleep(delay)

    def _send_once(self, method: str, url: str, headers: dict, body: Body, read: int | None) -> Response:
        """One attempt, within the deadline: a streamed answer (``read=None``) keeps its watchdog."""
        watchdog = Watchdog(self.deadline)
        keep = False
        try:
            with watchdog:
                resp = self._send_watched(method, url, headers, body, read, watchdog)
                if resp.status_code >= 300:
                    _discard(resp, self.stats)  # a slow error body counts against the deadline too
                keep = read is None and resp.status_code < 300
        except (TransportError, RegistryError):
            if watchdog.expired:
                raise self._deadline_error(method, url) from None
            raise
        finally:
            if not keep:
                watchdog.cancel()
        if keep:
            resp.watchdog = watchdog  # type: ignore[attr-defined]
        elif watchdog.expired and resp.status_code >= 300:
            raise self._deadline_error(method, url)
        return resp

    def _deadline_error(self, method: str, url: str) -> DeadlineError:
        return DeadlineError(f"{method} {loggable(url)}: no complete answer within {self.deadline:g} s "
                             f"(the registry is too slow; ${DEADLINE_ENV} sets the limit)")

    def _send_watched(self, method: str, url: str, headers: dict, body: Body, read: int | None,
                      watchdog: Watchdog) -> Response:
        settings = self._environment(url)
        if self._lean is not None and read is not None and self._lean.usable(method, body, settings):
            resp = self._send_lean(method, url, headers, body, settings, read, watchdog)
            if resp is not None:
                return resp
        from hpcannotate.registry import heavy

        return heavy.send(self, self._requests_session(), method, url, headers, body, read, ERROR_BODY_LIMIT,
                          watchdog, settings)

    def _send_lean(self, method: str, url: str, headers: dict, body: bytes | None, settings: dict, read: int,
                   watchdog: Watchdog) -> Response | None:
        """The request on the lean path; None when it was redirected and requests must follow."""
        # http.client asks for identity encoding itself (nothing here decodes gzip) and keeps connections alive.
        merged = {"User-Agent": USER_AGENT, "Accept": "*/*", **headers}
        parts = urlsplit(url)
        if body is not None:
            merged.setdefault("Content-Length", str(len(body)))  # as requests counts and sends it
        self._count_request(method, parts.path + (f"?{parts.query}" if parts.query else ""), merged, body)

        def received(size: int) -> None:
            self.stats.bytes_received += size

        try:
            resp = self._lean.send(method, url, merged, body, settings.get("verify", self.verify), read,  # type: ignore[union-attr]
                                   ERROR_BODY_LIMIT, watchdog, received)
        except TooLarge:
            raise RegistryError(f"{parts.netloc}: answer larger than {read} bytes") from None
        if resp is None:
            transport.debug("%s %s -> redirect; following it with requests", method, loggable(url))
            return None
        self._count_response(resp)
        transport.debug("%s %s -> %s", method, loggable(url), resp.status_code)
        return resp

    def _environment(self, url: str) -> dict:
        """requests' proxy/CA settings from the environment, once per scheme and host.

        ``merge_environment_settings`` scans the whole environment on every call; ranking hundreds
        of images makes that a good part of each loopback request's cost. The answer depends only
        on the scheme and host (``no_proxy``), and a client lives for one command.
        """
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._settings_cache:
            if self._session is not None or _proxy_variables():
                from hpcannotate.registry import heavy

                self._settings_cache[key] = heavy.environment(self._requests_session(), url, self.verify)
            else:  # what requests answers when no proxy is configured, without importing it
                verify = self.verify
                if verify is True:
                    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
                self._settings_cache[key] = {"proxies": {}, "stream": True, "verify": verify, "cert": None}
        return dict(self._settings_cache[key])

    def _count_request(self, method: str, path_url: str, headers, body) -> None:
        self.stats.requests += 1
        self.stats.by_method[method] += 1
        head = len(method) + len(path_url) + 11
        head += sum(len(k) + len(str(v)) + 4 for k, v in headers.items()) + 2
        size = len(body) if isinstance(body, (bytes, str)) else int(headers.get("Content-Length") or 0)
        self.stats.bytes_sent += head + size

    def _count_response(self, resp: Response) -> None:
        for hop in [*resp.history, resp]:
            if hop is not resp:
                self.stats.requests += 1
            self.stats.bytes_received += 17 + len(hop.reason or "")
            self.stats.bytes_received += sum(len(k) + len(v) + 4 for k, v in hop.headers.items()) + 2

    def _token_send(self, method: str, url: str, headers: dict, params: dict, form: dict | None):
        """How the authenticator reaches a token server: same TLS, plain-HTTP, retry and stats rules."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthenticationError(f"the registry names a token server {url!r} that is not an HTTP URL")
        if parts.scheme == "http" and not (self.plain_http or is_loopback(parts.netloc)):
            raise AuthenticationError(f"refusing to send credentials over plain HTTP to {parts.netloc}")
        full = _with_query(url, params) if params else url
        body = urlencode(form).encode() if form is not None else None
        if form is not None:
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        resp = self._send(method, full, parts.netloc, headers, body, 1024 * 1024)
        if resp.status_code >= 300:
            _discard(resp, self.stats)
        return resp

    def _check_digest(self, ref: Reference, digest: str, header: str | None, what: str) -> None:
        if header and header.startswith("sha256:") and header != digest:
            raise DigestMismatchError(f"{ref}: the registry says {what} {header}, its content is {digest}")
        if ref.digest and ref.digest != digest:
            raise DigestMismatchError(f"{ref}: the {what} served has digest {digest}")


# -- helpers ---------------------------------------------------------------------------------------


def as_reference(ref: Reference | str) -> Reference:
    ref = parse_reference(ref) if isinstance(ref, str) else ref
    if ref.is_layout:
        raise InputError(f"{ref}: an OCI layout is read from disk, not through the registry client")
    return ref


def _with_auth(headers: dict | None, auth: str | None) -> dict:
    merged = dict(headers or {})
    if auth:
        merged["Authorization"] = auth
    return merged


def _with_query(url: str, params: dict) -> str:
    query = urlencode(params, doseq=True)
    return url + ("&" if "?" in url else "?") + query


def _body(data: bytes | Path) -> Body:
    if isinstance(data, Path):
        return lambda: open_regular(data, "blob")
    return data


def _digest_of(data: bytes | Path) -> str:
    if isinstance(data, bytes):
        return sha256_digest(data)
    hasher = hashlib.sha256()
    with open_regular(data, "blob") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def _discard(resp: Response, stats: TransferStats) -> None:
    """Drop an answer we will not use. Both paths read answers whole where they arrive (inside the
    deadline); only a streamed blob is still open, and closing it gives its connection up."""
    if not resp._content_consumed:
        resp.close()


def _registry_error(resp: Response, stats: TransferStats) -> tuple[str | None, str]:
    """The first ``{"errors": [{"code", "message"}]}`` entry of an error answer, if any."""
    _discard(resp, stats)
    try:
        first = (resp.json().get("errors") or [{}])[0]
        code, message = first.get("code"), str(first.get("message") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        return None, ""
    return code, " ".join(message.split())[:200]


def _proxy_variables() -> bool:
    """Whether the environment names a proxy (then requests' own rules decide, no_proxy and all)."""
    return any(name.lower().endswith("_proxy") and name.lower() != "no_proxy" and value
               for name, value in os.environ.items())


def _retry_after(resp: Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _bare_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip()


def _media_type(content_type: str | None, raw: bytes, ref: Reference) -> str:
    """The served media type; the body's ``mediaType`` when the header is generic."""
    media_type = _bare_type(content_type)
    if media_type in ALL_MANIFEST_TYPES:
        return media_type
    try:
        body_type = json.loads(raw).get("mediaType")
    except (ValueError, AttributeError):
        body_type = None
    if body_type in ALL_MANIFEST_TYPES:
        return body_type
    raise RegistryError(f"{ref}: unsupported manifest type {media_type or body_type!r} (Docker schema 1?)")


def _retries_for(exc: BaseException, policy: RetryPolicy) -> int:
    """How many retries a connection error deserves: a certificate that failed verification or a name
    that does not resolve will fail again; a refused connection gets one more try (a registry restarting)."""
    chain = _exception_chain(exc)
    if any(isinstance(e, (ssl.SSLError, TLSFailure, socket.gaierror)) for e in chain):
        return 0
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return min(1, policy.retries)
    return policy.retries


def _reason(exc: BaseException, timeout: tuple[float, float]) -> str:
    """A short human reason from requests' nested exceptions (no URLs, no headers)."""
    chain = _exception_chain(exc)
    if any(isinstance(e, (ssl.SSLError, TLSFailure)) for e in chain):
        ssl_errors = [e for e in chain if isinstance(e, ssl.SSLError)]
        detail = getattr(ssl_errors[0], "reason", None) if ssl_errors else None
        return f"TLS error{': ' + str(detail).lower().replace('_', ' ') if detail else ''}"
    if any(isinstance(e, ConnectTimeout) for e in chain):
        return f"connection timed out after {timeout[0]:g} s"
    if any(isinstance(e, (ReadTimeout, socket.timeout)) for e in chain):
        return f"no answer within {timeout[1]:g} s"
    for kind, text in (
        (socket.gaierror, "host name does not resolve"),
        (ConnectionRefusedError, "connection refused"),
        (ConnectionResetError, "connection reset"),
    ):
        if any(isinstance(e, kind) for e in chain):
            return text
    for error in chain:
        if isinstance(error, OSError) and error.strerror:
            return error.strerror.lower()
    if any(isinstance(e, CutOff) for e in chain):
        return "connection closed in the middle of an answer"
    return "connection closed by the server"


def _exception_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([*item.args, item.__cause__, item.__context__, getattr(item, "reason", None)])
    return seen
