"""The client core: one request value goes out to a video generation API, its interpreted answer comes back.

It knows HTTP and the API styles, not Airflow: the hook adapts it to a connection and a task's
log, and the triggerer's shared poller (:mod:`~airflow_provider_videogen.shared_polls`) sends its
requests through it. Each answer comes back with the service's poll hint, so that nothing has to
remember the last one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import requests
from tenacity import AsyncRetrying, Retrying

from airflow_provider_videogen import transport
from airflow_provider_videogen.answers import describe, interpret, read_task_payload
from airflow_provider_videogen.aws_credential import AwsCredential
from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenError,
    VideoGenNotSupportedError,
    VideoGenRequestNotSentError,
    VideoGenTransientError,
    VideoTaskIdMissingError,
    VideoTaskMayExistError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.google_credential import GoogleCredential
from airflow_provider_videogen.retry import RetryPolicy, retry_kwargs
from airflow_provider_videogen.styles import STYLES

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import Upload
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

__all__ = [
    "Answer",
    "ApiRequest",
    "CancelRetries",
    "PollAnswer",
    "VideoGenClient",
    "cancel_request",
    "check_can_cancel",
    "created_task_id",
    "maybe_created",
    "query",
    "surely_not_taken",
    "transient_or_not_the_apis_not_found",
]


@dataclass(frozen=True)
class ApiRequest:
    """One call of the API as a value: what is sent, to which connection, and how its answer is read and retried.

    :param method: the HTTP method.
    :param url: the whole URL (built by the connection's settings from the style's route).
    :param action: what the call does, in the words of a message (``create``, ``query``, ``cancel``,
        ``list``...); the style's request headers may depend on it.
    :param settings: the connection: its style reads the answer, its timeout bounds each attempt.
    :param video_task_id: the task the call is about; ``None`` for a create or a list call.
    :param json_body: the JSON body, if any.
    :param uploads: files sent as multipart/form-data instead of JSON (sync calls only).
    :param policy: how transient faults are retried; ``None``: the connection's policy.
    :param retry_if: which errors are retried; ``None``: transient ones.
    :param read: turns the decoded answer into the result inside the attempt, so that an unusable
        answer is retried like any other transient fault; ``None``: the decoded answer is the result.
    :param read_error: turns the typed error of an error answer into the result, or raises it again;
        for an answer that reports the task's end as an HTTP error (fal's result of a failed
        generation). ``None``: the error is raised.
    :param headers: headers of this call alone, beside the style's own for its action (a create's
        ``Cancel-After``); never the key, which only the credential adds.
    :param then: a second call that the result calls for (fal's read of a finished request's result,
        after its status said ``COMPLETED``); its result replaces this call's, with this call's poll
        hint. ``None``, or ``then`` returning ``None``: no second call.
    """

    method: str
    url: str
    action: str
    settings: VideoGenConnectionSettings
    video_task_id: str | None = None
    json_body: Any = None
    uploads: Sequence[Upload] = ()
    policy: RetryPolicy | None = None
    retry_if: Callable[[BaseException], bool] | None = None
    read: Callable[[Any], Any] | None = None
    read_error: Callable[[VideoGenError, Mapping[str, str]], Any] | None = None
    then: Callable[[Any], ApiRequest | None] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Answer(NamedTuple):
    """What one call returned: its result, and the seconds the service asked a poller to wait (``None``: none said)."""

    value: Any
    poll_hint: float | None


class PollAnswer(NamedTuple):
    """What one poll of a video task returned: the task, and the seconds the service asked to wait before the next."""

    task: VideoTask
    poll_hint: float | None


def query(settings: VideoGenConnectionSettings, video_task_id: str, **options: Any) -> ApiRequest:
    """Return the request that reads one video task (its answer is read as that task inside the attempt).

    :param options: more fields of the request (``policy``, ``retry_if``).
    """
    style = settings.style
    return ApiRequest(
        style.query_method,
        settings.task_url(video_task_id),
        "query",
        settings,
        video_task_id,
        json_body=style.query_body(video_task_id),
        read=lambda payload: read_task_payload(payload, settings, video_task_id),
        then=lambda task: _result_read(settings, task, options),
        **options,
    )


def _result_read(settings: VideoGenConnectionSettings, task: VideoTask, options: dict[str, Any]) -> ApiRequest | None:
    """Return the second read a task's status calls for where the style says (fal), else ``None``."""
    style = settings.style
    route = style.result_route(task)
    if route is None:
        return None
    return ApiRequest(
        "GET",
        f"{settings.base_url}{settings.path_prefix}{route}",
        "read the result of",
        settings,
        task.id,
        read=lambda payload: style.read_result(task, payload).with_cost(settings.prices),
        read_error=lambda error, headers: style.result_error(task, error, headers),
        **options,
    )


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
        import aiohttp  # here: only the triggerer makes async calls, and a worker need not load it

        settings = request.settings
        if self._async_lease is None:
            self._async_lease = transport.SharedSessionLease.acquire()
        session = self._async_lease.session
        headers = _headers(request)
        timeout = aiohttp.ClientTimeout(total=settings.timeout)
        signed_body = _signed_body(request)

        async def attempt() -> Answer:
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
                    timeout=timeout,
                    allow_redirects=False,
                ) as response:
                    body = await transport.aread_bounded(response, elide=_elided(request))
                    return _read(request, response.status, response.headers, body)
            except transport.AnswerTooLargeError as e:
                raise _too_large_error(e, request) from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                raise _transport_error(e, request, sent=not isinstance(e, aiohttp.ClientConnectorError)) from None

        policy = request.policy or settings.retry_policy
        if policy.max_attempts <= 1:
            # One attempt (every poll of a trigger): the retry machinery would cost about as much CPU
            # as the request itself and leave reference cycles for the garbage collector, whose full
            # collections stall an event loop holding thousands of waiting triggers.
            result = await attempt()
        else:
            retrying = AsyncRetrying(**retry_kwargs(policy, request.retry_if, self.log))
            result = await retrying(attempt)
        follow = request.then(result.value) if request.then is not None else None
        return result if follow is None else Answer((await self.asend(follow)).value, result.poll_hint)

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

    credential: AwsCredential | GoogleCredential
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
    if not isinstance(credential, (AwsCredential, GoogleCredential)):
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


