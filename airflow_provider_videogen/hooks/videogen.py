"""``VideoGenHook``: every call to the video generation APIs through a ``videogen`` connection.

The connection's settings live in :mod:`~airflow_provider_videogen.settings`, the retry policy in
:mod:`~airflow_provider_videogen.retry` and the HTTP sessions in
:mod:`~airflow_provider_videogen.transport`; the names they had here stay importable from here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import requests
from airflow.sdk import BaseHook
from tenacity import AsyncRetrying, Retrying

from airflow_provider_videogen import transport
from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenError,
    VideoGenNotSupportedError,
    VideoGenRequestNotSentError,
    VideoGenTransientError,
    VideoTaskIdMissingError,
    VideoTaskMayExistError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.fairness import in_turns
from airflow_provider_videogen.generation_request import Upload, VideoGenerationRequest
from airflow_provider_videogen.retry import RetryPolicy, parse_retry_after, retry_kwargs
from airflow_provider_videogen.settings import (
    DATA_CENTER_URLS,
    DEFAULT_PATH_PREFIXES,
    MAX_VIDEO_TASK_ID_LENGTH,
    ApiStyle,
    VideoGenConnectionSettings,
    aextra,
    check_video_task_id,
)
from airflow_provider_videogen.styles import STYLES
from airflow_provider_videogen.transport import USER_AGENT, SharedSessionLease
from airflow_provider_videogen.video_task import VideoTask

if TYPE_CHECKING:
    from airflow_provider_videogen.shared_polls import SharedPolls

__all__ = [
    "DATA_CENTER_URLS",
    "DEFAULT_PATH_PREFIXES",
    "MAX_VIDEO_TASK_ID_LENGTH",
    "USER_AGENT",
    "ApiStyle",
    "RetryPolicy",
    "VideoGenConnectionSettings",
    "VideoGenHook",
    "check_video_task_id",
    "parse_retry_after",
]

# Transient statuses: the service may answer differently if asked again.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class VideoGenHook(BaseHook):
    """Talk to a video generation service through a ``videogen`` connection.

    Speaks every API style of :data:`~airflow_provider_videogen.styles.STYLES` (the connection's
    ``api_style``: contents generations, video generations, the ``/v1/videos`` shape, DashScope,
    Runway, Gemini Veo) and returns every answer as one
    :class:`~airflow_provider_videogen.video_task.VideoTask`. Sync calls use ``requests``; the
    ``a``-prefixed calls use ``aiohttp`` and never block the event loop, and all hooks in one event
    loop share one HTTP session and its keep-alive connections.

    Transient faults (connection errors, timeouts, 429, 5xx, empty or non-JSON answers) are retried
    with exponential backoff and jitter, honouring ``Retry-After``; 400/401/403/404 raise at once.

    :param videogen_conn_id: the ``videogen`` connection to use.
    :param retry_policy: overrides the retry policy of the connection's extras.
    """

    conn_name_attr = "videogen_conn_id"
    default_conn_name = "videogen_default"
    conn_type = "videogen"
    hook_name = "VideoGen"

    def __init__(
        self,
        videogen_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.videogen_conn_id = videogen_conn_id
        self._retry_policy_override = retry_policy
        self._settings: VideoGenConnectionSettings | None = None
        self._session: requests.Session | None = None
        self._async_lease: SharedSessionLease | None = None
        self._shared_polls: SharedPolls | None = None
        #: Seconds the service asked to wait before the next poll, from its last answer (``None``: it
        #: said nothing). The ``/v1/videos`` style sends it as ``openai-poll-after-ms``.
        self.poll_hint: float | None = None

    # ---- connection form (Airflow 3.1 reads these; 3.2+ reads conn-fields from the provider info) ----

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form, for Airflow versions before 3.2."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField
        from wtforms.validators import any_of

        from airflow_provider_videogen import get_provider_info

        fields = get_provider_info()["connection-types"][0]["conn-fields"]
        widgets: dict[str, Any] = {}
        for name, definition in fields.items():
            schema = definition["schema"]
            widgets[name] = StringField(
                lazy_gettext(definition["label"]),
                widget=BS3TextFieldWidget(),
                description=definition["description"],
                validators=[any_of(schema["enum"])] if "enum" in schema else [],
                default=schema.get("default"),
            )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden and relabelled standard fields, for Airflow versions before 3.2."""
        from airflow_provider_videogen import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {
            "hidden_fields": behaviour["hidden-fields"],
            "relabeling": behaviour["relabeling"],
            "placeholders": behaviour["placeholders"],
        }

    # ---- settings ----

    @property
    def settings(self) -> VideoGenConnectionSettings:
        """The resolved connection (fetched once, synchronously)."""
        if self._settings is None:
            conn = self.get_connection(self.videogen_conn_id)
            self._settings = self._with_override(VideoGenConnectionSettings.from_connection(conn, conn.extra_dejson))
        return self._settings

    async def aget_settings(self) -> VideoGenConnectionSettings:
        """Resolve the connection with Airflow's async connection API (once per hook).

        Hooks of one event loop that need the same connection while a lookup of it is under way
        share that lookup: thousands of triggers starting together make one lookup, not thousands.
        """
        if self._settings is None:
            settings = await _SharedLookups.resolve(self.videogen_conn_id, self._alookup_settings)
            self._settings = self._with_override(settings)
        return self._settings

    async def _alookup_settings(self) -> VideoGenConnectionSettings:
        conn = await self.aget_connection(self.videogen_conn_id)
        return VideoGenConnectionSettings.from_connection(conn, await aextra(conn))

    def _with_override(self, settings: VideoGenConnectionSettings) -> VideoGenConnectionSettings:
        if self._retry_policy_override is None:
            return settings
        return _overridden(settings, self._retry_policy_override)

    # ---- sync API ----

    def get_conn(self) -> requests.Session:
        """Return the ``requests`` session (created once, with the provider's User-Agent)."""
        if self._session is None:
            self._session = transport.new_session()
        return self._session

    def get_task(self, video_task_id: str, *, only_the_api_says_not_found: bool = False) -> VideoTask:
        """Read a video task.

        :param video_task_id: the id the create call returned.
        :param only_the_api_says_not_found: raise :class:`VideoTaskNotFoundError` only when the API
            itself answers that the task does not exist; a 404 without an API error (a proxy's or an
            ingress's page) is then retried like a transient fault, and raised as
            :class:`VideoGenTransientError` once the retry policy is spent. For a caller that pays
            when it takes a task for gone (a retry deciding whether to submit again).
        :raises VideoTaskNotFoundError: the task does not exist (or is older than 7 days).
        :raises VideoGenAuthError: the key was refused.
        :raises VideoGenTransientError: transient faults outlasted the retry policy.
        """
        settings = self.settings
        call = _query_call(settings, video_task_id)
        if only_the_api_says_not_found:
            call["retry_if"] = _transient_or_not_the_apis_not_found
        try:
            task: VideoTask = self._request("GET", settings.task_url(video_task_id), settings, **call)
        except VideoTaskNotFoundError as error:
            if not only_the_api_says_not_found or error.said_by_the_api:
                raise
            raise VideoGenTransientError(
                f"The query of video task {video_task_id!r} at {settings.base_url} kept answering HTTP 404 without "
                "an API error: something in front of the API (a proxy, an ingress) answered, which does not say "
                "the task is gone. If it lasts, check the connection's base URL and path_prefix. The last answer: "
                f"{error}",
                video_task_id=video_task_id,
                http_status=error.http_status,
            ) from None
        return task

    def create_task(self, request: VideoGenerationRequest | None = None, /, **request_fields: Any) -> str:
        """Submit a video generation and return the new video task id.

        Pass a :class:`~airflow_provider_videogen.generation_request.VideoGenerationRequest`, or its
        fields as keywords (``model=..., prompt=..., image_urls=..., resolution=...``; unknown names
        are sent as extra fields). The same fields work on every API style, each sending them its
        own way (on video_generations the Seedance options go into ``metadata``); a field a style
        cannot send is refused with an error that says what to use instead.

        A generation costs money, so the create call is **not** retried blindly. It is retried only
        when the service surely did not take the request: the connection was refused or could not be
        opened, a 429 (the service refused it for the rate limit), or a 503 with an empty body (a
        proxy in front of the service answered). A timeout, a dropped connection, a 5xx with a body or
        an unreadable 2xx answer are not retried, because the service may have created the task: the
        error says so, and the caller should look at the service's task list before submitting again.

        :raises VideoGenConfigurationError: the request is incomplete or mixes the API styles' fields.
        :raises VideoGenAPIError: the service refused it (400 invalid parameter, input moderation...).
        :raises VideoGenTransientError: the service could not be reached or may have created the task.
        """
        if request is None:
            if "model" not in request_fields:
                raise VideoGenConfigurationError("create_task needs a model (and a prompt, image or content).")
            request = VideoGenerationRequest.from_fields(**request_fields)
        elif request_fields:
            raise VideoGenConfigurationError("Pass either a VideoGenerationRequest or keyword fields, not both.")
        settings = self.settings
        body = settings.style.create_body(request)
        uploads = settings.style.create_uploads(request)
        try:
            answer = self._request(
                "POST",
                settings.create_url(request),
                settings,
                video_task_id=None,
                action="create",
                json_body=body,
                uploads=uploads,
                retry_if=_create_may_retry,
            )
        except VideoGenTransientError as error:
            raise _maybe_created(error) from None
        video_task_id = _created_task_id(answer, settings)
        # The URL not last: the UI's log view would link it with the full stop.
        self.log.info("Created video task %s at %s with model %s.", video_task_id, settings.base_url, request.model)
        return video_task_id

    def cancel_task(self, video_task_id: str) -> bool:
        """Cancel a video task that the style can still cancel; return whether it was cancelled.

        Only a task in one of the style's ``cancellable_statuses`` is cancelled (``queued``, and on
        Runway also ``running``), never a final one: on the contents-generations and Runway APIs the
        same ``DELETE`` call *deletes* a finished task for good, its video with it. So the task is
        read first and left alone (returning ``False``) unless the style may cancel it now; and a cancel
        call the service refused for now (429) is sent again only after the task was read again and
        may still be cancelled (it may have finished during the wait).

        :raises VideoGenNotSupportedError: on a style that has no cancel call.
        """
        settings = self.settings
        _require_cancel_support(settings)
        retries = _CancelRetries(settings.retry_policy)
        while True:
            if not self._may_cancel(self.get_task(video_task_id), settings):
                return False
            try:
                method, url = settings.style.cancel_method, settings.cancel_url(video_task_id)
                self._request(method, url, settings, **_cancel_call(video_task_id))
            except VideoGenAPIError as error:
                return self._cancel_refused(video_task_id, error)
            except VideoGenTransientError as error:
                wait = self._cancel_retry_wait(retries, video_task_id, error)
                if wait is None:
                    raise
                time.sleep(wait)
                continue
            self.log.info("Cancelled video task %s.", video_task_id)
            return True

    def _may_cancel(self, task: VideoTask, settings: VideoGenConnectionSettings) -> bool:
        if task.status in settings.style.cancellable_statuses and not task.is_terminal:
            return True
        self.log.info("Video task %s is %s, which cannot be cancelled: leaving it alone.", task.id, task.status.value)
        return False

    def _cancel_retry_wait(
        self, retries: _CancelRetries, video_task_id: str, error: VideoGenTransientError
    ) -> float | None:
        """Seconds to wait before reading the task again and cancelling again; ``None``: give up (raise ``error``)."""
        wait = retries.wait_after(error)
        if wait is not None:
            self.log.warning(
                "The cancel of video task %s was refused for now (%s); reading the task again in %.1f s, and "
                "cancelling it only if it can still be cancelled then.",
                video_task_id,
                error,
                wait,
            )
        return wait

    def _cancel_refused(self, video_task_id: str, error: VideoGenAPIError) -> bool:
        # It started running between the read and the DELETE: the service refuses to cancel it.
        self.log.warning("Video task %s could not be cancelled: %s", video_task_id, error)
        return False

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap authenticated request and say whether the key and the URL work."""
        try:
            settings = self.settings
            probe = settings.style.probe_task_id
            self._request(
                "GET",
                settings.task_url(probe),
                settings,
                video_task_id=probe,
                action="test the connection with",
                policy=RetryPolicy(max_attempts=1),
            )
        except VideoTaskNotFoundError as error:
            return _probe_not_found_result(self.settings, error)
        except VideoGenAuthError as error:
            return False, (
                f"The service at {self.settings.base_url} refused the API key (HTTP {error.http_status}): "
                f"check the key, and that it belongs to this data center or gateway. {error.api_message or ''}"
            ).strip()
        except VideoGenTransientError as error:
            if error.http_status is None:
                from airflow_provider_videogen.unreachable import unreachable_message

                return False, unreachable_message(self.settings.base_url, self.settings.timeout, error)
            return False, f"Could not get an answer from {self.settings.base_url}: {error} Check the base URL."
        except VideoGenError as error:
            return False, str(error)
        return True, f"Connected to {self.settings.base_url} ({self.settings.api_style})."

    def close(self) -> None:
        """Close the sync HTTP session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _request(
        self,
        method: str,
        url: str,
        settings: VideoGenConnectionSettings,
        *,
        video_task_id: str | None,
        action: str,
        json_body: Any = None,
        uploads: Sequence[Upload] = (),
        policy: RetryPolicy | None = None,
        retry_if: Callable[[BaseException], bool] | None = None,
        read: Callable[[Any], Any] | None = None,
    ) -> Any:
        session = self.get_conn()
        headers = settings.style.request_headers(settings.api_key, action)

        def attempt() -> Any:
            try:
                answer = transport.send(
                    session,
                    method,
                    url,
                    timeout=settings.timeout,
                    headers=headers,
                    json_body=json_body,
                    uploads=uploads,
                )
            except transport.AnswerTooLargeError as e:
                raise _too_large_error(e, action, video_task_id, settings) from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as e:
                raise _transport_error(e, action, video_task_id, settings, sent=not _surely_unsent(e)) from None
            payload = _interpret(answer.status, answer.headers, answer.body, settings, action, video_task_id)
            self.poll_hint = settings.style.poll_hint(answer.headers)
            return read(payload) if read is not None else payload

        retrying = Retrying(**retry_kwargs(policy or settings.retry_policy, retry_if, self.log))
        return retrying(attempt)

    # ---- async API ----

    async def aget_task(self, video_task_id: str) -> VideoTask:
        """Read a video task without blocking the event loop; see :meth:`get_task`."""
        settings = await self.aget_settings()
        url = settings.task_url(video_task_id)
        task: VideoTask = await self._arequest("GET", url, settings, **_query_call(settings, video_task_id))
        return task

    async def apoll_task(self, video_task_id: str, *, gather: float = 0.0) -> VideoTask:
        """Read a video task as a waiting trigger polls it: in a request shared with this event loop's other polls.

        Polls of tasks of the same connection asked for within ``gather`` seconds of each other share
        one request (a batch query where the API style has one, else one per task id); see
        :mod:`~airflow_provider_videogen.shared_polls`. With the connection extra ``coalesce_polls``
        false this is :meth:`aget_task`. Raises what :meth:`aget_task` raises.

        :param gather: seconds this poll may wait for others to join the request (the poller's jitter).
        """
        settings = await self.aget_settings()
        if not settings.coalesce_polls:
            return await self.aget_task(video_task_id)
        if self._shared_polls is None:
            from airflow_provider_videogen.shared_polls import SharedPolls

            self._shared_polls = SharedPolls.join(settings)
        task, self.poll_hint = await self._shared_polls.poll(video_task_id, gather)
        return task

    async def acancel_task(self, video_task_id: str) -> bool:
        """Cancel a video task (while the style can) without blocking the event loop; see :meth:`cancel_task`."""
        settings = await self.aget_settings()
        _require_cancel_support(settings)
        retries = _CancelRetries(settings.retry_policy)
        while True:
            if not self._may_cancel(await self.aget_task(video_task_id), settings):
                return False
            try:
                method, url = settings.style.cancel_method, settings.cancel_url(video_task_id)
                await self._arequest(method, url, settings, **_cancel_call(video_task_id))
            except VideoGenAPIError as error:
                return self._cancel_refused(video_task_id, error)
            except VideoGenTransientError as error:
                wait = self._cancel_retry_wait(retries, video_task_id, error)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
                continue
            self.log.info("Cancelled video task %s.", video_task_id)
            return True

    async def aclose(self) -> None:
        """Release this hook's share of the event loop's HTTP session (closed when the last hook lets go)."""
        polls, self._shared_polls = self._shared_polls, None
        if polls is not None:
            await polls.leave()
        lease, self._async_lease = self._async_lease, None
        if lease is not None:
            await lease.release()

    async def __aenter__(self) -> VideoGenHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _arequest(
        self,
        method: str,
        url: str,
        settings: VideoGenConnectionSettings,
        *,
        video_task_id: str | None,
        action: str,
        json_body: Any = None,
        policy: RetryPolicy | None = None,
        retry_if: Callable[[BaseException], bool] | None = None,
        read: Callable[[Any], Any] | None = None,
    ) -> Any:
        import aiohttp  # here: only the triggerer makes async calls, and a worker need not load it

        if self._async_lease is None:
            self._async_lease = SharedSessionLease.acquire()
        session = self._async_lease.session
        headers = settings.style.request_headers(settings.api_key, action)
        timeout = aiohttp.ClientTimeout(total=settings.timeout)

        async def attempt() -> Any:
            try:
                async with session.request(
                    method, url, headers=headers, json=json_body, timeout=timeout, allow_redirects=False
                ) as response:
                    body = await transport.aread_bounded(response)
                    payload = _interpret(response.status, response.headers, body, settings, action, video_task_id)
                    self.poll_hint = settings.style.poll_hint(response.headers)
                    return read(payload) if read is not None else payload
            except transport.AnswerTooLargeError as e:
                raise _too_large_error(e, action, video_task_id, settings) from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                sent = not isinstance(e, aiohttp.ClientConnectorError)
                raise _transport_error(e, action, video_task_id, settings, sent=sent) from None

        policy = policy or settings.retry_policy
        if policy.max_attempts <= 1:
            # One attempt (every poll of a trigger): the retry machinery would cost about as much CPU
            # as the request itself and leave reference cycles for the garbage collector, whose full
            # collections stall an event loop holding thousands of waiting triggers.
            return await attempt()
        retrying = AsyncRetrying(**retry_kwargs(policy, retry_if, self.log))
        return await retrying(attempt)


