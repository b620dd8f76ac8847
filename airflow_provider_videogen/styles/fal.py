"""The ``fal`` style: fal.ai's queue (``queue.fal.run``), in front of Kling, Seedance, Veo, MiniMax, Wan, Pika...

``POST {base}/{model}`` (the endpoint id, ``owner/app`` and an optional path) queues a request with
the model's own input as the JSON body and answers ``request_id``, ``status_url``, ``response_url``
and ``cancel_url``. Those use only ``{owner}/{app}``, so the video task id is the path of
``response_url``: ``{owner}/{app}/requests/{request_id}``. ``GET .../requests/{id}/status`` says
``IN_QUEUE``, ``IN_PROGRESS`` or ``COMPLETED``; ``COMPLETED`` is not success: only the result,
``GET .../requests/{id}``, tells, with the model's output (2xx) or the model's error (an HTTP error
with ``detail`` and an error type). So a status answer of ``COMPLETED`` is followed by that read at
once, and the task ends as it says. ``PUT .../requests/{id}/cancel`` removes a request still in the
queue; in progress it is only a signal the model may ignore (and bill), so it is never sent then.
The key travels as ``Authorization: Key <key>``; the video is a public CDN URL (``*.fal.media``)
that never gets it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.generation_request import SEEDANCE_OPTIONS
from airflow_provider_videogen.styles.base import (
    NIL_UUID,
    ApiStyle,
    ConnectionOption,
    DataCenter,
    integer,
    mapping,
    one_image,
    text,
)
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.exceptions import VideoGenError
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
# fal_client's app namespaces: "workflows/{owner}/{app}" and "comfy/{owner}/{app}".
_APP = rf"(?:(?:workflows|comfy)/)?{_SEGMENT}/{_SEGMENT}"
_TASK_ID_RE = re.compile(rf"({_APP})/requests/({_SEGMENT})")
_MODEL_RE = re.compile(rf"{_APP}(?:/{_SEGMENT})*")
STATUSES = {
    "in_queue": VideoTaskStatus.QUEUED,
    "in_progress": VideoTaskStatus.RUNNING,
}
"""fal's queue statuses but ``COMPLETED``, which says nothing of the outcome (read the result)."""
COMPLETED = "COMPLETED"
# The request fields fal's video models name otherwise; the rest go through under their own names.
_RENAMED = {"ratio": "aspect_ratio", "frames": "num_frames"}
_PASSED = (*SEEDANCE_OPTIONS, "duration", "seed", "width", "height", "fps")


