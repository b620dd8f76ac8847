"""Submitting and cancelling generations through the hook, against the simulator."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenConfigurationError,
    VideoGenNotSupportedError,
    VideoGenRequestNotSentError,
    VideoGenTransientError,
)
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.styles import STYLES
from tests.hooks.test_videogen import _closed_port

FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.02)
MODEL = "doubao-seedance-1-0-pro-250528"


def hook(conn_id: str = "videogen_default") -> VideoGenHook:
    return VideoGenHook(conn_id, retry_policy=FAST)


def created_body(sim) -> dict:
    (request,) = sim.requests(target="create")
    return request["body"]


def test_contents_create_sends_every_field_kind(sim, videogen_connection):
    task_id = hook().create_task(
        model=MODEL,
        prompt="a red fox running through snow",
        image_urls=[
            {"url": "https://img.example.com/first.png", "role": "first_frame"},
            {"url": "https://img.example.com/last.png", "role": "last_frame"},
        ],
        resolution="720p",
        ratio="16:9",
        duration=5,
        seed=42,
        camera_fixed=False,
        watermark=True,
        generate_audio=False,
        return_last_frame=True,
        service_tier="flex",
        execution_expires_after=7200,
        callback_url="https://hooks.example.com/videogen",
        my_vendor_flag="on",
    )
    assert task_id.startswith("cgt-")
    assert created_body(sim) == {
        "model": MODEL,
        "content": [
            {"type": "text", "text": "a red fox running through snow"},
            {"type": "image_url", "image_url": {"url": "https://img.example.com/first.png"}, "role": "first_frame"},
            {"type": "image_url", "image_url": {"url": "https://img.example.com/last.png"}, "role": "last_frame"},
        ],
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "seed": 42,
        "camera_fixed": False,
        "watermark": True,
        "generate_audio": False,
        "return_last_frame": True,
        "service_tier": "flex",
        "execution_expires_after": 7200,
        "callback_url": "https://hooks.example.com/videogen",
        "my_vendor_flag": "on",
    }
    assert sim.get_task(task_id)["created_body"] == created_body(sim)


def test_contents_create_with_a_raw_content_list_and_frames(sim, videogen_connection):
    content = [
        {"type": "text", "text": "a lighthouse at dusk"},
        {"type": "image_url", "image_url": {"url": "https://img.example.com/ref.png"}, "role": "reference_image"},
    ]
    hook().create_task(VideoGenerationRequest(model=MODEL, content=content, frames=121))
    assert created_body(sim) == {"model": MODEL, "content": content, "frames": 121}


@pytest.mark.parametrize("shape", ["gateway", "documented"])
def test_video_generations_create_reads_both_answers(shape, sim, videogen_connection):
    sim.configure(video_generations_shape=shape)
    videogen_connection(conn_id="vg_video", api_style="video_generations")
    task_id = hook("vg_video").create_task(
        model=MODEL,
        prompt="waves on a beach",
        image_urls=["https://img.example.com/first.png"],
        duration=5,
        width=1280,
        height=720,
        fps=24,
        seed=7,
        resolution="720p",
        generate_audio=True,
        metadata={"ratio": "16:9"},
    )
    assert task_id.startswith("task_")
    assert created_body(sim) == {
        "model": MODEL,
        "prompt": "waves on a beach",
        "image": "https://img.example.com/first.png",
        "duration": 5,
        "width": 1280,
        "height": 720,
        "fps": 24,
        "seed": 7,
        "metadata": {"resolution": "720p", "generate_audio": True, "ratio": "16:9"},
    }
    (request,) = sim.requests(target="create")
    assert request["path"] == "/v1/video/generations"


def test_input_moderation_400_raises_at_once_with_the_api_code(sim, videogen_connection):
    with pytest.raises(VideoGenAPIError, match="InputTextSensitiveContentDetected") as caught:
        hook().create_task(model=MODEL, prompt="something [sim:input-moderation]")
    assert caught.value.http_status == 400
    assert len(sim.requests(target="create")) == 1


def test_a_refused_create_names_the_one_video_task_it_would_have_made(sim, videogen_connection):
    with pytest.raises(VideoGenAPIError) as caught:
        hook().create_task(model=MODEL, prompt="something [sim:input-moderation]")
    assert "Could not create a video task at " in str(caught.value)
    assert "the video tasks" not in str(caught.value)


def test_an_api_message_ending_in_a_full_stop_ends_the_error_with_one(sim, videogen_connection):
    with pytest.raises(VideoGenAPIError) as caught:
        hook().create_task(model=MODEL, prompt="something [sim:input-moderation]")
    assert caught.value.api_message and caught.value.api_message.endswith(".")
    assert ".." not in str(caught.value) and str(caught.value).endswith(".")


def test_create_is_not_retried_after_a_timeout(sim, videogen_connection):
    videogen_connection(conn_id="vg_quick", timeout=0.3)
    sim.add_fault(kind="slow", target="create", delay=1.0)
    with pytest.raises(VideoGenTransientError, match="may have created the video task"):
        hook("vg_quick").create_task(model=MODEL, prompt="a slow one")
    assert len(sim.requests(target="create")) == 1


@pytest.mark.parametrize("fault", [{"kind": "reset"}, {"kind": "http_error", "status": 500}])
def test_create_is_not_retried_when_the_service_may_have_taken_it(fault, sim, videogen_connection):
    sim.add_fault(target="create", **fault)
    with pytest.raises(VideoGenTransientError, match="look at its task list"):
        hook().create_task(model=MODEL, prompt="maybe created")
    assert len(sim.requests(target="create")) == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "http_error", "status": 429, "retry_after": "0"}, id="429"),
        pytest.param({"kind": "http_error", "status": 503, "body": ""}, id="503-empty"),
    ],
)
def test_create_is_retried_when_the_service_surely_refused_it(fault, sim, videogen_connection):
    sim.add_fault(target="create", **fault)
    task_id = hook().create_task(model=MODEL, prompt="retry me")
    assert len(sim.requests(target="create")) == 2
    assert len([t for t in sim.tasks() if t["id"] == task_id]) == 1


def test_create_is_retried_when_the_connection_is_refused(videogen_connection):
    videogen_connection(conn_id="vg_down", host=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(VideoGenRequestNotSentError):
        hook("vg_down").create_task(model=MODEL, prompt="nobody home")


def test_create_without_a_prompt_image_or_content_is_refused_before_sending(sim, videogen_connection):
    with pytest.raises(VideoGenConfigurationError, match="needs a prompt"):
        hook().create_task(model=MODEL)
    assert sim.requests() == []


def test_cancel_a_queued_task(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    assert hook().cancel_task(task_id) is True
    assert sim.get_task(task_id)["status"] == "cancelled"
    assert [r["method"] for r in sim.requests(task_id=task_id)] == ["GET", "DELETE"]


async def test_async_cancel_a_queued_task(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    async with hook() as h:
        assert await h.acancel_task(task_id) is True
    assert sim.get_task(task_id)["status"] == "cancelled"


@pytest.mark.parametrize("status", ["running", "succeeded", "failed", "expired", "cancelled"])
def test_cancel_leaves_a_task_that_is_not_queued_alone(status, sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, final_status="succeeded")
    sim.set_status(task_id, status)
    assert hook().cancel_task(task_id) is False
    assert sim.get_task(task_id)["status"] == status
    assert sim.requests(method="DELETE") == []


def test_cancel_refused_by_the_service_returns_false(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    sim.add_fault(
        kind="http_error",
        target="cancel",
        status=400,
        body={"error": {"code": "InvalidAction.TaskStatus", "message": "task is running"}},
    )
    assert hook().cancel_task(task_id) is False


# ---- hardening: a cancel retried after a 429 never reaches a task that finished meanwhile -----

CANCEL_STYLES = ["contents_generations", "runway"]


def task_finishing_while_its_cancel_waits(sim, videogen_connection, api_style: str) -> tuple[str, str]:
    """A task its style may cancel now, which finishes 1 s later; its first cancel call is answered 429,
    Retry-After 2 s. Returns the connection id and the task id.

    (The contents-generations DELETE and Runway's delete a finished task and its video for good.)
    """
    conn_id = videogen_connection(conn_id=f"vg_{api_style}", api_style=api_style)
    if api_style == "runway":
        task_id = sim.add_task(style=api_style, queued_seconds=0, running_seconds=1.0)  # RUNNING is cancellable
    else:
        task_id = sim.add_task(style=api_style, queued_seconds=1.0, running_seconds=0)
    sim.add_fault(kind="http_error", target="cancel", task_id=task_id, status=429, retry_after="2")
    return conn_id, task_id


def assert_the_finished_task_was_left_alone(sim, task_id: str) -> None:
    assert len(sim.requests(target="cancel", task_id=task_id)) == 1  # the refused one only
    assert sim.get_task(task_id)["status"] == "succeeded"  # still there, its video with it
    assert sim.get_task(task_id)["video_url"]


@pytest.mark.parametrize("api_style", CANCEL_STYLES)
def test_a_cancel_answered_429_is_not_sent_again_to_a_task_that_finished_meanwhile(api_style, sim, videogen_connection):
    conn_id, task_id = task_finishing_while_its_cancel_waits(sim, videogen_connection, api_style)
    assert hook(conn_id).cancel_task(task_id) is False
    assert_the_finished_task_was_left_alone(sim, task_id)


@pytest.mark.parametrize("api_style", CANCEL_STYLES)
async def test_an_async_cancel_answered_429_is_not_sent_again_to_a_task_that_finished_meanwhile(
    api_style, sim, videogen_connection
):
    conn_id, task_id = task_finishing_while_its_cancel_waits(sim, videogen_connection, api_style)
    async with hook(conn_id) as h:
        assert await h.acancel_task(task_id) is False
    assert_the_finished_task_was_left_alone(sim, task_id)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cancel_answered_429_is_sent_again_once_the_task_is_read_still_queued(mode, sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    sim.add_fault(kind="http_error", target="cancel", task_id=task_id, status=429, retry_after="0")
    if mode == "sync":
        assert hook().cancel_task(task_id) is True
    else:

        async def cancel() -> bool:
            async with hook() as h:
                return await h.acancel_task(task_id)

        assert asyncio.run(cancel()) is True
    assert sim.get_task(task_id)["status"] == "cancelled"
    assert [r["method"] for r in sim.requests(task_id=task_id)] == ["GET", "DELETE", "GET", "DELETE"]


def test_cancel_is_not_supported_on_video_generations(sim, videogen_connection):
    videogen_connection(conn_id="vg_video", api_style="video_generations")
    with pytest.raises(VideoGenNotSupportedError, match="not supported by the video_generations API style"):
        hook("vg_video").cancel_task("task_0123456789abcdef0123456789abcdef")
    assert sim.requests() == []


@pytest.mark.parametrize(
    ("request_fields", "api_style", "problem"),
    [
        ({"model": "", "prompt": "x"}, "contents_generations", "needs a model"),
        ({"model": MODEL, "prompt": "x", "duration": 5, "frames": 121}, "contents_generations", "duration or frames"),
        ({"model": MODEL, "prompt": "x", "width": 1280}, "contents_generations", "width are video_generations"),
        (
            {"model": MODEL, "prompt": "x", "content": [{"type": "text", "text": "y"}]},
            "contents_generations",
            "not both",
        ),
        (
            {"model": MODEL, "content": [{"type": "text", "text": "y"}]},
            "video_generations",
            "contents_generations field",
        ),
        ({"model": MODEL, "image_urls": ["a", "b"]}, "video_generations", "one input image"),
        ({"model": MODEL, "image_urls": [{"url": "a", "role": "middle"}]}, "contents_generations", "role 'middle'"),
        ({"model": MODEL, "image_urls": [42]}, "contents_generations", "must be a URL"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_message(request_fields, api_style, problem):
    request = VideoGenerationRequest.from_fields(**request_fields)
    with pytest.raises(VideoGenConfigurationError, match=problem):
        STYLES[api_style].create_body(request)
