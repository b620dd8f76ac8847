"""The ``bedrock_video`` style: Amazon Bedrock's async invoke (Nova Reel, Luma Ray 2), signed by an aws connection.

``POST /async-invoke`` (``StartAsyncInvoke``) takes ``modelId``, the model's own ``modelInput``,
``outputDataConfig.s3OutputDataConfig.s3Uri`` (the user's S3 prefix, where the service writes the
video) and ``clientRequestToken``, the service's idempotency token: the same token with the same
body answers the same invocation and is not billed again, so a create repeated after a lost answer
(or by a retry of the task) cannot pay twice. The answer's ``invocationArn``
(``arn:aws:bedrock:<region>:<account>:async-invoke/<id>``) is the video task id.
``GET /async-invoke/{invocationArn}`` (``GetAsyncInvoke``, the ARN URL-encoded as one path segment)
says ``InProgress``, ``Completed`` or ``Failed`` (with ``failureMessage``); the video is then
``output.mp4`` in the invocation's folder under the prefix. There is no cancel call.

No key is kept in the ``videogen`` connection: requests are SigV4-signed (service ``bedrock``) with
the credentials of the Airflow ``aws`` connection its ``aws_conn_id`` extra names (see
:mod:`~airflow_provider_videogen.aws_credential`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.aws_credential import AwsCredential
from airflow_provider_videogen.styles.base import (
    ApiStyle,
    ConnectionOption,
    DataCenter,
    FileSource,
    epoch_seconds,
    mapping,
    one_image,
    refuse_fields,
    text,
    whole_seconds,
)
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest

NAME = "bedrock_video"
SIGNING_NAME = "bedrock"
_ARN_RE = re.compile(r"arn:aws(?:-[a-z]+)*:bedrock:([a-z0-9-]{1,20}):([0-9]{12}):async-invoke/([a-z0-9]{12})")
_HOST_RE = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_S3_URI_RE = re.compile(r"s3://[a-z0-9][.\-a-z0-9]{1,61}[a-z0-9](?:/.*)?")
_MODEL_RE = re.compile(r"[a-zA-Z_.\-/0-9:]{1,256}")
STATUSES = {
    "inprogress": VideoTaskStatus.RUNNING,
    "completed": VideoTaskStatus.SUCCEEDED,
    "failed": VideoTaskStatus.FAILED,
}
"""``GetAsyncInvoke``'s statuses, in lower case."""
#: The file the service writes in the invocation's folder.
OUTPUT_FILE = "output.mp4"
#: Nova Reel's one-shot length; longer videos are made shot by shot (``MULTI_SHOT_AUTOMATED``).
_NOVA_SHOT_SECONDS = 6
_NOVA_DIMENSIONS = {"720p": "1280x720"}
_LUMA_MEDIA_TYPES = ("image/jpeg", "image/png")


def client_request_token(identity: str | None, body: Mapping[str, Any]) -> str:
    """Return the ``clientRequestToken`` of a create: the same for the same request of the same task, else new.

    :param identity: a stable identity of whoever asks (the task instance's key); ``None`` (a hook
        called outside a task): a token of its own, so two calls with the same request make two
        videos, as on every other style (the hook's own retries of one call send the same body).
    :param body: the create body without the token (its hash: another request never shares it).
    """
    if identity is None:
        return f"videogen-{uuid.uuid4().hex}"
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{identity or ''}\n{canonical}".encode()).hexdigest()
    # The service takes 1-256 printable characters; a hash of 64 is one a person can compare.
    return f"videogen-{digest[:55]}"


