"""The hook against the simulator over loopback HTTP, sync and async."""

from __future__ import annotations

import asyncio
import functools
import http.server
import socket
import threading

import pytest

from airflow_provider_videogen import __version__
from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus
from tests.conftest import API_KEY

FAST_RETRIES = RetryPolicy(max_attempts=4, max_seconds=30, initial_wait=0.01, max_wait=0.05)


def sync_get(task_id: str, conn_id: str = "videogen_default", policy: RetryPolicy = FAST_RETRIES) -> VideoTask:
    hook = VideoGenHook(conn_id, retry_policy=policy)
    try:
        return hook.get_task(task_id)
    finally:
        hook.close()


async def async_get(task_id: str, conn_id: str = "videogen_default", policy: RetryPolicy = FAST_RETRIES) -> VideoTask:
    async with VideoGenHook(conn_id, retry_policy=policy) as hook:
        return await hook.aget_task(task_id)


def get(mode: str, task_id: str, **kwargs) -> VideoTask:
    if mode == "sync":
        return sync_get(task_id, **kwargs)
    return asyncio.run(async_get(task_id, **kwargs))


MODES = ["sync", "async"]


def add_finished_task(sim, **kwargs) -> str:
    """A simulated task that is already in its final state."""
    return sim.add_task(queued_seconds=0, running_seconds=0, **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_succeeded_contents_task(mode, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded", return_last_frame=True)
    task = get(mode, task_id)
    assert task.id == task_id
    assert task.status is VideoTaskStatus.SUCCEEDED
    assert task.video_url and task.video_url.startswith(sim.base_url)
    assert task.last_frame_url
    (request,) = sim.requests(target="query")
    assert request["path"] == f"/llm/v1/contents/generations/tasks/{task_id}"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["headers"]["User-Agent"] == f"airflow-provider-videogen/{__version__}"


@pytest.mark.parametrize("shape", ["gateway", "documented"])
@pytest.mark.parametrize("mode", MODES)
def test_succeeded_video_generations_task_in_both_shapes(mode, shape, sim, videogen_connection):
    videogen_connection(conn_id="vg_video", api_style="video_generations")
    task_id = add_finished_task(sim, style="video_generations", final_status="succeeded", shape=shape)
    task = get(mode, task_id, conn_id="vg_video")
    assert task.id == task_id
    assert task.status is VideoTaskStatus.SUCCEEDED
    assert task.video_url and "/_files/videos/" in task.video_url
    (request,) = sim.requests(target="query")
    assert request["path"] == f"/v1/video/generations/{task_id}"


@pytest.mark.parametrize("mode", MODES)
def test_lifecycle_advances_with_time(mode, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.set_status(task_id, "queued")
    assert get(mode, task_id).status is VideoTaskStatus.QUEUED
    sim.set_status(task_id, "running")
    assert get(mode, task_id).status is VideoTaskStatus.RUNNING


@pytest.mark.parametrize("mode", MODES)
def test_failed_task_is_an_answer_not_an_error(mode, sim, videogen_connection):
    task_id = add_finished_task(
        sim,
        style="contents_generations",
        final_status="failed",
        error_code="OutputVideoSensitiveContentDetected",
        error_message="The output video may contain sensitive content.",
    )
    task = get(mode, task_id)
    assert task.status is VideoTaskStatus.FAILED
    assert task.error_code == "OutputVideoSensitiveContentDetected"


FAULTS = [
    pytest.param({"kind": "http_error", "status": 429, "retry_after": "0"}, id="429-retry-after"),
    pytest.param({"kind": "http_error", "status": 429}, id="429-no-retry-after"),
    pytest.param({"kind": "http_error", "status": 500}, id="500"),
    pytest.param({"kind": "http_error", "status": 502}, id="502"),
    pytest.param({"kind": "http_error", "status": 503}, id="503"),
    pytest.param({"kind": "http_error", "status": 504}, id="504"),
    pytest.param({"kind": "reset"}, id="connection-reset"),
    pytest.param({"kind": "empty_body"}, id="empty-200"),
    pytest.param({"kind": "malformed_body"}, id="non-json-200"),
]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("mode", MODES)
def test_each_transient_fault_is_retried_then_succeeds(mode, fault, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(target="query", times=2, **fault)
    assert get(mode, task_id).status is VideoTaskStatus.SUCCEEDED
    assert len(sim.requests(target="query")) == 3


@pytest.mark.parametrize("mode", MODES)
def test_slow_answer_times_out_and_is_retried(mode, sim, videogen_connection):
    videogen_connection(conn_id="vg_quick", timeout=0.3)
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(kind="slow", target="query", delay=1.5, times=1)
    assert get(mode, task_id, conn_id="vg_quick").status is VideoTaskStatus.SUCCEEDED


@pytest.mark.parametrize("mode", MODES)
def test_retry_after_is_honoured(mode, sim, videogen_connection, monkeypatch):
    waits: list[float] = []
    original = RetryPolicy.wait_seconds

    def recording_wait(self, state):
        seconds = original(self, state)
        waits.append(seconds)
        return seconds

    monkeypatch.setattr(RetryPolicy, "wait_seconds", recording_wait)
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(kind="http_error", target="query", status=429, retry_after="0.2", times=1)
    assert get(mode, task_id).status is VideoTaskStatus.SUCCEEDED
    assert waits == [0.2]


@pytest.mark.parametrize("mode", MODES)
def test_retry_budget_exhausted_raises_transient_error(mode, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(kind="http_error", target="query", status=503, times=10)
    with pytest.raises(VideoGenTransientError, match="HTTP 503") as caught:
        get(mode, task_id)
    assert caught.value.http_status == 503
    assert len(sim.requests(target="query")) == FAST_RETRIES.max_attempts


@pytest.mark.parametrize("mode", MODES)
def test_wrong_key_fails_at_once_without_the_key_in_the_message(mode, sim, videogen_connection):
    wrong_key = "sk-wrong-key-do-not-print-4242"
    videogen_connection(conn_id="vg_wrong", api_key=wrong_key)
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    with pytest.raises(VideoGenAuthError, match="HTTP 401") as caught:
        get(mode, task_id, conn_id="vg_wrong")
    assert wrong_key not in str(caught.value)
    assert "vg_wrong" in str(caught.value)
    assert len(sim.requests(target="query")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_unknown_task_404_fails_at_once(mode, sim, videogen_connection):
    with pytest.raises(VideoTaskNotFoundError, match="cgt-20990101000000-nope") as caught:
        get(mode, "cgt-20990101000000-nope")
    assert caught.value.http_status == 404
    assert API_KEY not in str(caught.value)
    assert len(sim.requests(target="query")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_gateway_400_task_not_exist_is_not_found(mode, sim, videogen_connection):
    videogen_connection(conn_id="vg_video", api_style="video_generations")
    with pytest.raises(VideoTaskNotFoundError) as caught:
        get(mode, "task_doesnotexist", conn_id="vg_video")
    assert caught.value.http_status == 400
    assert caught.value.api_code == "task_not_exist"
    assert len(sim.requests(target="query")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_other_400_fails_at_once_with_the_api_message(mode, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(
        kind="http_error",
        target="query",
        status=400,
        body={"error": {"code": "InvalidParameter", "message": "the task id is malformed"}},
    )
    with pytest.raises(VideoGenAPIError, match="InvalidParameter: the task id is malformed"):
        get(mode, task_id)
    assert len(sim.requests(target="query")) == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_error_body_echoing_the_key_is_redacted(mode, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(
        kind="http_error",
        target="query",
        status=403,
        body={"error": {"code": "AccessDenied", "message": f"key {API_KEY} may not read this"}},
    )
    with pytest.raises(VideoGenAuthError) as caught:
        get(mode, task_id)
    assert API_KEY not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
def test_unsafe_id_never_reaches_the_server(mode, sim, videogen_connection):
    with pytest.raises(VideoGenConfigurationError):
        get(mode, "../../_simulator/reset")
    assert sim.requests() == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused_is_retried_then_reported(mode, videogen_connection):
    videogen_connection(conn_id="vg_down", host=f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(VideoGenTransientError, match=r"127\.0\.0\.1"):
        get(mode, "cgt-1", conn_id="vg_down", policy=RetryPolicy(max_attempts=2, initial_wait=0.01))


async def test_hooks_in_one_loop_share_one_session_and_close_it(sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    hooks = [VideoGenHook(retry_policy=FAST_RETRIES) for _ in range(5)]
    await asyncio.gather(*(hook.aget_task(task_id) for hook in hooks))
    sessions = {id(hook._async_lease.session) for hook in hooks}
    assert len(sessions) == 1
    session = hooks[0]._async_lease.session
    for hook in hooks[:-1]:
        await hook.aclose()
        assert not session.closed
    await hooks[-1].aclose()
    assert session.closed


async def test_async_hook_reuses_keep_alive_connections(sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    async with VideoGenHook(retry_policy=FAST_RETRIES) as hook:
        for _ in range(5):
            await hook.aget_task(task_id)
        connector = hook._async_lease.session.connector
        assert connector is not None
        open_connections = sum(len(v) for v in connector._conns.values())
    assert open_connections == 1


def test_test_connection_accepts_a_good_key(sim, videogen_connection):
    ok, message = VideoGenHook().test_connection()
    assert ok, message
    assert sim.base_url in message


def test_test_connection_reports_a_wrong_key(sim, videogen_connection):
    videogen_connection(conn_id="vg_wrong", api_key="sk-nope")
    ok, message = VideoGenHook("vg_wrong").test_connection()
    assert not ok
    assert "refused the API key" in message
    assert "sk-nope" not in message


def test_test_connection_reports_a_host_that_does_not_serve_the_api(tmp_path, videogen_connection):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        videogen_connection(conn_id="vg_web", host=f"http://127.0.0.1:{server.server_address[1]}")
        ok, message = VideoGenHook("vg_web").test_connection()
    finally:
        server.shutdown()
        server.server_close()
    assert not ok
    assert "path_prefix" in message


def test_test_connection_reports_an_unreachable_host(videogen_connection):
    videogen_connection(conn_id="vg_down", host=f"http://127.0.0.1:{_closed_port()}")
    ok, message = VideoGenHook("vg_down").test_connection()
    assert not ok
    assert "Check the base URL" in message


async def test_hooks_starting_together_share_one_connection_lookup(sim, videogen_connection, monkeypatch):
    lookups: list[str] = []
    real = VideoGenHook.aget_connection.__func__  # type: ignore[attr-defined]

    async def counting(cls, conn_id):
        lookups.append(conn_id)
        await asyncio.sleep(0.05)
        return await real(cls, conn_id)

    monkeypatch.setattr(VideoGenHook, "aget_connection", classmethod(counting))
    settings = await asyncio.gather(*(VideoGenHook().aget_settings() for _ in range(50)))
    assert lookups == ["videogen_default"]
    assert {s.base_url for s in settings} == {sim.base_url}
    # Once it has finished, a new hook looks the connection up again (it may have changed).
    await VideoGenHook().aget_settings()
    assert len(lookups) == 2


async def test_a_failed_shared_lookup_reaches_every_waiting_hook(videogen_connection):
    videogen_connection(conn_id="vg_keyless", api_key="")
    results = await asyncio.gather(
        *(VideoGenHook("vg_keyless").aget_settings() for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, VideoGenConfigurationError) for r in results)


async def test_cancelling_one_waiting_hook_does_not_cancel_the_shared_lookup(videogen_connection, monkeypatch):
    real = VideoGenHook.aget_connection.__func__  # type: ignore[attr-defined]

    async def slow(cls, conn_id):
        await asyncio.sleep(0.1)
        return await real(cls, conn_id)

    monkeypatch.setattr(VideoGenHook, "aget_connection", classmethod(slow))
    first = asyncio.ensure_future(VideoGenHook().aget_settings())
    second = asyncio.ensure_future(VideoGenHook().aget_settings())
    await asyncio.sleep(0.01)
    first.cancel()
    settings = await second
    assert settings.conn_id == "videogen_default"
    assert first.cancelled()


def test_workers_do_not_load_aiohttp():
    """Only the triggerer waits asynchronously: a task process importing the operators (every try on
    a worker parses its DAG file) does not pay for importing aiohttp, a third of a second of CPU."""
    import subprocess
    import sys

    code = (
        "import sys, airflow_provider_videogen.operators.videogen, airflow_provider_videogen.sensors.videogen; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp'))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]"
