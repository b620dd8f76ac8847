"""HTTP transport: the sessions, one request under a deadline, bounded answers, and file-host addresses.

Everything here is about moving bytes, never about what they mean (the hook interprets answers):

- :func:`send` makes one sync request whose ``timeout`` bounds the *whole* request (connect,
  headers and body). ``requests`` alone applies its timeout to each socket read, so a server that
  trickles a body a few bytes a second could hold a worker for as long as it liked; here a watchdog
  (:mod:`~airflow_provider_videogen.request_deadline`) shuts the connection's socket down at the deadline.
- :func:`send` and :func:`aread_bounded` refuse answers larger than :data:`MAX_ANSWER_BYTES`: an API
  answer is a small JSON object, and a huge one is never kept in memory, XCom or a trigger event.
  Values of an answer that carry a file inline are dropped as it is read, before the limit counts
  them (:mod:`~airflow_provider_videogen.answer_elision`).
- :func:`new_session` builds ``requests`` sessions whose connections can check the address they are
  about to connect to (:class:`AddressPolicy`, in :mod:`~airflow_provider_videogen.addresses`), before
  anything is sent: file URLs come from the service, and a compromised or confused service must not
  make a worker fetch from an internal host.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import socket
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_videogen import __version__, request_deadline

# The address rules have their own module; their names stay importable from here.
from airflow_provider_videogen.addresses import AddressPolicy as AddressPolicy
from airflow_provider_videogen.addresses import is_loopback_host as is_loopback_host

# Inline files dropped from an answer as it is read have their own module; the name stays importable from here.
from airflow_provider_videogen.answer_elision import ElidedMembers as ElidedMembers
from airflow_provider_videogen.credential import origin_of

# The deadline of one sync request has its own module; its error stays importable from here.
from airflow_provider_videogen.request_deadline import RequestDeadlineExceeded as RequestDeadlineExceeded

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_videogen.generation_request import Upload

USER_AGENT = f"airflow-provider-videogen/{__version__}"
"""The ``User-Agent`` of every request the provider makes."""

MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""Largest API answer read (4 MiB); a larger one is refused with :class:`AnswerTooLargeError`."""

_READ_BLOCK = 64 * 1024


class AnswerTooLargeError(Exception):
    """The answer's body is larger than the limit; it was not read past the limit."""

    def __init__(self, limit: int, announced: int | None = None) -> None:
        shown = f"{announced} bytes" if announced is not None else f"more than {limit} bytes"
        super().__init__(f"the answer is {shown}, past the limit of {limit} bytes for an API answer")
        self.limit = limit


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole.

    :param status: the HTTP status.
    :param headers: the answer's headers (case-insensitive mapping).
    :param body: the body bytes (at most the limit the request was made with).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    uploads: Sequence[Upload] = (),
    max_body: int = MAX_ANSWER_BYTES,
    body: bytes | None = None,
    elide: ElidedMembers | None = None,
) -> Answer:
    """Make one request (no redirects followed) and read its answer, all within ``timeout`` seconds.

    With ``uploads`` the request is multipart/form-data: the files, and ``json_body``'s fields as
    form fields (texts as they are, other values as JSON).
    With ``body`` (bytes already encoded, e.g. a signed JSON body) those exact bytes are sent instead.
    With ``elide``, the values it names are dropped as the answer is read, before ``max_body`` counts it.

    :raises RequestDeadlineExceeded: the deadline passed before the answer was complete.
    :raises AnswerTooLargeError: the body is larger than ``max_body``.
    :raises requests.RequestException: any other transport failure.
    """
    body_arguments = {"data": body} if body is not None else _form(json_body, uploads)
    with request_deadline.deadline(timeout) as deadline:
        try:
            return _exchange(session, method, url, timeout, dict(headers or {}), body_arguments, max_body, elide)
        except requests.RequestException as error:
            if deadline.expired:
                raise RequestDeadlineExceeded(f"no complete answer within {timeout:g} s") from None
            raise error from None


