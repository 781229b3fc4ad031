"""The requests path of the registry client: uploads, streamed blobs, proxies, redirects, custom sessions.

Imported on first use only (requests and urllib3 cost more to import than a small command's whole
work). Everything requests raises is turned into ``transport``'s exceptions here, and every answer
but a streamed blob is read whole here, inside the request's deadline, so the client above never
sees a requests type it must know.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from hpcannotate.registry.auth import RegistryError
from hpcannotate.registry.deadline import ArmingReader, Watchdog, report_connection
from hpcannotate.registry.transport import (
    ConnectFailed,
    ConnectTimeout,
    CutOff,
    ReadTimeout,
    TLSFailure,
    TransportError,
    loggable,
    read_limited,
)

if TYPE_CHECKING:
    from hpcannotate.registry.client import RegistryClient

log = logging.getLogger("hpcannotate.registry")


class _KeepHeaders(requests.auth.AuthBase):
    """An auth that changes nothing: stops requests from adding ``~/.netrc`` credentials on its own."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


_KEEP_HEADERS = _KeepHeaders()


class Session(requests.Session):
    """On a redirect, strip ``Authorization`` when the host or scheme changes, and add nothing.

    requests' own ``rebuild_auth`` would put ``~/.netrc`` credentials for the new host in its place.
    """

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        if "Authorization" in prepared_request.headers and self.should_strip_auth(
            response.request.url, prepared_request.url
        ):
            del prepared_request.headers["Authorization"]


class _Watched:
    """Mixed into urllib3's connections: each request reports its connection to the thread's watchdog."""

    def connect(self) -> None:
        report_connection(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args, **kwargs):
        report_connection(self)
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


def new_session(user_agent: str, insecure: bool) -> requests.Session:
    session = Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, WatchedAdapter())
    session.headers["User-Agent"] = user_agent
    if insecure:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return session


def environment(session: requests.Session, url: str, verify: bool | str) -> dict:
    """requests' proxy/CA settings from the environment for ``url`` (proxies, no_proxy, CA bundles)."""
    return session.merge_environment_settings(url, {}, True, verify, None)


def converted(exc: requests.RequestException) -> TransportError | None:
    """The transport error for one of requests' network exceptions; None for any other kind."""
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSFailure(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectTimeout(exc)
    if isinstance(exc, requests.Timeout):
        return ReadTimeout(exc)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return CutOff(exc)
    if isinstance(exc, requests.ConnectionError):
        return ConnectFailed(exc)
    return None


def send(client: RegistryClient, session: requests.Session, method: str, url: str, headers: dict, body,
         read: int | None, error_limit: int, watchdog: Watchdog, settings: dict) -> requests.Response:
    """One request through requests; the answer is read whole (up to ``read``) unless ``read`` is None
    and it succeeded (a streamed blob), an error answer up to ``error_limit`` bytes."""
    stream = ArmingReader(body(), watchdog) if callable(body) else body
    try:
        prepared = _prepare(session, method, url, headers, stream)
        client._count_request(prepared.method or "?", prepared.path_url, prepared.headers, prepared.body)
        resp = session.send(prepared, timeout=client.timeout, allow_redirects=True, **settings)
        client._count_response(resp)
        log.debug("%s %s -> %s", method, loggable(url), resp.status_code)
        if resp.status_code >= 300:
            _read_whole(resp, error_limit, client, keep_going=True)
        elif read is not None:
            _read_whole(resp, read, client, keep_going=False)
        return resp
    except requests.RequestException as exc:
        network = converted(exc)
        if network is not None:
            raise network from None
        # Its text can quote a header (a token): name the kind only.
        raise RegistryError(f"{urlsplit(url).netloc}: the request failed ({type(exc).__name__})") from None
    finally:
        if hasattr(stream, "close"):
            stream.close()


def iter_body(resp: requests.Response, chunk_size: int) -> Iterator[bytes]:
    """A streamed answer's chunks; requests' network errors come out as transport errors."""
    try:
        yield from resp.iter_content(chunk_size)
    except requests.RequestException as exc:
        network = converted(exc)
        if network is None:
            raise
        raise network from None


def _read_whole(resp: requests.Response, limit: int, client: RegistryClient, keep_going: bool) -> None:
    """Read the body (at most ``limit`` bytes) so failures mid-body are retried like the rest.

    ``keep_going``: an error answer keeps its first ``limit`` bytes (its message); a successful one
    that is longer is refused.
    """
    def count(size: int) -> None:
        client.stats.bytes_received += size

    body, whole = read_limited(resp.iter_content(1024 * 1024), limit, count)
    if not whole:
        resp.close()
        if not keep_going:
            raise RegistryError(f"{urlsplit(resp.url).netloc}: answer larger than {limit} bytes")
    resp._content = body  # requests' own cache: resp.content / resp.json() work
    resp._content_consumed = True


def _prepare(session: requests.Session, method: str, url: str, headers: dict, stream) -> requests.PreparedRequest:
    """The request as ``Session.prepare_request`` makes it, without its per-call merging when it is a no-op.

    With no session cookies, auth or params (a registry that sets none), merging them costs more
    CPU than the loopback round trip; the result is the same request.
    """
    if session.cookies or session.auth or session.params:
        return session.prepare_request(requests.Request(method, url, headers=headers, data=stream,
                                                        auth=_KEEP_HEADERS))
    merged = requests.structures.CaseInsensitiveDict(session.headers)
    for key, value in (headers or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    prepared = requests.PreparedRequest()
    prepared.prepare(method=method.upper(), url=url, headers=merged, data=stream, auth=_KEEP_HEADERS,
                     hooks=requests.hooks.default_hooks())
    return prepared