# ---- helpers shared by the sync and async paths ----


def _create_may_retry(error: BaseException) -> bool:
    """Retry a call that must not run twice only where the service surely did not take it."""
    if isinstance(error, VideoGenRequestNotSentError):
        return True
    if isinstance(error, VideoGenTransientError):
        return error.http_status == 429 or (error.http_status == 503 and error.empty_body)
    return False


def _transient_or_not_the_apis_not_found(error: BaseException) -> bool:
    """Retry transient faults, and a 404 that something in front of the API answered instead of it."""
    if isinstance(error, VideoTaskNotFoundError):
        return not error.said_by_the_api
    return isinstance(error, VideoGenTransientError)


def _maybe_created(error: VideoGenTransientError) -> VideoGenTransientError:
    if isinstance(error, (VideoGenRequestNotSentError, VideoTaskMayExistError)) or error.http_status in (429, 503):
        return error
    return VideoTaskMayExistError(
        f"{error} The service may have created the video task anyway: look at its task list before "
        "submitting again, to avoid paying twice.",
        http_status=error.http_status,
        api_code=error.api_code,
        api_message=error.api_message,
    )


def _created_task_id(answer: Any, settings: VideoGenConnectionSettings) -> str:
    """Read the new id from the create answer, as the connection's style says."""
    video_task_id = settings.style.created_task_id(answer)
    if video_task_id is None:
        raise VideoTaskIdMissingError(
            f"The service at {settings.base_url} accepted the generation but its answer holds no task id "
            f"({settings.excerpt(json.dumps(answer))}). The service may have created the video task: look at "
            "its task list before submitting again."
        )
    return settings.style.check_task_id(video_task_id)


