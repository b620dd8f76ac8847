"""The client core under the hook: one request value goes in, the answer comes back with its poll hint."""

from __future__ import annotations

import dataclasses

import pytest

from airflow_provider_videogen.client import ApiRequest, PollAnswer
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenConnectionSettings, VideoGenHook

CONN = "videogen_client"
FAST = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02)


def test_a_request_is_one_frozen_value():
    settings = VideoGenConnectionSettings(conn_id=CONN, base_url="http://sim", api_key="sk-test")
    request = ApiRequest("GET", settings.task_url("cgt-1"), "query", settings, video_task_id="cgt-1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.method = "DELETE"  # type: ignore[misc]


@pytest.fixture
def hinting_service(sim, videogen_connection):
    """A ``/v1/videos`` service that asks pollers to wait 4 s between looks."""
    videogen_connection(conn_id=CONN, api_style="openai_videos")
    sim.configure(openai_poll_after_ms=4000)
    yield sim
    sim.configure(openai_poll_after_ms=None)


def test_the_poll_hint_comes_back_with_the_answer_and_is_not_kept_on_the_hook(hinting_service):
    video_id = hinting_service.add_task(style="openai_videos")
    hook = VideoGenHook(CONN, retry_policy=FAST)
    answer = hook.poll_answer(video_id)
    assert isinstance(answer, PollAnswer)
    assert (answer.task.id, answer.poll_hint) == (video_id, 4.0)
    assert not hasattr(hook, "poll_hint")


async def test_a_shared_poll_returns_the_poll_hint_with_the_task(hinting_service):
    video_id = hinting_service.add_task(style="openai_videos")
    async with VideoGenHook(CONN, retry_policy=FAST) as hook:
        answer = await hook.apoll_answer(video_id, gather=0.0)
    assert (answer.task.id, answer.poll_hint) == (video_id, 4.0)
    assert not hasattr(hook, "poll_hint")
