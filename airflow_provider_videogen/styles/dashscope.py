"""The ``dashscope`` style: Alibaba Cloud Model Studio (Wan video models) through its DashScope API.

``POST {prefix}/services/aigc/video-generation/video-synthesis`` with ``X-DashScope-Async: enable``
creates, ``GET {prefix}/tasks/{id}`` reads (``output.task_status``; ``UNKNOWN``, answered with HTTP
200, is the service's word for an expired or unknown task), ``POST {prefix}/tasks/{id}/cancel``
cancels a ``PENDING`` task. The video is ``output.video_url``, pre-signed for 24 hours. The service
advises polling every 15 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.generation_request import SEEDANCE_OPTIONS
from airflow_provider_videogen.styles.base import (
    NIL_UUID,
    ApiStyle,
    DataCenter,
    check_uuid_task_id,
    integer,
    mapping,
    number,
    one_image,
    refuse_fields,
    text,
)
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

# Request fields the Wan models have no counterpart for: the Seedance options but resolution and watermark, and fps.
_UNSUPPORTED = (*(name for name in SEEDANCE_OPTIONS if name not in ("resolution", "watermark")), "fps")
STATUSES = {
    "pending": VideoTaskStatus.QUEUED,
    "running": VideoTaskStatus.RUNNING,
    "succeeded": VideoTaskStatus.SUCCEEDED,
    "failed": VideoTaskStatus.FAILED,
    "canceled": VideoTaskStatus.CANCELLED,
    # The service's word for an expired or unknown task (HTTP 200): the hook reads it as not found.
    "unknown": VideoTaskStatus.UNKNOWN,
}
"""The task statuses of DashScope's async tasks."""
# Extra fields that belong in "input" (the rest of the extra fields go to "parameters").
_INPUT_FIELDS = frozenset({"negative_prompt", "audio_url", "img_url", "first_frame_url", "last_frame_url", "template"})


