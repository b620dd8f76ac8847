"""The "video generations" style: new-api gateways (``/v1/video/generations``), as documented and as they answer.

The documented answer is flat (``task_id``, ``url``, ``metadata``); the gateway's code really answers
``{"code", "message", "data": {...}}`` with upper-case statuses, ``result_url``, ``fail_reason`` and
the upstream task in ``data.data``. An unknown id is HTTP 400 ``task_not_exist``. There is no cancel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.generation_request import SEEDANCE_OPTIONS, image_item
from airflow_provider_videogen.styles.base import (
    ApiStyle,
    error_in_text,
    integer,
    mapping,
    number,
    percent,
    text,
)
from airflow_provider_videogen.styles.contents_generations import parse_contents_task
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

# Top-level fields of the create call (besides model, prompt and image).
_TOP_LEVEL_FIELDS = ("duration", "width", "height", "fps", "seed")


STATUSES = {
    # the gateway's real answers
    "not_start": VideoTaskStatus.QUEUED,
    "submitted": VideoTaskStatus.QUEUED,
    "queued": VideoTaskStatus.QUEUED,
    "in_progress": VideoTaskStatus.RUNNING,
    "success": VideoTaskStatus.SUCCEEDED,
    "failure": VideoTaskStatus.FAILED,
    "unknown": VideoTaskStatus.UNKNOWN,
    # the documented answer, and older gateway docs
    "pending": VideoTaskStatus.QUEUED,
    "processing": VideoTaskStatus.RUNNING,
    "completed": VideoTaskStatus.SUCCEEDED,
    "failed": VideoTaskStatus.FAILED,
    "cancelled": VideoTaskStatus.CANCELLED,
    "canceled": VideoTaskStatus.CANCELLED,
}
"""The task statuses of the video-generations API, as documented and as gateways answer."""


class VideoGenerations(ApiStyle):
    """new-api gateways: ``model``, ``prompt``, one ``image``, vendor options in ``metadata``."""

    name = "video_generations"
    label = "Video generations (new-api gateways)"
    description = "new-api gateways and their resellers: .../video/generations"
    default_path_prefix = "/v1"
    tasks_route = "/video/generations"
    statuses = STATUSES
    no_cancel_reason = "new-api gateways have no cancel call"
    not_found_codes = frozenset({"task_not_exist"})
    #: The gateway refreshes a task from upstream about every 15 s: polling faster gains nothing.
    default_poll_interval = 15.0
    # The file is the upstream service's (the gateway passes its URL on): its lifetime is the upstream's.
    url_lifetime_hours = None

    def console_url(self, base_url: str, video_task_id: str) -> str | None:
        """new-api serves its web console's task log (every task of the account, by id) at ``/console/task``."""
        return f"{base_url.rstrip('/')}/console/task"

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """``{"model", "prompt", "image"?, <sizes>, "metadata": {<Seedance options>}}``."""
        request.check()
        if request.content is not None:
            raise refused(
                "A content list is a contents_generations field; on video_generations pass prompt and image_urls."
            )
        images = [image_item(image) for image in request.image_urls]
        if len(images) > 1:
            raise refused(
                "The video_generations API takes one input image; pass more through extra_fields as your "
                "gateway documents them."
            )
        if not request.prompt and not images:
            raise refused("A video generation needs a prompt or an image.")
        body: dict[str, Any] = {"model": request.model}
        if request.prompt:
            body["prompt"] = request.prompt
        if images:
            body["image"] = images[0]["image_url"]["url"]
        for name in _TOP_LEVEL_FIELDS:
            if (value := getattr(request, name)) is not None:
                body[name] = value
        metadata = {name: value for name in SEEDANCE_OPTIONS if (value := getattr(request, name)) is not None}
        extra = dict(request.extra_fields)
        metadata.update(extra.pop("metadata", None) or {})
        body.update(extra)
        if metadata:
            body["metadata"] = metadata
        return body

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read the gateway's wrapped answer, or the documented flat one."""
        wrapped = payload.get("data")
        if "code" in payload and isinstance(wrapped, Mapping):
            return _parse_gateway(payload, wrapped, video_task_id)
        return parse_documented_task(payload, video_task_id)

    def api_error(self, decoded: Any) -> tuple[str | None, str | None]:
        """``{"error": {...}}``, or the gateway's ``{"code", "message", "data": null}`` (upstream errors unwrapped)."""
        code, message = super().api_error(decoded)
        if code or message or not isinstance(decoded, Mapping):
            return code, message
        wrapped_code = decoded.get("code")
        if (
            isinstance(wrapped_code, str)
            and wrapped_code.lower() not in ("success", "ok", "0", "")
            and decoded.get("data") is None
        ):
            message = text(decoded.get("message"))
            if wrapped_code == "fail_to_fetch_task" and message:
                try:
                    upstream = json.loads(message)
                except ValueError:
                    upstream = None
                upstream_code, upstream_message = super().api_error(upstream)
                if upstream_code or upstream_message:
                    return upstream_code or wrapped_code, upstream_message or message
            return wrapped_code, message
        return None, None


