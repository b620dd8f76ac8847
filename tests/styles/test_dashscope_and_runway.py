"""What the ``dashscope`` and ``runway`` styles do alike, each against the simulator over loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_videogen.exceptions import VideoGenConfigurationError, VideoGenTransientError
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator
from airflow_provider_videogen.testing._media import video_sha256
from airflow_provider_videogen.video_task import VideoTaskStatus
from tests.styles.style_cases import FAST, StyleCase

#: style -> (service name in errors, default poll interval, a failure code, the 429 answer's text)
STYLES = {
    "dashscope": ("DashScope", 15.0, "InternalError.Timeout", r"Throttling\.RateQuota"),
    "runway": ("Runway", 5.0, "SAFETY.INPUT.TEXT", "exceeded the rate limit"),
}
#: Each style's case, all on one connection id.
CASES = {name: StyleCase(name, "vg_style") for name in STYLES}


@pytest.fixture(params=sorted(STYLES))
def style(request, videogen_connection) -> str:
    CASES[request.param].connect(videogen_connection)
    return str(request.param)


def hook(policy: RetryPolicy = FAST) -> VideoGenHook:
    return VideoGenHook("vg_style", retry_policy=policy)


def finished(sim, style: str, **kwargs: object) -> str:
    return CASES[style].add(sim, **kwargs)


def test_a_failed_task_carries_the_api_code_and_message(sim, style):
    code = STYLES[style][2]
    task = hook().get_task(finished(sim, style, final_status="failed", error_code=code, error_message="Why."))
    assert (task.status, task.error_code, task.error_message) == (VideoTaskStatus.FAILED, code, "Why.")


def test_an_id_that_is_no_uuid_is_refused_before_sending(sim, style):
    with pytest.raises(VideoGenConfigurationError, match=f"{STYLES[style][0]} task ids are UUIDs"):
        hook().get_task("cgt-20250331175019-68d9t")
    assert sim.requests() == []


def test_the_video_lands_through_the_verified_landing_without_the_key(sim, style, tmp_path: Path):
    task_id = finished(sim, style, video_size=300_000)
    operator = FetchVideoOperator(
        task_id="fetch", videogen_conn_id="vg_style", video_task_id=task_id, destination=f"{tmp_path.as_uri()}/"
    )
    result = operator.execute(context={})  # type: ignore[arg-type]
    assert result["sha256"] == video_sha256(task_id, 300_000)
    (download,) = sim.requests(target="download")
    assert download["path"].startswith("/_files/videos/")
    assert not {"Authorization", "X-Runway-Version", "X-DashScope-Async"} & set(download["headers"])


def test_waits_poll_at_the_style_s_advice_unless_told_otherwise(sim, style):
    operator = GenerateVideoOperator(task_id="g", model="m", prompt="p", videogen_conn_id="vg_style")
    assert operator._poll_interval() == STYLES[style][1]
    told = GenerateVideoOperator(task_id="h", model="m", prompt="p", videogen_conn_id="vg_style", poll_interval=3)
    assert told._poll_interval() == 3.0


def test_a_rate_limited_query_is_retried_and_the_fault_speaks_the_style(sim, style):
    task_id = finished(sim, style)
    sim.add_fault(kind="http_error", target="query", status=429, retry_after=0)
    assert hook().get_task(task_id).status is VideoTaskStatus.SUCCEEDED
    first, second = sim.requests(target="query")
    assert (first["status"], first["fault"], second["status"]) == (429, "http_error", 200)
    sim.add_fault(kind="http_error", target="query", status=429, retry_after=0)
    with pytest.raises(VideoGenTransientError, match=STYLES[style][3]):
        hook(RetryPolicy(max_attempts=1)).get_task(task_id)
