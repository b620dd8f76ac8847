"""HTTP transport: the sessions, one request under a deadline, bounded answers, and file-host addresses.

Everything here is about moving bytes, never about what they mean (the hook interprets answers):

- :func:`send` makes one sync request whose ``timeout`` bounds the *whole* request (connect,
  headers and body). ``requests`` alone applies its timeout to each socket read, so a server that
  trickles a body a few bytes a second could hold a worker for as long as it liked; here a watchdog
  shuts the connection's socket down at the deadline.
- :func:`send` and :func:`aread_bounded` refuse answers larger than :data:`MAX_ANSWER_BYTES`: an API
  answer is a small JSON object, and a huge one is never kept in memory, XCom or a trigger event.
- :func:`new_session` builds ``requests`` sessions whose connections can check the address they are
  about to connect to (:class:`AddressPolicy`, in :mod:`~airflow_provider_videogen.addresses`), before
  anything is sent: file URLs come from the service, and a compromised or confused service must not
  make a worker fetch from an internal host.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import re
import socket
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_videogen import __version__

# The address rules have their own module; their names stay importable from here.
from airflow_provider_videogen.addresses import AddressPolicy as AddressPolicy
from airflow_provider_videogen.addresses import is_loopback_host as is_loopback_host
from airflow_provider_videogen.credential import origin_of

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


class RequestDeadlineExceeded(requests.exceptions.ReadTimeout):
    """The whole request (connect, headers and body) took longer than its timeout."""


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
    with _deadline(timeout) as deadline:
        try:
            response = session.request(
                method,
                url,
                headers=dict(headers or {}),
                timeout=(timeout, timeout),
                **({"data": body} if body is not None else _form(json_body, uploads)),
                allow_redirects=False,
                stream=True,
            )
            with response:
                return Answer(response.status_code, response.headers, _read_bounded(response, max_body, elide))
        except requests.RequestException as error:
            if deadline.expired:
                raise RequestDeadlineExceeded(f"no complete answer within {timeout:g} s") from None
            raise error from None


class ElidedMembers:
    """Drop the values of named JSON string members from an answer while it streams in (they read ``""``).

    For an API answer that may carry a file inline (Vertex's ``bytesBase64Encoded``, tens of MB): the
    rest of the answer is a small JSON object, kept and capped as any answer; the file is never held,
    and is read again, streamed, when it is landed. Fed block by block, it keeps only the few bytes
    that could start a member's name across two blocks.

    :param names: the member names.
    """

    # JSON allows any whitespace around ":"; a service writes little, and a bound keeps the tail small.
    _SPACE = 64

    def __init__(self, names: Sequence[str]) -> None:
        alternatives = b"|".join(re.escape(name.encode()) for name in names)
        space = rb"[ \t\r\n]{0,%d}" % self._SPACE
        self._start = re.compile(rb'"(?:' + alternatives + rb')"' + space + b":" + space + b'"')
        self._longest = max(len(name.encode()) for name in names) + 4 + 2 * self._SPACE
        self._tail = b""
        self._skipping = False

    def feed(self, block: bytes) -> bytes:
        """Return what of ``block`` (after what was held back) is kept."""
        data, self._tail = self._tail + block, b""
        kept = bytearray()
        position = 0
        while True:
            if self._skipping:
                # A base64 value holds no '"' (nor an escaped one): the next quote ends it.
                end = data.find(b'"', position)
                if end < 0:
                    return bytes(kept)
                self._skipping, position = False, end
            found = self._start.search(data, position)
            if found is None:
                cut = max(position, len(data) - self._longest)
                kept += data[position:cut]
                self._tail = data[cut:]
                return bytes(kept)
            kept += data[position : found.end()]
            position, self._skipping = found.end(), True

    def close(self) -> bytes:
        """Return what was held back at the end of the answer."""
        tail, self._tail = self._tail, b""
        return tail


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
    if elide is not None:
        body = bytearray()
        async for block in response.content.iter_chunked(_READ_BLOCK):
            body += elide.feed(block)
            if len(body) > max_body:
                raise AnswerTooLargeError(max_body)
        return bytes(body + elide.close())
    if announced is not None:
        if announced > max_body:
            raise AnswerTooLargeError(max_body, announced)
        return await response.read()
    body = bytearray()
    async for block in response.content.iter_chunked(_READ_BLOCK):
        body += block
        if len(body) > max_body:
            raise AnswerTooLargeError(max_body)
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


# ---- the deadline of one sync request ----------------------------------------------------------


class _Deadline:
    """Shuts down the sockets of the connections one request used once its time is up."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            if self.expired:
                raise RequestDeadlineExceeded("the deadline passed before the request was sent")
            self._connections.append(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                # shutdown (unlike close) wakes a recv() blocked in another thread.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


@contextmanager
def _deadline(seconds: float) -> Iterator[_Deadline]:
    deadline = _Deadline(seconds)
    previous = getattr(_current, "deadline", None)
    _current.deadline = deadline
    deadline._timer.start()
    try:
        yield deadline
    finally:
        deadline._timer.cancel()
        _current.deadline = previous


# ---- connections that obey an address policy and the request's deadline --------------------------


class _GuardedConnectionMixin:
    """Checks the address before connecting, and lets the current request's deadline watch it."""

    address_policy: ClassVar[AddressPolicy | None] = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline: _Deadline | None = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.watch(self)  # type: ignore[arg-type]
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
