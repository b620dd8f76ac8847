"""The ``gemini_veo`` style (Veo through the Gemini API): its request, its operations, its file and its key."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_videogen.exceptions import (
    VideoFileKeyRefusedError,
    VideoGenAPIError,
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenNotSupportedError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.settings import VideoGenConnectionSettings
from airflow_provider_videogen.testing._media import frame_png, video_sha256
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_task import VideoTaskStatus
from tests.loopback import API_KEY
from tests.styles.style_cases import FAST, StyleCase

CASE = StyleCase("gemini_veo", "vg_gemini")
STYLE = CASE.style
NAME = "models/veo-3.1-generate-preview/operations/op123"
PNG = "data:image/png;base64,iVBORw0KGgo="


def body(**fields: Any) -> dict[str, Any]:
    return STYLE.create_body(VideoGenerationRequest.from_fields(model="veo-3.1-generate-preview", **fields))


# ---- the request ---------------------------------------------------------------------------------


def test_the_request_puts_the_prompt_in_the_instance_and_the_options_in_parameters():
    assert body(
        prompt="a paper boat",
        ratio="9:16",
        resolution="1080p",
        duration=8,
        seed=7,
        negative_prompt="rain",
        personGeneration="allow_adult",
    ) == {
        "instances": [{"prompt": "a paper boat"}],
        "parameters": {
            "aspectRatio": "9:16",
            "resolution": "1080p",
            "durationSeconds": 8,
            "seed": 7,
            "negativePrompt": "rain",
            "personGeneration": "allow_adult",
        },
    }


def test_images_are_sent_as_bytes_by_role():
    sent = body(
        prompt="p",
        image_urls=[PNG, {"url": "data:image/jpeg;base64,/9j/", "role": "last_frame"}],
    )["instances"][0]
    assert sent["image"] == {"bytesBase64Encoded": "iVBORw0KGgo=", "mimeType": "image/png"}
    assert sent["lastFrame"] == {"bytesBase64Encoded": "/9j/", "mimeType": "image/jpeg"}
    refs = body(prompt="p", image_urls=[{"url": PNG, "role": "reference_image"}])["instances"][0]["referenceImages"]
    assert refs == [
        {"image": {"bytesBase64Encoded": "iVBORw0KGgo=", "mimeType": "image/png"}, "referenceType": "asset"}
    ]


def test_a_local_image_file_goes_inline_as_the_first_frame(tmp_path: Path):
    png = frame_png("first")
    (tmp_path / "first.png").write_bytes(png)
    sent = body(prompt="p", image_file=str(tmp_path / "first.png"))["instances"][0]
    assert sent["image"] == {"bytesBase64Encoded": base64.b64encode(png).decode(), "mimeType": "image/png"}
    assert STYLE.create_uploads(VideoGenerationRequest(model="m", image_file=png)) == []
    with pytest.raises(VideoGenConfigurationError, match="Only one first_frame image"):
        body(prompt="p", image_urls=[PNG], image_file=png)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"image_urls": ["https://x/i.png"]}, "takes images as bytes, not URLs"),
        ({"generate_audio": True}, "no generate_audio"),
        ({"return_last_frame": True}, "no return_last_frame"),
        ({"width": 1280, "height": 720}, "no width .* no height"),
        ({"frames": 120}, "no frames"),
        ({"duration": 4.5}, "whole number of seconds"),
        ({"prompt": None}, "needs a prompt or a first-frame image"),
    ],
)
def test_what_the_gemini_api_lacks_is_refused_before_sending(fields, reason):
    with pytest.raises(VideoGenConfigurationError, match=reason):
        body(**{"prompt": "p", **fields})


def test_the_create_route_names_the_model_and_refuses_one_that_leaves_the_path():
    request = VideoGenerationRequest(model="veo-3.0-fast-generate-001", prompt="p")
    assert STYLE.create_route(request) == "/models/veo-3.0-fast-generate-001:predictLongRunning"
    with pytest.raises(VideoGenConfigurationError, match="Invalid Gemini model name"):
        STYLE.create_route(VideoGenerationRequest(model="../files/x", prompt="p"))


# ---- the task id: the operation name -------------------------------------------------------------


def test_the_operation_name_is_the_route():
    assert STYLE.task_route(NAME) == f"/{NAME}"
    assert STYLE.created_task_id({"name": NAME}) == NAME


def test_files_are_named_by_model_and_operation_without_slashes():
    assert STYLE.file_stem(NAME) == "veo-3.1-generate-preview_op123"


def test_different_operations_never_get_the_same_file_name():
    assert STYLE.file_stem("models/veo_3/operations/abc") != STYLE.file_stem("models/veo/operations/3_abc")
    parts = ["veo", "veo_3", "3_abc", "abc", "a_", "a__b", "a_b_", "a.b", "a-b"]
    names = [f"models/{model}/operations/{op}" for model in parts for op in parts]
    stems = {STYLE.file_stem(name) for name in names}
    assert len(stems) == len(names)
    assert all("/" not in stem for stem in stems)


@pytest.mark.parametrize(
    "bad",
    [
        "op123",
        "operations/op123",
        "models/veo/operations/op123/extra",
        "models/veo/operations/../files",
        "models/../operations/x",
        "models/veo/operations/a?alt=media",
        "models/veo/operations/a#b",
        "models/veo/operations/a%2Fb",
        "models/veo/operations/a b",
        "models/veo/operations/",
        "/models/veo/operations/x",
        "models/veo/operations/" + "x" * 200,
        None,
    ],
)
def test_an_id_that_is_not_exactly_an_operation_name_is_refused(bad):
    with pytest.raises(VideoGenConfigurationError, match="models/<model>/operations/<id>"):
        STYLE.task_route(bad)


# ---- the operation, in each state ---------------------------------------------------------------


def test_an_operation_not_done_is_running():
    for payload in ({"name": NAME}, {"name": NAME, "done": False, "metadata": {}}):
        task = STYLE.parse_task(payload, NAME)
        assert (task.status, task.id, task.model) == (VideoTaskStatus.RUNNING, NAME, "veo-3.1-generate-preview")


def test_an_operation_done_with_samples_succeeded_with_the_first_video_uri():
    uri = "https://generativelanguage.googleapis.com/v1beta/files/abc:download?alt=media"
    payload = {
        "name": NAME,
        "done": True,
        "response": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
            "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]},
        },
    }
    task = STYLE.parse_task(payload, NAME)
    assert (task.status, task.video_url, task.format) == (VideoTaskStatus.SUCCEEDED, uri, "mp4")


def test_an_operation_done_with_an_error_failed_with_its_code_and_message():
    payload = {"name": NAME, "done": True, "error": {"code": 13, "message": "Internal error."}}
    task = STYLE.parse_task(payload, NAME)
    assert (task.status, task.error_code, task.error_message) == (VideoTaskStatus.FAILED, "13", "Internal error.")


def test_a_filtered_result_is_a_failure_with_the_filters_reason():
    result = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["Unable to generate: sensitive words."]}
    payload = {"name": NAME, "done": True, "response": {"generateVideoResponse": result}}
    task = STYLE.parse_task(payload, NAME)
    assert task.status is VideoTaskStatus.FAILED
    assert (task.error_code, task.error_message) == ("RAI_MEDIA_FILTERED", "Unable to generate: sensitive words.")
    assert "RAI_MEDIA_FILTERED" in task.describe_failure()


def test_a_done_operation_without_a_video_is_a_failure_not_a_wait():
    task = STYLE.parse_task({"name": NAME, "done": True, "response": {"generateVideoResponse": {}}}, NAME)
    assert (task.status, task.error_code) == (VideoTaskStatus.FAILED, "NO_VIDEO")


def test_an_answer_that_is_no_operation_is_refused():
    with pytest.raises(ValueError, match="long-running operation"):
        STYLE.parse_task({"status": "ok"}, NAME)


def test_errors_read_as_google_rpc_status_with_the_reason_first():
    bad_key = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    assert STYLE.api_error(bad_key) == ("API_KEY_INVALID", "API key not valid. Please pass a valid API key.")
    assert STYLE.api_error({"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}) == (
        "RESOURCE_EXHAUSTED",
        "Quota",
    )
    assert STYLE.api_error("nope") == (None, None)


# ---- the key: its own header, to Google's origin only --------------------------------------------


def test_the_key_travels_in_x_goog_api_key_never_as_bearer():
    headers = STYLE.request_headers("k-123", "query")
    assert headers["x-goog-api-key"] == "k-123"
    assert "Authorization" not in headers


def test_without_a_host_the_connection_is_googles():
    settings = VideoGenConnectionSettings.from_connection_fields(
        "g", host=None, password="k", extra={"api_style": "gemini_veo"}
    )
    assert settings.base_url == "https://generativelanguage.googleapis.com"
    assert settings.path_prefix == "/v1beta"
    assert settings.task_url(NAME) == f"https://generativelanguage.googleapis.com/v1beta/{NAME}"
    request = VideoGenerationRequest(model="veo-3.1-generate-preview", prompt="p")
    assert settings.create_url(request).endswith("/v1beta/models/veo-3.1-generate-preview:predictLongRunning")


def test_a_bare_file_name_is_fetched_from_the_api_root_with_the_key():
    task = STYLE.parse_task(
        {
            "name": NAME,
            "done": True,
            "response": {
                "generateVideoResponse": {"generatedSamples": [{"video": {"uri": "files/abc:download?alt=media"}}]}
            },
        },
        NAME,
    )
    source = STYLE.file_source(task, "video", f"https://g.example/v1beta/{NAME}")
    assert (source.url, source.authenticated) == ("https://g.example/v1beta/files/abc:download?alt=media", True)
    assert STYLE.file_source(task, "last_frame", "https://g.example/v1beta/x") is None


# ---- against the simulator, over loopback ---------------------------------------------------------

MODEL = "veo-3.1-generate-preview"
CONN = CASE.conn_id
hook, fetch = CASE.hook, CASE.fetch


def operation(sim, **kwargs: Any) -> str:
    """Add a Gemini task to the simulator; return its operation name."""
    return f"models/{MODEL}/operations/{CASE.add(sim, model=MODEL, **kwargs)}"


def test_create_posts_predict_long_running_with_the_key_header_and_returns_the_operation_name(sim, style_connection):
    name = hook().create_task(model=MODEL, prompt="a paper boat", ratio="16:9", duration=8)
    assert name.startswith(f"models/{MODEL}/operations/")
    (create,) = sim.requests(target="create")
    assert create["path"] == f"/v1beta/models/{MODEL}:predictLongRunning"
    assert create["body"] == {
        "instances": [{"prompt": "a paper boat"}],
        "parameters": {"aspectRatio": "16:9", "durationSeconds": 8},
    }
    assert create["headers"]["x-goog-api-key"] == API_KEY
    assert "Authorization" not in create["headers"]
    assert hook().get_task(name).id == name


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_each_state_of_the_operation_maps_onto_the_video_task(mode, sim, style_connection):
    names = [
        operation(sim, queued_seconds=600),
        operation(sim, running_seconds=600),
        operation(sim),
        operation(sim, final_status="failed"),
        operation(sim, final_status="failed", error_code="13", error_message="Internal error."),
        operation(sim, final_status="expired"),
    ]

    async def read_all() -> list[Any]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return [await h.aget_task(name) for name in names]

    tasks = [hook().get_task(n) for n in names] if mode == "sync" else asyncio.run(read_all())
    assert [t.status for t in tasks] == [
        VideoTaskStatus.RUNNING,  # the Gemini API does not tell queued from running
        VideoTaskStatus.RUNNING,
        VideoTaskStatus.SUCCEEDED,
        VideoTaskStatus.FAILED,
        VideoTaskStatus.FAILED,
        VideoTaskStatus.FAILED,
    ]
    assert tasks[2].video_url == f"{sim.base_url}/v1beta/files/{names[2].rsplit('/', 1)[1]}:download?alt=media"
    assert tasks[3].error_code == "RAI_MEDIA_FILTERED" and "sensitive" in (tasks[3].error_message or "")
    assert (tasks[4].error_code, tasks[4].error_message) == ("13", "Internal error.")
    assert tasks[5].error_code == "4"


def test_an_unknown_operation_is_not_found(sim, style_connection):
    with pytest.raises(VideoTaskNotFoundError, match="NOT_FOUND"):
        hook().get_task(f"models/{MODEL}/operations/nosuchop")


def test_an_operation_under_another_model_is_not_found(sim, style_connection):
    name = operation(sim)
    with pytest.raises(VideoTaskNotFoundError):
        hook().get_task(name.replace(MODEL, "veo-2.0-generate-001"))


def test_a_refused_key_is_an_auth_error_that_does_not_show_the_key(sim, videogen_connection):
    CASE.connect(videogen_connection, api_key="wrong-key-123")
    with pytest.raises(VideoGenAuthError, match="API_KEY_INVALID") as raised:
        hook().get_task(operation(sim))
    assert "wrong-key-123" not in str(raised.value)
    ok, message = VideoGenHook(CONN).test_connection()
    assert not ok and "refused the API key (HTTP 400)" in message


def test_the_connection_test_passes_with_the_right_key(sim, style_connection):
    ok, message = VideoGenHook(CONN).test_connection()
    assert ok, message
    (probe,) = sim.requests()
    assert probe["path"] == "/v1beta/models/airflow-connection-test/operations/airflow-connection-test"


def test_a_create_refused_by_the_api_says_why(sim, style_connection):
    with pytest.raises(VideoGenAPIError, match="INVALID_ARGUMENT"):
        hook().create_task(model=MODEL, prompt="x [sim:input-moderation]")


def test_an_echoed_key_is_masked_in_errors(sim, style_connection):
    sim.add_fault(
        kind="http_error", target="query", status=400, body={"error": {"code": 400, "message": f"bad {API_KEY}"}}
    )
    with pytest.raises(VideoGenAPIError) as raised:
        hook().get_task(operation(sim))
    assert API_KEY not in str(raised.value) and "***" in str(raised.value)


def test_a_rate_limited_poll_is_retried(sim, style_connection):
    name = operation(sim)
    sim.add_fault(kind="http_error", target="query", status=429)
    assert hook().get_task(name).status is VideoTaskStatus.SUCCEEDED
    assert [r["status"] for r in sim.requests(target="query")] == [429, 200]


def test_a_quota_error_is_retried_after_its_retry_delay(sim, style_connection):
    name = operation(sim)
    sim.add_fault(kind="http_error", target="query", status=429, retry_after=37)
    with pytest.raises(VideoGenTransientError, match="RESOURCE_EXHAUSTED") as raised:
        VideoGenHook(CONN, retry_policy=RetryPolicy(max_attempts=1)).get_task(name)
    assert raised.value.retry_after == 37.0
    sim.add_fault(kind="http_error", target="query", status=429, retry_after=37)
    answer = requests.get(f"{sim.base_url}/v1beta/{name}", headers={"x-goog-api-key": API_KEY}, timeout=5)
    assert "Retry-After" not in answer.headers  # as Google: the hint is the body's RetryInfo only
    assert answer.json()["error"]["details"][0]["retryDelay"] == "37s"


def test_cancel_is_not_supported_and_nothing_is_sent(sim, style_connection):
    name = operation(sim, running_seconds=600)
    with pytest.raises(VideoGenNotSupportedError, match="cannot cancel"):
        hook().cancel_task(name)
    assert sim.requests() == []


def test_waits_poll_every_10_s_as_google_s_examples_do(style_connection):
    from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

    operator = GenerateVideoOperator(task_id="g", model=MODEL, prompt="p", videogen_conn_id=CONN)
    assert operator._poll_interval() == 10.0


def test_the_trigger_payload_holds_no_key(sim, style_connection):
    name = operation(sim, running_seconds=0.3)
    trigger = VideoTaskTrigger(name, videogen_conn_id=CONN, poll_interval=0.1)
    assert API_KEY not in json.dumps(trigger.serialize())

    async def first_event() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    assert API_KEY not in json.dumps(event.payload)


# ---- the file, through the operator ---------------------------------------------------------------


def test_the_video_lands_from_the_file_uri_with_the_key_header(sim, style_connection, tmp_path: Path):
    name = operation(sim, video_size=400_000)
    op_id = name.rsplit("/", 1)[1]
    result = fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")
    assert result["video_path"].endswith(f"/{MODEL}_{op_id}.mp4")
    assert result["sha256"] == video_sha256(op_id, 400_000)
    (download,) = sim.requests(target="download")
    assert (download["path"], download["query"]) == (f"/v1beta/files/{op_id}:download", {"alt": "media"})
    assert download["headers"]["x-goog-api-key"] == API_KEY and "Authorization" not in download["headers"]
    assert API_KEY not in json.dumps(result)


def test_two_operations_whose_parts_join_alike_land_side_by_side(sim, style_connection, tmp_path: Path):
    first, second = ("veo_3", "abc"), ("veo", "3_abc")
    paths = []
    for model, op_id in (first, second):
        sim.add_task(style="gemini_veo", model=model, task_id=op_id, queued_seconds=0, running_seconds=0)
        result = fetch(video_task_id=f"models/{model}/operations/{op_id}", destination=f"{tmp_path.as_uri()}/")
        assert result["sha256"] == video_sha256(op_id, result["size_bytes"])
        paths.append(result["video_path"])
    assert len(set(paths)) == 2
    assert len([p for p in tmp_path.iterdir() if p.suffix == ".mp4"]) == 2


def test_a_broken_download_resumes_with_range(sim, style_connection, tmp_path: Path):
    name = operation(sim, video_size=1_000_000)
    sim.add_fault(kind="truncate", target="download", truncate_at=300_000)
    result = fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/", chunk_size=64 * 1024)
    assert result["sha256"] == video_sha256(name.rsplit("/", 1)[1], 1_000_000)
    ranges = [d["headers"].get("Range") for d in sim.requests(target="download")]
    assert ranges[0] is None and ranges[1].startswith("bytes=")


def test_a_key_refused_on_the_files_route_is_reported_as_a_refused_key_not_an_expired_url(
    sim, style_connection, tmp_path: Path
):
    name = operation(sim)
    refusal = {"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}}
    sim.add_fault(kind="http_error", target="download", status=403, body=refusal)
    with pytest.raises(VideoFileKeyRefusedError, match="refused the API key") as caught:
        fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")
    assert "PERMISSION_DENIED" in str(caught.value) and API_KEY not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_the_key_does_not_follow_a_redirect_to_another_origin(sim, style_connection, tmp_path: Path):
    elsewhere = sim.base_url.replace("127.0.0.1", "localhost")  # the same server, another origin
    name = hook().create_task(model=MODEL, prompt=f"p [sim:queued=0] [sim:running=0] [sim:file-redirect={elsewhere}]")
    result = fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")
    assert result["size_bytes"] > 0
    api, signed = sim.requests(target="download")
    assert api["status"] == 302 and api["headers"]["x-goog-api-key"] == API_KEY
    assert signed["path"].startswith("/_files/videos/") and signed["headers"]["Host"].startswith("localhost")
    assert "x-goog-api-key" not in {h.lower() for h in signed["headers"]}


def test_the_simulator_file_route_needs_the_key_header_not_a_bearer_key(sim):
    name = operation(sim)
    url = f"{sim.base_url}/v1beta/files/{name.rsplit('/', 1)[1]}:download?alt=media"
    for headers in ({}, {"Authorization": f"Bearer {API_KEY}"}):
        refused = requests.get(url, headers=headers, timeout=5)
        assert refused.status_code == 400 and refused.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert requests.get(url, headers={"x-goog-api-key": API_KEY}, timeout=5).status_code == 200
