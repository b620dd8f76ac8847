"""The ``bedrock_video`` style: Bedrock's async invoke, SigV4-signed with an Airflow ``aws`` connection.

The simulator serves the Bedrock runtime routes and writes each finished video into a real S3 server
(moto, on loopback), as Bedrock writes into the user's bucket. Needs the ``[s3]`` extra and ``moto[server]``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import uuid
from typing import Any
from urllib.parse import quote

import pytest

pytest.importorskip("airflow.providers.amazon")
pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

from airflow_provider_videogen.exceptions import (  # noqa: E402
    VideoGenAPIError,
    VideoGenConfigurationError,
    VideoGenNotSupportedError,
    VideoGenTransientError,
)
from airflow_provider_videogen.generation_request import VideoGenerationRequest  # noqa: E402
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook  # noqa: E402
from airflow_provider_videogen.operators.videogen import FetchVideoOperator  # noqa: E402
from airflow_provider_videogen.settings import VideoGenConnectionSettings  # noqa: E402
from airflow_provider_videogen.styles import get_style  # noqa: E402
from airflow_provider_videogen.styles.bedrock import client_request_token  # noqa: E402
from airflow_provider_videogen.testing._media import video_sha256  # noqa: E402
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger  # noqa: E402
from airflow_provider_videogen.video_task import VideoTaskStatus  # noqa: E402
from tests.conftest import BEDROCK_AWS_CONN, BEDROCK_BUCKET, BEDROCK_SECRET  # noqa: E402

pytestmark = pytest.mark.s3

STYLE = get_style("bedrock_video")
FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.02)
CONN = "vg_bedrock"
AWS_CONN = BEDROCK_AWS_CONN
BUCKET = BEDROCK_BUCKET
NOVA = "amazon.nova-reel-v1:1"
LUMA = "luma.ray-v2:0"
SECRET = BEDROCK_SECRET
ARN = "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abcd1234efgh"
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def s3(bedrock_s3_endpoint: str) -> Any:
    keys = {"aws_access_key_id": "t", "aws_secret_access_key": "t", "region_name": "us-east-1"}
    return boto3.client("s3", endpoint_url=bedrock_s3_endpoint, **keys)


@pytest.fixture
def prefix() -> str:
    return f"bedrock/{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bedrock(bedrock_connection, prefix: str) -> str:
    """A ``bedrock_video`` connection to the simulator, borrowing the ``aws`` connection ``AWS_CONN``."""
    return bedrock_connection(CONN, f"s3://{BUCKET}/{prefix}")


def hook() -> VideoGenHook:
    return VideoGenHook(CONN, retry_policy=FAST)


def body(model: str = NOVA, identity: str | None = "dag/task/run/-1", **fields: Any) -> dict[str, Any]:
    fields.setdefault("output_s3_uri", f"s3://{BUCKET}/videos")
    return STYLE.create_body(VideoGenerationRequest.from_fields(model=model, request_identity=identity, **fields))


def invocation(sim, prompt: str = "a fox", **kwargs: Any) -> str:
    """Create an invocation through the hook; return its ARN."""
    return hook().create_task(model=NOVA, prompt=prompt, **kwargs)


# ---- the connection and the signature -------------------------------------------------------------


def test_the_connection_holds_no_key_and_refuses_one():
    settings = VideoGenConnectionSettings.from_connection_fields(
        "c", host=None, password=None, extra={"api_style": "bedrock_video", "data_center": "us-west-2"}
    )
    assert settings.base_url == "https://bedrock-runtime.us-west-2.amazonaws.com"
    assert settings.credential.region_name == "us-west-2"  # type: ignore[union-attr]
    assert settings.credential.aws_conn_id == "aws_default"  # type: ignore[union-attr]
    with pytest.raises(VideoGenConfigurationError, match="never sends a key"):
        VideoGenConnectionSettings.from_connection_fields(
            "c", host=None, password="sk-123", extra={"api_style": "bedrock_video"}
        )


def test_a_host_that_is_not_aws_needs_the_region_name_extra():
    settings = VideoGenConnectionSettings.from_connection_fields(
        "c", host="http://127.0.0.1:9", password=None, extra={"api_style": "bedrock_video"}
    )
    with pytest.raises(VideoGenConfigurationError, match="set the region_name extra"):
        _ = settings.credential


def test_every_call_is_sigv4_signed_for_bedrock_in_the_region_with_the_aws_connection_s_key(sim, bedrock):
    arn = invocation(sim)
    hook().get_task(arn)

    calls = sim.requests(target="create") + sim.requests(target="query")
    assert len(calls) == 2
    for call in calls:
        authorization = call["headers"]["Authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDBEDROCKTEST/")
        assert "/us-east-1/bedrock/aws4_request" in authorization
        assert "X-Amz-Date" in call["headers"]
        assert SECRET not in json.dumps(call)


def test_the_invocation_arn_is_url_encoded_in_the_path_as_botocore_sends_it(sim, bedrock):
    import botocore.session
    from botocore.serialize import create_serializer

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    botocore_request = create_serializer("rest-json").serialize_to_request(
        {"invocationArn": ARN}, model.operation_model("GetAsyncInvoke")
    )
    assert STYLE.task_route(ARN) == botocore_request["url_path"] == f"/async-invoke/{quote(ARN, safe='')}"
    arn = invocation(sim)
    assert hook().get_task(arn).id == arn  # the simulator reads the ARN back whole from the encoded segment


def test_an_unsigned_request_is_refused_as_aws_refuses_it(sim, bedrock):
    import requests

    answer = requests.get(f"{sim.base_url}/async-invoke/{quote(ARN, safe='')}", timeout=5)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"].startswith("UnrecognizedClientException")


# ---- the request ---------------------------------------------------------------------------------


def test_a_nova_reel_body_is_text_video_with_its_generation_config_and_the_output_prefix():
    sent = body(prompt="a fox", duration=6, seed=7, image_urls=[PNG])
    assert sent["modelId"] == NOVA
    assert sent["outputDataConfig"] == {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/videos"}}
    assert sent["modelInput"] == {
        "taskType": "TEXT_VIDEO",
        "textToVideoParams": {"text": "a fox", "images": [{"format": "png", "source": {"bytes": "iVBORw0KGgo="}}]},
        "videoGenerationConfig": {"durationSeconds": 6, "fps": 24, "dimension": "1280x720", "seed": 7},
    }


def test_a_nova_reel_video_longer_than_one_shot_is_made_shot_by_shot():
    sent = body(prompt="a fox", duration=18)
    assert sent["modelInput"]["taskType"] == "MULTI_SHOT_AUTOMATED"
    assert sent["modelInput"]["multiShotAutomatedParams"] == {"text": "a fox"}
    with pytest.raises(VideoGenConfigurationError, match="steps of 6"):
        body(prompt="a fox", duration=10)


def test_a_luma_ray_body_takes_its_own_names_and_a_keyframe():
    sent = body(LUMA, prompt="a fox", ratio="16:9", duration=5, resolution="720p", image_urls=[PNG], loop=True)
    frame = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert sent["modelInput"] == {
        "prompt": "a fox",
        "aspect_ratio": "16:9",
        "duration": "5s",
        "resolution": "720p",
        "keyframes": {"frame0": frame},
        "loop": True,
    }


def test_an_image_url_is_refused_as_bedrock_takes_the_bytes():
    with pytest.raises(VideoGenConfigurationError, match="data:image/png;base64"):
        body(prompt="a fox", image_urls=["https://example.com/a.png"])


def test_a_request_without_an_output_prefix_is_refused_before_anything_is_sent():
    with pytest.raises(VideoGenConfigurationError, match="output_s3_uri"):
        STYLE.create_body(VideoGenerationRequest.from_fields(model=NOVA, prompt="p"))


def test_the_client_request_token_is_the_same_for_the_same_task_and_request_and_differs_otherwise():
    token = body(prompt="a fox")["clientRequestToken"]
    assert token == body(prompt="a fox")["clientRequestToken"]
    assert token != body(prompt="a cat")["clientRequestToken"]
    assert token != body(prompt="a fox", identity="dag/task/other-run/-1")["clientRequestToken"]
    assert 1 <= len(token) <= 256 and token.isprintable() and " " not in token
    # Outside a task (a hook called from a script) every call is a generation of its own.
    assert client_request_token(None, {"a": 1}) != client_request_token(None, {"a": 1})


# ---- idempotency: a repeated create pays once ----------------------------------------------------


def test_a_create_whose_answer_was_lost_is_repeated_with_the_same_token_and_pays_once(sim, bedrock):
    # The service takes the create, then the answer is cut: the retry gets the same invocation.
    sim.add_fault(kind="truncate", target="create", truncate_at=5, times=1)
    arn = invocation(sim)

    creates = sim.requests(target="create")
    assert len(creates) == 2
    assert len({c["body"]["clientRequestToken"] for c in creates}) == 1
    assert [t["id"] for t in sim.tasks() if t["style"] == "bedrock_video"] == [arn]


def test_a_retry_of_the_task_repeating_the_create_gets_the_same_invocation(sim, bedrock):
    request = VideoGenerationRequest.from_fields(model=NOVA, prompt="a fox", request_identity="d/t/r/-1")
    first = hook().create_task(request)
    again = hook().create_task(request)  # a second try of the same task instance
    other = hook().create_task(
        VideoGenerationRequest.from_fields(model=NOVA, prompt="a fox", request_identity="d/t/r2/-1")
    )

    assert first == again != other
    assert len([t for t in sim.tasks() if t["style"] == "bedrock_video"]) == 2


def test_the_same_token_with_another_body_is_the_service_s_conflict(sim, bedrock):
    sent = body(prompt="a fox")
    import requests

    from airflow_provider_videogen.aws_credential import AwsCredential

    credential = AwsCredential(AWS_CONN, "us-east-1", "bedrock", sim.base_url)
    url = f"{sim.base_url}/async-invoke"
    for prompt in ("a fox", "a cat"):
        sent["modelInput"]["textToVideoParams"]["text"] = prompt
        data = json.dumps(sent).encode()
        answer = requests.post(url, data=data, headers=credential.sign("POST", url, data, {}), timeout=5)
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"].startswith("ConflictException")

    with pytest.raises(VideoGenAPIError, match="ConflictException"):
        hook()._client.send(_create_call(sent))


def _create_call(sent: dict[str, Any]) -> Any:
    from airflow_provider_videogen.client import ApiRequest

    settings = hook().settings
    return ApiRequest(
        "POST", settings.tasks_url, "create", settings, json_body=sent, policy=RetryPolicy(max_attempts=1)
    )


# ---- the id --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "abcd1234efgh",
        "arn:aws:bedrock:us-east-1:123456789012:async-invoke/ABCD1234EFGH",
        "arn:aws:bedrock:us-east-1:1234:async-invoke/abcd1234efgh",
        "arn:aws:s3:us-east-1:123456789012:async-invoke/abcd1234efgh",
        "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abcd1234efgh/../x",
        "arn:aws:bedrock:us-east-1:123456789012:async-invoke/abcd1234efgh?x=1",
        ARN + "\n",
    ],
)
def test_an_id_that_is_not_an_invocation_arn_is_refused_before_any_request(sim, bedrock, bad):
    with pytest.raises(VideoGenConfigurationError, match="Invalid Bedrock invocation ARN"):
        hook().get_task(bad)
    assert sim.requests() == []


def test_a_file_stem_is_the_arn_s_parts_without_separators():
    assert STYLE.file_stem(ARN) == "us-east-1~123456789012~abcd1234efgh"


# ---- statuses and errors -------------------------------------------------------------------------


def test_every_status_reads_as_its_task_status(sim, bedrock, prefix):
    arn = invocation(sim)
    expected = {"queued": "running", "running": "running", "succeeded": "succeeded", "failed": "failed"}
    for pinned, status in expected.items():
        sim.set_status(arn, pinned)
        assert hook().get_task(arn).status is VideoTaskStatus(status)
    task = hook().get_task(arn)
    assert task.error_code == "AsyncInvokeFailed" and task.error_message


def test_a_failed_invocation_carries_the_failure_message(sim, bedrock):
    arn = invocation(sim, prompt="a fox [sim:fail]")
    sim.set_status(arn, "failed")
    task = hook().get_task(arn)
    assert task.status is VideoTaskStatus.FAILED
    assert "sensitive" in (task.error_message or "")


def test_a_completed_invocation_s_video_is_output_mp4_in_its_folder_under_the_prefix(sim, bedrock, prefix):
    arn = invocation(sim)
    sim.set_status(arn, "succeeded")
    task = hook().get_task(arn)
    assert task.video_url == f"s3://{BUCKET}/{prefix}/{arn.rsplit('/', 1)[1]}/output.mp4"


def test_a_validation_exception_is_refused_with_the_service_s_message(sim, bedrock):
    with pytest.raises(VideoGenAPIError, match="ValidationException"):
        invocation(sim, prompt="[sim:invalid-request]")


def test_a_throttled_create_is_retried_and_pays_once(sim, bedrock):
    sim.add_fault(kind="http_error", target="create", status=429, times=1)
    arn = invocation(sim)
    assert [r["status"] for r in sim.requests(target="create")] == [429, 200]
    assert sim.requests(target="create")[0]["headers"]  # answered by the service's own error shape
    assert [t["id"] for t in sim.tasks() if t["style"] == "bedrock_video"] == [arn]


def test_a_throttling_exception_past_the_retries_is_transient(sim, bedrock):
    arn = invocation(sim)
    sim.add_fault(kind="http_error", target="query", status=429, times=0)
    with pytest.raises(VideoGenTransientError, match="ThrottlingException"):
        hook().get_task(arn)


def test_bedrock_cannot_cancel(sim, bedrock):
    arn = invocation(sim)
    with pytest.raises(VideoGenNotSupportedError, match="no call that stops"):
        hook().cancel_task(arn)


# ---- the wait ------------------------------------------------------------------------------------


def test_the_deferred_wait_ends_with_the_video_and_does_no_blocking_io_on_the_event_loop(sim, bedrock, monkeypatch):
    from airflow.sdk import BaseHook

    from airflow_provider_videogen import aws_credential

    arn = invocation(sim)
    loop_threads: set[int] = set()
    blocking_on_loop: list[str] = []
    real_resolve = aws_credential._session_credentials

    def session_credentials(*args: Any) -> Any:
        if threading.get_ident() in loop_threads:
            blocking_on_loop.append("credential resolution")
        return real_resolve(*args)

    def sync_get_connection(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() in loop_threads:
            blocking_on_loop.append("sync get_connection")
        return real_get_connection(*args, **kwargs)

    real_get_connection = BaseHook.get_connection
    monkeypatch.setattr(aws_credential, "_session_credentials", session_credentials)
    monkeypatch.setattr(BaseHook, "get_connection", sync_get_connection)
    trigger = VideoTaskTrigger(arn, videogen_conn_id=CONN, poll_interval=0.1)
    assert SECRET not in json.dumps(trigger.serialize())

    async def first_event() -> Any:
        loop_threads.add(threading.get_ident())
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    assert blocking_on_loop == []
    assert SECRET not in json.dumps(event.payload)
    assert all(r["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256") for r in sim.requests(target="query"))


@pytest.fixture
def refused_role(bedrock_connection, prefix: str, monkeypatch) -> str:
    """A ``bedrock_video`` connection whose aws connection assumes a role through an STS nobody answers."""
    from tests.e2e.deployment import free_port

    aws = {
        "conn_type": "aws",
        "login": "AKIDROLETEST",
        "password": SECRET,
        "extra": {
            "region_name": "us-east-1",
            "role_arn": "arn:aws:iam::123456789012:role/videogen-bedrock",
            "service_config": {"sts": {"endpoint_url": f"http://127.0.0.1:{free_port()}"}},
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_AWS_ROLE_TEST", json.dumps(aws))
    bedrock_connection(CONN, f"s3://{BUCKET}/{prefix}")
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN.upper()}",
        json.dumps(
            {
                **json.loads(os.environ[f"AIRFLOW_CONN_{CONN.upper()}"]),
                "extra": {
                    **json.loads(os.environ[f"AIRFLOW_CONN_{CONN.upper()}"])["extra"],
                    "aws_conn_id": "aws_role_test",
                },
            }
        ),
    )
    return CONN


def test_a_role_sts_will_not_give_is_an_auth_error_naming_the_aws_connection_in_the_worker(sim, refused_role):
    from airflow_provider_videogen.exceptions import VideoGenAuthError

    with pytest.raises(VideoGenAuthError, match=r"aws connection 'aws_role_test'.*sts:AssumeRole") as raised:
        invocation(sim)
    assert SECRET not in str(raised.value)
    assert sim.requests(target="create") == []


def test_a_role_sts_will_not_give_ends_the_deferred_wait_with_that_error(sim, refused_role):
    trigger = VideoTaskTrigger(ARN, videogen_conn_id=CONN, poll_interval=0.1)

    event = asyncio.run(trigger.run().__anext__())

    assert event.payload["status"] == "error", event.payload
    assert "aws connection 'aws_role_test'" in event.payload["message"]
    assert SECRET not in json.dumps(event.payload)


# ---- landing -------------------------------------------------------------------------------------


def fetch(**kwargs: Any) -> dict[str, Any]:
    operator = FetchVideoOperator(task_id="fetch", videogen_conn_id=CONN, http_retry_policy=FAST, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def test_without_a_destination_fetch_returns_the_video_s_s3_uri_which_holds_the_video(sim, bedrock, s3, prefix):
    arn = invocation(sim, prompt="a fox [sim:size=300000]")
    sim.set_status(arn, "succeeded")

    result = fetch(video_task_id=arn)

    key = f"{prefix}/{arn.rsplit('/', 1)[1]}/output.mp4"
    assert result["video_url"] == f"s3://{BUCKET}/{key}"
    written = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(written).hexdigest() == video_sha256(arn, 300_000)
    assert SECRET not in json.dumps(result)


def completed(sim, prompt: str = "a fox [sim:size=300000]") -> str:
    """An invocation that completed, its video written into the bucket; return its ARN."""
    arn = invocation(sim, prompt=prompt)
    sim.set_status(arn, "succeeded")
    hook().get_task(arn)  # its first Completed answer: the simulator writes output.mp4 first
    return arn


def test_with_an_s3_destination_the_video_is_copied_server_side_verified_and_recorded(
    sim, bedrock, s3, prefix, server_side_copies
):
    arn = completed(sim)

    result = fetch(video_task_id=arn, destination=f"s3://{BUCKET}/{prefix}/landed/", dest_conn_id=AWS_CONN)

    stem = STYLE.file_stem(arn)
    assert result["video_path"] == f"s3://{BUCKET}/{prefix}/landed/{stem}.mp4"
    assert result["sha256"] == video_sha256(arn, 300_000) and result["size_bytes"] == 300_000
    landed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/landed/")["Contents"])
    assert landed == [f"{prefix}/landed/{stem}.mp4", f"{prefix}/landed/{stem}.mp4.videogen.json"]
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=landed[1])["Body"].read())
    assert record["sha256"] == result["sha256"] and record["video_task_id"] == arn
    # A server-side copy into a hidden temporary beside the destination (then moved into place): no download.
    source, temporary = server_side_copies[0]
    assert source.endswith("/output.mp4") and f"/landed/.{stem}.mp4." in temporary
    # The paid video stays where Bedrock wrote it.
    s3.head_object(Bucket=BUCKET, Key=f"{prefix}/{arn.rsplit('/', 1)[1]}/output.mp4")


def test_with_a_local_destination_the_video_is_streamed_from_s3_and_a_retry_copies_nothing(
    sim, bedrock, tmp_path, caplog
):
    arn = completed(sim)

    first = fetch(video_task_id=arn, destination=f"{tmp_path.as_uri()}/")
    again = fetch(video_task_id=arn, destination=f"{tmp_path.as_uri()}/")

    video = tmp_path / f"{STYLE.file_stem(arn)}.mp4"
    assert hashlib.sha256(video.read_bytes()).hexdigest() == first["sha256"] == video_sha256(arn, 300_000)
    assert again["sha256"] == first["sha256"]
    assert "nothing to download" in caplog.text


def test_an_object_that_is_not_a_whole_mp4_is_not_landed(sim, bedrock, s3, prefix, tmp_path):
    arn = completed(sim)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{arn.rsplit('/', 1)[1]}/output.mp4", Body=b"<html>denied</html>")

    from airflow_provider_videogen.exceptions import VideoContentError

    with pytest.raises(VideoContentError, match="is not"):
        fetch(video_task_id=arn, destination=f"{tmp_path.as_uri()}/")
    assert list(tmp_path.iterdir()) == []


def test_a_completed_invocation_whose_video_is_missing_says_so(sim, bedrock, s3, prefix, tmp_path):
    arn = completed(sim)
    s3.delete_object(Bucket=BUCKET, Key=f"{prefix}/{arn.rsplit('/', 1)[1]}/output.mp4")

    from airflow_provider_videogen.exceptions import VideoNotAvailableError

    with pytest.raises(VideoNotAvailableError, match="object does not exist"):
        fetch(video_task_id=arn, destination=f"{tmp_path.as_uri()}/")
    assert list(tmp_path.iterdir()) == []