class Fal(ApiStyle):
    """fal.ai's queue: the model's input as the body (``prompt``, ``image_url``, the options), answer ``request_id``.

    Options go through as the model's input fields: ``ratio`` as ``aspect_ratio`` and ``frames`` as
    ``num_frames`` (fal's names), a whole ``duration`` as text (``"5"``, as Kling, Seedance, Hailuo
    and Wan on fal take it), the others (``resolution``, ``seed``, ``generate_audio``...) and every
    ``generation_params`` entry under their own names, unchanged. fal's models differ: pass what the
    model's page shows; the model refuses what it does not take, before anything is billed.
    """

    name = "fal"
    label = "fal.ai queue"
    description = "fal.ai's queue (Kling, Seedance, Veo, MiniMax, Wan, Pika...): {model}, .../requests/{id}"
    default_path_prefix = ""
    tasks_route = ""
    can_cancel = True
    no_cancel_reason = "fal removes only a request still in its queue"
    cancel_method = "PUT"
    statuses = STATUSES
    # fal advises no interval (its SDK polls every 0.1 s for short jobs); a video takes minutes.
    default_poll_interval = 5.0
    # fal's media URLs live as long as the account's retention settings say: no one figure to name.
    url_lifetime_hours = None
    probe_task_id = f"fal-ai/airflow-connection-test/requests/{NIL_UUID}"
    data_centers: ClassVar[tuple[DataCenter, ...]] = (
        DataCenter("fal", "fal.ai (queue.fal.run)", "https://queue.fal.run"),
    )
    options = (
        ConnectionOption(
            "fal_store_io",
            "fal payload storage",
            "fal style only: 0 sends X-Fal-Store-IO: 0 (fal keeps no request payloads; a result is then "
            "readable for about an hour, 6 minutes from 10 KB). Default 1 (fal's default).",
            "1",
            pattern="[01]",
        ),
    )

    def __init__(self, store_io: bool = True) -> None:
        self.store_io = store_io

    def with_options(self, values: Mapping[str, str]) -> Fal:
        """Return the style with the connection's ``fal_store_io``."""
        store_io = values.get("fal_store_io", "1") != "0"
        return self if store_io == self.store_io else Fal(store_io)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """Return ``Authorization: Key <key>``: fal's scheme (not Bearer)."""
        return {"Authorization": f"Key {api_key}"}

    def request_headers(self, api_key: str, action: str) -> dict[str, str]:
        """Return the key, and on a create ``X-Fal-Store-IO: 0`` when the connection turns payload storage off."""
        headers = super().request_headers(api_key, action)
        if action == "create" and not self.store_io:
            headers["X-Fal-Store-IO"] = "0"
        return headers

    def create_route(self, request: VideoGenerationRequest) -> str:
        """``/{model}``: the endpoint id, checked segment by segment (it is the path)."""
        model = request.model.strip() if isinstance(request.model, str) else request.model
        if not isinstance(model, str) or not _MODEL_RE.fullmatch(model):
            raise refused(
                f"Invalid fal endpoint id {request.model!r}: use the model's id as fal shows it, "
                "'owner/app' and an optional path, e.g. 'fal-ai/kling-video/v2.1/master/text-to-video'."
            )
        return f"/{model}"

    def check_task_id(self, video_task_id: Any) -> str:
        """Accept exactly ``{owner}/{app}/requests/{request_id}``, each part letters, digits, ``._-``."""
        if isinstance(video_task_id, str) and _TASK_ID_RE.fullmatch(video_task_id):
            return video_task_id
        shown = repr(video_task_id) if len(repr(video_task_id)) <= 80 else repr(video_task_id)[:77] + "..."
        raise refused(
            f"Invalid fal video task id {shown}: it is '<owner>/<app>/requests/<request id>' (the path of the "
            "create call's response_url, e.g. 'fal-ai/kling-video/requests/80e732af-660e-45cd-bd63-580e4f2a94cc'; "
            "letters, digits, '.', '_' and '-' in each part); check the template or XCom that supplies it."
        )

    def task_route(self, video_task_id: str) -> str:
        """``/{owner}/{app}/requests/{id}/status``: the status of the request."""
        return f"/{self.check_task_id(video_task_id)}/status"

    def cancel_route(self, video_task_id: str) -> str:
        """``/{owner}/{app}/requests/{id}/cancel`` (a ``PUT``)."""
        return f"/{self.check_task_id(video_task_id)}/cancel"

    def result_route(self, task: VideoTask) -> str | None:
        """``/{owner}/{app}/requests/{id}`` once the status says ``COMPLETED``: the result says how it ended."""
        if task.status is VideoTaskStatus.RUNNING and (task.raw_status or "").upper() == COMPLETED:
            return f"/{self.check_task_id(task.id)}"
        return None

    def file_stem(self, video_task_id: str) -> str:
        """Return ``{owner}~{app}~{request id}``: the task id without ``/requests/``, ``~`` for ``/``.

        One name for one task id: ``~`` is in no part of an id, and the request id (the last part)
        holds no ``/``, so two tasks never share a name (not even two apps' requests of one id).
        """
        found = _TASK_ID_RE.fullmatch(self.check_task_id(video_task_id))
        assert found is not None  # check_task_id accepted it
        app, request_id = found.groups()
        return f"{app.replace('/', '~')}~{request_id}"

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """Return the model's input: ``prompt``, ``image_url``, the options set (see the class), the extra fields."""
        request.check()
        self.create_route(request)
        if request.content is not None:
            raise refused("A content list is a contents_generations field; on fal pass prompt and image_urls.")
        body: dict[str, Any] = {}
        if request.prompt:
            body["prompt"] = request.prompt
        image = one_image(request, "fal")
        if image is not None:
            body["image_url"] = image
        for name in _PASSED:
            value = getattr(request, name)
            if value is not None:
                body[_RENAMED.get(name, name)] = value
        if isinstance(request.duration, (int, float)) and float(request.duration).is_integer():
            # fal's video models (Kling, Seedance, Hailuo, Wan) take the length as text: "5", not 5.
            body["duration"] = str(int(request.duration))
        body.update(request.extra_fields)
        return body

    def created_task_id(self, answer: Any) -> str | None:
        """Return the path of ``response_url`` from ``{owner}/{app}``: ``{owner}/{app}/requests/{request_id}``."""
        found = mapping(answer)
        request_id = text(found.get("request_id"))
        for field, suffix in (("response_url", ""), ("status_url", "/status"), ("cancel_url", "/cancel")):
            url = text(found.get(field))
            path = urlsplit(url).path if url else ""
            if suffix and path.endswith(suffix):
                path = path[: -len(suffix)]
            match = re.search(rf"(?:^|/)({_TASK_ID_RE.pattern})$", path)
            if match and (request_id is None or match.group(3) == request_id):
                return match.group(1)
        return None

    def is_task_answer(self, decoded: Any) -> bool:
        """Every 2xx answer (a status, a create, a cancel, a model's output) says nothing of a failed call."""
        return isinstance(decoded, Mapping)

    def api_error(self, decoded: Any) -> tuple[str | None, str | None]:
        """``{"detail": "<message>" | [validation errors], "error_type"?}``, or a cancel's ``{"status"}``."""
        found = mapping(decoded)
        detail = found.get("detail")
        if isinstance(detail, list):
            message = "; ".join(_validation_error(item) for item in detail) or None
        else:
            message = text(detail)
        code = text(found.get("error_type"))
        if code is None and message is None:
            code = text(found.get("status"))  # a cancel's ALREADY_COMPLETED, NOT_FOUND
        return code, message

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read a status answer; ``COMPLETED`` reads as running until the result is read (see :meth:`result_route`)."""
        raw_status = text(payload.get("status"))
        if raw_status is None:
            raise ValueError("expected a fal queue status (status)")
        video_task_id = video_task_id or ""
        request_id = text(payload.get("request_id"))
        match = _TASK_ID_RE.fullmatch(video_task_id)
        if request_id is not None and match is not None and request_id != match.group(2):
            video_task_id = request_id  # another request's status: the caller refuses it
        completed = raw_status.strip().upper() == COMPLETED
        status = VideoTaskStatus.RUNNING if completed else VideoTaskStatus.from_api(raw_status, STATUSES)
        return VideoTask(id=video_task_id, status=status, raw_status=raw_status, raw=dict(payload))

    def read_result(self, task: VideoTask, payload: Any) -> VideoTask:
        """Read a 2xx result, the model's output: the video at ``video.url`` (or ``videos[0].url``), its seed."""
        return ended_by_output(task, payload)

    def result_error(self, task: VideoTask, error: VideoGenError, headers: Mapping[str, str]) -> VideoTask:
        """Read an error result as the model's failure (its type and ``detail``); raise a refused key or a fault.

        A 5xx without fal's error type and a 429 are faults in front of the result (retried); a 404
        after ``COMPLETED`` means fal no longer keeps the result, which is said plainly.
        """
        return ended_by_error(task, error, headers)