def _cancel_call(video_task_id: str) -> dict[str, Any]:
    """How a cancel call (a DELETE on most styles) is made: one attempt; :class:`_CancelRetries` says if another.

    Never retried blindly: on the contents-generations and Runway APIs the same call deletes a task
    that finished meanwhile, its video with it.
    """
    return {"video_task_id": video_task_id, "action": "cancel", "policy": _ONE_ATTEMPT}


_ONE_ATTEMPT = RetryPolicy(max_attempts=1)


class _CancelRetries:
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
        if not _create_may_retry(error) or self.failures >= self.policy.max_attempts:
            return None
        wait = self.policy.wait_after(self.failures, error.retry_after)
        if time.monotonic() - self.started + wait >= self.policy.max_seconds:
            return None
        return wait


def _require_cancel_support(settings: VideoGenConnectionSettings) -> None:
    if not settings.style.can_cancel:
        able = ", ".join(name for name, style in STYLES.items() if style.can_cancel)
        raise VideoGenNotSupportedError(
            f"Cancelling is not supported by the {settings.api_style} API style (connection "
            f"{settings.conn_id!r}): {settings.style.no_cancel_reason}. Only {able} can cancel."
        )


def _query_call(settings: VideoGenConnectionSettings, video_task_id: str) -> dict[str, Any]:
    """How a query of a video task is made.

    The answer is read as the task inside the attempt, so an unusable answer is retried like any
    other transient fault.
    """
    return {
        "video_task_id": video_task_id,
        "action": "query",
        "read": lambda payload: read_task_payload(payload, settings, video_task_id),
    }


