"""The ``fal`` style (fal.ai's queue): its request, its request ids, its two reads, its cancel and its key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_videogen.exceptions import (
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.settings import VideoGenConnectionSettings
from airflow_provider_videogen.styles import get_style
from airflow_provider_videogen.testing._media import video_sha256
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_task import VideoTaskStatus
from tests.loopback import API_KEY

STYLE = get_style("fal")
FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.02)
CONN = "vg_fal"
ENDPOINT = "fal-ai/kling-video/v2.1/master/text-to-video"
APP = "fal-ai/kling-video"
REQUEST_ID = "80e732af-660e-45cd-bd63-580e4f2a94cc"


@pytest.fixture
def fal_connection(videogen_connection) -> str:
    return videogen_connection(conn_id=CONN, api_style="fal")


def hook() -> VideoGenHook:
    return VideoGenHook(CONN, retry_policy=FAST)


def request_of(sim, prompt: str = "p", **kwargs: Any) -> str:
    """Add a fal request to the simulator; return its video task id ``{owner}/{app}/requests/{id}``."""
    body = {"prompt": prompt, "model": ENDPOINT}
    timing = {"queued_seconds": 0, "running_seconds": 0}
    request_id = sim.add_task(style="fal", model=ENDPOINT, created_body=body, **{**timing, **kwargs})
    return f"{APP}/requests/{request_id}"


def body(**fields: Any) -> dict[str, Any]:
    return STYLE.create_body(VideoGenerationRequest.from_fields(model=ENDPOINT, **fields))


# ---- the request ---------------------------------------------------------------------------------


def test_the_body_is_the_model_input_with_fal_names_and_every_generation_param_as_given():
    assert body(
        prompt="a heron",
        image_urls=["https://x/first.png"],
        ratio="16:9",
        duration="5",
        seed=7,
        negative_prompt="blur",
        cfg_scale=0.5,
    ) == {
        "prompt": "a heron",
        "image_url": "https://x/first.png",
        "aspect_ratio": "16:9",
        "duration": "5",
        "seed": 7,
        "negative_prompt": "blur",
        "cfg_scale": 0.5,
    }
    assert body(prompt="only this") == {"prompt": "only this"}  # nothing added that was not asked for
    assert body(prompt="p", duration=10)["duration"] == "10"  # fal's video models take the length as text


@pytest.mark.parametrize(
    ("model", "fields", "reason"),
    [
        ("kling", {}, "Invalid fal endpoint id"),
        ("fal-ai/../admin", {}, "Invalid fal endpoint id"),
        ("fal-ai/kling?x=1", {}, "Invalid fal endpoint id"),
        (ENDPOINT, {"content": [{"type": "text", "text": "p"}]}, "content list"),
        (ENDPOINT, {"image_file": b"\x89PNG"}, "data: URIs in image_urls"),
    ],
)
def test_what_fal_cannot_take_is_refused_before_sending(sim, fal_connection, model, fields, reason):
    with pytest.raises(VideoGenConfigurationError, match=reason):
        hook().create_task(model=model, prompt="p", **fields)
    assert sim.requests() == []


def test_create_posts_to_the_endpoint_with_the_key_scheme_and_returns_the_response_url_path(sim, fal_connection):
    task_id = hook().create_task(model=ENDPOINT, prompt="a heron", duration="5", cfg_scale=0.5)
    assert task_id.startswith(f"{APP}/requests/") and len(task_id.rsplit("/", 1)[1]) == 36
    (create,) = sim.requests(target="create")
    assert create["method"] == "POST" and create["path"] == f"/{ENDPOINT}"
    assert create["body"] == {"prompt": "a heron", "duration": "5", "cfg_scale": 0.5}
    assert create["headers"]["Authorization"] == f"Key {API_KEY}"
    assert "X-Fal-Store-IO" not in create["headers"]
    assert hook().get_task(task_id).id == task_id


def test_payload_storage_off_sends_x_fal_store_io_0_on_the_create(sim, videogen_connection):
    videogen_connection(conn_id=CONN, api_style="fal", fal_store_io="0")
    task_id = hook().create_task(model=ENDPOINT, prompt="p [sim:queued=0] [sim:running=0]")
    (create,) = sim.requests(target="create")
    assert create["headers"]["X-Fal-Store-IO"] == "0"
    assert hook().get_task(task_id).status is VideoTaskStatus.SUCCEEDED
    assert all("X-Fal-Store-IO" not in r["headers"] for r in sim.requests() if r["target"] != "create")


def test_a_bad_payload_storage_extra_is_refused_naming_it(videogen_connection):
    videogen_connection(conn_id=CONN, api_style="fal", fal_store_io="off")
    with pytest.raises(VideoGenConfigurationError, match="fal_store_io"):
        _ = hook().settings


def test_without_a_host_the_connection_is_fal_s_queue():
    settings = VideoGenConnectionSettings.from_connection_fields(
        "c", host=None, password="k", extra={"api_style": "fal"}
    )
    assert (settings.base_url, settings.path_prefix) == ("https://queue.fal.run", "")
    assert settings.task_url(f"{APP}/requests/{REQUEST_ID}") == (
        f"https://queue.fal.run/{APP}/requests/{REQUEST_ID}/status"
    )


# ---- the id ---------------------------------------------------------------------------------------


def test_the_task_id_is_the_path_of_the_response_url_which_names_only_owner_and_app():
    base = "https://queue.fal.run"
    answer = {"request_id": REQUEST_ID, "response_url": f"{base}/{APP}/requests/{REQUEST_ID}"}
    assert STYLE.created_task_id(answer) == f"{APP}/requests/{REQUEST_ID}"
    namespaced = {"request_id": REQUEST_ID, "status_url": f"{base}/workflows/me/flow/requests/{REQUEST_ID}/status"}
    assert STYLE.created_task_id(namespaced) == f"workflows/me/flow/requests/{REQUEST_ID}"
    behind_a_prefix = {"response_url": f"https://gw.example/fal/{APP}/requests/{REQUEST_ID}"}
    assert STYLE.created_task_id(behind_a_prefix) == f"{APP}/requests/{REQUEST_ID}"
    another_request = {"request_id": "other", "response_url": f"{base}/{APP}/requests/{REQUEST_ID}"}
    assert STYLE.created_task_id(another_request) is None
    assert STYLE.created_task_id({"request_id": REQUEST_ID}) is None  # no URL: the id is unknown


@pytest.mark.parametrize(
    "bad",
    [
        REQUEST_ID,  # the bare request id: the app is missing
        f"{APP}/requests/{REQUEST_ID}/../../admin",
        f"{APP}/requests/../x",
        f"{APP}/requests/{REQUEST_ID}?x=1",
        f"{APP}/requests/{REQUEST_ID}#x",
        f"{APP}/requests/{REQUEST_ID}%2f..",
        f"{APP}/results/{REQUEST_ID}",
        f"/{APP}/requests/{REQUEST_ID}",
        f"https://evil.example/{APP}/requests/{REQUEST_ID}",
        f"{APP}/requests/ {REQUEST_ID}",
        "",
        None,
    ],
)
def test_a_hostile_id_is_refused_before_any_request(sim, fal_connection, bad):
    with pytest.raises(VideoGenConfigurationError, match="Invalid fal video task id"):
        hook().get_task(bad)
    with pytest.raises(VideoGenConfigurationError, match="Invalid fal video task id"):
        hook().cancel_task(bad)
    assert sim.requests() == []


def test_files_are_named_by_the_app_and_the_request_id():
    assert STYLE.file_stem(f"{APP}/requests/{REQUEST_ID}") == f"{APP.replace('/', '~')}~{REQUEST_ID}"


# ---- the two reads --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_status_maps_onto_the_video_task_and_completed_is_decided_by_the_result(mode, sim, fal_connection):
    ids = [
        request_of(sim, queued_seconds=600),
        request_of(sim, running_seconds=600),
        request_of(sim),
        request_of(sim, "p [sim:videos-list]"),
        request_of(sim, final_status="failed"),
        request_of(sim, final_status="failed", error_code="runner_disconnected", error_message="The runner left."),
    ]

    async def read_all() -> list[Any]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return [await h.aget_task(i) for i in ids]

    tasks = [hook().get_task(i) for i in ids] if mode == "sync" else asyncio.run(read_all())
    assert [t.status for t in tasks] == [
        VideoTaskStatus.QUEUED,
        VideoTaskStatus.RUNNING,
        VideoTaskStatus.SUCCEEDED,
        VideoTaskStatus.SUCCEEDED,
        VideoTaskStatus.FAILED,
        VideoTaskStatus.FAILED,
    ]
    assert [t.raw_status for t in tasks] == ["IN_QUEUE", "IN_PROGRESS", *["COMPLETED"] * 4]
    request_id = ids[2].rsplit("/", 1)[1]
    assert tasks[2].video_url and f"/_files/videos/{request_id}.mp4" in tasks[2].video_url
    assert tasks[3].video_url and tasks[3].video_url.split("?")[0].endswith(".mp4")
    assert tasks[4].error_code == "HTTP_422"  # the model's validation error: no error type
    assert (tasks[4].error_message or "").startswith("prompt: ") and "sensitive" in (tasks[4].error_message or "")
    assert (tasks[5].error_code, tasks[5].error_message) == ("runner_disconnected", "The runner left.")
    # A status read, then the result read once the status said COMPLETED (and only then).
    results = sim.requests(target="result")
    assert sorted(r["path"] for r in results) == sorted(f"/{i}" for i in ids[2:])
    assert all(r["headers"]["Authorization"] == f"Key {API_KEY}" for r in results)


def test_a_completed_request_whose_result_is_a_model_error_failed_and_is_not_success(sim, fal_connection):
    task_id = request_of(sim, final_status="failed")
    task = hook().get_task(task_id)
    assert task.status is VideoTaskStatus.FAILED and task.is_terminal
    (status,) = sim.requests(target="query")
    (result,) = sim.requests(target="result")
    assert (status["status"], result["status"]) == (200, 422)


def test_a_fault_in_front_of_the_result_is_retried_not_taken_for_a_failure(sim, fal_connection):
    task_id = request_of(sim)
    sim.add_fault(kind="http_error", target="result", status=503)
    assert hook().get_task(task_id).status is VideoTaskStatus.SUCCEEDED
    assert [r["status"] for r in sim.requests(target="result")] == [503, 200]


def test_a_model_error_with_fal_s_error_type_header_is_final_even_as_a_5xx(sim, fal_connection):
    task_id = request_of(sim)
    sim.add_fault(
        kind="http_error",
        target="result",
        status=504,
        body={"detail": "Request timed out", "error_type": "request_timeout"},
    )
    task = hook().get_task(task_id)
    assert (task.status, task.error_code, task.error_message) == (
        VideoTaskStatus.FAILED,
        "request_timeout",
        "Request timed out",
    )
    assert len(sim.requests(target="result")) == 1


def test_a_result_gone_after_payload_storage_off_says_so_and_how_to_land_in_time(sim, videogen_connection):
    videogen_connection(conn_id=CONN, api_style="fal", fal_store_io="0")
    task_id = hook().create_task(model=ENDPOINT, prompt="p [sim:queued=0] [sim:running=0] [sim:result-ttl=0]")
    with pytest.raises(VideoTaskNotFoundError, match="no longer has the result") as raised:
        hook().get_task(task_id)
    assert "fal_store_io" in str(raised.value) and "same DAG run" in str(raised.value)


def test_an_unknown_request_is_not_found(sim, fal_connection):
    with pytest.raises(VideoTaskNotFoundError, match="not found"):
        hook().get_task(f"{APP}/requests/{REQUEST_ID}")


def test_a_request_under_another_app_is_not_found(sim, fal_connection):
    task_id = request_of(sim)
    with pytest.raises(VideoTaskNotFoundError):
        hook().get_task(task_id.replace("kling-video", "veo3"))


def test_a_refused_key_is_an_auth_error_that_does_not_show_the_key(sim, videogen_connection):
    videogen_connection(conn_id=CONN, api_style="fal", api_key="wrong-key-123")
    with pytest.raises(VideoGenAuthError) as raised:
        hook().get_task(request_of(sim))
    assert "wrong-key-123" not in str(raised.value)


def test_the_connection_test_passes_on_a_404_with_fal_s_detail(sim, fal_connection):
    ok, message = VideoGenHook(CONN).test_connection()
    assert ok, message
    (probe,) = sim.requests()
    assert probe["path"] == "/fal-ai/airflow-connection-test/requests/00000000-0000-0000-0000-000000000000/status"


def test_a_rate_limited_poll_waits_as_long_as_fal_asks(sim, fal_connection):
    task_id = request_of(sim)
    sim.add_fault(kind="http_error", target="query", status=429, retry_after=37)
    with pytest.raises(VideoGenTransientError) as raised:
        VideoGenHook(CONN, retry_policy=RetryPolicy(max_attempts=1)).get_task(task_id)
    assert raised.value.retry_after == 37.0
    sim.add_fault(kind="http_error", target="query", status=429)
    assert hook().get_task(task_id).status is VideoTaskStatus.SUCCEEDED


# ---- cancel ---------------------------------------------------------------------------------------


def test_only_a_request_still_in_the_queue_is_cancelled(sim, fal_connection):
    queued = request_of(sim, queued_seconds=600)
    assert hook().cancel_task(queued) is True
    (cancel,) = sim.requests(target="cancel")
    assert (cancel["method"], cancel["path"], cancel["status"]) == ("PUT", f"/{queued}/cancel", 202)
    assert sim.get_task(queued.rsplit("/", 1)[1])["status"] == "cancelled"
    task = hook().get_task(queued)
    assert task.status is VideoTaskStatus.FAILED and task.error_code == "request_cancelled"


@pytest.mark.parametrize("kwargs", [{"running_seconds": 600}, {}, {"final_status": "failed"}])
def test_a_request_in_progress_or_completed_is_never_sent_a_cancel(sim, fal_connection, kwargs):
    task_id = request_of(sim, **kwargs)
    assert hook().cancel_task(task_id) is False
    assert sim.requests(target="cancel") == []


def test_the_async_cancel_cancels_a_queued_request_and_spares_one_in_progress(sim, fal_connection):
    queued, running = request_of(sim, queued_seconds=600), request_of(sim, running_seconds=600)

    async def cancel_both() -> tuple[bool, bool]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return await h.acancel_task(queued), await h.acancel_task(running)

    assert asyncio.run(cancel_both()) == (True, False)
    assert [c["path"] for c in sim.requests(target="cancel")] == [f"/{queued}/cancel"]


def test_a_cancel_fal_answers_already_completed_is_not_a_success(sim, fal_connection):
    task_id = request_of(sim, queued_seconds=600)
    sim.add_fault(kind="http_error", target="cancel", status=400, body={"status": "ALREADY_COMPLETED"})
    assert hook().cancel_task(task_id) is False


# ---- the wait and the file ------------------------------------------------------------------------


def test_the_deferred_wait_ends_on_the_result_and_its_payload_holds_no_key(sim, fal_connection):
    task_id = request_of(sim, running_seconds=0.3)
    trigger = VideoTaskTrigger(task_id, videogen_conn_id=CONN, poll_interval=0.1)
    assert API_KEY not in json.dumps(trigger.serialize())

    async def first_event() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    assert API_KEY not in json.dumps(event.payload)


def test_the_deferred_wait_of_a_failed_generation_ends_failed_with_the_model_s_error(sim, fal_connection):
    task_id = request_of(sim, final_status="failed", error_code="runner_disconnected", error_message="Gone.")
    trigger = VideoTaskTrigger(task_id, videogen_conn_id=CONN, poll_interval=0.1)

    async def first_event() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "failed" and "runner_disconnected" in json.dumps(event.payload)


def fetch(**kwargs: Any) -> dict[str, Any]:
    operator = FetchVideoOperator(task_id="fetch", videogen_conn_id=CONN, http_retry_policy=FAST, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def test_the_video_lands_from_the_public_url_without_the_key_even_after_a_redirect(sim, fal_connection, tmp_path: Path):
    task_id = request_of(sim, video_size=300_000)
    request_id = task_id.rsplit("/", 1)[1]
    sim.add_fault(kind="redirect", target="download")
    result = fetch(video_task_id=task_id, destination=f"{tmp_path.as_uri()}/")
    assert result["video_path"].endswith(f"/{STYLE.file_stem(task_id)}.mp4")
    assert result["sha256"] == video_sha256(request_id, 300_000)
    downloads = sim.requests(target="download")
    assert downloads[0]["status"] == 307 and len(downloads) >= 2
    assert all("authorization" not in {h.lower() for h in d["headers"]} for d in downloads)
    assert API_KEY not in json.dumps(result)


def test_waits_poll_every_5_s_by_default(fal_connection):
    from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

    operator = GenerateVideoOperator(task_id="g", model=ENDPOINT, prompt="p", videogen_conn_id=CONN)
    assert operator._poll_interval() == 5.0
