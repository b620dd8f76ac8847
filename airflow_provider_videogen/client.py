"""The client core: one request value goes out to a video generation API, its interpreted answer comes back.

It knows HTTP and the API styles, not Airflow: the hook adapts it to a connection and a task's
log, and the triggerer's shared poller (:mod:`~airflow_provider_videogen.shared_polls`) sends its
requests through it. Each answer comes back with the service's poll hint, so that nothing has to
remember the last one. This module is the sending of requests (transport, retries, signing, the
reading of an answer); the request value is in :mod:`~airflow_provider_videogen.api_request`, the
create, list-walk and poll calls in :mod:`~airflow_provider_videogen.generation_calls` (their names
stay importable from here).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import requests
from tenacity import AsyncRetrying, Retrying

from airflow_provider_videogen import generation_calls, transport
from airflow_provider_videogen.answers import describe, interpret
from airflow_provider_videogen.api_request import Answer, ApiRequest, PollAnswer, query
from airflow_provider_videogen.credential import BorrowedCredential
from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenError,
    VideoGenNotSupportedError,
    VideoGenRequestNotSentError,
    VideoGenTransientError,
    VideoTaskMayExistError,
)
from airflow_provider_videogen.generation_calls import (
    created_task_id,
    maybe_created,
    surely_not_taken,
    transient_or_not_the_apis_not_found,
)
from airflow_provider_videogen.retry import retry_kwargs

if TYPE_CHECKING:
    import aiohttp

    from airflow_provider_videogen.generation_request import VideoGenerationRequest
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

__all__ = [
    "Answer",
    "ApiRequest",
    "PollAnswer",
    "VideoGenClient",
    "created_task_id",
    "maybe_created",
    "query",
    "surely_not_taken",
    "transient_or_not_the_apis_not_found",
]


class VideoGenClient:
    """Send :class:`ApiRequest` values and interpret their answers, retrying transient faults as each asks.

    Sync calls use a ``requests`` session of this client's own; async calls use a share of the
    running event loop's ``aiohttp`` session (:class:`~airflow_provider_videogen.transport.SharedSessionLease`),
    so that all the clients of one loop share its keep-alive connections.

    :param log: the logger a retry after a failed attempt is logged on (a task's, a hook's); by default
        this module's.
    """

    def __init__(self, log: Any = None) -> None:
        self.log = log if log is not None else logging.getLogger(__name__)
        self._session: requests.Session | None = None
        self._async_lease: transport.SharedSessionLease | None = None

    @property
    def session(self) -> requests.Session:
        """The ``requests`` session of the sync calls (made once, with the provider's User-Agent)."""
        if self._session is None:
            self._session = transport.new_session()
        return self._session

    def send(self, request: ApiRequest) -> Answer:
        """Send ``request``, retried as its policy says; return its result or raise the typed error of its answer."""
        settings = request.settings
        session = self.session
        headers = _headers(request)
        signed_body = _signed_body(request)

        def attempt() -> Answer:
            try:
                answer = transport.send(
                    session,
                    request.method,
                    request.url,
                    timeout=settings.timeout,
                    # Signed per attempt: a signature holds the time, and a retry comes later.
                    headers=headers if signed_body is None else signed_body.sign(headers),
                    json_body=request.json_body,
                    uploads=request.uploads,
                    body=None if signed_body is None else signed_body.body,
                    elide=_elided(request),
                )
            except transport.AnswerTooLargeError as e:
                raise _too_large_error(e, request) from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as e:
                raise _transport_error(e, request, sent=not _surely_unsent(e)) from None
            return _read(request, answer.status, answer.headers, answer.body)

        retrying = Retrying(**retry_kwargs(request.policy or settings.retry_policy, request.retry_if, self.log))
        result: Answer = retrying(attempt)
        follow = request.then(result.value) if request.then is not None else None
        return result if follow is None else Answer(self.send(follow).value, result.poll_hint)

    async def asend(self, request: ApiRequest) -> Answer:
        """Send ``request`` without blocking the event loop; see :meth:`send` (no uploads)."""
        if self._async_lease is None:
            self._async_lease = transport.SharedSessionLease.acquire()
        session = self._async_lease.session
        headers = _headers(request)
        signed_body = _signed_body(request)
        policy = request.policy or request.settings.retry_policy
        if policy.max_attempts <= 1:
            # One attempt (every poll of a trigger): the retry machinery would cost about as much CPU
            # as the request itself and leave reference cycles for the garbage collector, whose full
            # collections stall an event loop holding thousands of waiting triggers.
            result = await _aattempt(session, request, headers, signed_body)
        else:
            retrying = AsyncRetrying(**retry_kwargs(policy, request.retry_if, self.log))
            result = await retrying(_aattempt, session, request, headers, signed_body)
        follow = request.then(result.value) if request.then is not None else None
        return result if follow is None else Answer((await self.asend(follow)).value, result.poll_hint)

    def poll(
        self, settings: VideoGenConnectionSettings, video_task_id: str, *, only_the_api_says_not_found: bool = False
    ) -> PollAnswer:
        """Read a video task with the service's poll hint, as the hook's ``poll_answer`` says."""
        return generation_calls.poll(
            self.send, settings, video_task_id, only_the_api_says_not_found=only_the_api_says_not_found
        )

    def create(self, settings: VideoGenConnectionSettings, request: VideoGenerationRequest) -> str:
        """Submit a generation and return the new task id, as the hook's ``create_task`` says (never twice blindly)."""
        return generation_calls.create(self.send, settings, request)

    def find_generations(
        self, settings: VideoGenConnectionSettings, request: VideoGenerationRequest, since: float, *, max_pages: int
    ) -> list[VideoTask] | None:
        """Walk the style's list of recent generations back to ``since``; see the hook's ``find_generations``."""
        return generation_calls.find_generations(self.send, settings, request, since, max_pages=max_pages)

    def close(self) -> None:
        """Close the sync session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    async def aclose(self) -> None:
        """Give back this client's share of the event loop's session (closed when the last client lets go)."""
        lease, self._async_lease = self._async_lease, None
        if lease is not None:
            await lease.release()


async def _aattempt(
    session: aiohttp.ClientSession, request: ApiRequest, headers: Mapping[str, str], signed_body: _SignedBody | None
) -> Answer:
    """Make one attempt of ``request`` on the event loop's session; return its answer or raise its typed error."""
    import aiohttp  # here: only the triggerer makes async calls, and a worker need not load it

    body_arguments: dict[str, Any] = {"json": request.json_body}
    sent_headers = headers
    if signed_body is not None:
        sent_headers = await signed_body.asign(headers)
        body_arguments = {"data": signed_body.body}
    try:
        async with session.request(
            request.method,
            request.url,
            headers=sent_headers,
            **body_arguments,
            timeout=aiohttp.ClientTimeout(total=request.settings.timeout),
            allow_redirects=False,
        ) as response:
            body = await transport.aread_bounded(response, elide=_elided(request))
            return _read(request, response.status, response.headers, body)
    except transport.AnswerTooLargeError as e:
        raise _too_large_error(e, request) from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        raise _transport_error(e, request, sent=not isinstance(e, aiohttp.ClientConnectorError)) from None


def _headers(request: ApiRequest) -> Mapping[str, str]:
    """Return the headers of one call: the style's for its action, and the call's own (a poll costs no new dict)."""
    headers = request.settings.credential.request_headers(request.action)
    return {**headers, **request.headers} if request.headers else headers


def _elided(request: ApiRequest) -> transport.ElidedMembers | None:
    """Return what drops a query answer's inline files as it is read (the style's ``elided_answer_members``)."""
    names = request.settings.style.elided_answer_members
    return transport.ElidedMembers(names) if names and request.action == "query" else None


class _SignedBody(NamedTuple):
    """A request whose credential signs it: its body as the bytes sent, and how to sign it per attempt."""

    credential: BorrowedCredential
    request: ApiRequest
    body: bytes | None

    def sign(self, headers: Mapping[str, str]) -> dict[str, str]:
        return self.credential.sign(self.request.method, self.request.url, self.body, headers)

    async def asign(self, headers: Mapping[str, str]) -> dict[str, str]:
        return await self.credential.asign(self.request.method, self.request.url, self.body, headers)


def _signed_body(request: ApiRequest) -> _SignedBody | None:
    """Return how ``request`` is signed when its connection's credential signs each request, else ``None``.

    The body is made into bytes once, here: the signature covers exactly the bytes that are sent.
    """
    credential = request.settings.credential
    if not isinstance(credential, BorrowedCredential):
        return None
    if request.uploads:
        raise VideoGenNotSupportedError(
            f"The {request.settings.api_style} API style takes no file uploads: pass input images otherwise."
        )
    body = None if request.json_body is None else json.dumps(request.json_body, separators=(",", ":")).encode()
    return _SignedBody(credential, request, body)


def _read(request: ApiRequest, status: int, headers: Any, body: bytes) -> Answer:
    """Interpret one HTTP answer to ``request``: its result (read as the request says) and its poll hint."""
    settings = request.settings
    try:
        payload = interpret(status, headers, body, settings, request.action, request.video_task_id)
    except (VideoGenAPIError, VideoGenTransientError) as error:
        if request.read_error is None:
            raise
        return Answer(request.read_error(error, headers), settings.style.poll_hint(headers))
    value = request.read(payload) if request.read is not None else payload
    return Answer(value, settings.style.poll_hint(headers))


def _too_large_error(error: transport.AnswerTooLargeError, request: ApiRequest) -> VideoGenError:
    message = (
        f"Could not {request.action} {describe(request.video_task_id, request.action)} at "
        f"{request.settings.base_url}: {error}. An "
        "answer of this API is a small JSON object: check the base URL and path_prefix of the connection."
    )
    if request.action == "create":  # the service took the request: what it made is unknown
        return VideoTaskMayExistError(
            f"{message} The service may have created the video task anyway: look at its task list before "
            "submitting again, to avoid paying twice."
        )
    return VideoGenAPIError(message, video_task_id=request.video_task_id)


def _surely_unsent(error: BaseException) -> bool:
    """Tell whether ``requests`` failed before any byte of the request could reach the service."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.ConnectionError) and not isinstance(error, requests.exceptions.ReadTimeout):
        text = repr(error)
        return any(m in text for m in ("NewConnectionError", "Connection refused", "NameResolutionError"))
    return False


def _transport_error(error: BaseException, request: ApiRequest, *, sent: bool) -> VideoGenTransientError:
    settings = request.settings
    kind = "timed out" if isinstance(error, (requests.Timeout, asyncio.TimeoutError)) else "failed"
    reason = settings.excerpt(f"{type(error).__name__}: {error}")
    where = f"{describe(request.video_task_id, request.action)} at {settings.base_url}"
    message = f"Could not {request.action} {where}: the request {kind} ({reason})."
    cls = VideoGenTransientError if sent else VideoGenRequestNotSentError
    return cls(message, video_task_id=request.video_task_id)
