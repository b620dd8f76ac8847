"""The ``dashscope`` style (Alibaba Cloud Model Studio, Wan models) against the simulator over loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenConfigurationError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.hooks.videogen import VideoGenHook
from airflow_provider_videogen.settings import VideoGenConnectionSettings
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_task import VideoTaskStatus
from tests.loopback import API_KEY
from tests.styles.style_cases import FAST, StyleCase

CASE = StyleCase("dashscope", "vg_dashscope")
CONN = CASE.conn_id
UUID = "0385dc79-5ff8-4d82-bcb6-1d3f2c5e4a7b"
hook, add = CASE.hook, CASE.add


def test_create_posts_the_async_video_synthesis_call_and_returns_the_task_id(sim, style_connection):
    task_id = hook().create_task(
        model="wan2.5-i2v-preview",
        prompt="a kitten",
        image_urls=["https://x/cat.png"],
        resolution="720p",
        duration=5,
        seed=7,
        prompt_extend=True,
        negative_prompt="blur",
    )
    assert len(task_id) == 36 and task_id.count("-") == 4
    (create,) = sim.requests(target="create")
    assert create["path"] == "/api/v1/services/aigc/video-generation/video-synthesis"
    assert create["headers"]["X-DashScope-Async"] == "enable"
    assert create["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert create["body"] == {
        "model": "wan2.5-i2v-preview",
        "input": {"prompt": "a kitten", "img_url": "https://x/cat.png", "negative_prompt": "blur"},
        "parameters": {"resolution": "720P", "duration": 5, "seed": 7, "prompt_extend": True},
    }


def test_width_and_height_are_sent_as_size(sim, style_connection):
    hook().create_task(model="wan2.5-t2v-preview", prompt="waves", width=1280, height=720)
    (create,) = sim.requests(target="create")
    assert create["body"]["parameters"] == {"size": "1280*720"}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"ratio": "16:9"}, "ratio cannot be sent on dashscope"),
        ({"width": 1280}, "both width and height"),
        ({"content": [{"type": "text", "text": "x"}]}, "content list is a contents_generations field"),
        ({"image_urls": ["https://x/a.png", "https://x/b.png"]}, "one input image"),
        ({"image_urls": [{"url": "https://x/a.png", "role": "last_frame"}]}, "role 'last_frame'"),
    ],
)
def test_fields_the_style_lacks_are_refused_before_sending(sim, style_connection, fields, reason):
    with pytest.raises(VideoGenConfigurationError, match=reason):
        hook().create_task(model="wan2.5-t2v-preview", prompt="p", **fields)
    assert sim.requests(target="create") == []


def test_a_refused_create_carries_the_api_code_and_message(sim, style_connection):
    with pytest.raises(VideoGenAPIError, match="DataInspectionFailed") as caught:
        hook().create_task(model="wan2.5-t2v-preview", prompt="x [sim:input-moderation]")
    assert caught.value.http_status == 400


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_status_maps_onto_the_video_task(mode, sim, style_connection):
    pending = add(sim, queued_seconds=600)
    running = add(sim, running_seconds=600)
    done = add(sim)
    cancelled = add(sim, queued_seconds=600)
    sim.set_status(cancelled, "cancelled")
    ids = (pending, running, done, cancelled)

    async def read_all() -> list[Any]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return [await h.aget_task(i) for i in ids]

    tasks = [hook().get_task(i) for i in ids] if mode == "sync" else asyncio.run(read_all())
    assert [t.status for t in tasks] == [
        VideoTaskStatus.QUEUED,
        VideoTaskStatus.RUNNING,
        VideoTaskStatus.SUCCEEDED,
        VideoTaskStatus.CANCELLED,
    ]
    assert [t.raw_status for t in tasks] == ["PENDING", "RUNNING", "SUCCEEDED", "CANCELED"]
    assert tasks[2].video_url and tasks[2].video_url.startswith(f"{sim.base_url}/_files/videos/")
    assert tasks[2].usage["video_count"] == 1 and tasks[2].duration == 5.0


@pytest.mark.parametrize("expired", [False, True])
def test_unknown_answered_with_http_200_is_not_found(sim, style_connection, expired):
    task_id = add(sim, final_status="expired") if expired else UUID
    with pytest.raises(VideoTaskNotFoundError, match="UNKNOWN"):
        hook().get_task(task_id)
    assert [q["status"] for q in sim.requests(target="query")] == [200]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("spelling", ["unknown", "Unknown", " UNKNOWN "])
def test_unknown_in_any_case_is_not_found(sim, style_connection, mode, spelling):
    answer = {"request_id": "r-1", "output": {"task_id": UUID, "task_status": spelling}}
    sim.add_fault(kind="http_error", target="query", status=200, body=answer)

    async def read() -> Any:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return await h.aget_task(UUID)

    with pytest.raises(VideoTaskNotFoundError, match="was not found"):
        hook().get_task(UUID) if mode == "sync" else asyncio.run(read())
    assert len(sim.requests(target="query")) == 1


def test_a_pending_task_is_cancelled_with_the_cancel_route(sim, style_connection):
    task_id = add(sim, queued_seconds=600)
    assert hook().cancel_task(task_id) is True
    (cancel,) = sim.requests(target="cancel")
    assert (cancel["method"], cancel["path"]) == ("POST", f"/api/v1/tasks/{task_id}/cancel")
    assert "X-DashScope-Async" not in cancel["headers"]
    assert hook().get_task(task_id).status is VideoTaskStatus.CANCELLED


@pytest.mark.parametrize("status", ["running", "succeeded", "failed"])
def test_a_task_past_pending_is_left_alone(sim, style_connection, status):
    task_id = add(sim, queued_seconds=600)
    sim.set_status(task_id, status)
    assert hook().cancel_task(task_id) is False
    assert sim.requests(target="cancel") == []


def test_a_cancel_the_service_refuses_is_not_an_error(sim, style_connection):
    task_id = add(sim, queued_seconds=600)
    real_get = VideoGenHook.get_task

    def read_then_start(self: VideoGenHook, video_task_id: str) -> Any:
        task = real_get(self, video_task_id)
        sim.set_status(video_task_id, "running")  # it starts between the read and the cancel
        return task

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(VideoGenHook, "get_task", read_then_start)
        assert hook().cancel_task(task_id) is False
    (cancel,) = sim.requests(target="cancel")
    assert cancel["status"] == 400


async def test_the_trigger_polls_at_the_style_interval(sim, style_connection):
    task_id = add(sim, running_seconds=0.2)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0.15)

    trigger = VideoTaskTrigger(task_id, videogen_conn_id=CONN)
    trigger._sleep = sleep  # type: ignore[method-assign]
    event = await trigger.run().__anext__()
    assert event.payload["status"] == "success"
    assert sleeps and all(15.0 <= s <= 16.5 for s in sleeps)


def test_the_connection_test_passes_on_the_unknown_answer(sim, style_connection):
    assert hook().test_connection()[0] is True


@pytest.mark.parametrize(
    ("data_center", "base_url"),
    [
        (None, "https://dashscope-intl.aliyuncs.com"),
        ("us", "https://dashscope-us.aliyuncs.com"),
        ("cn", "https://dashscope.aliyuncs.com"),
    ],
)
def test_regions_are_data_centers(data_center, base_url):
    extra = {"api_style": "dashscope", **({"data_center": data_center} if data_center else {})}
    settings = VideoGenConnectionSettings.from_connection_fields("c", host=None, password="k", extra=extra)
    assert settings.task_url(UUID) == f"{base_url}/api/v1/tasks/{UUID}"