def _exchange(
    session: requests.Session,
    method: str,
    url: str,
    timeout: float,
    headers: dict[str, str],
    body_arguments: dict[str, Any],
    max_body: int,
    elide: ElidedMembers | None,
) -> Answer:
    """Send one request (no redirects followed) and read its streamed answer whole, bounded by ``max_body``."""
    response = session.request(
        method,
        url,
        headers=headers,
        timeout=(timeout, timeout),
        **body_arguments,
        allow_redirects=False,
        stream=True,
    )
    with response:
        return Answer(response.status_code, response.headers, _read_bounded(response, max_body, elide))


def _form(json_body: Any, uploads: Sequence[Upload]) -> dict[str, Any]:
    """Return the body arguments of ``requests``: the JSON, or with uploads a multipart form of the files and fields."""
    if not uploads:
        return {"json": json_body}
    return {
        "data": {k: v if isinstance(v, str) else json.dumps(v) for k, v in (json_body or {}).items()},
        "files": [(u.form_field, (u.filename, u.data, u.content_type)) for u in uploads],
    }


def _read_bounded(response: requests.Response, max_body: int, elide: ElidedMembers | None = None) -> bytes:
    """Read a streamed ``requests`` answer's body, refusing one larger than ``max_body`` before reading it all."""
    announced = _content_length(response.headers)
    if announced is not None and announced > max_body and elide is None:
        raise AnswerTooLargeError(max_body, announced)
    body = bytearray()
    for block in response.iter_content(_READ_BLOCK):
        body += block if elide is None else elide.feed(block)
        if len(body) > max_body:
            raise AnswerTooLargeError(max_body)
    if elide is not None:
        body += elide.close()
    return bytes(body)


async def aread_bounded(
    response: aiohttp.ClientResponse, max_body: int = MAX_ANSWER_BYTES, elide: ElidedMembers | None = None
) -> bytes:
    """Read an ``aiohttp`` answer's body, refusing one larger than ``max_body`` before reading it all.

    (``aiohttp.ClientTimeout(total=...)`` already bounds the whole request in time.) With ``elide``,
    the values it names are dropped as the answer is read, before ``max_body`` counts it.
    """
    announced = response.content_length
    if announced is not None and elide is None:
        if announced > max_body:
            raise AnswerTooLargeError(max_body, announced)
        return await response.read()
    body = bytearray()
    async for block in response.content.iter_chunked(_READ_BLOCK):
        body += block if elide is None else elide.feed(block)
        if len(body) > max_body:
            raise AnswerTooLargeError(max_body)
    if elide is not None:
        body += elide.close()
    return bytes(body)


def redact_url(url: str) -> str:
    """Return the URL as scheme, host, port and path only: a pre-signed URL's query is a credential.

    ``?…`` marks a query that was dropped; user names and passwords in the URL are dropped too.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    suffix = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{suffix}"


def _content_length(headers: Mapping[str, str]) -> int | None:
    value = (headers.get("Content-Length") or "").strip()
    return int(value) if value.isdigit() else None


# ---- connections that obey an address policy and the request's deadline --------------------------


class _GuardedConnectionMixin:
    """Checks the address before connecting, and lets the current request's deadline watch it."""

    address_policy: ClassVar[AddressPolicy | None] = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        request_deadline.watch(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]

    def _new_conn(self) -> socket.socket:
        policy = self.address_policy
        if policy is None:
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        tunnel_host = getattr(self, "_tunnel_host", None)
        if tunnel_host:
            # Through a proxy: check where the tunnel goes, and connect to the proxy as configured.
            policy.resolve(tunnel_host, getattr(self, "_tunnel_port", None) or 443)
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        host: str = self._dns_host  # type: ignore[attr-defined,has-type]
        addresses = policy.resolve(host, self.port)  # type: ignore[attr-defined]
        if not addresses:
            return super()._new_conn()  # type: ignore[misc,no-any-return]
        last_error: Exception | None = None
        for address in addresses:
            # Connect to the address that was checked, not to a second lookup's answer.
            self._dns_host = address
            try:
                return super()._new_conn()  # type: ignore[misc,no-any-return]
            except Exception as error:
                last_error = error
            finally:
                self._dns_host = host
        assert last_error is not None
        raise last_error


