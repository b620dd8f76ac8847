"""The ``replicate`` style: Replicate's predictions (``api.replicate.com``): Google, Kling, ByteDance, MiniMax...

``POST {prefix}/models/{owner}/{name}/predictions`` runs an official model, ``POST
{prefix}/predictions`` with ``version`` runs one version of any model; the body is ``{"input":
{...}}``, the model's own input. The answer is the prediction: its ``id`` (26 lower-case letters and
digits today) is the video task id. ``GET {prefix}/predictions/{id}`` reads it: ``starting``,
``processing``, ``succeeded``, ``failed``, ``canceled`` or ``aborted``, with ``output`` (a URL or a
list of URLs), ``error`` (a string), ``metrics.predict_time`` and ``urls.web`` (the prediction's page,
the console link). ``POST {prefix}/predictions/{id}/cancel`` stops one still ``starting`` or
``processing``; it is never sent for one that finished. ``GET {prefix}/predictions`` lists the
account's predictions newest first, 100 a page (``next``: the URL of the older page), each with its
``model``, ``version`` and the whole ``input``: enough to recognise the prediction a killed try paid
for (:attr:`~ApiStyle.can_reconcile`). ``Prefer: wait`` is never sent: the create
must answer at once, so that its id is recorded before anything else can go wrong. Replicate deletes
the input and output of an API prediction an hour after it finishes (``data_removed: true``). Output
files are public ``replicate.delivery`` URLs that never get the token; a file served under the API's
own root takes it, to that origin only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.credential import origin_of
from airflow_provider_videogen.generation_request import SEEDANCE_OPTIONS
from airflow_provider_videogen.styles.base import (
    ApiStyle,
    DataCenter,
    FileSource,
    epoch_seconds,
    flag,
    mapping,
    number,
    text,
)
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_VERSION = r"[0-9a-f]{64}"
_MODEL_RE = re.compile(rf"({_NAME})/({_NAME})(?::({_VERSION}))?")
_VERSION_RE = re.compile(_VERSION)
# Prediction ids are 26 lower-case letters and digits today ("gm3qorzdhgbfurvjtvhg6dckhu"); a little
# room either way, so that a longer id one day still works, and nothing else ever reaches a path.
_TASK_ID_RE = re.compile(r"[a-z0-9]{20,40}")
# How Replicate says when to come back in a 429's detail, when it sends no Retry-After:
# "Request was throttled. Expected available in 5 seconds." or "... resets in ~30s."
_THROTTLE_RE = re.compile(r"in\s*~?\s*(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.IGNORECASE)
STATUSES = {
    "starting": VideoTaskStatus.QUEUED,  # not running yet: a worker is being found or booted
    "processing": VideoTaskStatus.RUNNING,
    "succeeded": VideoTaskStatus.SUCCEEDED,
    "failed": VideoTaskStatus.FAILED,
    "canceled": VideoTaskStatus.CANCELLED,
    # Stopped by its Cancel-After deadline before it started (not billed): a cancel that was asked
    # for in advance, as "canceled" is the same deadline reached while it ran.
    "aborted": VideoTaskStatus.CANCELLED,
}
"""The statuses of a Replicate prediction."""
# The request fields Replicate's video models name otherwise; the rest go into the input as they are.
_RENAMED = {"ratio": "aspect_ratio", "frames": "num_frames"}
_PASSED = (*SEEDANCE_OPTIONS, "duration", "seed", "width", "height", "fps")
_VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".m4v")
#: What Replicate's console calls a prediction's page (the ``urls.web`` of every prediction).
WEB_URL = "https://replicate.com/p/{id}"


class Replicate(ApiStyle):
    """Replicate: ``{"input": {"prompt", <the model's inputs>}}`` (and ``version`` for a model version).

    ``model`` is ``owner/name`` (an official model), ``owner/name:<version>`` or a bare version id
    (64 hex digits). Options go into the input: ``ratio`` as ``aspect_ratio``, ``frames`` as
    ``num_frames``, the others (``duration``, ``resolution``, ``seed``, ``generate_audio``...) and
    every ``generation_params`` entry under their own names. Models name their images differently
    (``image``, ``start_image``, ``first_frame_image``...): pass them in ``generation_params`` under
    the model's own name. The operator's ``timeout`` is sent as ``Cancel-After``: Replicate stops the
    prediction itself at that deadline, ``aborted`` if it never started (not billed), ``canceled``
    if it was running (billed for the time it ran).
    """

    name = "replicate"
    label = "Replicate predictions"
    description = "Replicate's predictions (Google, Kling, ByteDance, MiniMax, Wan...): .../predictions/{id}"
    default_path_prefix = "/v1"
    tasks_route = "/predictions"
    can_cancel = True
    no_cancel_reason = "Replicate cancels only a prediction still starting or processing"
    cancel_method = "POST"
    # Cancelling stops a running prediction's billing too (it is billed for the time it ran).
    cancellable_statuses = frozenset({VideoTaskStatus.QUEUED, VideoTaskStatus.RUNNING})
    statuses = STATUSES
    # Replicate's SDK polls every 0.5 s; a video takes minutes and every read counts against the
    # 3000 requests a minute of the account: 5 s loses little.
    default_poll_interval = 5.0
    # "Output files of predictions created through the API are deleted an hour after they finish"
    # (Replicate's data retention page).
    url_lifetime_hours = 1
    probe_task_id = "airflowconnectiontest00000"
    #: The list call answers every prediction of the account with its model, version and whole input.
    can_reconcile = True
    data_centers: ClassVar[tuple[DataCenter, ...]] = (
        DataCenter("replicate", "Replicate (api.replicate.com)", "https://api.replicate.com"),
    )

    def create_route(self, request: VideoGenerationRequest) -> str:
        """``/models/{owner}/{name}/predictions`` for ``owner/name``; ``/predictions`` for a version."""
        owner_name, _version = _model(request.model)
        return f"/models/{owner_name}/predictions" if owner_name else self.tasks_route

    def create_headers(self, request: VideoGenerationRequest) -> dict[str, str]:
        """``Cancel-After`` from the request's ``cancel_after`` (the operator's ``timeout``), where set."""
        if request.cancel_after is None:
            return {}
        return {"Cancel-After": cancel_after_duration(request.cancel_after)}

    def check_task_id(self, video_task_id: Any) -> str:
        """Accept a prediction id: lower-case letters and digits, 26 of them today."""
        if isinstance(video_task_id, str) and _TASK_ID_RE.fullmatch(video_task_id):
            return video_task_id
        shown = repr(video_task_id) if len(repr(video_task_id)) <= 80 else repr(video_task_id)[:77] + "..."
        raise refused(
            f"Invalid Replicate prediction id {shown}: it is the id the create call returned, lower-case "
            "letters and digits (26 today, e.g. 'gm3qorzdhgbfurvjtvhg6dckhu'); check the template or XCom "
            "that supplies it."
        )

    def cancel_route(self, video_task_id: str) -> str:
        """``/predictions/{id}/cancel`` (a ``POST``)."""
        return f"{self.task_route(video_task_id)}/cancel"

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """``{"input": {...}}``, with ``version`` when the model names one (see the class)."""
        request.check()
        _owner_name, version = _model(request.model)
        if request.content is not None:
            raise refused("A content list is a contents_generations field; on replicate pass prompt.")
        if request.image_urls:
            raise refused(
                "Replicate's models name their input images themselves ('image', 'start_image', "
                "'first_frame_image'...): pass the image in generation_params under the name the model's "
                "API page shows, e.g. generation_params={'start_image': 'https://...'}."
            )
        model_input: dict[str, Any] = {}
        if request.prompt:
            model_input["prompt"] = request.prompt
        for name in _PASSED:
            value = getattr(request, name)
            if value is not None:
                model_input[_RENAMED.get(name, name)] = value
        model_input.update(request.extra_fields)
        body: dict[str, Any] = {"input": model_input}
        if version is not None:
            body["version"] = version
        return body

    def recent_generations_query(self, body: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
        """``GET .../predictions``: the newest first, 100 a page (Replicate takes no page size or filter)."""
        return self.tasks_route, []

    def recent_generations(self, answer: Any) -> tuple[list[Mapping[str, Any]], bool] | None:
        """Read ``{"next": url | null, "previous": url | null, "results": [prediction, ...]}``."""
        results = answer.get("results") if isinstance(answer, Mapping) else None
        if not isinstance(results, list):
            return None
        return [item for item in results if isinstance(item, Mapping)], self.recent_generations_next(answer) is not None

    def recent_generations_next(self, answer: Any) -> str | None:
        """Return ``next``, the URL of the older page (``None`` on the last page)."""
        return text(mapping(answer).get("next"))

    def answers_request(self, item: Mapping[str, Any], body: Mapping[str, Any], *, model: str) -> bool:
        """Match a prediction sent through the API with the whole same ``input``, of the same model.

        The model is ``owner/name`` (the create's URL names it, the body does not), or the version
        for a request that names one. A prediction made on the website (``source: web``) is never
        one the provider sent; one whose input Replicate removed (an hour after it finished) has an
        empty input and answers no request.
        """
        if item.get("source") not in (None, "api") or flag(item.get("data_removed")):
            return False
        if item.get("input") != body.get("input"):
            return False
        owner_name, version = _model(model)
        return item.get("version") == version if version is not None else item.get("model") == owner_name

    def created_task_id(self, answer: Any) -> str | None:
        """Return the prediction's ``id``."""
        return text(mapping(answer).get("id"))

    def is_task_answer(self, decoded: Any) -> bool:
        """Tell a prediction by its ``id`` and a ``status`` (its ``error`` is then the model's, not the call's)."""
        return isinstance(decoded, Mapping) and "id" in decoded and "status" in decoded

    def api_error(self, decoded: Any) -> tuple[str | None, str | None]:
        """Replicate's problem details: ``{"title", "detail", "status"}``; ``{"detail"}`` alone on a 429."""
        found = mapping(decoded)
        return text(found.get("title")), text(found.get("detail"))

    def retry_after(self, headers: Mapping[str, str], decoded: Any) -> float | None:
        """``Retry-After``, else the seconds in a 429's ``detail`` ("Expected available in 5 seconds.")."""
        from_header = super().retry_after(headers, decoded)
        if from_header is not None:
            return from_header
        detail = text(mapping(decoded).get("detail")) or ""
        found = _THROTTLE_RE.search(detail)
        return float(found.group(1)) if found else None

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read the prediction (``status``, ``output``, ``error``, ``metrics``, ``data_removed``, times)."""
        raw_status = text(payload.get("status"))
        status = VideoTaskStatus.from_api(raw_status, STATUSES)
        error = payload.get("error")
        message = text(error) if not isinstance(error, Mapping) else text(error.get("message")) or text(error)
        duration = number(mapping(payload.get("metrics")).get("video_duration"))
        return VideoTask(
            id=text(payload.get("id")) or video_task_id or "",
            status=status,
            raw_status=raw_status,
            video_url=_video_of(payload.get("output")),
            model=text(payload.get("model")),
            error_message=message,
            created_at=epoch_seconds(payload.get("created_at")),
            updated_at=epoch_seconds(payload.get("completed_at")) or epoch_seconds(payload.get("started_at")),
            duration=duration,
            format="mp4" if status is VideoTaskStatus.SUCCEEDED else None,
            progress=100 if status is VideoTaskStatus.SUCCEEDED else None,
            raw=dict(payload),
        )

    def file_source(self, task: VideoTask, kind: str, task_url: str) -> FileSource | None:
        """Return the output's URL: public (``replicate.delivery``) unless it is under the API's own root.

        A file under the API's root (``{base}{prefix}/files/...``) takes the token, to that origin
        only; any other URL never gets it, whatever host it names. Replicate returns no last frame.

        :raises VideoNotAvailableError: Replicate removed the output (``data_removed``): it keeps the
            output of an API prediction only an hour after it finishes.
        """
        if kind != "video":
            return None
        if task.video_url is None and flag(task.raw.get("data_removed")) and task.status is VideoTaskStatus.SUCCEEDED:
            # Here: the exceptions import Airflow, which reads the provider's info, which lists the styles.
            from airflow_provider_videogen.exceptions import VideoNotAvailableError

            raise VideoNotAvailableError(
                f"Replicate removed the output of prediction {task.id} (data_removed: true): it deletes the "
                "input and output of an API prediction an hour after it finishes, so the video can no longer "
                "be fetched, and fetching again cannot help. Land Replicate videos in the same DAG run, right "
                "after the wait (a FetchVideoOperator downstream of the GenerateVideoOperator or sensor), "
                "within the hour.",
                video_task_id=task.id,
            )
        if task.video_url is None:
            return None
        url = task.video_url
        api_root = task_url[: -len(self.task_route(task.id))]
        under_api = origin_of(url) == origin_of(task_url) and url.startswith(f"{api_root}/")
        return FileSource(url, authenticated=under_api)

    def console_url(self, base_url: str, video_task_id: str) -> str | None:
        """Return the prediction's page on replicate.com (its ``urls.web``): a plain page, never the token."""
        return WEB_URL.format(id=self.check_task_id(video_task_id))


def cancel_after_duration(seconds: float) -> str:
    """Return ``seconds`` as a ``Cancel-After`` duration (``1h5m``, ``30s``), rounded up to a whole second."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds > 0 or math.isinf(seconds):
        raise refused(f"cancel_after must be a positive number of seconds, got {seconds!r}.")
    remaining = math.ceil(seconds)
    hours, remaining = divmod(remaining, 3600)
    minutes, remaining = divmod(remaining, 60)
    parts = [f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (remaining, "s")) if value]
    return "".join(parts)


def _model(model: Any) -> tuple[str | None, str | None]:
    """Return ``(owner/name or None, version or None)`` of a model, or refuse it naming the forms."""
    name = model.strip() if isinstance(model, str) else model
    if isinstance(name, str) and _VERSION_RE.fullmatch(name):
        return None, name
    found = _MODEL_RE.fullmatch(name) if isinstance(name, str) else None
    if found is None:
        raise refused(
            f"Invalid Replicate model {model!r}: use 'owner/name' (an official model, e.g. 'google/veo-3'), "
            "'owner/name:<version>' or a bare version id (64 hex digits)."
        )
    owner, model_name, version = found.groups()
    return (None, version) if version else (f"{owner}/{model_name}", None)


def _video_of(output: Any) -> str | None:
    """Return the video of an output: the URL itself, or the first video URL of a list (beside a thumbnail...)."""
    if isinstance(output, str) and output:
        return output
    if isinstance(output, Mapping):  # a model that names its outputs: {"video": url, "thumbnail": url}
        output = [output.get("video"), *output.values()]
    if not isinstance(output, list):
        return None
    urls = [url for url in output if isinstance(url, str) and url]
    videos = [url for url in urls if url.split("?", 1)[0].lower().endswith(_VIDEO_SUFFIXES)]
    chosen = videos or urls
    return chosen[0] if chosen else None
