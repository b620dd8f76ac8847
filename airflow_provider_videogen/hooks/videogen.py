"""``VideoGenHook``: the ``videogen`` connection and every call to the video generation APIs."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
import weakref
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

import requests
from airflow.sdk import BaseHook
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity import stop_before_delay as _stop_before_delay

from airflow_provider_videogen import API_STYLE_CHOICES, DATA_CENTER_CHOICES, __version__
from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenError,
    VideoGenNotSupportedError,
    VideoGenRequestNotSentError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus, parse_video_task

if TYPE_CHECKING:
    from airflow.sdk import Connection

# aiohttp is imported where the async calls need it: only the triggerer makes them, and every task
# try on a worker imports this module (parsing its DAG file), where aiohttp would cost a third of a
# second of CPU for nothing.

DATA_CENTER_URLS: dict[str, str] = {
    "beijing": "https://ai.rong-api.com",
    "north_america": "https://ai.us-light-api.com",
}
DEFAULT_PATH_PREFIXES: dict[str, str] = {
    "contents_generations": "/llm/v1",
    "video_generations": "/v1",
}
USER_AGENT = f"airflow-provider-videogen/{__version__}"
MAX_VIDEO_TASK_ID_LENGTH = 256
# Characters that could move a request to another path or endpoint, or that no real id contains.
_UNSAFE_ID_CHARACTERS = frozenset("/\\?#%") | {chr(c) for c in range(0x21)} | {"\x7f"}
# Transient statuses: the service may answer differently if asked again.
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_ERROR_TEXT_LIMIT = 300

ApiStyle = Literal["contents_generations", "video_generations"]


@dataclass(frozen=True)
class RetryPolicy:
    """How transient faults are retried.

    :param max_attempts: attempts in all, the first included (1 disables retries).
    :param max_seconds: give up rather than start a wait that would end later than this many
        seconds after the first attempt.
    :param initial_wait: first backoff in seconds; it doubles each attempt.
    :param max_wait: longest single backoff in seconds.
    :param max_retry_after: longest ``Retry-After`` the hook will honour, in seconds.
    """

    max_attempts: int = 5
    max_seconds: float = 120.0
    initial_wait: float = 1.0
    max_wait: float = 30.0
    max_retry_after: float = 300.0

    def wait_seconds(self, retry_state: RetryCallState) -> float:
        """Seconds to sleep before the next attempt: ``Retry-After`` if sent, else backoff with jitter."""
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return self.wait_after(retry_state.attempt_number, getattr(error, "retry_after", None))

    def wait_after(self, failures: int, retry_after: float | None) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row, honouring the service's ``Retry-After``."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff(failures)

    def backoff(self, failures: int) -> float:
        """Exponential backoff with jitter after ``failures`` failed attempts in a row."""
        ceiling = min(self.max_wait, self.initial_wait * 2 ** max(failures - 1, 0))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class VideoGenConnectionSettings:
    """Everything a ``videogen`` connection says, checked and resolved.

    :param conn_id: the Airflow connection id it came from.
    :param base_url: scheme and host (and port) of the API, without a trailing slash.
    :param api_key: the API key (never shown in ``repr``).
    :param api_style: ``contents_generations`` or ``video_generations``.
    :param path_prefix: path before the API routes, e.g. ``/llm/v1``.
    :param timeout: seconds allowed for one HTTP request.
    :param data_center: the data center the base URL came from, or ``None`` when a host was given.
    :param retry_policy: how transient faults are retried.
    """

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    api_style: ApiStyle = "contents_generations"
    path_prefix: str = "/llm/v1"
    timeout: float = 30.0
    data_center: str | None = "beijing"
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_connection_fields(
        cls,
        conn_id: str,
        *,
        host: str | None,
        password: str | None,
        port: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> VideoGenConnectionSettings:
        """Resolve the fields of a ``videogen`` connection; raise a clear error for a bad value."""
        extra = dict(extra or {})
        api_key = (password or "").strip() or str(extra.get("api_key") or "").strip()
        if not api_key:
            raise VideoGenConfigurationError(
                f"Connection {conn_id!r} has no API key: put the key in the connection's password "
                "field (shown as 'API key' in the connection form)."
            )
        api_style = _choice(conn_id, "api_style", extra.get("api_style"), API_STYLE_CHOICES)
        data_center: str | None = None
        if host and host.strip():
            base_url = _base_url_from_host(conn_id, host.strip(), port)
        else:
            data_center = _choice(conn_id, "data_center", extra.get("data_center"), DATA_CENTER_CHOICES)
            base_url = DATA_CENTER_URLS[data_center]
        prefix = extra.get("path_prefix")
        path_prefix = DEFAULT_PATH_PREFIXES[api_style] if prefix is None else str(prefix).strip()
        path_prefix = "/" + path_prefix.strip("/") if path_prefix.strip("/") else ""
        defaults = RetryPolicy()
        retry_policy = RetryPolicy(
            max_attempts=int(_positive(conn_id, "max_attempts", extra.get("max_attempts"), defaults.max_attempts)),
            max_seconds=_positive(conn_id, "max_retry_seconds", extra.get("max_retry_seconds"), defaults.max_seconds),
        )
        return cls(
            conn_id=conn_id,
            base_url=base_url,
            api_key=api_key,
            api_style=api_style,  # type: ignore[arg-type]
            path_prefix=path_prefix,
            timeout=_positive(conn_id, "timeout", extra.get("timeout"), 30.0),
            data_center=data_center,
            retry_policy=retry_policy,
        )

    @classmethod
    def from_connection(cls, conn: Connection, extra: Mapping[str, Any]) -> VideoGenConnectionSettings:
        """Resolve an Airflow connection whose extras were already decoded."""
        return cls.from_connection_fields(
            conn.conn_id, host=conn.host, password=conn.password, port=conn.port, extra=extra
        )

    @property
    def tasks_url(self) -> str:
        """URL of the collection of video tasks (create and list)."""
        route = "/contents/generations/tasks" if self.api_style == "contents_generations" else "/video/generations"
        return f"{self.base_url}{self.path_prefix}{route}"

    def task_url(self, video_task_id: str) -> str:
        """URL of one video task; the id is checked and percent-encoded so it stays one path segment."""
        return f"{self.tasks_url}/{quote(check_video_task_id(video_task_id), safe='')}"

    def redact(self, text: str) -> str:
        """Remove the API key from a text that came from elsewhere (an error body may echo it)."""
        return text.replace(self.api_key, "***") if self.api_key else text


def check_video_task_id(video_task_id: Any) -> str:
    """Return the id if it is safe to put in a URL path, else raise a clear error.

    Ids with a path separator, ``?``, ``#``, ``%``, white space or control characters, ``.`` or
    ``..``, an empty id or one longer than 256 characters can never be a real video task id and could
    address another endpoint, so they are refused before anything is sent.
    """
    if not isinstance(video_task_id, str):
        raise VideoGenConfigurationError(
            f"The video task id must be a string, got {type(video_task_id).__name__} ({video_task_id!r})."
        )
    problem = None
    if not video_task_id:
        problem = "it is empty"
    elif len(video_task_id) > MAX_VIDEO_TASK_ID_LENGTH:
        problem = f"it is {len(video_task_id)} characters long (at most {MAX_VIDEO_TASK_ID_LENGTH})"
    elif video_task_id in (".", ".."):
        problem = "it is a relative path"
    elif bad := sorted(set(video_task_id) & _UNSAFE_ID_CHARACTERS):
        problem = f"it contains {', '.join(repr(c) for c in bad)}"
    if problem:
        shown = video_task_id if len(video_task_id) <= 80 else video_task_id[:77] + "..."
        raise VideoGenConfigurationError(
            f"Invalid video task id {shown!r}: {problem}. Pass the id the create call returned "
            "(like 'cgt-20250331175019-68d9t' or 'task_...'); check the template or XCom that supplies it."
        )
    return video_task_id


class VideoGenHook(BaseHook):
    """Talk to a video generation service through a ``videogen`` connection.

    Speaks both API styles ("contents generations", as served by RongCloud and Volcengine Ark, and
    "video generations", as served by new-api gateways) and returns every answer as one
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
        self._async_lease: _SharedSessionLease | None = None

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
        return VideoGenConnectionSettings.from_connection(conn, await _aextra(conn))

    def _with_override(self, settings: VideoGenConnectionSettings) -> VideoGenConnectionSettings:
        if self._retry_policy_override is None:
            return settings
        from dataclasses import replace

        return replace(settings, retry_policy=self._retry_policy_override)

    # ---- sync API ----

    def get_conn(self) -> requests.Session:
        """Return the ``requests`` session (created once, with the provider's User-Agent)."""
        if self._session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            self._session = session
        return self._session

    def get_task(self, video_task_id: str) -> VideoTask:
        """Read a video task.

        :param video_task_id: the id the create call returned.
        :raises VideoTaskNotFoundError: the task does not exist (or is older than 7 days).
        :raises VideoGenAuthError: the key was refused.
        :raises VideoGenTransientError: transient faults outlasted the retry policy.
        """
        settings = self.settings
        url = settings.task_url(video_task_id)
        payload = self._request("GET", url, settings, video_task_id=video_task_id, action="query")
        return _parse_task_payload(payload, settings, video_task_id)

    def create_task(self, request: VideoGenerationRequest | None = None, /, **request_fields: Any) -> str:
        """Submit a video generation and return the new video task id.

        Pass a :class:`~airflow_provider_videogen.generation_request.VideoGenerationRequest`, or its
        fields as keywords (``model=..., prompt=..., image_urls=..., resolution=...``; unknown names
        are sent as extra top-level fields). The same fields work for both API styles: on
        video_generations the Seedance options go into ``metadata``.

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
        body = request.to_body(settings.api_style)
        try:
            answer = self._request(
                "POST",
                settings.tasks_url,
                settings,
                video_task_id=None,
                action="create",
                json_body=body,
                retry_if=_create_may_retry,
            )
        except VideoGenTransientError as error:
            raise _maybe_created(error) from None
        video_task_id = _created_task_id(answer, settings)
        self.log.info("Created video task %s with model %s at %s.", video_task_id, request.model, settings.base_url)
        return video_task_id

    def cancel_task(self, video_task_id: str) -> bool:
        """Cancel a video task that is still queued; return whether it was cancelled.

        Only a ``queued`` task is cancelled: on the contents-generations API the same ``DELETE``
        call *deletes* a finished task for good, its video with it, and is refused for a running one.
        So the task is read first and left alone (returning ``False``) unless it is queued.

        :raises VideoGenNotSupportedError: on the video_generations style, which has no cancel call.
        """
        settings = self.settings
        _require_cancel_support(settings)
        if not self._is_queued(self.get_task(video_task_id)):
            return False
        try:
            self._request("DELETE", settings.task_url(video_task_id), settings, **_cancel_call(video_task_id))
        except VideoGenAPIError as error:
            return self._cancel_refused(video_task_id, error)
        self.log.info("Cancelled queued video task %s.", video_task_id)
        return True

    def _is_queued(self, task: VideoTask) -> bool:
        if task.status is VideoTaskStatus.QUEUED:
            return True
        self.log.info("Video task %s is %s, not queued: leaving it alone.", task.id, task.status.value)
        return False

    def _cancel_refused(self, video_task_id: str, error: VideoGenAPIError) -> bool:
        # It started running between the read and the DELETE: the service refuses to cancel it.
        self.log.warning("Video task %s could not be cancelled: %s", video_task_id, error)
        return False

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap authenticated request and say whether the key and the URL work."""
        try:
            settings = self.settings
            self._request(
                "GET",
                settings.task_url(_PROBE_TASK_ID),
                settings,
                video_task_id=_PROBE_TASK_ID,
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
            return (
                False,
                f"Could not get an answer from {self.settings.base_url}: {error}. Check the base URL.",
            )
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
        policy: RetryPolicy | None = None,
        retry_if: Callable[[BaseException], bool] | None = None,
    ) -> Any:
        session = self.get_conn()
        headers = {"Authorization": f"Bearer {settings.api_key}", "Accept": "application/json"}

        def attempt() -> Any:
            try:
                response = session.request(
                    method,
                    url,
                    headers=headers,
                    json=json_body,
                    timeout=settings.timeout,
                    allow_redirects=False,
                )
                body = response.content
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as e:
                raise _transport_error(e, action, video_task_id, settings, sent=not _surely_unsent(e)) from None
            return _interpret(response.status_code, response.headers, body, settings, action, video_task_id)

        retrying = Retrying(**_retry_kwargs(policy or settings.retry_policy, retry_if, self.log))
        return retrying(attempt)

    # ---- async API ----

    async def aget_task(self, video_task_id: str) -> VideoTask:
        """Read a video task without blocking the event loop; see :meth:`get_task`."""
        settings = await self.aget_settings()
        url = settings.task_url(video_task_id)
        payload = await self._arequest("GET", url, settings, video_task_id=video_task_id, action="query")
        return _parse_task_payload(payload, settings, video_task_id)

    async def acancel_task(self, video_task_id: str) -> bool:
        """Cancel a still-queued video task without blocking the event loop; see :meth:`cancel_task`."""
        settings = await self.aget_settings()
        _require_cancel_support(settings)
        if not self._is_queued(await self.aget_task(video_task_id)):
            return False
        try:
            await self._arequest("DELETE", settings.task_url(video_task_id), settings, **_cancel_call(video_task_id))
        except VideoGenAPIError as error:
            return self._cancel_refused(video_task_id, error)
        self.log.info("Cancelled queued video task %s.", video_task_id)
        return True

    async def aclose(self) -> None:
        """Release this hook's share of the event loop's HTTP session (closed when the last hook lets go)."""
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
    ) -> Any:
        import aiohttp

        if self._async_lease is None:
            self._async_lease = _SharedSessionLease.acquire()
        session = self._async_lease.session
        headers = {"Authorization": f"Bearer {settings.api_key}", "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=settings.timeout)

        async def attempt() -> Any:
            try:
                async with session.request(
                    method, url, headers=headers, json=json_body, timeout=timeout, allow_redirects=False
                ) as response:
                    body = await response.read()
                    return _interpret(response.status, response.headers, body, settings, action, video_task_id)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                sent = not isinstance(e, aiohttp.ClientConnectorError)
                raise _transport_error(e, action, video_task_id, settings, sent=sent) from None

        policy = policy or settings.retry_policy
        if policy.max_attempts <= 1:
            # One attempt (every poll of a trigger): the retry machinery would cost about as much CPU
            # as the request itself and leave reference cycles for the garbage collector, whose full
            # collections stall an event loop holding thousands of waiting triggers.
            return await attempt()
        retrying = AsyncRetrying(**_retry_kwargs(policy, retry_if, self.log))
        return await retrying(attempt)


# ---- helpers shared by the sync and async paths ----

_PROBE_TASK_ID = "airflow-connection-test"


def _create_may_retry(error: BaseException) -> bool:
    """Retry a call that must not run twice only where the service surely did not take it."""
    if isinstance(error, VideoGenRequestNotSentError):
        return True
    if isinstance(error, VideoGenTransientError):
        return error.http_status == 429 or (error.http_status == 503 and error.empty_body)
    return False


def _maybe_created(error: VideoGenTransientError) -> VideoGenTransientError:
    if isinstance(error, VideoGenRequestNotSentError) or error.http_status in (429, 503):
        return error
    return VideoGenTransientError(
        f"{error} The service may have created the video task anyway: look at its task list before "
        "submitting again, to avoid paying twice.",
        http_status=error.http_status,
        api_code=error.api_code,
        api_message=error.api_message,
    )


def _created_task_id(answer: Any, settings: VideoGenConnectionSettings) -> str:
    """Read the new id from any create answer: ``{"id"}``, ``{"task_id"}``, or the gateway's wrapped form."""
    data = answer.get("data") if isinstance(answer, Mapping) and isinstance(answer.get("data"), Mapping) else answer
    video_task_id = None
    if isinstance(data, Mapping):
        video_task_id = data.get("task_id") or data.get("id")
    if not isinstance(video_task_id, str) or not video_task_id:
        raise VideoGenAPIError(
            f"The service at {settings.base_url} accepted the generation but its answer holds no task id "
            f"({settings.redact(json.dumps(answer)[:_ERROR_TEXT_LIMIT])}). The task may exist: look at the "
            "service's task list before submitting again."
        )
    return check_video_task_id(video_task_id)


def _cancel_call(video_task_id: str) -> dict[str, Any]:
    """How a DELETE of a video task is made: like a create, never retried where it may have arrived."""
    return {"video_task_id": video_task_id, "action": "cancel", "retry_if": _create_may_retry}


def _require_cancel_support(settings: VideoGenConnectionSettings) -> None:
    if settings.api_style != "contents_generations":
        raise VideoGenNotSupportedError(
            f"Cancelling is not supported by the {settings.api_style} API style (connection "
            f"{settings.conn_id!r}): new-api gateways have no cancel call. Only contents_generations can cancel."
        )


def _parse_task_payload(payload: Any, settings: VideoGenConnectionSettings, video_task_id: str) -> VideoTask:
    try:
        return parse_video_task(payload, video_task_id=video_task_id)
    except ValueError as e:
        raise VideoGenAPIError(
            f"The answer for video task {video_task_id!r} from {settings.base_url} is not a video task ({e}). "
            f"Check that the connection's api_style ({settings.api_style}) matches the service.",
            video_task_id=video_task_id,
        ) from None


def _probe_not_found_result(settings: VideoGenConnectionSettings, error: VideoTaskNotFoundError) -> tuple[bool, str]:
    if error.api_code or error.api_message:
        return True, (
            f"Connected to {settings.base_url} ({settings.api_style}): the API key was accepted "
            "(a lookup of a test task id answered 'not found', as expected)."
        )
    return False, (
        f"{settings.base_url} answered HTTP 404 without an API error at {settings.task_url(_PROBE_TASK_ID)}: "
        "the host does not serve this API there. Check the base URL, path_prefix and api_style."
    )


def _retry_kwargs(policy: RetryPolicy, retry_if: Callable[[BaseException], bool] | None, logger: Any) -> dict[str, Any]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "Attempt %d of %d failed (%s); retrying in %.1f s.",
            state.attempt_number,
            policy.max_attempts,
            error,
            state.upcoming_sleep,
        )

    return {
        "stop": stop_after_attempt(policy.max_attempts) | _stop_before_delay(policy.max_seconds),
        "wait": policy.wait_seconds,
        "retry": retry_if_exception(retry_if or _is_transient),
        "before_sleep": before_sleep,
        "reraise": True,
    }


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, VideoGenTransientError)


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
    reason = settings.redact(f"{type(error).__name__}: {error}")[:_ERROR_TEXT_LIMIT]
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
    decoded = _decode_json(body)
    succeeded = 200 <= status < 300
    # A task that failed is still a successful answer: its "error" describes the task, not the call.
    is_task = isinstance(decoded, Mapping) and any(k in decoded for k in ("status", "id", "task_id"))
    api_code, api_message = (None, None) if succeeded and is_task else _api_error(decoded)
    if succeeded and api_code is None:
        if decoded is _NOT_JSON:
            raise VideoGenTransientError(
                f"The service answered {action} {_describe(video_task_id)} with HTTP {status} and "
                f"{'an empty body' if not body.strip() else 'a body that is not JSON'}; this happens now and then.",
                video_task_id=video_task_id,
                http_status=status,
            )
        return decoded
    if api_message is not None:
        api_message = settings.redact(api_message)[:_ERROR_TEXT_LIMIT]
    detail = f"HTTP {status}"
    if api_code or api_message:
        detail += f", API error {api_code or '-'}: {api_message or '(no message)'}"
    elif body.strip():
        detail += f", body {settings.redact(body[:_ERROR_TEXT_LIMIT].decode('utf-8', 'replace'))!r}"
    where = f"{_describe(video_task_id)} at {settings.base_url}"
    kwargs: dict[str, Any] = {
        "video_task_id": video_task_id,
        "http_status": status,
        "api_code": api_code,
        "api_message": api_message,
    }
    if api_code == "task_not_exist" or (status == 404 and video_task_id is not None):
        hint = "" if (api_code or api_message) else " The answer was not an API error: check base URL and path_prefix."
        raise VideoTaskNotFoundError(
            f"Video task {video_task_id!r} was not found at {settings.base_url} ({detail}). Tasks can be "
            f"queried for 7 days, with the key of the data center that created them.{hint}",
            **kwargs,
        )
    if status in (401, 403):
        raise VideoGenAuthError(
            f"The service refused the API key of connection {settings.conn_id!r} to {action} {where} ({detail}). "
            "Check the key, and that it belongs to this data center or gateway.",
            **kwargs,
        )
    if status in _TRANSIENT_STATUSES or status >= 500:
        raise VideoGenTransientError(
            f"Could not {action} {where}: {detail}.",
            retry_after=parse_retry_after(headers.get("Retry-After")),
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


def _api_error(decoded: Any) -> tuple[str | None, str | None]:
    """Read ``{"error": {"code", "message"}}`` or the gateway's ``{"code", "message", "data": null}``."""
    if not isinstance(decoded, Mapping):
        return None, None
    error = decoded.get("error")
    if isinstance(error, Mapping):
        code = error.get("code")
        return (str(code) if code not in (None, "") else None), _text(error.get("message"))
    code = decoded.get("code")
    if isinstance(code, str) and code.lower() not in ("success", "ok", "0", "") and decoded.get("data") is None:
        message = _text(decoded.get("message"))
        if code == "fail_to_fetch_task" and message:
            upstream_code, upstream_message = _api_error(_decode_json(message.encode()))
            if upstream_code or upstream_message:
                return upstream_code or code, upstream_message or message
        return code, message
    return None, None


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header (seconds or an HTTP date) as seconds from now; ``None`` if absent or unreadable."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _describe(video_task_id: str | None) -> str:
    return f"video task {video_task_id!r}" if video_task_id is not None else "the video tasks"


def _choice(conn_id: str, name: str, value: Any, choices: list[str]) -> str:
    if value is None or str(value).strip() == "":
        return choices[0]
    normalized = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    if normalized not in choices:
        raise VideoGenConfigurationError(
            f"Connection {conn_id!r} has {name}={value!r}; choose one of: {', '.join(choices)}."
        )
    return normalized


def _positive(conn_id: str, name: str, value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise VideoGenConfigurationError(
            f"Connection {conn_id!r} has {name}={value!r}; it must be a positive number (default {default:g})."
        )
    return number


def _base_url_from_host(conn_id: str, host: str, port: int | None) -> str:
    if "://" not in host:
        host = f"https://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VideoGenConfigurationError(
            f"Connection {conn_id!r} has host {host!r}, which is not an http(s) base URL such as "
            "'https://ai.rong-api.com' or 'http://127.0.0.1:9000'. Leave it empty to use the data center."
        )
    netloc = parts.netloc.rpartition("@")[2]  # credentials in a base URL would end up in logs
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


async def _aextra(conn: Connection) -> dict[str, Any]:
    """Decode the connection's extras without blocking (Airflow 3.3 adds ``aextra_dejson``)."""
    aextra_dejson = getattr(conn, "aextra_dejson", None)
    if aextra_dejson is not None:
        return await aextra_dejson()
    # Older versions only offer the sync property, which masks secrets through a blocking call:
    # decode the JSON directly (this connection keeps no secret in its extras).
    try:
        extra = json.loads(conn.extra) if conn.extra else {}
    except ValueError:
        raise VideoGenConfigurationError(
            f"Connection {conn.conn_id!r} has extras that are not valid JSON; fix them in the connection."
        ) from None
    return extra if isinstance(extra, dict) else {}


class _SharedLookups:
    """The connection lookups under way in each event loop, shared by the hooks that ask meanwhile.

    A lookup is only shared while it runs: a hook that asks after it finished makes its own, so it
    sees the connection as it is then, exactly as without sharing.
    """

    _by_loop: weakref.WeakKeyDictionary[
        asyncio.AbstractEventLoop, dict[str, asyncio.Task[VideoGenConnectionSettings]]
    ] = weakref.WeakKeyDictionary()

    @classmethod
    async def resolve(
        cls, conn_id: str, lookup: Callable[[], Coroutine[Any, Any, VideoGenConnectionSettings]]
    ) -> VideoGenConnectionSettings:
        loop = asyncio.get_running_loop()
        under_way = cls._by_loop.setdefault(loop, {})
        task = under_way.get(conn_id)
        if task is None:
            task = loop.create_task(lookup())
            under_way[conn_id] = task

            def forget(done: asyncio.Task[VideoGenConnectionSettings]) -> None:
                if under_way.get(conn_id) is done:
                    del under_way[conn_id]
                if not done.cancelled():
                    done.exception()  # retrieved, even if every hook that waited was cancelled

            task.add_done_callback(forget)
        # Shielded: one waiting hook being cancelled must not cancel the lookup for the others.
        return await asyncio.shield(task)


class _SharedSessionLease:
    """One ``aiohttp`` session per event loop, shared by every hook running in that loop.

    Thousands of triggers wait at once in one triggerer loop; sharing one session (and its pool of
    keep-alive connections) instead of one per hook or per request keeps the CPU per poll and the
    memory per waiting task small. The session closes when the last hook releases it.
    """

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedSessionLease] = weakref.WeakKeyDictionary()
    connection_limit = 100

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        import aiohttp

        self.loop = loop
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.connection_limit, ttl_dns_cache=300),
            headers={"User-Agent": USER_AGENT},
        )
        self.holders = 0

    @classmethod
    def acquire(cls) -> _SharedSessionLease:
        loop = asyncio.get_running_loop()
        lease = cls._by_loop.get(loop)
        if lease is None or lease.session.closed:
            lease = cls(loop)
            cls._by_loop[loop] = lease
        lease.holders += 1
        return lease

    async def release(self) -> None:
        self.holders -= 1
        if self.holders <= 0:
            if self._by_loop.get(self.loop) is self:
                del self._by_loop[self.loop]
            await self.session.close()