class BedrockVideo(ApiStyle):
    """Amazon Bedrock's async invoke of video models: Nova Reel (``amazon.nova-reel-v1:*``) and Luma Ray 2.

    ``model`` is the Bedrock model id (or an inference profile's). The request's fields become the
    model family's ``modelInput``: for Nova Reel, ``prompt`` as ``textToVideoParams.text``,
    ``duration`` (6 s, or 12-120 s in steps of 6 made shot by shot), ``fps``, ``resolution``
    (``720p``), ``seed`` and one first-frame image (a ``data:`` URI or an ``s3://`` object); for
    Luma Ray 2, ``prompt``, ``ratio`` as ``aspect_ratio``, ``duration`` as ``"5s"``/``"9s"``,
    ``resolution`` and one first-frame image (a ``data:`` URI). ``generation_params`` entries go
    into ``modelInput`` as they are, but ``output_s3_uri``, the S3 prefix the service writes the
    video under (else the connection's ``bedrock_output_s3_uri`` extra).
    """

    name = NAME
    label = "Amazon Bedrock async invoke"
    description = "Amazon Bedrock async invoke (Nova Reel, Luma Ray 2), signed with an aws connection: /async-invoke"
    default_path_prefix = ""
    tasks_route = "/async-invoke"
    can_cancel = False
    no_cancel_reason = "Bedrock has no call that stops an async invocation"
    statuses = STATUSES
    uses_api_key = False
    idempotent_create = True
    not_found_codes = frozenset({"ResourceNotFoundException"})
    auth_error_codes = frozenset({"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException"})
    # Nova Reel takes about 90 s for 6 s of video, minutes for more.
    default_poll_interval = 15.0
    probe_task_id = "arn:aws:bedrock:us-east-1:000000000000:async-invoke/000000000000"
    data_centers: ClassVar[tuple[DataCenter, ...]] = (
        DataCenter("us_east_1", "US East (N. Virginia)", "https://bedrock-runtime.us-east-1.amazonaws.com"),
        DataCenter("us_west_2", "US West (Oregon)", "https://bedrock-runtime.us-west-2.amazonaws.com"),
        DataCenter("eu_west_1", "Europe (Ireland)", "https://bedrock-runtime.eu-west-1.amazonaws.com"),
        DataCenter("ap_northeast_1", "Asia Pacific (Tokyo)", "https://bedrock-runtime.ap-northeast-1.amazonaws.com"),
    )
    options = (
        ConnectionOption(
            "aws_conn_id",
            "AWS connection",
            "bedrock_video only: the Airflow aws connection whose credentials sign the requests (default aws_default).",
            "aws_default",
            pattern=r"[A-Za-z0-9_.\-]{1,250}",
        ),
        ConnectionOption(
            "region_name",
            "AWS region",
            "bedrock_video only: the region requests are signed for; empty: the data center's (or the host's) region.",
            "",
            pattern=r"|[a-z]{2}(?:-[a-z]+)+-[0-9]",
        ),
        ConnectionOption(
            "bedrock_output_s3_uri",
            "Bedrock output S3 URI",
            "bedrock_video only: the s3:// prefix Bedrock writes videos under (a request's output_s3_uri wins).",
            "",
            pattern=r"|s3://\S+",
        ),
    )

    def __init__(self, aws_conn_id: str = "aws_default", region_name: str = "", output_s3_uri: str = "") -> None:
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.output_s3_uri = output_s3_uri

    def with_options(self, values: Mapping[str, str]) -> BedrockVideo:
        """Return the style with the connection's AWS connection, region and output prefix."""
        return BedrockVideo(
            values.get("aws_conn_id") or "aws_default",
            values.get("region_name") or "",
            values.get("bedrock_output_s3_uri") or "",
        )

    def credential(self, api_key: str, base_url: str) -> AwsCredential:
        """Return the ``aws`` connection's credentials, signing for ``bedrock`` in the connection's region."""
        return AwsCredential(self.aws_conn_id, self.region_of(base_url), SIGNING_NAME, base_url)

    def region_of(self, base_url: str) -> str:
        """Return the signing region: the ``region_name`` extra, else the one in AWS's endpoint host."""
        if self.region_name:
            return self.region_name
        found = _HOST_RE.fullmatch(urlsplit(base_url).hostname or "")
        if found is None:
            raise refused(
                f"The bedrock_video connection's host {base_url!r} is not a Bedrock runtime endpoint "
                "(bedrock-runtime.<region>.amazonaws.com), so the region to sign for is unknown: set the "
                "region_name extra (e.g. 'us-east-1')."
            )
        return found.group(1)

    # ---- ids and routes ----

    def check_task_id(self, video_task_id: Any) -> str:
        """Accept exactly an invocation ARN: ``arn:aws:bedrock:<region>:<account>:async-invoke/<12 characters>``."""
        if isinstance(video_task_id, str) and _ARN_RE.fullmatch(video_task_id):
            return video_task_id
        shown = repr(video_task_id) if len(repr(video_task_id)) <= 100 else repr(video_task_id)[:97] + "..."
        raise refused(
            f"Invalid Bedrock invocation ARN {shown}: it is 'arn:aws:bedrock:<region>:<12-digit account>:"
            "async-invoke/<12 lower-case letters or digits>', as StartAsyncInvoke returns it (e.g. "
            "'arn:aws:bedrock:us-east-1:123456789012:async-invoke/abcd1234efgh'); check the template or XCom "
            "that supplies it."
        )

    def task_route(self, video_task_id: str) -> str:
        """``/async-invoke/{invocationArn}``, the ARN URL-encoded as one segment (as botocore sends it)."""
        return f"{self.tasks_route}/{quote(self.check_task_id(video_task_id), safe='')}"

    def file_stem(self, video_task_id: str) -> str:
        """Return ``<region>~<account>~<invocation id>``: one name per ARN, without ``:`` or ``/``."""
        found = _ARN_RE.fullmatch(self.check_task_id(video_task_id))
        assert found is not None
        return "~".join(found.groups())

    # ---- the request ----

    def create_body(self, request: VideoGenerationRequest) -> dict[str, Any]:
        """Return ``StartAsyncInvoke``'s body: ``modelId``, the family's ``modelInput``, output prefix, token."""
        request.check()
        model = request.model.strip()
        if not _MODEL_RE.fullmatch(model):
            raise refused(f"Invalid Bedrock model id {request.model!r}: use an id like 'amazon.nova-reel-v1:1'.")
        if request.content is not None:
            raise refused(
                "A content list is a contents_generations field; on bedrock_video pass prompt and image_urls."
            )
        refuse_fields(
            request,
            ("frames", "camera_fixed", "watermark", "generate_audio", "return_last_frame", "service_tier",
             "execution_expires_after", "callback_url", "width", "height"),
            NAME,
            "the Bedrock video models take prompt, duration, resolution, ratio, fps and seed (others go in "
            "generation_params, into modelInput as they are).",
        )  # fmt: skip
        extra = dict(request.extra_fields)
        output = _output_prefix(extra, self.output_s3_uri)
        model_input = _luma_input(request) if model.startswith("luma.") else _nova_input(request)
        model_input.update(extra)
        body: dict[str, Any] = {
            "modelId": model,
            "modelInput": model_input,
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": output}},
        }
        body["clientRequestToken"] = client_request_token(request.request_identity, body)
        return body

    def created_task_id(self, answer: Any) -> str | None:
        """Read ``invocationArn``."""
        return text(mapping(answer).get("invocationArn"))

    # ---- answers ----

    def is_task_answer(self, decoded: Any) -> bool:
        """Tell whether a 2xx answer names an invocation (its ``failureMessage`` is the task's, not the call's)."""
        return isinstance(decoded, Mapping) and ("invocationArn" in decoded or "status" in decoded)

    def api_error(self, decoded: Any) -> tuple[str | None, str | None]:
        """Read the service's error JSON: ``{"message"}`` (``Message`` from some front ends), ``__type`` if sent.

        The error's name travels in the ``x-amzn-ErrorType`` header (:meth:`error_code_header`).
        """
        found = mapping(decoded)
        code = text(found.get("__type"))
        code = code.rpartition("#")[2] if code else None
        return code, text(found.get("message")) or text(found.get("Message"))

    def error_code_header(self, headers: Mapping[str, str]) -> str | None:
        """Read ``x-amzn-ErrorType: ValidationException:http://internal...``: the part before the first ``:``."""
        found = text(headers.get("x-amzn-ErrorType"))
        return found.partition(":")[0] or None if found else None

    def parse_task(self, payload: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
        """Read ``GetAsyncInvoke``'s answer: its status, failure message, times and where the video is."""
        raw_status = text(payload.get("status"))
        if raw_status is None:
            raise ValueError("expected an async invocation (status)")
        arn = text(payload.get("invocationArn")) or video_task_id or ""
        status = VideoTaskStatus.from_api(raw_status, STATUSES)
        failed = status is VideoTaskStatus.FAILED
        succeeded = status is VideoTaskStatus.SUCCEEDED
        return VideoTask(
            id=arn,
            status=status,
            raw_status=raw_status,
            video_url=output_uri(payload, arn) if succeeded else None,
            model=text(payload.get("modelArn")),
            error_code="AsyncInvokeFailed" if failed else None,
            error_message=(text(payload.get("failureMessage")) or "the invocation failed") if failed else None,
            created_at=epoch_seconds(payload.get("submitTime")),
            updated_at=epoch_seconds(payload.get("endTime") or payload.get("lastModifiedTime")),
            format="mp4" if succeeded else None,
            progress=100 if succeeded else None,
            raw=dict(payload),
        )

    def file_source(self, task: VideoTask, kind: str, task_url: str) -> FileSource | None:
        """Return the video, an S3 object (``s3://...``) in the user's bucket; there is no last frame."""
        return FileSource(task.video_url, conn_id=self.aws_conn_id) if kind == "video" and task.video_url else None


def output_uri(payload: Mapping[str, Any], arn: str) -> str | None:
    """Return the ``s3://`` URI of the video of an invocation's answer (``None`` without an output prefix).

    The answer's ``s3Uri`` is the invocation's folder (``<prefix>/<invocation id>``); a prefix that
    does not end in the id yet gets it, as the service writes the video there.
    """
    s3_uri = text(mapping(mapping(payload.get("outputDataConfig")).get("s3OutputDataConfig")).get("s3Uri"))
    if s3_uri is None:
        return None
    folder = s3_uri.rstrip("/")
    found = _ARN_RE.fullmatch(arn)
    invocation_id = found.group(3) if found else None
    if invocation_id and not folder.endswith(f"/{invocation_id}"):
        folder = f"{folder}/{invocation_id}"
    return f"{folder}/{OUTPUT_FILE}"


def _output_prefix(extra: dict[str, Any], default: str) -> str:
    """Take the S3 prefix Bedrock writes the video under out of the extra fields (``output_s3_uri``), else ``default``.

    :param extra: the request's extra fields, a copy: ``output_s3_uri`` is removed from it.
    :param default: the connection's ``bedrock_output_s3_uri``.
    :raises VideoGenConfigurationError: there is no prefix, or it is not an ``s3://`` one.
    """
    output = extra.pop("output_s3_uri", None) or default
    if not isinstance(output, str) or not _S3_URI_RE.fullmatch(output):
        raise refused(
            f"bedrock_video needs the S3 prefix Bedrock writes the video under, got {output!r}: pass "
            "generation_params={'output_s3_uri': 's3://my-bucket/videos/'} or set the connection's "
            "bedrock_output_s3_uri extra."
        )
    return output


# ---- model families ----------------------------------------------------------------------------


def _nova_input(request: VideoGenerationRequest) -> dict[str, Any]:
    """Nova Reel: ``TEXT_VIDEO`` (6 s, an optional first frame) or ``MULTI_SHOT_AUTOMATED`` (12-120 s)."""
    refuse_fields(request, ("ratio",), NAME, "Nova Reel makes 1280x720 (16:9) videos only.")
    seconds = whole_seconds(request.duration, " (6, or 12 to 120 in steps of 6)") if request.duration else 6
    if seconds != _NOVA_SHOT_SECONDS and (seconds % _NOVA_SHOT_SECONDS or not 12 <= seconds <= 120):
        raise refused(f"Nova Reel makes videos of 6 s, or 12 to 120 s in steps of 6, got duration={seconds}.")
    config: dict[str, Any] = {"durationSeconds": seconds, "fps": request.fps or 24}
    resolution = request.resolution or "720p"
    if resolution not in _NOVA_DIMENSIONS and resolution not in _NOVA_DIMENSIONS.values():
        raise refused(f"Nova Reel makes 720p (1280x720) videos only, got resolution={resolution!r}.")
    config["dimension"] = _NOVA_DIMENSIONS.get(resolution, resolution)
    if request.seed is not None:
        config["seed"] = request.seed
    params: dict[str, Any] = {"text": request.prompt or ""}
    image = one_image(request, NAME)
    if seconds > _NOVA_SHOT_SECONDS:
        if image is not None:
            raise refused("Nova Reel takes a first-frame image only for a 6 s video (TEXT_VIDEO), not a longer one.")
        return {"taskType": "MULTI_SHOT_AUTOMATED", "multiShotAutomatedParams": params, "videoGenerationConfig": config}
    if image is not None:
        params["images"] = [_nova_image(image)]
    return {"taskType": "TEXT_VIDEO", "textToVideoParams": params, "videoGenerationConfig": config}


def _nova_image(url: str) -> dict[str, Any]:
    if url.startswith("s3://"):
        return {"format": "png" if url.lower().endswith(".png") else "jpeg", "source": {"s3Location": {"uri": url}}}
    media_type, data = _data_uri(url)
    return {"format": media_type.partition("/")[2], "source": {"bytes": data}}


def _luma_input(request: VideoGenerationRequest) -> dict[str, Any]:
    """Luma Ray 2: ``prompt``, ``aspect_ratio``, ``duration`` as ``"5s"``, ``resolution``, a first-frame keyframe."""
    refuse_fields(request, ("seed", "fps"), NAME, "Luma Ray 2 on Bedrock takes no seed or fps.")
    model_input: dict[str, Any] = {"prompt": request.prompt or ""}
    if request.ratio is not None:
        model_input["aspect_ratio"] = request.ratio
    if request.duration is not None:
        model_input["duration"] = f"{whole_seconds(request.duration, ' (5 or 9)')}s"
    if request.resolution is not None:
        model_input["resolution"] = request.resolution
    image = one_image(request, NAME)
    if image is not None:
        media_type, data = _data_uri(image)
        source = {"type": "base64", "media_type": media_type, "data": data}
        model_input["keyframes"] = {"frame0": {"type": "image", "source": source}}
    return model_input


def _data_uri(url: str) -> tuple[str, str]:
    """Return the media type and the base64 data of a ``data:image/...;base64,`` URI; refuse anything else."""
    head, _, data = url.partition(",")
    media_type = head.removeprefix("data:").removesuffix(";base64")
    if not head.startswith("data:") or not head.endswith(";base64") or media_type not in _LUMA_MEDIA_TYPES:
        raise refused(
            "Bedrock's video models take an input image as its bytes, not a URL: pass a "
            "'data:image/png;base64,...' or 'data:image/jpeg;base64,...' URI (Nova Reel also takes an s3:// "
            f"object), got {url[:40]!r}."
        )
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise refused("The input image's data: URI does not hold valid base64.") from None
    return media_type, data