def ended_by_output(task: VideoTask, payload: Any) -> VideoTask:
    """Return ``task`` as a 2xx result (the model's output) ends it: succeeded with its video, else failed.

    The video is at ``video.url`` (or ``videos[0].url``), with its seed and content type; an output
    without one ends the task as ``NO_VIDEO``, naming what the output holds.
    """
    output = mapping(payload)
    videos = output.get("videos")
    video = mapping(output.get("video")) or (mapping(videos[0]) if isinstance(videos, list) and videos else {})
    url = text(video.get("url"))
    common: dict[str, Any] = {"id": task.id, "raw_status": task.raw_status, "raw": {**task.raw, "result": output}}
    if url is None:
        shown = ", ".join(sorted(output)) or "nothing"
        return VideoTask(
            status=VideoTaskStatus.FAILED,
            error_code="NO_VIDEO",
            error_message=f"the model's result holds no video (video.url or videos[0].url; it has {shown})",
            **common,
        )
    content_type = text(video.get("content_type")) or ""
    return VideoTask(
        status=VideoTaskStatus.SUCCEEDED,
        video_url=url,
        seed=integer(output.get("seed")),
        format=content_type.partition("/")[2] or "mp4",
        progress=100,
        **common,
    )


def ended_by_error(task: VideoTask, error: VideoGenError, headers: Mapping[str, str]) -> VideoTask:
    """Return ``task`` as an error answer of its result read ends it: failed with the model's error type and detail.

    Raise instead what is not the model's: a refused key, a 429 or a 5xx without fal's error type (a
    fault in front of the result, retried), and a 404, which after ``COMPLETED`` means fal no longer
    keeps the result (said plainly, with how to keep it).
    """
    # Here: the exceptions import Airflow, which reads the provider's info, which lists the styles.
    from airflow_provider_videogen.exceptions import (
        VideoGenAuthError,
        VideoGenTransientError,
        VideoTaskNotFoundError,
    )

    if isinstance(error, VideoGenAuthError):
        raise error
    if isinstance(error, VideoTaskNotFoundError):
        raise VideoTaskNotFoundError(
            f"fal no longer has the result of request {task.id!r}: it completed, but a result is kept only "
            "about an hour after completion (6 minutes from 10 KB) when payload storage is off "
            "(X-Fal-Store-IO: 0, the connection extra fal_store_io=0). Land fal videos in the same DAG run, "
            f"right after the wait, or leave payload storage on. ({error})",
            video_task_id=task.id,
            http_status=error.http_status,
            api_code=error.api_code,
            api_message=error.api_message,
        ) from None
    error_type = text(headers.get("X-Fal-Error-Type")) or error.api_code
    if isinstance(error, VideoGenTransientError) and (error.http_status == 429 or error_type is None):
        raise error
    status = error.http_status
    return VideoTask(
        id=task.id,
        status=VideoTaskStatus.FAILED,
        raw_status=task.raw_status,
        error_code=error_type or (f"HTTP_{status}" if status else None),
        error_message=error.api_message or str(error),
        raw=dict(task.raw),
    )


def _validation_error(item: Any) -> str:
    """One entry of a 422's ``detail`` list (``{"loc": [...], "msg": ..., "type": ...}``) as a line."""
    entry = mapping(item)
    message = text(entry.get("msg")) or text(item) or "invalid"
    where = ".".join(str(part) for part in entry.get("loc") or () if part != "body")
    return f"{where}: {message}" if where else message
