"""The "contents generations" style: RongCloud's AI API and Volcengine Ark / BytePlus ModelArk (Seedance).

``POST {prefix}/contents/generations/tasks`` creates, ``GET .../tasks/{id}`` reads, ``DELETE
.../tasks/{id}`` cancels a *queued* task (and deletes a finished one: never sent for those).
``GET .../tasks?filter.task_ids=...`` (the parameter repeated, up to a page of 500) reads many tasks
in one call: the waiting triggers of one event loop share it. Not every host documents it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.generation_request import SEEDANCE_OPTIONS, image_item
from airflow_provider_videogen.styles.base import ApiStyle, flag, integer, mapping, number, percent, text
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest


STATUSES = {
    "queued": VideoTaskStatus.QUEUED,
    "running": VideoTaskStatus.RUNNING,
    "succeeded": VideoTaskStatus.SUCCEEDED,
    "failed": VideoTaskStatus.FAILED,
    "cancelled": VideoTaskStatus.CANCELLED,
    "expired": VideoTaskStatus.EXPIRED,
}
"""The task statuses of the contents-generations API."""


class ContentsGenerations(ApiStyle):
    """RongCloud / Ark: a ``content`` list of text and images, Seedance options at the top level."""

    name = "contents_generations"
    label = "Contents generations (RongCloud, Volcengine Ark, BytePlus)"
    description = "RongCloud's AI API and Volcengine Ark / BytePlus ModelArk: .../contents/generations/tasks"
    default_path_prefix = "/llm/v1"
    tasks_route = "/contents/generations/tasks"
    can_cancel = True
    #: The API document's own sample polls every 10 s.
    default_poll_interval = 10.0
    # The query document: content.video_url and content.last_frame_url are valid 24 h.
    url_lifetime_hours = 24
    statuses = STATUSES
    batch_query_size = 500
    # The service queues at most ~120 tasks per account and takes a few hundred creates a minute per
    # model: a batch stays below both, leaving room for the account's other users.
    max_in_flight = 100
    max_creates_per_minute = 200

    def batch_query(self, video_task_ids: Sequence[str]) -> tuple[str, list[tuple[str, str]]]:
        """Return the list call: ``filter.task_ids`` repeated, one page as large as the service allows."""
        params = [("page_num", "1"), ("page_size", str(self.batch_query_size))]
        return self.tasks_route, params + [("filter.task_ids", task_id) for task_id in video_task_ids]

    def batch_answer_tasks(self, answer: Any) -> list[Mapping[str, Any]] | None:
        """Return the ``items`` of ``{"total", "items": [task, ...]}``."""
        items = answer.get("items") if isinstance(answer, Mapping) else None
        if not isinstance(items, list):
            return None
        return [item for item in items if isinstance(item, Mapping)]

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """``{"model", "content": [...], <Seedance options>}``."""
        request.check()
        unsupported = [name for name in ("width", "height", "fps") if getattr(request, name) is not None]
        if unsupported:
            raise refused(
                f"{', '.join(unsupported)} are video_generations fields; the contents_generations API sizes "
                "the video with resolution and ratio instead."
            )
        if request.content is not None:
            if request.prompt is not None or request.image_urls:
                raise refused("Pass either content or prompt/image_urls, not both.")
            content = [dict(item) for item in request.content]
        else:
            content = []
            if request.prompt:
                content.append({"type": "text", "text": request.prompt})
            content.extend(image_item(image) for image in request.image_urls)
        if not content:
            raise refused("A video generation needs a prompt, an image or a content list.")
        body: dict[str, Any] = {"model": request.model, "content": content}
        for name in (*SEEDANCE_OPTIONS, "duration", "seed"):
            if (value := getattr(request, name)) is not None:
                body[name] = value
        body.update(request.extra_fields)
        return body

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read the task object (``id``, ``status``, ``content.video_url``, ``error``, metadata...)."""
        return parse_contents_task(payload, video_task_id)


def parse_contents_task(task: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
    """Read a contents-generations task object (also what a gateway nests as the upstream task)."""
    content = mapping(task.get("content"))
    error = mapping(task.get("error"))
    video_url = text(content.get("video_url"))
    raw_status = text(task.get("status"))
    return VideoTask(
        id=text(task.get("id")) or video_task_id or "",
        status=VideoTaskStatus.from_api(raw_status, STATUSES),
        raw_status=raw_status,
        video_url=video_url,
        last_frame_url=text(content.get("last_frame_url")),
        model=text(task.get("model")),
        error_code=text(error.get("code")),
        error_message=text(error.get("message")),
        created_at=integer(task.get("created_at")),
        updated_at=integer(task.get("updated_at")),
        duration=number(task.get("duration")),
        fps=number(task.get("framespersecond", task.get("fps"))),
        width=integer(task.get("width")),
        height=integer(task.get("height")),
        resolution=text(task.get("resolution")),
        ratio=text(task.get("ratio")),
        seed=integer(task.get("seed")),
        # The contents-generations API documents its video URL as an MP4 file.
        format=text(task.get("format")) or ("mp4" if video_url else None),
        generate_audio=flag(task.get("generate_audio")),
        progress=percent(task.get("progress")),
        usage=dict(mapping(task.get("usage"))),
        raw=dict(task),
    )
