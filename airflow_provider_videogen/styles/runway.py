"""The ``runway`` style: Runway's API (``api.dev.runwayml.com``).

``POST {prefix}/image_to_video`` or ``/text_to_video`` (the request's image decides) creates, ``GET
{prefix}/tasks/{id}`` reads (``PENDING``, ``THROTTLED``, ``RUNNING`` with ``progress`` 0-1,
``SUCCEEDED`` with ``output[]`` URLs, ``FAILED`` with ``failure`` and ``failureCode``,
``CANCELLED``). Every call needs the ``X-Runway-Version`` header. ``DELETE .../tasks/{id}`` cancels a
pending or running task but *deletes* a finished one, so it is sent only while the task is not
final. Runway asks not to poll more often than every 5 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.generation_request import SEEDANCE_OPTIONS
from airflow_provider_videogen.styles.base import (
    NIL_UUID,
    ApiStyle,
    ConnectionOption,
    DataCenter,
    check_uuid_task_id,
    epoch_seconds,
    number,
    one_image,
    refuse_fields,
    text,
    whole_seconds,
)
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

#: The API version sent when the connection names none (Runway's documented current version).
DEFAULT_RUNWAY_VERSION = "2024-11-06"
MAX_PROMPT_TEXT = 1000
STATUSES = {
    "pending": VideoTaskStatus.QUEUED,
    "throttled": VideoTaskStatus.QUEUED,  # queued behind the account's concurrency limit
    "running": VideoTaskStatus.RUNNING,
    "succeeded": VideoTaskStatus.SUCCEEDED,
    "failed": VideoTaskStatus.FAILED,
    "cancelled": VideoTaskStatus.CANCELLED,
}
"""The task statuses of Runway's API."""
# Request fields Runway's video endpoints have no counterpart for: the Seedance options but ratio, and fps.
_UNSUPPORTED = (*(name for name in SEEDANCE_OPTIONS if name != "ratio"), "fps")
MAX_SEED = 4294967295


class Runway(ApiStyle):
    """Runway: ``{"model", "promptText", "promptImage"?, "ratio", "duration", "seed"?}``, answer ``{"id"}``."""

    name = "runway"
    label = "Runway API"
    description = "Runway's API: .../image_to_video, .../text_to_video and .../tasks"
    default_path_prefix = "/v1"
    tasks_route = "/tasks"
    can_cancel = True
    # Its DELETE cancels a pending or running task (and deletes a finished one: never sent then).
    cancellable_statuses = frozenset({VideoTaskStatus.QUEUED, VideoTaskStatus.RUNNING})
    #: Runway asks clients to poll "not more often than every 5 s".
    default_poll_interval = 5.0
    # Runway's API reference: output URLs expire within 24-48 hours; the short end is the one to fetch by.
    url_lifetime_hours = 24
    statuses = STATUSES
    probe_task_id = NIL_UUID
    data_centers = (DataCenter("runway", "Runway (api.dev.runwayml.com)", "https://api.dev.runwayml.com"),)
    options = (
        ConnectionOption(
            "runway_version",
            "Runway API version",
            f"The X-Runway-Version header of every Runway call (runway style only). Default {DEFAULT_RUNWAY_VERSION}.",
            DEFAULT_RUNWAY_VERSION,
            pattern=r"\d{4}-\d{2}-\d{2}",
        ),
    )

    def __init__(self, version: str = DEFAULT_RUNWAY_VERSION) -> None:
        self.version = version

    def with_options(self, values: Mapping[str, str]) -> Runway:
        """Return the style with the connection's ``runway_version``."""
        version = values.get("runway_version", DEFAULT_RUNWAY_VERSION)
        return self if version == self.version else Runway(version)

    def request_headers(self, api_key: str, action: str) -> dict[str, str]:
        """Bearer auth plus the required ``X-Runway-Version``."""
        return {**super().request_headers(api_key, action), "X-Runway-Version": self.version}

    def create_route(self, request: VideoGenerationRequest) -> str:
        """``/image_to_video`` when the request has an image, else ``/text_to_video``."""
        return "/image_to_video" if request.image_urls else "/text_to_video"

    def check_task_id(self, video_task_id: Any) -> str:
        """Runway task ids are UUIDs."""
        return check_uuid_task_id(video_task_id, "Runway")

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """``{"model", "promptText"?, "promptImage"?, "ratio"?, "duration"?, "seed"?}`` plus any extra fields."""
        request.check()
        if request.content is not None:
            raise refused("A content list is a contents_generations field; on runway pass prompt and image_urls.")
        refuse_fields(
            request,
            _UNSUPPORTED,
            "runway",
            "it sizes a video with ratio in pixels ('1280:720', or width and height) and its length with duration.",
        )
        image = one_image(request, "runway")
        if image is None and not request.prompt:
            raise refused("Runway's text_to_video needs a prompt (or pass an image for image_to_video).")
        body: dict[str, Any] = {"model": request.model}
        if request.prompt:
            if len(request.prompt) > MAX_PROMPT_TEXT:
                shown = len(request.prompt)
                raise refused(f"Runway takes a prompt of at most {MAX_PROMPT_TEXT} characters, got {shown}.")
            body["promptText"] = request.prompt
        if image is not None:
            body["promptImage"] = image
        if (request.width is None) != (request.height is None):
            raise refused("Pass both width and height (sent as ratio 'WIDTH:HEIGHT'), not one of them.")
        if request.width is not None:
            if request.ratio is not None:
                raise refused("Pass either ratio or width and height, not both.")
            body["ratio"] = f"{request.width}:{request.height}"
        elif request.ratio is not None:
            body["ratio"] = request.ratio
        if request.duration is not None:
            body["duration"] = whole_seconds(request.duration)
        if request.seed is not None:
            if not 0 <= request.seed <= MAX_SEED:
                raise refused(f"Runway takes a seed from 0 to {MAX_SEED}, got {request.seed}.")
            body["seed"] = request.seed
        body.update(request.extra_fields)
        return body

    def api_error(self, decoded: Any) -> tuple[str | None, str | None]:
        """``{"error": "<message>"}`` (a string; no code), or the common ``{"error": {"code", "message"}}``."""
        if isinstance(decoded, Mapping) and isinstance(decoded.get("error"), str):
            return None, text(decoded["error"])
        return super().api_error(decoded)

    def is_task_answer(self, decoded: Any) -> bool:
        """Tell a task answer by its ``id`` and ``status``."""
        return isinstance(decoded, Mapping) and "status" in decoded and "id" in decoded

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read the task (``status``, ``progress`` 0-1, ``output[]``, ``failure``, ``failureCode``, ``createdAt``)."""
        raw_status = text(payload.get("status"))
        output = payload.get("output")
        urls = [url for url in output if isinstance(url, str) and url] if isinstance(output, list) else []
        fraction = number(payload.get("progress"))
        status = VideoTaskStatus.from_api(raw_status, STATUSES)
        progress = int(fraction * 100) if fraction is not None else None
        return VideoTask(
            id=text(payload.get("id")) or video_task_id or "",
            status=status,
            raw_status=raw_status,
            video_url=urls[0] if urls else None,
            error_code=text(payload.get("failureCode")),
            error_message=text(payload.get("failure")),
            created_at=epoch_seconds(payload.get("createdAt")),
            format="mp4" if urls else None,
            progress=100 if status is VideoTaskStatus.SUCCEEDED else progress,
            raw=dict(payload),
        )