def read_task_payload(payload: Any, settings: VideoGenConnectionSettings, video_task_id: str) -> VideoTask:
    """Read a decoded answer as the task ``video_task_id``, as the connection's style says; raise if it is not."""
    if not isinstance(payload, Mapping):
        # A proxy's stray `null` or `[]` is no answer about the task: as transient as a blank 200.
        raise VideoGenTransientError(
            f"The service answered the query of video task {video_task_id!r} at {settings.base_url} with JSON "
            f"that is not a task object ({_json_kind(payload)}); this happens now and then behind proxies.",
            video_task_id=video_task_id,
        )
    try:
        task = settings.style.parse_task(payload, video_task_id)
    except ValueError as e:
        raise VideoGenAPIError(
            f"The answer for video task {video_task_id!r} from {settings.base_url} is not a video task ({e}). "
            f"Check that the connection's api_style ({settings.api_style}) matches the service.",
            video_task_id=video_task_id,
        ) from None
    if (task.raw_status or "").strip().lower() in settings.style.missing_task_statuses:
        # DashScope answers an expired or unknown task with HTTP 200 and task_status UNKNOWN.
        raise VideoTaskNotFoundError(
            f"Video task {video_task_id!r} was not found at {settings.base_url} (the service answered status "
            f"{task.raw_status}: the task expired or never existed, or belongs to another region's key).",
            video_task_id=video_task_id,
            api_code=task.raw_status,
            api_message=task.error_message or f"task status {task.raw_status}",
        )
    if task.id != video_task_id:
        raise VideoGenAPIError(
            f"The service at {settings.base_url} answered the query of video task {video_task_id!r} with "
            f"another task ({settings.excerpt(task.id, 80)!r}); its answer is not trusted. A caching proxy in "
            "front of the service can cause this: check the connection's base URL.",
            video_task_id=video_task_id,
        )
    return task


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _probe_not_found_result(settings: VideoGenConnectionSettings, error: VideoTaskNotFoundError) -> tuple[bool, str]:
    if error.api_code or error.api_message:
        return True, (
            f"Connected to {settings.base_url} ({settings.api_style}): the API key was accepted "
            "(a lookup of a test task id answered 'not found', as expected)."
        )
    return False, (
        f"{settings.base_url} answered HTTP 404 without an API error at "
        f"{settings.task_url(settings.style.probe_task_id)}: "
        "the host does not serve this API there. Check the base URL, path_prefix and api_style."
    )