def parse_documented_task(task: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
    """Read the documented flat answer (``task_id``, ``url``, ``metadata``)."""
    metadata = mapping(task.get("metadata"))
    error = mapping(task.get("error"))
    raw_status = text(task.get("status"))
    return VideoTask(
        id=text(task.get("task_id")) or text(task.get("id")) or video_task_id or "",
        status=VideoTaskStatus.from_api(raw_status, STATUSES),
        raw_status=raw_status,
        video_url=text(task.get("url")) or text(task.get("video_url")),
        model=text(task.get("model")),
        error_code=text(error.get("code")),
        error_message=text(error.get("message")),
        created_at=integer(task.get("created_at")),
        updated_at=integer(task.get("updated_at")),
        duration=number(metadata.get("duration")),
        fps=number(metadata.get("fps")),
        width=integer(metadata.get("width")),
        height=integer(metadata.get("height")),
        seed=integer(metadata.get("seed")),
        format=text(task.get("format")),
        progress=percent(task.get("progress")),
        raw=dict(task),
    )


def _parse_gateway(envelope: Mapping[str, Any], data: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
    upstream_raw = data.get("data")
    upstream = parse_contents_task(upstream_raw, video_task_id) if isinstance(upstream_raw, Mapping) else None
    raw_status = text(data.get("status"))
    status = VideoTaskStatus.from_api(raw_status, STATUSES)
    if status is VideoTaskStatus.UNKNOWN and upstream is not None:
        status = upstream.status
    error_code, error_message = error_in_text(data.get("fail_reason"))
    if upstream is not None:
        error_code = upstream.error_code or error_code
        error_message = error_message or upstream.error_message
    if status.is_failure and not error_message and upstream is not None:
        error_message = upstream.error_message
    return VideoTask(
        id=text(data.get("task_id")) or text(data.get("id")) or video_task_id or "",
        status=status,
        raw_status=raw_status,
        video_url=text(data.get("result_url")) or text(data.get("url")) or _attr(upstream, "video_url"),
        last_frame_url=_attr(upstream, "last_frame_url"),
        model=text(data.get("model")) or _attr(upstream, "model"),
        error_code=error_code,
        error_message=error_message,
        created_at=integer(data.get("submit_time")) or integer(data.get("created_at")) or _attr(upstream, "created_at"),
        updated_at=integer(data.get("finish_time"))
        or integer(data.get("updated_at"))
        or integer(data.get("start_time"))
        or _attr(upstream, "updated_at"),
        duration=_attr(upstream, "duration"),
        fps=_attr(upstream, "fps"),
        width=_attr(upstream, "width"),
        height=_attr(upstream, "height"),
        resolution=_attr(upstream, "resolution"),
        ratio=_attr(upstream, "ratio"),
        seed=_attr(upstream, "seed"),
        format=text(data.get("format")) or _attr(upstream, "format"),
        generate_audio=_attr(upstream, "generate_audio"),
        progress=percent(data.get("progress")),
        usage=dict(upstream.usage) if upstream is not None else {},
        raw=dict(envelope),
    )


def _attr(task: VideoTask | None, name: str) -> Any:
    return getattr(task, name) if task is not None else None