class DashScope(ApiStyle):
    """Model Studio: ``{"model", "input": {"prompt", "img_url"?}, "parameters": {...}}``."""

    name = "dashscope"
    label = "DashScope (Alibaba Cloud Model Studio, Wan)"
    description = "Alibaba Cloud Model Studio's Wan video models: .../services/aigc/video-generation/video-synthesis"
    default_path_prefix = "/api/v1"
    tasks_route = "/tasks"
    can_cancel = True
    cancel_method = "POST"
    #: DashScope's documentation advises polling every 15 s.
    default_poll_interval = 15.0
    # Model Studio's video synthesis reference: output.video_url is signed for 24 hours.
    url_lifetime_hours = 24
    statuses = STATUSES
    missing_task_statuses = frozenset({"unknown"})
    probe_task_id = NIL_UUID
    data_centers = (
        DataCenter("intl", "DashScope Singapore (dashscope-intl.aliyuncs.com)", "https://dashscope-intl.aliyuncs.com"),
        DataCenter("us", "DashScope US, Virginia (dashscope-us.aliyuncs.com)", "https://dashscope-us.aliyuncs.com"),
        DataCenter("cn", "DashScope Beijing (dashscope.aliyuncs.com)", "https://dashscope.aliyuncs.com"),
    )

    def request_headers(self, api_key: str, action: str) -> dict[str, str]:
        """Bearer auth; the create call also asks for an asynchronous task (the only kind over HTTP)."""
        headers = super().request_headers(api_key, action)
        if action == "create":
            headers["X-DashScope-Async"] = "enable"
        return headers

    def create_route(self, request: VideoGenerationRequest) -> str:
        """Every Wan model (text, image or key frames to video) is created on the one video-synthesis route."""
        return "/services/aigc/video-generation/video-synthesis"

    def cancel_route(self, video_task_id: str) -> str:
        """``POST .../tasks/{id}/cancel``: the service cancels only a task that is still ``PENDING``."""
        return f"{self.task_route(video_task_id)}/cancel"

    def check_task_id(self, video_task_id: Any) -> str:
        """DashScope task ids are UUIDs."""
        return check_uuid_task_id(video_task_id, "DashScope")

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """``{"model", "input": {"prompt", "img_url"?}, "parameters": {"resolution"|"size", "duration", ...}}``."""
        request.check()
        if request.content is not None:
            raise refused("A content list is a contents_generations field; on dashscope pass prompt and image_urls.")
        refuse_fields(
            request,
            _UNSUPPORTED,
            "dashscope",
            "it sizes a video with resolution ('720P') or width and height, and its length with duration; "
            "pass other Wan parameters (prompt_extend, negative_prompt...) in extra fields.",
        )
        inputs = _inputs(request)
        parameters = _parameters(request)
        _place_extra_fields(request.extra_fields, inputs, parameters)
        body: dict[str, Any] = {"model": request.model, "input": inputs}
        if parameters:
            body["parameters"] = parameters
        return body

    def created_task_id(self, answer: Any) -> str | None:
        """``{"output": {"task_id", "task_status"}, "request_id"}``."""
        found = mapping(mapping(answer).get("output")).get("task_id")
        return found if isinstance(found, str) and found else None

    def is_task_answer(self, decoded: Any) -> bool:
        """Tell a task answer by its ``output.task_status`` (its ``code`` is then the task's failure)."""
        return isinstance(decoded, Mapping) and "task_status" in mapping(decoded.get("output"))

    def api_error(self, decoded: Any) -> tuple[str | None, str | None]:
        """``{"request_id", "code": "InvalidParameter", "message": ...}``."""
        if not isinstance(decoded, Mapping):
            return None, None
        return text(decoded.get("code")), text(decoded.get("message"))

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read ``output`` (``task_status``, ``video_url``, ``code``, ``message``) and ``usage``."""
        output = payload.get("output")
        if not isinstance(output, Mapping):
            raise ValueError("the answer has no 'output' object")
        raw_status = text(output.get("task_status"))
        usage = mapping(payload.get("usage"))
        video_url = text(output.get("video_url"))
        return VideoTask(
            id=text(output.get("task_id")) or video_task_id or "",
            status=VideoTaskStatus.from_api(raw_status, STATUSES),
            raw_status=raw_status,
            video_url=video_url,
            error_code=text(output.get("code")),
            error_message=text(output.get("message")),
            duration=number(usage.get("video_duration", usage.get("duration"))),
            resolution=text(usage.get("video_resolution") or usage.get("resolution")),
            ratio=text(usage.get("video_ratio")),
            seed=integer(output.get("seed")),
            format="mp4" if video_url else None,
            usage=dict(usage),
            raw=dict(payload),
        )


def _inputs(request: VideoGenerationRequest) -> dict[str, Any]:
    """Return the body's ``input``: the prompt and the first-frame image (``img_url``); refuse neither."""
    image = one_image(request, "dashscope")
    if not request.prompt and image is None:
        raise refused("A DashScope video generation needs a prompt or an image.")
    inputs: dict[str, Any] = {}
    if request.prompt:
        inputs["prompt"] = request.prompt
    if image is not None:
        inputs["img_url"] = image
    return inputs


def _parameters(request: VideoGenerationRequest) -> dict[str, Any]:
    """Return the body's ``parameters``: the size (``resolution`` or ``size``), ``duration``, ``seed``, ``watermark``.

    :raises VideoGenConfigurationError: only one of width and height, or both a size and a resolution.
    """
    parameters: dict[str, Any] = {}
    if (request.width is None) != (request.height is None):
        raise refused("Pass both width and height (sent as size 'WIDTH*HEIGHT'), not one of them.")
    if request.width is not None:
        if request.resolution is not None:
            raise refused("Pass either resolution or width and height, not both.")
        parameters["size"] = f"{request.width}*{request.height}"
    if request.resolution is not None:
        parameters["resolution"] = str(request.resolution).upper()
    for name in ("duration", "seed", "watermark"):
        if (value := getattr(request, name)) is not None:
            parameters[name] = value
    return parameters


def _place_extra_fields(extra_fields: Mapping[str, Any], inputs: dict[str, Any], parameters: dict[str, Any]) -> None:
    """Put each extra field where Wan reads it: into ``input`` or ``parameters`` (both objects of those names merged).

    The fields of :data:`_INPUT_FIELDS` belong in ``input``, every other one in ``parameters``.
    """
    for key, value in extra_fields.items():
        if key in ("input", "parameters") and isinstance(value, Mapping):
            (inputs if key == "input" else parameters).update(value)
        else:
            (inputs if key in _INPUT_FIELDS else parameters)[key] = value
