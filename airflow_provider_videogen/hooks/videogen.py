"""``VideoGenHook``: every call to the video generation APIs through a ``videogen`` connection.

The connection's settings live in :mod:`~airflow_provider_videogen.settings`, the retry policy in
:mod:`~airflow_provider_videogen.retry` and the HTTP sessions in
:mod:`~airflow_provider_videogen.transport`; the names they had here stay importable from here. The
async reads of a task (a query of its own, or a share of the event loop's shared polls) are
:mod:`~airflow_provider_videogen.task_reads`'s, and the Test button's answer is
:mod:`~airflow_provider_videogen.hooks.connection_ui`'s.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import requests
from airflow.sdk import BaseHook

from airflow_provider_videogen.cancel import acancel, cancel
from airflow_provider_videogen.client import PollAnswer, VideoGenClient
from airflow_provider_videogen.exceptions import VideoGenConfigurationError
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks import connection_ui
from airflow_provider_videogen.retry import RetryPolicy, parse_retry_after
from airflow_provider_videogen.settings import (
    DATA_CENTER_URLS,
    DEFAULT_PATH_PREFIXES,
    MAX_VIDEO_TASK_ID_LENGTH,
    ApiStyle,
    SharedLookups,
    VideoGenConnectionSettings,
    aextra,
    check_video_task_id,
)
from airflow_provider_videogen.task_reads import TaskReads
from airflow_provider_videogen.transport import USER_AGENT
from airflow_provider_videogen.video_task import VideoTask

__all__ = [
    "DATA_CENTER_URLS",
    "DEFAULT_PATH_PREFIXES",
    "MAX_VIDEO_TASK_ID_LENGTH",
    "USER_AGENT",
    "ApiStyle",
    "PollAnswer",
    "RetryPolicy",
    "VideoGenConnectionSettings",
    "VideoGenHook",
    "check_video_task_id",
    "parse_retry_after",
]


class VideoGenHook(BaseHook):
    """Talk to a video generation service through a ``videogen`` connection.

    Speaks every API style of :data:`~airflow_provider_videogen.styles.STYLES` (the connection's
    ``api_style``; the docs' style table says what each does) and returns every answer as one
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
        self, videogen_conn_id: str = default_conn_name, *, retry_policy: RetryPolicy | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.videogen_conn_id = videogen_conn_id
        self._retry_policy_override = retry_policy
        self._settings: VideoGenConnectionSettings | None = None
        self._client = VideoGenClient(self.log)
        self._reads = TaskReads(self._client)

    # ---- connection form (Airflow 3.1 reads these; 3.2+ reads conn-fields from the provider info) ----

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form, for Airflow versions before 3.2."""
        return connection_ui.form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden and relabelled standard fields, for Airflow versions before 3.2."""
        return connection_ui.ui_field_behaviour()

    # ---- settings ----

    @property
    def settings(self) -> VideoGenConnectionSettings:
        """The resolved connection (fetched once, synchronously)."""
        if self._settings is None:
            conn = self.get_connection(self.videogen_conn_id)
            settings = VideoGenConnectionSettings.from_connection(conn, conn.extra_dejson)
            self._settings = _overridden(settings, self._retry_policy_override)
        return self._settings

    async def aget_settings(self) -> VideoGenConnectionSettings:
        """Resolve the connection with Airflow's async connection API (once per hook).

        Hooks of one event loop that need the same connection while a lookup of it is under way
        share that lookup: thousands of triggers starting together make one lookup, not thousands.
        """
        if self._settings is None:
            settings = await SharedLookups.resolve(self.videogen_conn_id, self._alookup_settings)
            self._settings = _overridden(settings, self._retry_policy_override)
        return self._settings

    async def _alookup_settings(self) -> VideoGenConnectionSettings:
        conn = await self.aget_connection(self.videogen_conn_id)
        return VideoGenConnectionSettings.from_connection(conn, await aextra(conn))

    # ---- sync API ----

    def get_conn(self) -> requests.Session:
        """Return the ``requests`` session (created once, with the provider's User-Agent)."""
        return self._client.session

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
        return self.poll_answer(video_task_id, only_the_api_says_not_found=only_the_api_says_not_found).task

    def poll_answer(self, video_task_id: str, *, only_the_api_says_not_found: bool = False) -> PollAnswer:
        """Read a video task with the service's poll hint (seconds to wait before the next look, if it said).

        Takes and raises what :meth:`get_task` does.
        """
        return self._client.poll(self.settings, video_task_id, only_the_api_says_not_found=only_the_api_says_not_found)

    def create_task(self, request: VideoGenerationRequest | None = None, /, **request_fields: Any) -> str:
        """Submit a video generation and return the new video task id.

        Pass a :class:`~airflow_provider_videogen.generation_request.VideoGenerationRequest`, or its
        fields as keywords (``model=..., prompt=..., image_urls=..., resolution=...``; unknown names
        are sent as extra fields). The same fields work on every API style, each sending them its
        own way (its ``create_body``: a gateway may nest vendor options in ``metadata``); a field a style
        cannot send is refused with an error that says what to use instead.

        A generation costs money, so the create call is **not** retried blindly. It is retried only
        when the service surely did not take the request: the connection was refused or could not be
        opened, a 429 (the service refused it for the rate limit), or a 503 with an empty body (a
        proxy in front of the service answered). A timeout, a dropped connection, a 5xx with a body or
        an unreadable 2xx answer are not retried, because the service may have created the task: the
        error says so, and the caller should look at the service's task list before submitting again.
        A style whose service honours an idempotency token (its ``idempotent_create``) is the
        exception: its create answers the same task when repeated, so it is retried like any call,
        and a transient error leaves a retry of the task free to repeat it.

        :raises VideoGenConfigurationError: the request is incomplete or mixes the API styles' fields.
        :raises VideoGenAPIError: the service refused it (400 invalid parameter, input moderation...).
        :raises VideoGenTransientError: the service could not be reached or may have created the task.
        """
        request = _request_of(request, request_fields)
        settings = self.settings
        video_task_id = self._client.create(settings, request)
        # The URL not last: the UI's log view would link it with the full stop.
        self.log.info("Created video task %s at %s with model %s.", video_task_id, settings.base_url, request.model)
        return video_task_id

    def find_generations(
        self, request: VideoGenerationRequest, since: float, *, max_pages: int = 10
    ) -> list[VideoTask] | None:
        """Return the generations the service lists as made by ``request`` at ``since`` (unix seconds) or later.

        For a try that finds an intent without an id: the generation an earlier try may have paid for.
        Where the style names the next (older) page (its ``recent_generations_next``), up to ``max_pages`` pages
        are read, until one reaches back past ``since``. ``None`` when the list cannot tell (the pages
        read end after ``since`` and older ones follow).

        :param max_pages: the most list pages read: a busy account's list may hold many newer generations.
        :raises VideoGenNotSupportedError: the connection's style cannot look (its ``can_reconcile``).
        """
        return self._client.find_generations(self.settings, request, since, max_pages=max_pages)

    def cancel_task(self, video_task_id: str) -> bool:
        """Cancel a video task that the style can still cancel; return whether it was cancelled.

        Only a task in one of the style's ``cancellable_statuses`` is cancelled (``queued`` by default),
        never a final one: on some APIs the same ``DELETE`` call *deletes* a finished task for good,
        its video with it (the docs' style table says which). So the task is read first and left
        alone (returning ``False``) unless the style may cancel it now; and a cancel call the service
        refused for now (429) is sent again only after the task was read again and may still be
        cancelled (it may have finished during the wait).

        :raises VideoGenNotSupportedError: on a style that has no cancel call.
        """
        return cancel(self._client, self.settings, video_task_id, self.log, self.get_task)

    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap authenticated request and say whether the key and the URL work."""
        return connection_ui.test(self._client, lambda: self.settings)

    def close(self) -> None:
        """Close the sync HTTP session."""
        self._client.close()

    # ---- async API ----

    async def aget_task(self, video_task_id: str) -> VideoTask:
        """Read a video task without blocking the event loop; see :meth:`get_task`."""
        return (await self._reads.read(await self.aget_settings(), video_task_id)).task

    async def apoll_task(self, video_task_id: str, *, gather: float = 0.0) -> VideoTask:
        """Read a video task as a waiting trigger polls it: in a request shared with this event loop's other polls.

        Polls of tasks of the same connection asked for within ``gather`` seconds of each other share
        one request (a batch query where the API style has one, else one per task id); see
        :mod:`~airflow_provider_videogen.shared_polls`. With the connection extra ``coalesce_polls``
        false this is :meth:`aget_task`. Raises what :meth:`aget_task` raises.

        :param gather: seconds this poll may wait for others to join the request (the poller's jitter).
        """
        return (await self.apoll_answer(video_task_id, gather=gather)).task

    async def apoll_answer(self, video_task_id: str, *, gather: float = 0.0) -> PollAnswer:
        """Poll a video task as :meth:`apoll_task` does; return it with the service's poll hint."""
        return await self._reads.poll(await self.aget_settings(), video_task_id, gather)

    async def acancel_task(self, video_task_id: str) -> bool:
        """Cancel a video task (while the style can) without blocking the event loop; see :meth:`cancel_task`."""
        return await acancel(self._client, await self.aget_settings(), video_task_id, self.log, self.aget_task)

    async def aclose(self) -> None:
        """Release this hook's share of the event loop's HTTP session (closed when the last hook lets go)."""
        await self._reads.close()

    async def __aenter__(self) -> VideoGenHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# ---- helpers shared by the sync and async paths ----


def _request_of(request: VideoGenerationRequest | None, request_fields: dict[str, Any]) -> VideoGenerationRequest:
    """Return the request ``create_task`` was given, or the one its keyword fields describe."""
    if request is None:
        if "model" not in request_fields:
            raise VideoGenConfigurationError("create_task needs a model (and a prompt, image or content).")
        return VideoGenerationRequest.from_fields(**request_fields)
    if request_fields:
        raise VideoGenConfigurationError("Pass either a VideoGenerationRequest or keyword fields, not both.")
    return request


@functools.lru_cache(maxsize=64)
def _overridden(settings: VideoGenConnectionSettings, retry_policy: RetryPolicy | None) -> VideoGenConnectionSettings:
    """Return the settings with another retry policy (if any): one object for all the hooks that ask for the same."""
    if retry_policy is None:
        return settings
    return dataclasses.replace(settings, retry_policy=retry_policy)
