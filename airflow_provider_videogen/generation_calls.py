"""The calls of the client core that pay, or find what was paid for: a create, the list walk back to it, a poll.

A create pays for a generation, so it is sent again only where the service surely did not take it
(or the style's create carries an idempotency token); a poll tells a proxy's 404 from the API's own
"not found"; the list walk finds the generation a try stopped in the kill window may have paid for.
Each builds its :class:`~airflow_provider_videogen.api_request.ApiRequest` and sends it through the
client's ``send`` it is given (:meth:`VideoGenClient.send <airflow_provider_videogen.client.VideoGenClient.send>`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow_provider_videogen.api_request import Answer, ApiRequest, PollAnswer, query
from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenNotSupportedError,
    VideoGenRequestNotSentError,
    VideoGenTransientError,
    VideoTaskIdMissingError,
    VideoTaskMayExistError,
    VideoTaskNotFoundError,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

__all__ = [
    "create",
    "created_task_id",
    "find_generations",
    "maybe_created",
    "poll",
    "surely_not_taken",
    "transient_or_not_the_apis_not_found",
]

#: Sends one request, retried as it asks, and returns its answer: the client's ``send``.
Send = Callable[[ApiRequest], Answer]


def poll(
    send: Send, settings: VideoGenConnectionSettings, video_task_id: str, *, only_the_api_says_not_found: bool = False
) -> PollAnswer:
    """Read a video task with the service's poll hint, as the hook's ``poll_answer`` says."""
    retry_if = transient_or_not_the_apis_not_found if only_the_api_says_not_found else None
    try:
        return PollAnswer(*send(query(settings, video_task_id, retry_if=retry_if)))
    except VideoTaskNotFoundError as error:
        if not only_the_api_says_not_found or error.said_by_the_api:
            raise
        raise _proxy_not_found(error, settings, video_task_id) from None


def create(send: Send, settings: VideoGenConnectionSettings, request: VideoGenerationRequest) -> str:
    """Submit a generation and return the new task id, as the hook's ``create_task`` says (never twice blindly)."""
    try:
        answer = send(_create_request(settings, request)).value
    except VideoGenTransientError as error:
        if settings.style.idempotent_create:
            raise  # a retry of the task repeats the create with the same token: it cannot pay twice
        raise maybe_created(error) from None
    return created_task_id(answer, settings)


def find_generations(
    send: Send, settings: VideoGenConnectionSettings, request: VideoGenerationRequest, since: float, *, max_pages: int
) -> list[VideoTask] | None:
    """Walk the style's list of recent generations back to ``since``; see the hook's ``find_generations``."""
    style = settings.style
    if not style.can_reconcile:
        raise VideoGenNotSupportedError(f"The {settings.api_style} API style cannot look up recent generations.")
    body = style.create_body(request)
    route, params = style.recent_generations_query(body)
    list_root = f"{settings.base_url}{settings.path_prefix}{route}"
    url: str | None = f"{list_root}?{urlencode(params)}"
    found: list[VideoTask] = []
    for _page in range(max_pages):
        if url is None:
            break
        answer = send(ApiRequest("GET", url, "list", settings)).value
        items, more = _list_page(answer, settings)
        tasks = [style.parse_task(item, None) for item in items]
        found += [
            task
            for item, task in zip(items, tasks, strict=True)
            if task.created_at is not None
            and task.created_at >= since
            and style.answers_request(item, body, model=request.model)
        ]
        if not more or any(t.created_at is not None and t.created_at < since for t in tasks):
            return found
        # Only a next page of the same list call is read: a URL the answer names elsewhere is not
        # followed (the list cannot tell then, and the caller pays at most once).
        url = style.recent_generations_next(answer)
        if url is not None and not url.startswith(f"{list_root}?"):
            url = None
    return None


def _list_page(answer: Any, settings: VideoGenConnectionSettings) -> tuple[list[Mapping[str, Any]], bool]:
    """Return the items of one page of the list call, and whether older pages follow, as the style reads them."""
    page = settings.style.recent_generations(answer)
    if page is None:
        raise VideoGenAPIError(
            f"The list call at {settings.base_url} answered no list of videos "
            f"({settings.excerpt(json.dumps(answer, default=str))}): check the base URL and path_prefix."
        )
    return page


# ---- calls that must not run twice: a create pays for a generation, a cancel may delete a video ----
# (the cancel's own rule is in the cancel module)


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


def _proxy_not_found(
    error: VideoTaskNotFoundError, settings: VideoGenConnectionSettings, video_task_id: str
) -> VideoGenTransientError:
    """Return the error of a query that kept answering a 404 the API did not say: transient, since it says not gone."""
    return VideoGenTransientError(
        f"The query of video task {video_task_id!r} at {settings.base_url} kept answering HTTP 404 without "
        "an API error: something in front of the API (a proxy, an ingress) answered, which does not say "
        "the task is gone. If it lasts, check the connection's base URL and path_prefix. The last answer: "
        f"{error}",
        video_task_id=video_task_id,
        http_status=error.http_status,
    )


def _create_request(settings: VideoGenConnectionSettings, request: VideoGenerationRequest) -> ApiRequest:
    """Return the create call of a generation: sent again only where the service surely did not take it (it pays)."""
    return ApiRequest(
        "POST",
        settings.create_url(request),
        "create",
        settings,
        json_body=settings.style.create_body(request),
        uploads=settings.style.create_uploads(request),
        # A service that honours an idempotency token answers a repeated create with the same task.
        retry_if=None if settings.style.idempotent_create else surely_not_taken,
        headers=settings.style.create_headers(request),
    )


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