def _too_large_error(
    error: transport.AnswerTooLargeError, action: str, video_task_id: str | None, settings: VideoGenConnectionSettings
) -> VideoGenError:
    message = (
        f"Could not {action} {_describe(video_task_id)} at {settings.base_url}: {error}. An answer of this API "
        "is a small JSON object: check the base URL and path_prefix of the connection."
    )
    if action == "create":  # the service took the request: what it made is unknown
        return VideoTaskMayExistError(
            f"{message} The service may have created the video task anyway: look at its task list before "
            "submitting again, to avoid paying twice."
        )
    return VideoGenAPIError(message, video_task_id=video_task_id)


def _surely_unsent(error: BaseException) -> bool:
    """Tell whether ``requests`` failed before any byte of the request could reach the service."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.ConnectionError) and not isinstance(error, requests.exceptions.ReadTimeout):
        text = repr(error)
        return any(m in text for m in ("NewConnectionError", "Connection refused", "NameResolutionError"))
    return False


def _transport_error(
    error: BaseException,
    action: str,
    video_task_id: str | None,
    settings: VideoGenConnectionSettings,
    *,
    sent: bool,
) -> VideoGenTransientError:
    kind = "timed out" if isinstance(error, (requests.Timeout, asyncio.TimeoutError)) else "failed"
    reason = settings.excerpt(f"{type(error).__name__}: {error}")
    message = f"Could not {action} {_describe(video_task_id)} at {settings.base_url}: the request {kind} ({reason})."
    cls = VideoGenTransientError if sent else VideoGenRequestNotSentError
    return cls(message, video_task_id=video_task_id)


def _interpret(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    settings: VideoGenConnectionSettings,
    action: str,
    video_task_id: str | None,
) -> Any:
    """Turn one HTTP answer into decoded JSON, or raise the typed error it calls for."""
    key = settings.api_key.encode()
    if key and key in body:
        # A service that echoes the key must not put it in a task, an error, XCom or a log line.
        body = body.replace(key, b"***")
    decoded = _decode_json(body)
    if key and b"\\" in body and decoded is not _NOT_JSON and _may_hold_key(decoded, settings.api_key):
        # JSON may write the key escaped (`\/`, `\u0073`): the bytes then hide it, the decoded strings do not.
        masked = _mask_key(decoded, settings.api_key)
        if masked is not decoded:
            decoded = masked
            # What an error may quote of the body then shows the mask, not the escaped key.
            body = json.dumps(masked, ensure_ascii=False).encode()
    succeeded = 200 <= status < 300
    # A task that failed is still a successful answer: its "error" describes the task, not the call.
    style = settings.style
    api_code, api_message = (None, None) if succeeded and style.is_task_answer(decoded) else style.api_error(decoded)
    if succeeded and api_code is None:
        if status == 204 and action == "cancel":
            return {}  # Runway answers a cancel with 204 No Content
        if decoded is _NOT_JSON:
            raise VideoGenTransientError(
                f"The service answered {action} {_describe(video_task_id)} with HTTP {status} and "
                f"{'an empty body' if not body.strip() else 'a body that is not JSON'}; this happens now and then.",
                video_task_id=video_task_id,
                http_status=status,
            )
        return decoded
    if api_message is not None:
        api_message = settings.excerpt(api_message)
    detail = f"HTTP {status}"
    if api_code or api_message:
        detail += f", API error {api_code or '-'}: {api_message or '(no message)'}"
    elif body.strip():
        detail += f", body {settings.excerpt(body.decode('utf-8', 'replace'))!r}"
    where = f"{_describe(video_task_id)} at {settings.base_url}"
    kwargs: dict[str, Any] = {
        "video_task_id": video_task_id,
        "http_status": status,
        "api_code": api_code,
        "api_message": api_message,
    }
    if api_code in style.not_found_codes or (status == 404 and video_task_id is not None):
        hint = "" if (api_code or api_message) else " The answer was not an API error: check base URL and path_prefix."
        raise VideoTaskNotFoundError(
            f"Video task {video_task_id!r} was not found at {settings.base_url} ({detail}). Tasks can be "
            f"queried for 7 days, with the key of the data center that created them.{hint}",
            **kwargs,
        )
    if status in (401, 403) or api_code in style.auth_error_codes:
        raise VideoGenAuthError(
            f"The service refused the API key of connection {settings.conn_id!r} to {action} {where} ({detail}). "
            "Check the key, and that it belongs to this data center or gateway.",
            **kwargs,
        )
    if status in _TRANSIENT_STATUSES or status >= 500:
        raise VideoGenTransientError(
            f"Could not {action} {where}: {detail}.",
            retry_after=style.retry_after(headers, decoded),
            empty_body=not body.strip(),
            **kwargs,
        )
    raise VideoGenAPIError(f"Could not {action} {where}: {detail}.", **kwargs)


_NOT_JSON: Any = object()


def _decode_json(body: bytes) -> Any:
    if not body.strip():
        return _NOT_JSON
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


def _may_hold_key(decoded: Any, api_key: str) -> bool:
    r"""Whether some string of the decoded answer may hold ``api_key`` (``False``: it surely holds none).

    Many hosts escape characters of every answer (``\u0026`` in a signed URL): one pass of the C
    encoder, which writes strings as they are but for quotes, backslashes and control characters,
    spares the triggerer a walk through each of those answers. A string holding a backslash may be
    JSON escaped once more (an upstream error passed on as text), so it is walked too.
    """
    if not api_key.isprintable() or '"' in api_key or "\\" in api_key:
        return True
    shown = json.dumps(decoded, ensure_ascii=False)
    return api_key in shown or "\\\\" in shown


def _mask_key(value: Any, api_key: str) -> Any:
    """Return the decoded JSON ``value`` with ``api_key`` masked in every string, names of members included.

    The very object comes back when nothing was masked. A string that is JSON itself (an upstream
    error passed on as text) is masked inside too, as it is decoded again later.
    """
    if isinstance(value, str):
        text = value.replace(api_key, "***") if api_key in value else value
        if "\\" in text and text.lstrip()[:1] in ("{", "["):
            try:
                inner = json.loads(text)
            except ValueError:
                return text
            masked_inner = _mask_key(inner, api_key)
            return text if masked_inner is inner else json.dumps(masked_inner, ensure_ascii=False)
        return text
    if isinstance(value, list):
        items = [_mask_key(item, api_key) for item in value]
        return items if any(new is not old for new, old in zip(items, value, strict=True)) else value
    if isinstance(value, dict):
        pairs = [(_mask_key(name, api_key), _mask_key(item, api_key)) for name, item in value.items()]
        old_pairs = value.items()
        changed = any(new[0] is not old[0] or new[1] is not old[1] for new, old in zip(pairs, old_pairs, strict=True))
        return dict(pairs) if changed else value
    return value


def _describe(video_task_id: str | None) -> str:
    return f"video task {video_task_id!r}" if video_task_id is not None else "the video tasks"


@functools.lru_cache(maxsize=64)
def _overridden(settings: VideoGenConnectionSettings, retry_policy: RetryPolicy) -> VideoGenConnectionSettings:
    """Return the settings with another retry policy: one object for all the hooks that ask for the same."""
    return dataclasses.replace(settings, retry_policy=retry_policy)


class _SharedLookups:
    """The connection lookups under way in each event loop, shared by the hooks that ask meanwhile.

    A lookup is only shared while it runs: a hook that asks after it finished makes its own, so it
    sees the connection as it is then, exactly as without sharing. Its result is handed to the hooks
    that waited a slice per turn of the loop (thousands of triggers starting together wait on one).
    """

    _by_loop: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[str, list[asyncio.Future[VideoGenConnectionSettings]]]
    ] = weakref.WeakKeyDictionary()
    #: The lookups running (the loop holds tasks weakly).
    _running: set[asyncio.Task[None]] = set()

    @classmethod
    async def resolve(
        cls, conn_id: str, lookup: Callable[[], Coroutine[Any, Any, VideoGenConnectionSettings]]
    ) -> VideoGenConnectionSettings:
        loop = asyncio.get_running_loop()
        under_way = cls._by_loop.setdefault(loop, {})
        waiters = under_way.get(conn_id)
        if waiters is None:
            waiters = under_way[conn_id] = []
            task = loop.create_task(cls._look_up(under_way, conn_id, waiters, lookup()))
            cls._running.add(task)
            task.add_done_callback(cls._running.discard)
        # A future per hook: one waiting hook being cancelled does not cancel the lookup for the others.
        waiter: asyncio.Future[VideoGenConnectionSettings] = loop.create_future()
        waiters.append(waiter)
        try:
            return await waiter
        except Exception as error:
            # The same error reaches every hook that waited: do not let each raise add to one traceback.
            raise error.with_traceback(None) from None

    @staticmethod
    async def _look_up(
        under_way: dict[str, list[asyncio.Future[VideoGenConnectionSettings]]],
        conn_id: str,
        waiters: list[asyncio.Future[VideoGenConnectionSettings]],
        lookup: Coroutine[Any, Any, VideoGenConnectionSettings],
    ) -> None:
        settings: VideoGenConnectionSettings | None = None
        failure: BaseException | None = None
        try:
            settings = await lookup
        except asyncio.CancelledError:
            for waiter in waiters:
                waiter.cancel()  # the loop is closing
            raise
        except Exception as error:
            failure = error
        finally:
            if under_way.get(conn_id) is waiters:
                del under_way[conn_id]  # from now on a hook that asks makes its own lookup
        async for waiter in in_turns(waiters):
            if waiter.done():
                continue  # its hook was cancelled meanwhile
            if failure is not None:
                waiter.set_exception(failure)
            else:
                waiter.set_result(settings)  # type: ignore[arg-type]
