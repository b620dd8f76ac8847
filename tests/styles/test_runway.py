"""The ``runway`` style (Runway's API) against the simulator over loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests

from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenConfigurationError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.hooks.videogen import VideoGenHook
from airflow_provider_videogen.settings import VideoGenConnectionSettings
from airflow_provider_videogen.video_task import VideoTaskStatus
from tests.loopback import API_KEY
from tests.styles.style_cases import FAST, StyleCase

CASE = StyleCase("runway", "vg_runway")
CONN = CASE.conn_id
UUID = "17f20503-6c24-4c16-946b-35dbbce2af2f"
hook, add = CASE.hook, CASE.add


def test_text_to_video_without_an_image(sim, style_connection):
    task_id = hook().create_task(model="gen4.5", prompt="a paper plane", ratio="1280:720", duration=5, seed=42)
    assert len(task_id) == 36
    (create,) = sim.requests(target="create")
    assert create["path"] == "/v1/text_to_video"
    assert create["body"] == {
        "model": "gen4.5",
        "promptText": "a paper plane",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 42,
    }
    assert create["headers"]["X-Runway-Version"] == "2024-11-06"
    assert create["headers"]["Authorization"] == f"Bearer {API_KEY}"


def test_image_to_video_with_an_image_and_the_connection_s_version(sim, videogen_connection):
    CASE.connect(videogen_connection, runway_version="2025-01-01")
    hook().create_task(model="gen4_turbo", image_urls=["https://x/first.png"], width=960, height=960)
    (create,) = sim.requests(target="create")
    assert create["path"] == "/v1/image_to_video"
    assert create["body"] == {"model": "gen4_turbo", "promptImage": "https://x/first.png", "ratio": "960:960"}
    assert create["headers"]["X-Runway-Version"] == "2025-01-01"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"resolution": "720p"}, "resolution cannot be sent on runway"),
        ({"prompt": "x" * 1001}, "at most 1000 characters"),
        ({"seed": -1}, "seed from 0 to 4294967295"),
        ({"duration": 4.5}, "whole number of seconds"),
        ({"prompt": None}, "needs a prompt"),
        ({"ratio": "16:9", "width": 1280, "height": 720}, "either ratio or width and height"),
    ],
)
def test_fields_the_style_lacks_are_refused_before_sending(sim, style_connection, fields, reason):
    with pytest.raises(VideoGenConfigurationError, match=reason):
        hook().create_task(**{"model": "gen4.5", "prompt": "p", **fields})
    assert sim.requests(target="create") == []


def test_a_bad_version_extra_is_refused_naming_it(videogen_connection):
    CASE.connect(videogen_connection, runway_version="latest")
    with pytest.raises(VideoGenConfigurationError, match="runway_version='latest'"):
        hook().get_task(UUID)


def test_the_simulator_refuses_a_call_without_the_version_header(sim):
    task_id = add(sim)
    answer = requests.get(
        f"{sim.base_url}/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert answer.status_code == 400 and "X-Runway-Version" in answer.json()["error"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_status_maps_onto_the_video_task(mode, sim, style_connection):
    pending = add(sim, queued_seconds=600)
    throttled = add(sim, queued_seconds=600)
    sim.set_status(throttled, "throttled")
    running = add(sim, running_seconds=600)
    done = add(sim)
    cancelled = add(sim, queued_seconds=600)
    sim.set_status(cancelled, "cancelled")
    ids = (pending, throttled, running, done, cancelled)

    async def read_all() -> list[Any]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return [await h.aget_task(i) for i in ids]

    tasks = [hook().get_task(i) for i in ids] if mode == "sync" else asyncio.run(read_all())
    assert [t.status for t in tasks] == [
        VideoTaskStatus.QUEUED,
        VideoTaskStatus.QUEUED,
        VideoTaskStatus.RUNNING,
        VideoTaskStatus.SUCCEEDED,
        VideoTaskStatus.CANCELLED,
    ]
    assert [t.raw_status for t in tasks] == ["PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "CANCELLED"]
    assert 0 <= (tasks[2].progress or 0) < 100 and tasks[3].progress == 100
    assert tasks[3].video_url and tasks[3].video_url.startswith(f"{sim.base_url}/_files/videos/")
    assert tasks[3].created_at is not None


def test_an_unknown_task_is_not_found(sim, style_connection):
    with pytest.raises(VideoTaskNotFoundError):
        hook().get_task(UUID)


def test_a_refused_create_carries_the_api_message(sim, style_connection):
    with pytest.raises(VideoGenAPIError, match="promptText") as caught:
        hook().create_task(model="gen4.5", prompt="x [sim:invalid-request]")
    assert caught.value.http_status == 400


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_pending_or_running_task_is_cancelled_with_delete(sim, style_connection, status):
    task_id = add(sim, queued_seconds=600)
    sim.set_status(task_id, status)
    assert hook().cancel_task(task_id) is True
    (cancel,) = sim.requests(target="cancel")
    assert (cancel["method"], cancel["path"]) == ("DELETE", f"/v1/tasks/{task_id}")
    assert hook().get_task(task_id).status is VideoTaskStatus.CANCELLED


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_final_task_is_never_deleted(sim, style_connection, status):
    task_id = add(sim, queued_seconds=600)
    sim.set_status(task_id, status)
    assert hook().cancel_task(task_id) is False
    assert sim.requests(method="DELETE") == []
    assert hook().get_task(task_id).status.value == status


def test_the_connection_test_passes_on_a_404_with_an_api_error(sim, style_connection):
    ok, message = hook().test_connection()
    assert ok is True, message


def test_runway_has_one_data_center():
    extra = {"api_style": "runway"}
    settings = VideoGenConnectionSettings.from_connection_fields("c", host=None, password="k", extra=extra)
    assert settings.task_url(UUID) == f"https://api.dev.runwayml.com/v1/tasks/{UUID}"
    assert settings.style.request_headers("k", "query")["X-Runway-Version"] == "2024-11-06"


def test_a_prompt_moderation_fails_the_task_with_its_failure_code(sim, style_connection):
    task_id = hook().create_task(model="gen4.5", prompt="x [sim:input-moderation] [sim:queued=0] [sim:running=0]")
    task = hook().get_task(task_id)
    assert (task.status, task.error_code) == (VideoTaskStatus.FAILED, "SAFETY.INPUT.TEXT")


def test_the_async_cancel_deletes_a_running_task_and_spares_a_finished_one(sim, style_connection):
    running = add(sim, running_seconds=600)
    done = add(sim)

    async def cancel_both() -> list[bool]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return [await h.acancel_task(running), await h.acancel_task(done)]

    assert asyncio.run(cancel_both()) == [True, False]
    assert [c["task_id"] for c in sim.requests(target="cancel")] == [running]
    assert hook().get_task(done).status is VideoTaskStatus.SUCCEEDED