class _GuardedAdapter(HTTPAdapter):
    """An adapter whose connections obey an :class:`AddressPolicy` and the deadline of :func:`send`."""

    def __init__(
        self,
        *,
        address_policy: AddressPolicy | None = None,
        strip_authorization: bool = False,
        credentials_origin: str | None = None,
        credential_headers: Sequence[str] = (),
    ) -> None:
        self._pool_classes = _pool_classes(address_policy)
        self._strip_authorization = strip_authorization
        self._credentials_origin = credentials_origin
        self._credential_headers = ("Authorization", *credential_headers)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = self._pool_classes
        return manager

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self._strip_authorization and (
            self._credentials_origin is None or origin_of(str(request.url)) != self._credentials_origin
        ):
            # Neither a header of ours nor one requests takes from .netrc may reach a file host: only
            # the credentials' own origin (scheme, host and port) gets them, never a redirect elsewhere.
            for name in self._credential_headers:
                request.headers.pop(name, None)
        return super().send(request, *args, **kwargs)


def _pool_classes(policy: AddressPolicy | None) -> dict[str, type[HTTPConnectionPool]]:
    attributes = {"address_policy": policy}
    http_connection = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), attributes)
    https_connection = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), attributes)
    http_pool = type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_connection})
    https_pool = type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_connection})
    return {"http": http_pool, "https": https_pool}


def new_session(
    *,
    address_policy: AddressPolicy | None = None,
    strip_authorization: bool = False,
    credentials_origin: str | None = None,
    credential_headers: Sequence[str] = (),
    max_redirects: int = 5,
) -> requests.Session:
    """Make a ``requests`` session with the provider's User-Agent whose connections obey the rules above.

    :param address_policy: check every address before connecting (file downloads); ``None``: no check.
    :param strip_authorization: never send an ``Authorization`` header (file hosts get no credentials)...
    :param credentials_origin: ...except to this origin (:func:`origin_of` of the API's base URL).
    :param credential_headers: other headers that carry a key (``x-goog-api-key``), stripped the same way.
    :param max_redirects: redirects followed at most, where redirects are followed at all.

    The session keeps no cookies (the API authenticates with a key, and a file URL with its signature).
    """
    session = requests.Session()
    adapter = _GuardedAdapter(
        address_policy=address_policy,
        strip_authorization=strip_authorization,
        credentials_origin=credentials_origin,
        credential_headers=credential_headers,
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = max_redirects
    # No cookie is kept: a session may serve several connections, and a cookie set on the answers to
    # one key's requests would go along with another key's requests to the same host.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


class SharedSessionLease:
    """One ``aiohttp`` session per event loop, shared by every hook running in that loop.

    Thousands of triggers wait at once in one triggerer loop; sharing one session (and its pool of
    keep-alive connections) instead of one per hook or per request keeps the CPU per poll and the
    memory per waiting task small. The session closes when the last hook releases it.
    """

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedSessionLease] = weakref.WeakKeyDictionary()
    connection_limit = 100

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Imported here: only the triggerer makes async calls, and a worker should not pay for aiohttp.
        import aiohttp

        self.loop = loop
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connection_limit, ttl_dns_cache=300),
            headers={"User-Agent": USER_AGENT},
            # Hooks of every connection share the session: one jar would send a cookie set on the
            # answers to one key's requests with another key's requests to the same host.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.holders = 0

    @classmethod
    def acquire(cls) -> SharedSessionLease:
        """Take a share of the running loop's session (made on first use, or anew after it was closed)."""
        loop = asyncio.get_running_loop()
        lease = cls._by_loop.get(loop)
        if lease is None or lease.session.closed:
            lease = cls(loop)
            cls._by_loop[loop] = lease
        lease.holders += 1
        return lease

    async def release(self) -> None:
        """Give the share back; the last one to do so closes the session."""
        self.holders -= 1
        if self.holders <= 0:
            if self._by_loop.get(self.loop) is self:
                del self._by_loop[self.loop]
            await self.session.close()