# ---- calls that must not run twice: a create pays for a generation, a cancel may delete a video ----


def surely_not_taken(error: BaseException) -> bool:
    """Tell whether a call that must not run twice (a create, a cancel) may be sent again after ``error``.

    Only where the service surely did not take it: a connection never opened, a 429, a proxy's empty 503.
    """
    if isinstance(error, VideoGenRequestNotSentError):
        return True
    if isinstance(error, VideoGenTransientError):
        return error.http_status == 429 or (error.http_status == 503 and error.empty_body)
    return False


def transient_or_not_the_apis_not_found(error: BaseException) -> bool:
    """Tell whether to retry: transient faults, and a 404 that something in front of the API answered instead of it."""
    if isinstance(error, VideoTaskNotFoundError):
        return not error.said_by_the_api
    return isinstance(error, VideoGenTransientError)


def maybe_created(error: VideoGenTransientError) -> VideoGenTransientError:
    """Return the error a failed create call raises: one that says so where the service may have taken it."""
    if isinstance(error, (VideoGenRequestNotSentError, VideoTaskMayExistError)) or error.http_status in (429, 503):
        return error
    return VideoTaskMayExistError(
        f"{error} The service may have created the video task anyway: look at its task list before "
        "submitting again, to avoid paying twice.",
        http_status=error.http_status,
        api_code=error.api_code,
        api_message=error.api_message,
    )


def created_task_id(answer: Any, settings: VideoGenConnectionSettings) -> str:
    """Read the new id from the create answer, as the connection's style says."""
    video_task_id = settings.style.created_task_id(answer)
    if video_task_id is None:
        raise VideoTaskIdMissingError(
            f"The service at {settings.base_url} accepted the generation but its answer holds no task id "
            f"({settings.excerpt(json.dumps(answer))}). The service may have created the video task: look at "
            "its task list before submitting again."
        )
    return settings.style.check_task_id(video_task_id)


def cancel_request(settings: VideoGenConnectionSettings, video_task_id: str) -> ApiRequest:
    """Return the cancel call of a task (a DELETE on most styles): one attempt; :class:`CancelRetries` says if another.

    Never retried blindly: on the contents-generations and Runway APIs the same call deletes a task
    that finished meanwhile, its video with it.
    """
    url = settings.cancel_url(video_task_id)
    return ApiRequest(settings.style.cancel_method, url, "cancel", settings, video_task_id, policy=_ONE_ATTEMPT)


def check_can_cancel(settings: VideoGenConnectionSettings) -> None:
    """Raise :class:`VideoGenNotSupportedError` naming the styles that can cancel, if the connection's style cannot."""
    if not settings.style.can_cancel:
        able = ", ".join(name for name, style in STYLES.items() if style.can_cancel)
        raise VideoGenNotSupportedError(
            f"Cancelling is not supported by the {settings.api_style} API style (connection "
            f"{settings.conn_id!r}): {settings.style.no_cancel_reason}. Only {able} can cancel."
        )


class CancelRetries:
    """Whether, and after how long, a cancel call is sent again; the task is read again before each.

    Like a create, a cancel is sent again only where the service surely did not take it (a 429, a
    proxy's empty 503, a connection never opened), within the retry policy's attempts and time.

    :param policy: the connection's retry policy.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.started = time.monotonic()
        self.failures = 0

    def wait_after(self, error: VideoGenTransientError) -> float | None:
        """Seconds to wait after the cancel call failed with ``error``; ``None``: do not send it again."""
        self.failures += 1
        if not surely_not_taken(error) or self.failures >= self.policy.max_attempts:
            return None
        wait = self.policy.wait_after(self.failures, error.retry_after)
        if time.monotonic() - self.started + wait >= self.policy.max_seconds:
            return None
        return wait


_ONE_ATTEMPT = RetryPolicy(max_attempts=1)
