"""How one answer of a video generation API reads: the decoded JSON or the typed error it calls for, and a task.

The connection's API style says where an answer keeps its error, its task and its hints; this module
applies what it says the same way to every style, for the sync and the async client alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenAuthError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.retry import TRANSIENT_STATUSES

if TYPE_CHECKING:
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

__all__ = ["describe", "interpret", "read_task_payload"]


def interpret(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    settings: VideoGenConnectionSettings,
    action: str,
    video_task_id: str | None,
) -> Any:
    """Turn one HTTP answer into decoded JSON, or raise the typed error it calls for."""
    credential = settings.credential
    # A service that echoes the key must not put it in a task, an error, XCom or a log line.
    body = credential.mask_body(body)
    decoded = _decode_json(body)
    if b"\\" in body and decoded is not _NOT_JSON:
        # JSON may write the key escaped (`\/`, `\u0073`): the bytes then hide it, the decoded strings do not.
        masked = credential.mask_json(decoded)
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
                f"The service answered {action} {describe(video_task_id)} with HTTP {status} and "
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
    where = f"{describe(video_task_id)} at {settings.base_url}"
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
    if status in TRANSIENT_STATUSES or status >= 500:
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


def describe(video_task_id: str | None) -> str:
    """Name what a call was about in a message: one video task, or the video tasks of a list call."""
    return f"video task {video_task_id!r}" if video_task_id is not None else "the video tasks"


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
