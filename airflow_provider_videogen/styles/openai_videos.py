"""The ``/v1/videos`` style: the OpenAI Videos API shape, as new-api, LiteLLM and other gateways serve it.

``POST {prefix}/videos`` creates, ``GET .../videos/{id}`` reads the video object, and the file is
``GET .../videos/{id}/content`` (``?variant=thumbnail`` for an image) with the same Bearer key: the
first style whose file is not a public URL. new-api also gives ``metadata.url``, a direct file URL,
which is used where present. ``DELETE .../videos/{id}`` deletes a video for good: there is no cancel.
The server may send ``openai-poll-after-ms``, the time to wait before asking again. ``GET .../videos``
lists the newest videos, each with its ``prompt``, ``model``, ``seconds`` and ``size``: enough to
recognise the generation a killed try paid for (:attr:`~ApiStyle.can_reconcile`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.generation_request import Upload, read_image_file
from airflow_provider_videogen.retry import parse_poll_after_ms
from airflow_provider_videogen.styles.base import (
    ApiStyle,
    FileSource,
    integer,
    mapping,
    number,
    percent,
    text,
    whole_seconds,
)
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


STATUSES = {
    "queued": VideoTaskStatus.QUEUED,
    "in_progress": VideoTaskStatus.RUNNING,
    "completed": VideoTaskStatus.SUCCEEDED,
    "failed": VideoTaskStatus.FAILED,
    "unknown": VideoTaskStatus.UNKNOWN,  # new-api's, when the upstream says nothing it knows
}
"""The statuses of a ``/v1/videos`` video object."""


class OpenAIVideos(ApiStyle):
    """``model``, ``prompt``, ``seconds`` (a string), ``size`` (``WIDTHxHEIGHT``), ``input_reference``."""

    name = "openai_videos"
    label = "OpenAI Videos shape (/v1/videos gateways)"
    description = "The /v1/videos shape of new-api, LiteLLM and other gateways: .../videos"
    default_path_prefix = "/v1"
    tasks_route = "/videos"
    statuses = STATUSES
    no_cancel_reason = "the /v1/videos shape has no cancel call (its DELETE removes a video for good)"
    not_found_codes = frozenset({"video_not_found"})
    #: The gateway refreshes a task from upstream about every 15 s: polling faster gains nothing.
    default_poll_interval = 15.0
    #: The list call answers the newest videos with their prompt, model, seconds and size.
    can_reconcile = True
    #: Videos one list call asks for (the OpenAI shape's largest page).
    recent_page_size = 100

    def recent_generations_query(self, body: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
        """``GET .../videos?limit=100&order=desc``: the newest videos first."""
        return self.tasks_route, [("limit", str(self.recent_page_size)), ("order", "desc")]

    def recent_generations(self, answer: Any) -> tuple[list[Mapping[str, Any]], bool] | None:
        """Read ``{"object": "list", "data": [video, ...], "has_more"}``."""
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if not isinstance(data, list):
            return None
        return [item for item in data if isinstance(item, Mapping)], answer.get("has_more") is True

    def answers_request(self, item: Mapping[str, Any], body: Mapping[str, Any], *, model: str) -> bool:
        """Match the same model and prompt, and the same ``seconds`` and ``size`` where the request set them.

        The model is the body's (``model`` is the same, and not needed here).
        """
        if item.get("model") != body.get("model") or item.get("prompt") != body.get("prompt"):
            return False
        return all(text(item.get(name)) == text(body[name]) for name in ("seconds", "size") if name in body)

    # Each video says its own lifetime (expires_at); the gateways document no one figure.
    url_lifetime_hours = None

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """``{"model", "prompt", "seconds"?, "size"?, "input_reference"?}`` plus any extra fields."""
        request.check()
        if request.content is not None:
            raise refused(
                "A content list is a contents_generations field; on openai_videos pass prompt and image_urls."
            )
        if not request.prompt:
            raise refused("The /v1/videos API needs a prompt.")
        unsupported = [name for name in ("frames", "fps", "ratio", "resolution") if getattr(request, name) is not None]
        if unsupported:
            raise refused(
                f"{', '.join(unsupported)} cannot be sent on openai_videos: it sizes a video with size "
                "('1280x720', or width and height) and its length with duration (seconds)."
            )
        body: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
        if request.duration is not None:
            body["seconds"] = str(whole_seconds(request.duration))
        if (request.width is None) != (request.height is None):
            raise refused("Pass both width and height (or size='1280x720'), not one of them.")
        if request.width is not None:
            body["size"] = f"{request.width}x{request.height}"
        if len(request.image_urls) + (request.image_file is not None) > 1:
            raise refused("The /v1/videos API takes one input image (input_reference): a URL or an image_file.")
        for image in request.image_urls:
            url = image if isinstance(image, str) else image.get("url")
            if not isinstance(url, str) or not url.strip():
                raise refused(f"The input image must be a URL, got {image!r}.")
            body["input_reference"] = url
        if request.seed is not None:
            body["seed"] = request.seed
        body.update(request.extra_fields)
        return body

    def create_uploads(self, request: VideoGenerationRequest) -> list[Upload]:
        """Upload a local ``image_file`` as ``input_reference`` (the create call is then multipart)."""
        if request.image_file is None:
            return []
        return [read_image_file(request.image_file, "input_reference")]

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read the video object (``status``, ``progress``, ``seconds``, ``size``, ``error``, ``metadata.url``)."""
        error = mapping(payload.get("error"))
        raw_status = text(payload.get("status"))
        width, height = _size(payload.get("size"))
        metadata = mapping(payload.get("metadata"))
        return VideoTask(
            id=text(payload.get("id")) or video_task_id or "",
            status=VideoTaskStatus.from_api(raw_status, STATUSES),
            raw_status=raw_status,
            video_url=text(metadata.get("url")),
            model=text(payload.get("model")),
            error_code=text(error.get("code")),
            error_message=text(error.get("message")),
            created_at=integer(payload.get("created_at")),
            updated_at=integer(payload.get("completed_at")),
            expires_at=integer(payload.get("expires_at")),
            duration=number(payload.get("seconds")),
            width=width,
            height=height,
            format="mp4",
            progress=percent(payload.get("progress")),
            usage=dict(mapping(payload.get("usage"))),
            raw=dict(payload),
        )

    def poll_hint(self, headers: Mapping[str, str]) -> float | None:
        """Seconds the server asks to wait before the next poll (``openai-poll-after-ms``)."""
        return parse_poll_after_ms(headers.get("openai-poll-after-ms"))

    def file_source(self, task: VideoTask, kind: str, task_url: str) -> FileSource | None:
        """Return the direct ``metadata.url`` where given, else the ``/content`` route with the API key."""
        if kind == "video" and task.video_url:
            return FileSource(task.video_url, authenticated=False)
        variant = "?variant=thumbnail" if kind == "last_frame" else ""
        return FileSource(f"{task_url}/content{variant}", authenticated=True)


def _size(value: Any) -> tuple[int | None, int | None]:
    match = _SIZE_RE.match(value) if isinstance(value, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)
