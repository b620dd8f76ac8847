"""The hook against the simulator over loopback HTTP, sync and async."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import logging
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
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook, parse_retry_after
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus
from tests.loopback import API_KEY, LoopbackServer, QuietHandler

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


def test_a_404_the_api_did_not_send_is_retried_where_only_the_api_may_say_not_found(sim, videogen_connection):
    task_id = add_finished_task(sim)
    sim.add_fault(kind="http_error", target="query", status=404, body="404 page not found\n", content_type="text/plain")
    hook = VideoGenHook(retry_policy=FAST_RETRIES)
    assert hook.get_task(task_id, only_the_api_says_not_found=True).id == task_id
    sim.add_fault(kind="http_error", target="query", status=404, body="<html>404 Not Found</html>", times=0)
    with pytest.raises(VideoGenTransientError, match="without an API error") as caught:
        hook.get_task(task_id, only_the_api_says_not_found=True)
    assert caught.value.http_status == 404 and not isinstance(caught.value, VideoTaskNotFoundError)
    assert len(sim.requests(target="query")) == 2 + FAST_RETRIES.max_attempts
    sim.clear_faults()
    with pytest.raises(VideoTaskNotFoundError) as not_found:  # the API's own answer still means gone, at once
        hook.get_task("cgt-20990101000000-nope", only_the_api_says_not_found=True)
    assert not_found.value.said_by_the_api
    assert len(sim.requests(target="query", task_id="cgt-20990101000000-nope")) == 1


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
    sessions = {id(hook._client._async_lease.session) for hook in hooks}
    assert len(sessions) == 1
    session = hooks[0]._client._async_lease.session
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
        connector = hook._client._async_lease.session.connector
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


def test_a_refused_connection_is_one_sentence_naming_the_host(videogen_connection):
    port = _closed_port()
    videogen_connection(conn_id="vg_down", host=f"http://127.0.0.1:{port}")
    ok, message = VideoGenHook("vg_down").test_connection()
    assert not ok
    assert message == f"Check the base URL and that the service is running: 127.0.0.1:{port} refused the connection."


def test_a_host_name_that_does_not_resolve_is_reported_as_dns(videogen_connection):
    videogen_connection(conn_id="vg_dns", host="https://no-such-host.invalid")
    ok, message = VideoGenHook("vg_dns").test_connection()
    assert not ok
    assert message == "Check the base URL's host name: no-such-host.invalid could not be resolved (DNS)."


def test_https_to_a_plain_http_service_is_reported_as_tls(sim, videogen_connection):
    address = sim.base_url.removeprefix("http://")
    videogen_connection(conn_id="vg_tls", host=f"https://{address}")
    ok, message = VideoGenHook("vg_tls").test_connection()
    assert not ok
    assert message == (
        "Check the base URL's scheme (http or https) and the server's certificate: "
        f"the TLS handshake with {address} failed."
    )


def test_a_host_that_never_answers_is_reported_as_a_timeout(videogen_connection):
    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        videogen_connection(conn_id="vg_silent", host=f"http://127.0.0.1:{port}", timeout=0.3)
        ok, message = VideoGenHook("vg_silent").test_connection()
    assert not ok
    assert message == (
        f"Check the base URL and the network (firewall, proxy): 127.0.0.1:{port} did not answer within 0.3 s."
    )


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


# ---- hardening: an unreadable Retry-After is no Retry-After ---------------------------------

UNREADABLE_RETRY_AFTER = ["nan", "inf", "-inf", "-1", "garbage", "1e400", "NaN", "+nan"]


@pytest.mark.parametrize("value", UNREADABLE_RETRY_AFTER)
def test_unreadable_or_non_finite_retry_after_reads_as_none(value):
    assert parse_retry_after(value) is None


def test_huge_retry_after_is_capped_by_the_policy():
    policy = RetryPolicy(max_retry_after=300.0)
    assert parse_retry_after("1e12") == 1e12
    assert policy.wait_after(1, parse_retry_after("1e12")) == 300.0


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "garbage"])
@pytest.mark.parametrize("mode", MODES)
def test_non_finite_retry_after_falls_back_to_backoff_and_the_call_returns(mode, value, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(kind="http_error", target="query", status=503, retry_after=value, times=1)
    # Bounded: a hook that sleeps nan seconds never returns.
    task = sync_get(task_id) if mode == "sync" else asyncio.run(asyncio.wait_for(async_get(task_id), timeout=20))
    assert task.status is VideoTaskStatus.SUCCEEDED
    assert len(sim.requests(target="query")) == 2


# ---- hardening: the connection's timeout bounds the whole request ---------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_trickling_answer_is_cut_at_the_connection_timeout(mode, sim, videogen_connection):
    """A 200 whose body arrives a few bytes at a time must not hold the caller past ``timeout``."""
    videogen_connection(conn_id="vg_trickle", timeout=1.0)
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    # About 150 pieces 0.2 s apart: 30 s for the whole answer, each piece well inside the timeout.
    sim.add_fault(kind="trickle", target="query", delay=0.2, times=1)
    with pytest.raises(VideoGenTransientError, match="timed out") as caught:
        get(mode, task_id, conn_id="vg_trickle", policy=RetryPolicy(max_attempts=1))
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
def test_a_trickling_answer_is_retried_within_the_budget(mode, sim, videogen_connection):
    videogen_connection(conn_id="vg_trickle", timeout=1.0)
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(kind="trickle", target="query", delay=0.2, times=1)
    assert get(mode, task_id, conn_id="vg_trickle").status is VideoTaskStatus.SUCCEEDED
    assert len(sim.requests(target="query")) == 2


# ---- hardening: answers are bounded ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_an_answer_of_several_mib_is_refused_at_the_default_limit(mode, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    huge = {"id": task_id, "status": "succeeded", "padding": "x" * (5 * 1024 * 1024)}
    sim.add_fault(kind="http_error", target="query", status=200, body=huge, times=1)
    with pytest.raises(VideoGenAPIError, match="limit of 4194304 bytes"):
        get(mode, task_id)


# ---- hardening: the key is masked before any text is cut ------------------------------------


def assert_no_part_of_the_key(text: str) -> None:
    """Not the key, nor any 8 characters of it in a row."""
    for start in range(len(API_KEY) - 7):
        assert API_KEY[start : start + 8] not in text, f"part of the key leaked: {text!r}"


@pytest.mark.parametrize("offset", [283, 290, 295, 299])
@pytest.mark.parametrize("mode", MODES)
def test_a_key_that_crosses_the_cut_of_a_non_json_error_body_is_masked(mode, offset, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    body = "x" * offset + API_KEY + "y" * 100
    sim.add_fault(kind="http_error", target="query", status=400, body=body, content_type="text/plain")
    with pytest.raises(VideoGenAPIError) as caught:
        get(mode, task_id)
    assert_no_part_of_the_key(str(caught.value))


@pytest.mark.parametrize("offset", [250, 280, 295])
def test_a_key_that_crosses_the_cut_of_a_create_answer_without_id_is_masked(offset, sim, videogen_connection):
    echo = {"note": "x" * offset + API_KEY + "y" * 50}
    sim.add_fault(kind="http_error", target="create", status=200, body=echo)
    with pytest.raises(VideoGenAPIError, match="holds no task id") as caught:
        VideoGenHook(retry_policy=FAST_RETRIES).create_task(model="m", prompt="p")
    assert_no_part_of_the_key(str(caught.value))


@pytest.mark.parametrize("mode", MODES)
def test_a_key_echoed_in_a_task_error_message_is_masked(mode, sim, videogen_connection):
    task_id = add_finished_task(
        sim, style="contents_generations", final_status="failed", error_code="Bad", error_message=f"key {API_KEY}"
    )
    task = get(mode, task_id)
    assert task.error_message == "key ***"


# ---- hardening: a key echoed JSON-escaped is masked once decoded ------------------------------

SLASHED_KEY = "sk-a/b-test-key-41c7"
"""A key with a ``/``, which JSON may write as ``\\/``."""

JSON_ESCAPES = {
    "slash": lambda key: key.replace("/", "\\/"),
    "some-letters": lambda key: "".join(f"\\u{ord(c):04x}" if i % 3 == 0 else c for i, c in enumerate(key)),
    "every-letter": lambda key: "".join(f"\\u{ord(c):04X}" for c in key),
}


def answer_echoing_the_key_escaped(sim, task_id: str, escaped: str) -> str:
    """The task's succeeded answer, echoing the key JSON-escaped in a value and in a member's name."""
    video_url = json.dumps(sim.get_task(task_id)["video_url"])
    return (
        f'{{"id": "{task_id}", "status": "succeeded", "content": {{"video_url": {video_url}}}, '
        f'"note": "upstream saw Bearer {escaped}", "{escaped}": {{"error": "key {escaped} echoed"}}}}'
    )


@pytest.fixture
def escaped_key_answer(request, sim, videogen_connection):
    """A finished task whose every status answer echoes the (slashed) key JSON-escaped; returns its id."""
    sim.configure(api_key=SLASHED_KEY)
    videogen_connection(api_key=SLASHED_KEY)
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    body = answer_echoing_the_key_escaped(sim, task_id, JSON_ESCAPES[request.param](SLASHED_KEY))
    assert SLASHED_KEY not in body and SLASHED_KEY in json.dumps(json.loads(body))  # escaped, yet the key
    json_answer = {"status": 200, "body": body, "content_type": "application/json"}
    sim.add_fault(kind="http_error", target="query", task_id=task_id, times=0, **json_answer)
    return task_id


@pytest.mark.parametrize("escaped_key_answer", list(JSON_ESCAPES), indirect=True)
@pytest.mark.parametrize("mode", MODES)
def test_a_key_echoed_json_escaped_in_a_status_answer_is_masked_in_the_task(mode, escaped_key_answer, caplog):
    with caplog.at_level(logging.DEBUG):
        task = get(mode, escaped_key_answer)
    assert task.status is VideoTaskStatus.SUCCEEDED
    shown = json.dumps(task.to_dict())
    assert SLASHED_KEY not in shown and SLASHED_KEY not in repr(task.raw)
    assert task.raw["note"] == "upstream saw Bearer ***" and task.raw["***"] == {"error": "key *** echoed"}
    assert SLASHED_KEY not in caplog.text


@pytest.mark.parametrize("escaped_key_answer", list(JSON_ESCAPES), indirect=True)
def test_a_key_echoed_json_escaped_never_reaches_the_operators_return_values(escaped_key_answer, caplog):
    from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator
    from tests.operators.test_generate import context
    from tests.task_context import FakeStateStore

    store = FakeStateStore()
    store.values[GenerateVideoOperator.state_store_key] = escaped_key_answer  # an earlier try's generation
    with caplog.at_level(logging.DEBUG):
        fetched = FetchVideoOperator(
            task_id="fetch", video_task_id=escaped_key_answer, http_retry_policy=FAST_RETRIES
        ).execute(context={})  # type: ignore[arg-type]
        generated = GenerateVideoOperator(
            task_id="generate", model="m", prompt="p", deferrable=False, http_retry_policy=FAST_RETRIES
        ).execute(context(store))
    for returned in (fetched, generated):
        assert returned["id"] == escaped_key_answer
        assert SLASHED_KEY not in json.dumps(returned)
        assert returned["raw"]["note"] == "upstream saw Bearer ***"
    assert SLASHED_KEY not in caplog.text


@pytest.mark.parametrize("escape", list(JSON_ESCAPES))
@pytest.mark.parametrize("mode", MODES)
def test_a_key_echoed_json_escaped_in_an_error_body_is_masked_in_the_error(mode, escape, sim, videogen_connection):
    sim.configure(api_key=SLASHED_KEY)
    videogen_connection(api_key=SLASHED_KEY)
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    escaped = JSON_ESCAPES[escape](SLASHED_KEY)
    sim.add_fault(
        kind="http_error",
        target="query",
        status=400,
        body=f'{{"detail": "the key {escaped} may not read this"}}',
        content_type="application/json",
    )
    with pytest.raises(VideoGenAPIError) as caught:
        get(mode, task_id)
    assert SLASHED_KEY not in str(caught.value) and escaped not in str(caught.value)
    assert "the key *** may not" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
def test_a_key_escaped_inside_an_upstream_error_passed_on_as_text_is_masked(mode, sim, videogen_connection):
    sim.configure(api_key=SLASHED_KEY)
    conn_id = videogen_connection(conn_id="vg_video", api_style="video_generations", api_key=SLASHED_KEY)
    task_id = add_finished_task(sim, style="video_generations", final_status="failed")
    # The gateway passes the upstream error on as a JSON string: the key is escaped twice.
    upstream = f'{{"error": {{"code": "AccessDenied", "message": "key {JSON_ESCAPES["every-letter"](SLASHED_KEY)}"}}}}'
    data = {"task_id": task_id, "status": "FAILURE", "fail_reason": upstream}
    answer = {"code": "success", "message": "", "data": data}
    sim.add_fault(kind="http_error", target="query", task_id=task_id, status=200, body=answer)
    task = get(mode, task_id, conn_id=conn_id)
    assert (task.error_code, task.error_message) == ("AccessDenied", "key ***")
    assert SLASHED_KEY not in json.dumps(task.to_dict())


# ---- hardening: no cookie of one key is sent with another's requests -------------------------


async def test_hooks_of_two_keys_sharing_the_loops_session_send_no_cookie_of_one_with_the_other(videogen_connection):
    cookies_sent: list[tuple[str, str | None]] = []

    class SetsACookieForKeyA(QuietHandler):
        def do_GET(self) -> None:
            authorization = self.headers.get("Authorization", "")
            cookies_sent.append((authorization, self.headers.get("Cookie")))
            body = json.dumps({"id": self.path.rsplit("/", 1)[-1], "status": "running"}).encode()
            self.send_response(200)
            if authorization == "Bearer key-a":
                self.send_header("Set-Cookie", "session=of-key-a; Path=/")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with LoopbackServer(SetsACookieForKeyA) as server:
        host = server.base_url.replace("127.0.0.1", "localhost")  # cookie jars keep none of a bare IP address
        videogen_connection(conn_id="vg_key_a", api_key="key-a", host=host)
        videogen_connection(conn_id="vg_key_b", api_key="key-b", host=host)
        hook_a, hook_b = (VideoGenHook(conn_id, retry_policy=FAST_RETRIES) for conn_id in ("vg_key_a", "vg_key_b"))
        async with hook_a, hook_b:
            for _ in range(5):
                await hook_a.aget_task("cgt-first")
                await hook_b.aget_task("cgt-second")
    assert len(cookies_sent) == 10
    assert [cookie for _, cookie in cookies_sent] == [None] * 10


# ---- hardening: a 2xx that is not a task object is transient ---------------------------------


@pytest.mark.parametrize("body", ["null", "[]", '[{"id": "x"}]', '"text"', "42", "true"])
@pytest.mark.parametrize("mode", MODES)
def test_a_json_answer_that_is_not_a_task_object_is_transient(mode, body, sim, videogen_connection):
    task_id = add_finished_task(sim, style="contents_generations", final_status="succeeded")
    sim.add_fault(kind="http_error", target="query", status=200, body=body, content_type="application/json")
    assert get(mode, task_id).status is VideoTaskStatus.SUCCEEDED
    assert len(sim.requests(target="query")) == 2


# ---- hardening: an answer about another task is refused ---------------------------------------


@pytest.mark.parametrize("api_style", ["contents_generations", "video_generations"])
@pytest.mark.parametrize("mode", MODES)
def test_an_answer_about_another_task_id_is_refused(mode, api_style, sim, videogen_connection):
    conn_id = videogen_connection(conn_id=f"vg_{api_style}", api_style=api_style)
    task_id = add_finished_task(sim, style=api_style, final_status="succeeded")
    other = add_finished_task(sim, style=api_style, final_status="succeeded")
    answer = (
        {"id": other, "status": "succeeded", "content": {"video_url": "http://x/v.mp4"}}
        if api_style == "contents_generations"
        else {"code": "success", "message": "", "data": {"task_id": other, "status": "SUCCESS"}}
    )
    sim.add_fault(kind="http_error", target="query", status=200, body=answer, times=10)
    with pytest.raises(VideoGenAPIError, match="with another task") as caught:
        get(mode, task_id, conn_id=conn_id)
    assert other in str(caught.value) and task_id in str(caught.value)
    assert len(sim.requests(target="query")) == 1


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
