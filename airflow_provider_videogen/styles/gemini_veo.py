"""The ``gemini_veo`` style: Google's Veo models through the Gemini API (``generativelanguage.googleapis.com``).

``POST {prefix}/models/{model}:predictLongRunning`` creates and answers a long-running operation
``{"name": "models/{model}/operations/{id}"}``: that name is the video task id. ``GET {prefix}/{name}``
reads it: ``done`` false while it renders, then an ``error`` (``google.rpc.Status``) or
``response.generateVideoResponse`` with ``generatedSamples[].video.uri``, a ``files/{id}:download``
URL that needs the API key (sent as ``x-goog-api-key``, never as Bearer). Google keeps the video
about 2 days. A result with no sample but ``raiMediaFilteredCount``/``raiMediaFilteredReasons`` was
blocked by the content filter. The Gemini API has no cancel for these operations.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.generation_request import Upload, image_item, read_image_file
from airflow_provider_videogen.styles.base import (
    ApiStyle,
    DataCenter,
    FileSource,
    flag,
    integer,
    mapping,
    text,
    whole_seconds,
)
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_OPERATION_NAME_RE = re.compile(rf"models/({_SEGMENT})/operations/({_SEGMENT})")
_MODEL_RE = re.compile(_SEGMENT)
_DELAY_RE = re.compile(r"(\d+(?:\.\d+)?)s")
_DATA_URI_RE = re.compile(r"data:(image/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]+)", re.DOTALL)
# Request fields the Gemini API has no parameter for, and what to use instead.
_UNSUPPORTED = {
    "content": "pass prompt and image_urls",
    "frames": "use duration (seconds: 4, 6 or 8)",
    "fps": "Veo renders 24 fps",
    "width": "use resolution ('720p', '1080p') and ratio ('16:9', '9:16')",
    "height": "use resolution ('720p', '1080p') and ratio ('16:9', '9:16')",
    "camera_fixed": "describe the camera in the prompt",
    "watermark": "Veo always marks its videos with SynthID",
    "generate_audio": "Veo 3 models always generate sound",
    "return_last_frame": "Veo returns no last frame",
    "service_tier": "the Gemini API has no tiers",
    "execution_expires_after": "the Gemini API keeps a video about 2 days",
    "callback_url": "the Gemini API calls no callback",
}
_IMAGE_FIELDS = {"first_frame": "image", "last_frame": "lastFrame"}


class GeminiVeo(ApiStyle):
    """Veo on the Gemini API: ``instances[0]`` holds the prompt and images, ``parameters`` the options.

    ``ratio``, ``resolution``, ``duration`` and ``seed`` become ``aspectRatio``, ``resolution``,
    ``durationSeconds`` and ``seed``; other options (``negativePrompt``, ``personGeneration``,
    ``sampleCount``...) go through ``extra_fields`` into ``parameters``, in camelCase or snake_case.
    Images must be ``data:`` URIs (the Gemini API takes image bytes, not URLs); the role
    ``first_frame`` (default) is ``image``, ``last_frame`` is ``lastFrame`` and ``reference_image``
    goes to ``referenceImages``.
    """

    name = "gemini_veo"
    label = "Gemini API Veo (Google)"
    #: The API as messages name it (what it lacks, refused before sending).
    api_name = "The Gemini API"
    description = "Google's Veo models through the Gemini API: .../models/{model}:predictLongRunning"
    default_path_prefix = "/v1beta"
    tasks_route = "/models"
    no_cancel_reason = "the Gemini API cannot cancel a video generation"
    # Google advises no interval; its own examples poll every 10 s.
    default_poll_interval = 10.0
    # The Gemini API's video generation guide: generated videos are kept on the server for 2 days.
    url_lifetime_hours = 48
    probe_task_id = "models/airflow-connection-test/operations/airflow-connection-test"
    # An operation has no status field: "done" false (or absent) reads as running, and once done its
    # error or response says how it ended (the raw status is then None).
    statuses: ClassVar[Mapping[str, VideoTaskStatus]] = {"running": VideoTaskStatus.RUNNING}
    # Google refuses a wrong key with HTTP 400 INVALID_ARGUMENT and this reason.
    auth_error_codes = frozenset({"API_KEY_INVALID"})
    data_centers: ClassVar[tuple[DataCenter, ...]] = (
        DataCenter("google", "Google (generativelanguage.googleapis.com)", "https://generativelanguage.googleapis.com"),
    )

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """``x-goog-api-key: <key>``: the Gemini API's own header (it takes no Bearer API key)."""
        return {"x-goog-api-key": api_key}

    def create_route(self, request: VideoGenerationRequest) -> str:
        """``/models/{model}:predictLongRunning`` (the model is checked: it is a path segment)."""
        model = request.model.strip() if isinstance(request.model, str) else request.model
        if not isinstance(model, str) or not _MODEL_RE.fullmatch(model):
            raise refused(
                f"Invalid Gemini model name {request.model!r}: use a model id such as 'veo-3.1-generate-preview'."
            )
        return f"{self.tasks_route}/{model}:predictLongRunning"

    def task_route(self, video_task_id: str) -> str:
        """Return the operation name itself as the route: ``/models/{model}/operations/{id}``."""
        return f"/{self.check_task_id(video_task_id)}"

    def check_task_id(self, video_task_id: Any) -> str:
        """Accept exactly ``models/<model>/operations/<id>``, each segment made of letters, digits, ``._-``."""
        if isinstance(video_task_id, str) and _OPERATION_NAME_RE.fullmatch(video_task_id):
            return video_task_id
        shown = repr(video_task_id) if len(repr(video_task_id)) <= 80 else repr(video_task_id)[:77] + "..."
        raise refused(
            f"Invalid Gemini operation name {shown}: a gemini_veo video task id is the operation name the "
            "create call returned, 'models/<model>/operations/<id>' (letters, digits, '.', '_' and '-' in "
            "each part); check the template or XCom that supplies it."
        )

    def file_stem(self, video_task_id: str) -> str:
        """Return ``<model>_<operation id>``: an operation name holds ``/``, which a file name cannot.

        Each ``_`` of the model is doubled, so the first single ``_`` always ends it (an operation id
        never starts with ``_``): ``models/veo_3/operations/abc`` is ``veo__3_abc`` and
        ``models/veo/operations/3_abc`` is ``veo_3_abc``, two operations never share a name, and names
        of models without ``_`` (all of Google's) are unchanged.
        """
        _, model, _, operation = self.check_task_id(video_task_id).split("/")
        return f"{model.replace('_', '__')}_{operation}"

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """``{"instances": [{"prompt", "image"?, "lastFrame"?, "referenceImages"?}], "parameters": {...}}``."""
        request.check()
        self.create_route(request)
        lacking = [name for name in _UNSUPPORTED if getattr(request, name) is not None]
        if lacking:
            raise refused(
                f"{self.api_name} has no "
                + "; no ".join(f"{name} ({_UNSUPPORTED[name]})" for name in lacking)
                + f". Leave them out on {self.name}."
            )
        instance: dict[str, Any] = {}
        if request.prompt:
            instance["prompt"] = request.prompt
        for image in request.image_urls:
            _add_image(instance, image)
        if request.image_file is not None:
            _set_image(instance, "first_frame", _inline(read_image_file(request.image_file, "image")))
        if not instance.get("prompt") and "image" not in instance:
            raise refused("A Veo generation needs a prompt or a first-frame image.")
        parameters: dict[str, Any] = {}
        if request.ratio is not None:
            parameters["aspectRatio"] = request.ratio
        if request.resolution is not None:
            parameters["resolution"] = request.resolution
        if request.duration is not None:
            parameters["durationSeconds"] = whole_seconds(request.duration, " (4, 6 or 8)")
        if request.seed is not None:
            parameters["seed"] = request.seed
        parameters.update({_camel(name): value for name, value in request.extra_fields.items()})
        body: dict[str, Any] = {"instances": [instance]}
        if parameters:
            body["parameters"] = parameters
        return body

    def create_uploads(self, request: VideoGenerationRequest) -> list[Upload]:
        """Nothing is uploaded: an ``image_file`` travels inline in the JSON body, as the first frame."""
        return []

    def created_task_id(self, answer: Any) -> str | None:
        """Return the operation's ``name``."""
        return text(mapping(answer).get("name"))

    def is_task_answer(self, decoded: Any) -> bool:
        """Whether the answer is an operation (``name``/``done``): its ``error`` is then the generation's."""
        return isinstance(decoded, Mapping) and ("name" in decoded or "done" in decoded)

    def api_error(self, decoded: Any) -> tuple[str | None, str | None]:
        """``{"error": {"code", "message", "status", "details"}}``: the ``ErrorInfo`` reason, else ``status``."""
        error = mapping(mapping(decoded).get("error"))
        reasons = [text(mapping(d).get("reason")) for d in error.get("details") or () if isinstance(d, Mapping)]
        code = next((r for r in reasons if r), None) or text(error.get("status")) or text(error.get("code"))
        return code, text(error.get("message"))

    def retry_after(self, headers: Mapping[str, str], decoded: Any) -> float | None:
        """``Retry-After``, else the ``google.rpc.RetryInfo`` ``retryDelay`` (``"27s"``) of a 429's details."""
        from_header = super().retry_after(headers, decoded)
        if from_header is not None:
            return from_header
        for detail in mapping(mapping(decoded).get("error")).get("details") or ():
            delay = mapping(detail).get("retryDelay")
            if isinstance(delay, str) and (found := _DELAY_RE.fullmatch(delay.strip())):
                return float(found.group(1))
        return None

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read the operation: not ``done`` is running; ``error``, a filtered result or samples end it."""
        if "name" not in payload and "done" not in payload:
            raise ValueError("expected a long-running operation (name, done)")
        name = text(payload.get("name")) or video_task_id or ""
        match = _OPERATION_NAME_RE.fullmatch(name)
        model = match.group(1) if match else None
        common: dict[str, Any] = {"id": name, "model": model, "format": "mp4", "raw": dict(payload)}
        if flag(payload.get("done")) is not True:
            return VideoTask(status=VideoTaskStatus.RUNNING, raw_status="running", **common)
        if "error" in payload:
            error = mapping(payload.get("error"))
            return VideoTask(
                status=VideoTaskStatus.FAILED,
                error_code=text(error.get("status")) or text(error.get("code")),
                error_message=text(error.get("message")) or "the operation ended with an error",
                **common,
            )
        result = mapping(mapping(payload.get("response")).get("generateVideoResponse"))
        samples = [mapping(s) for s in result.get("generatedSamples") or () if isinstance(s, Mapping)]
        uri = next((u for s in samples if (u := text(mapping(s.get("video")).get("uri")))), None)
        if uri:
            return VideoTask(status=VideoTaskStatus.SUCCEEDED, video_url=uri, **common)
        return no_video_failure(result, common)

    def file_source(self, task: VideoTask, kind: str, task_url: str) -> FileSource | None:
        """Return the sample's ``uri``, fetched with the key (to the connection's origin only); no last frame."""
        if kind != "video" or not task.video_url:
            return None
        url = task.video_url
        if "://" not in url:  # a bare "files/..." name: relative to the API root
            url = f"{task_url[: -len(task.id)]}{url.lstrip('/')}"
        return FileSource(url, authenticated=True)


def no_video_failure(result: Mapping[str, Any], common: dict[str, Any]) -> VideoTask:
    """Return the failed task of a Veo operation that finished without a video: filtered by safety, or none made.

    Veo's answer says so the same way on the Gemini API and on Vertex AI (``raiMediaFilteredCount``,
    ``raiMediaFilteredReasons`` in the operation's result).

    :param common: the task's fields every outcome shares (id, model, raw answer).
    """
    filtered = integer(result.get("raiMediaFilteredCount")) or 0
    reasons = [r for r in (text(x) for x in result.get("raiMediaFilteredReasons") or ()) if r]
    if filtered or reasons:
        code, message = "RAI_MEDIA_FILTERED", "; ".join(reasons) or f"{filtered} video(s) filtered"
    else:
        code, message = "NO_VIDEO", "the operation finished without a video"
    return VideoTask(status=VideoTaskStatus.FAILED, error_code=code, error_message=message, **common)


def _add_image(instance: dict[str, Any], image: str | Mapping[str, Any]) -> None:
    item = image_item(image)
    url, role = item["image_url"]["url"], item.get("role", "first_frame")
    match = _DATA_URI_RE.fullmatch(url.strip())
    if match is None:
        raise refused(
            f"The Gemini API takes images as bytes, not URLs: pass a data: URI "
            f"('data:image/png;base64,...') or a local image_file instead of {url[:60]!r}."
        )
    _set_image(instance, role, {"bytesBase64Encoded": re.sub(r"\s", "", match.group(2)), "mimeType": match.group(1)})


def _set_image(instance: dict[str, Any], role: str, encoded: dict[str, str]) -> None:
    if role == "reference_image":
        instance.setdefault("referenceImages", []).append({"image": encoded, "referenceType": "asset"})
        return
    field = _IMAGE_FIELDS[role]
    if field in instance:
        raise refused(f"Only one {role} image can be given on gemini_veo (image_urls and image_file count).")
    instance[field] = encoded


def _inline(upload: Upload) -> dict[str, str]:
    return {"bytesBase64Encoded": base64.b64encode(upload.data).decode("ascii"), "mimeType": upload.content_type}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
