"""The ``vertex_veo`` style: Google's Veo models on Vertex AI, with an Airflow Google connection's credentials.

``POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:predictLongRunning``
creates (``instances[0]``: the prompt and images; ``parameters``: ``durationSeconds``, ``aspectRatio``,
``resolution``, ``sampleCount``, ``storageUri``...) and answers the operation name
``projects/{project}/locations/{location}/publishers/google/models/{model}/operations/{id}``: the video
task id. ``POST .../models/{model}:fetchPredictOperation`` with ``{"operationName": ...}`` reads it
(not a GET of the name): ``done`` false while it renders, then ``error`` (``google.rpc.Status``) or
``response.videos[]``, each a ``gcsUri`` (when the create named a ``storageUri``) or the video itself,
``bytesBase64Encoded``. A result with ``raiMediaFilteredCount``/``raiMediaFilteredReasons`` and no
video was blocked by the content filter (not billed). Vertex documents no cancel for Veo.

An inline video is tens of MB of base64 in the query answer: the client drops the member's value
while the answer streams in (the answer stays a small JSON object under the API answer cap), and
landing the video posts the query again and decodes the member while it streams into the
destination (:mod:`~airflow_provider_videogen.download.inline`), never holding it whole.

No key is kept in the ``videogen`` connection: every call carries an access token of the Airflow
``google_cloud_platform`` connection its ``gcp_conn_id`` extra names (see
:mod:`~airflow_provider_videogen.google_credential`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.google_credential import DEFAULT_GCP_CONN_ID, GoogleCredential
from airflow_provider_videogen.styles.base import ConnectionOption, DataCenter, FileSource, flag, mapping, text
from airflow_provider_videogen.styles.gemini_veo import GeminiVeo, no_video_failure
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

NAME = "vertex_veo"
#: The member of ``response.videos[]`` that holds a video inline (base64).
INLINE_MEMBER = "bytesBase64Encoded"
#: ``video_url`` of a task whose video is held inline: the index of the video in ``response.videos``.
INLINE_URL_PREFIX = "vertex-inline:videos/"
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_PROJECT = r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20}"
_LOCATION = r"[a-z]+(?:-[a-z]+)*[0-9]*|global"
_OPERATION_RE = re.compile(
    rf"projects/({_PROJECT})/locations/({_LOCATION})/publishers/google/models/({_SEGMENT})/operations/({_SEGMENT})"
)
_GCS_URI_RE = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,221}[a-z0-9](?:/\S*)?")
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class VertexVeo(GeminiVeo):
    """Veo on Vertex AI: the Gemini API's request body, Vertex's routes, answers and credentials.

    ``prompt``, images (``data:`` URIs, a local ``image_file``, or ``gs://`` objects sent as
    ``gcsUri``), ``ratio``, ``resolution``, ``duration`` and ``seed`` are sent as on ``gemini_veo``;
    other options (``sampleCount``, ``negativePrompt``, ``generateAudio``...) go through
    ``generation_params`` into ``parameters``, in camelCase or snake_case. ``storage_uri`` (a
    ``gs://`` prefix; else the connection's ``vertex_output_gcs_uri`` extra) makes Vertex write the
    video there instead of returning it inline.
    """

    name = NAME
    label = "Vertex AI Veo (Google Cloud)"
    api_name = "Veo on Vertex AI"
    description = "Google's Veo models on Vertex AI, with a google_cloud_platform connection: ...:predictLongRunning"
    default_path_prefix = "/v1"
    tasks_route = "/projects"
    no_cancel_reason = "Vertex AI documents no cancel for Veo's operations"
    # Google's own samples poll Veo operations every 15 s; a generation takes minutes.
    default_poll_interval = 15.0
    # An inline video lives in the operation; a gcsUri in the user's bucket (kept until they remove it).
    url_lifetime_hours = None  # type: ignore[assignment]  # (GeminiVeo says 48 h)
    uses_api_key = False
    probe_task_id = (
        "projects/airflow-connection-test/locations/us-central1/publishers/google/models/"
        "airflow-connection-test/operations/airflow-connection-test"
    )
    # Vertex refuses a bad or expired token with 401 UNAUTHENTICATED, a missing role with 403 PERMISSION_DENIED.
    auth_error_codes = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED", "ACCESS_TOKEN_EXPIRED"})
    not_found_codes = frozenset({"NOT_FOUND"})
    #: The query of a task is a POST of the operation's name (``fetchPredictOperation``).
    query_method = "POST"
    #: Dropped from the query's answer while it streams in: an inline video (see the module's docstring).
    elided_answer_members = (INLINE_MEMBER,)
    data_centers: ClassVar[tuple[DataCenter, ...]] = (
        DataCenter("us_central1", "Iowa (us-central1)", "https://us-central1-aiplatform.googleapis.com"),
        DataCenter("us_east4", "Virginia (us-east4)", "https://us-east4-aiplatform.googleapis.com"),
        DataCenter("europe_west4", "Netherlands (europe-west4)", "https://europe-west4-aiplatform.googleapis.com"),
        DataCenter("asia_northeast1", "Tokyo (asia-northeast1)", "https://asia-northeast1-aiplatform.googleapis.com"),
    )
    options = (
        ConnectionOption(
            "gcp_conn_id",
            "Google Cloud connection",
            "vertex_veo only: the Airflow google_cloud_platform connection whose credentials call Vertex AI "
            f"(default {DEFAULT_GCP_CONN_ID}).",
            DEFAULT_GCP_CONN_ID,
            pattern=r"[A-Za-z0-9_.\-]{1,250}",
        ),
        ConnectionOption(
            "project_id",
            "Google Cloud project",
            "vertex_veo only: the project (id or number) the generations run and are billed in.",
            "",
            pattern=rf"|{_PROJECT}",
        ),
        ConnectionOption(
            "location",
            "Vertex AI location",
            "vertex_veo only: the region the generations run in (e.g. us-central1, as in the host's name).",
            "",
            pattern=rf"|{_LOCATION}",
        ),
        ConnectionOption(
            "vertex_output_gcs_uri",
            "Vertex output GCS URI",
            "vertex_veo only: the gs:// prefix Vertex writes videos under (storageUri; a request's storage_uri "
            "wins); empty: videos come back inline.",
            "",
            pattern=r"|gs://\S+",
        ),
    )

    def __init__(
        self, gcp_conn_id: str = DEFAULT_GCP_CONN_ID, project_id: str = "", location: str = "", output_gcs_uri: str = ""
    ) -> None:
        self.gcp_conn_id = gcp_conn_id
        self.project_id = project_id
        self.location = location
        self.output_gcs_uri = output_gcs_uri

    def with_options(self, values: Mapping[str, str]) -> VertexVeo:
        """Return the style with the connection's Google connection, project, location and output prefix."""
        return VertexVeo(
            values.get("gcp_conn_id") or DEFAULT_GCP_CONN_ID,
            values.get("project_id") or "",
            values.get("location") or "",
            values.get("vertex_output_gcs_uri") or "",
        )

    def credential(self, api_key: str, base_url: str) -> GoogleCredential:
        """Return the Google connection's credentials, whose access token goes to ``base_url``'s origin only."""
        return GoogleCredential(self.gcp_conn_id, base_url)

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """None: the Bearer token is added per request by the credential."""
        return {}

    # ---- ids and routes ----

    def check_task_id(self, video_task_id: Any) -> str:
        """Accept exactly ``projects/<p>/locations/<l>/publishers/google/models/<m>/operations/<id>``, part by part."""
        if isinstance(video_task_id, str) and _OPERATION_RE.fullmatch(video_task_id):
            return video_task_id
        shown = repr(video_task_id) if len(repr(video_task_id)) <= 120 else repr(video_task_id)[:117] + "..."
        raise refused(
            f"Invalid Vertex AI operation name {shown}: a vertex_veo video task id is the operation name the "
            "create call returned, 'projects/<project>/locations/<location>/publishers/google/models/<model>/"
            "operations/<id>'; check the template or XCom that supplies it."
        )

    def create_route(self, request: VideoGenerationRequest) -> str:
        """``/projects/{project}/locations/{location}/publishers/google/models/{model}:predictLongRunning``."""
        model = super().create_route(request).removeprefix(f"{self.tasks_route}/")  # checked, with its verb
        if not self.project_id or not self.location:
            raise refused(
                "vertex_veo needs the Google Cloud project and the location the generation runs in: set the "
                "connection's project_id and location extras (e.g. 'my-project' and 'us-central1', the location "
                "of the host)."
            )
        return f"/projects/{self.project_id}/locations/{self.location}/publishers/google/models/{model}"

    def task_route(self, video_task_id: str) -> str:
        """Return the operation's model's ``:fetchPredictOperation`` (the operation name travels in the body)."""
        return f"/{self.check_task_id(video_task_id).partition('/operations/')[0]}:fetchPredictOperation"

    def query_body(self, video_task_id: str) -> dict[str, Any]:
        """``{"operationName": <the operation name>}``."""
        return {"operationName": self.check_task_id(video_task_id)}

    def file_stem(self, video_task_id: str) -> str:
        """Return ``<project>~<location>~<model>~<operation id>``: one name per operation, without ``/``.

        No part holds ``~``, so two operations never share a name.
        """
        found = _OPERATION_RE.fullmatch(self.check_task_id(video_task_id))
        assert found is not None
        return "~".join(found.groups())

    # ---- the request ----

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """Gemini's body, with ``gs://`` images as ``gcsUri`` and the output prefix as ``storageUri``."""
        extra = dict(request.extra_fields)
        storage = _storage_uri(extra, self.output_gcs_uri)
        stored_images = [url for url in request.image_urls if isinstance(url, str) and url.startswith("gs://")]
        if len(stored_images) > 1:
            raise refused("Only one first-frame image can be given on vertex_veo.")
        others = [url for url in request.image_urls if url not in stored_images]
        body = super().create_body(dataclasses.replace(request, image_urls=others, extra_fields=extra))
        instance = body["instances"][0]
        if stored_images:
            if "image" in instance:
                raise refused("Only one first-frame image can be given on vertex_veo (image_urls and image_file).")
            url = stored_images[0]
            mime_type = next((t for suffix, t in _IMAGE_TYPES.items() if url.lower().endswith(suffix)), "image/png")
            instance["image"] = {"gcsUri": url, "mimeType": mime_type}
        if storage:
            body.setdefault("parameters", {})["storageUri"] = storage
        return body

    # ---- answers ----

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read the operation: not ``done`` is running; ``error``, a filtered result or ``videos`` end it."""
        if "name" not in payload and "done" not in payload:
            raise ValueError("expected a long-running operation (name, done)")
        name = text(payload.get("name")) or video_task_id or ""
        found = _OPERATION_RE.fullmatch(name)
        common: dict[str, Any] = {"id": name, "model": found.group(3) if found else None, "raw": dict(payload)}
        if flag(payload.get("done")) is not True:
            return VideoTask(status=VideoTaskStatus.RUNNING, raw_status="running", format="mp4", **common)
        if "error" in payload:
            error = mapping(payload.get("error"))
            return VideoTask(
                status=VideoTaskStatus.FAILED,
                error_code=text(error.get("status")) or text(error.get("code")),
                error_message=text(error.get("message")) or "the operation ended with an error",
                **common,
            )
        return _task_of_result(mapping(payload.get("response")), common)

    def file_source(self, task: VideoTask, kind: str, task_url: str) -> FileSource | None:
        """Return the video: a ``gs://`` object in the user's bucket, or inline in the operation's answer."""
        if kind != "video" or not task.video_url:
            return None
        url = task.video_url
        if url.startswith(INLINE_URL_PREFIX):
            index = int(url.removeprefix(INLINE_URL_PREFIX))
            return FileSource(task_url, authenticated=True, inline_body=self.query_body(task.id), inline_index=index)
        return FileSource(url, conn_id=self.gcp_conn_id)


def _storage_uri(extra: dict[str, Any], default: str) -> str | None:
    """Take the output prefix out of a request's extra fields (``storage_uri`` or ``storageUri``), else ``default``.

    :param extra: the request's extra fields, a copy: the prefix's field is removed from it.
    :param default: the connection's ``vertex_output_gcs_uri`` (empty: the video comes back inline).
    :raises VideoGenConfigurationError: the prefix is not a ``gs://`` URI.
    """
    storage = extra.pop("storage_uri", None) or extra.pop("storageUri", None) or default
    if storage and (not isinstance(storage, str) or not _GCS_URI_RE.fullmatch(storage)):
        raise refused(
            f"storage_uri must be a gs:// prefix Vertex may write into (e.g. 'gs://my-bucket/videos/'), "
            f"got {storage!r}."
        )
    return storage


def _task_of_result(result: Mapping[str, Any], common: dict[str, Any]) -> VideoTask:
    """Read a finished operation's ``response``: its first video (``gcsUri`` or inline), else why there is none.

    :param common: the task's fields every outcome shares (id, model, raw answer).
    """
    videos = [mapping(v) for v in result.get("videos") or () if isinstance(v, Mapping)]
    for index, video in enumerate(videos):
        uri = text(video.get("gcsUri"))
        if uri:
            return VideoTask(status=VideoTaskStatus.SUCCEEDED, video_url=uri, format="mp4", **common)
        if INLINE_MEMBER in video:  # its value was dropped as the answer came in
            url = f"{INLINE_URL_PREFIX}{index}"
            return VideoTask(status=VideoTaskStatus.SUCCEEDED, video_url=url, format="mp4", **common)
    return no_video_failure(result, common)
