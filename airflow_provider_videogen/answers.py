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
    VideoGenError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.retry import TRANSIENT_STATUSES

if TYPE_CHECKING:
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

__all__ = ["describe", "interpret", "read_list_answer", "read_task_payload"]


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
    if api_code is None and not succeeded:
        api_code = style.error_code_header(headers)  # AWS names its error in x-amzn-ErrorType
    if succeeded and api_code is None:
        if status == 204 and action == "cancel":
            return {}  # Runway answers a cancel with 204 No Content
        if decoded is _NOT_JSON:
            raise VideoGenTransientError(
                f"The service answered {action} {describe(video_task_id, action)} with HTTP {status} and "
                f"{'an empty body' if not body.strip() else 'a body that is not JSON'}; this happens now and then.",
                video_task_id=video_task_id,
                http_status=status,
            )
        return decoded
    raise _refusal(status, headers, body, decoded, settings, action, video_task_id, api_code, api_message)


def _refusal(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    decoded: Any,
    settings: VideoGenConnectionSettings,
    action: str,
    video_task_id: str | None,
    api_code: str | None,
    api_message: str | None,
) -> VideoGenError:
    """Return the typed error of an answer that is not a usable result (its body and JSON already masked)."""
    style = settings.style
    if api_message is not None:
        api_message = settings.excerpt(api_message)
    detail = _detail(status, body, api_code, api_message, settings)
    where = f"{describe(video_task_id, action)} at {settings.base_url}"
    kwargs: dict[str, Any] = {"video_task_id": video_task_id, "http_status": status}
    kwargs.update(api_code=api_code, api_message=api_message)
    if api_code in style.not_found_codes or (status == 404 and video_task_id is not None):
        hint = "" if (api_code or api_message) else " The answer was not an API error: check base URL and path_prefix."
        return VideoTaskNotFoundError(
            f"Video task {video_task_id!r} was not found at {settings.base_url} ({detail}). Tasks can be "
            f"queried for 7 days, with the key of the data center that created them.{hint}",
            **kwargs,
        )
    if status in (401, 403) or api_code in style.auth_error_codes:
        return VideoGenAuthError(
            f"The service refused the API key of connection {settings.conn_id!r} to {action} {where} ({detail}). "
            "Check the key, and that it belongs to this data center or gateway.",
            **kwargs,
        )
    if status in TRANSIENT_STATUSES or status >= 500:
        return VideoGenTransientError(
            _sentence(f"Could not {action} {where}: {detail}"),
            retry_after=style.retry_after(headers, decoded),
            empty_body=not body.strip(),
            **kwargs,
        )
    return VideoGenAPIError(_sentence(f"Could not {action} {where}: {detail}"), **kwargs)


def _sentence(text: str) -> str:
    """End ``text`` with one full stop: an API's message often brings its own."""
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _detail(
    status: int, body: bytes, api_code: str | None, api_message: str | None, settings: VideoGenConnectionSettings
) -> str:
    """Say what the service answered: the status, and the API's error or else an excerpt of the body."""
    if api_code or api_message:
        return f"HTTP {status}, API error {api_code or '-'}: {api_message or '(no message)'}"
    if body.strip():
        return f"HTTP {status}, body {settings.excerpt(body.decode('utf-8', 'replace'))!r}"
    return f"HTTP {status}"


_NOT_JSON: Any = object()


def _decode_json(body: bytes) -> Any:
    if not body.strip():
        return _NOT_JSON
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


def describe(video_task_id: str | None, action: str) -> str:
    """Name what a call was about in a message: one video task, the one a create makes, or a list call's tasks.

    :param video_task_id: the task the call is about; ``None`` for a create or a list call.
    :param action: the call's action (``create``, ``list``...): only a list call is about several tasks.
    """
    if video_task_id is not None:
        return f"video task {video_task_id!r}"
    return "the video tasks" if action == "list" else "a video task"


def read_list_answer(
    answer: Any, settings: VideoGenConnectionSettings, video_task_ids: list[str]
) -> dict[str, Mapping[str, Any]]:
    """Return the items of a list call's answer that are the tasks asked for, by id (read as tasks later).

    A task the answer leaves out, or lists twice, is not among them: it is read with a call of its own.
    """
    items = settings.style.batch_answer_tasks(answer)
    if items is None:
        # A proxy's stray answer: as transient as a blank 200 (reading every task alone would be a burst).
        raise VideoGenTransientError(
            f"The service answered the list call at {settings.base_url} with JSON that is not a list of "
            "video tasks; this happens now and then behind proxies."
        )
    wanted = set(video_task_ids)
    found: dict[str, Mapping[str, Any]] = {}
    listed_again: set[str] = set()
    for item in items:
        task_id = item.get("id")
        if isinstance(task_id, str) and task_id in wanted:
            if task_id in found:
                listed_again.add(task_id)
            else:
                found[task_id] = item
    # An answer listing a task twice contradicts itself (failed, then running): neither listing is
    # trusted to decide a wait for good, so the task is left out and read on its own.
    for task_id in listed_again:
        del found[task_id]
    return found


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
    return task.with_cost(settings.prices)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")
