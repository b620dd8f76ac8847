"""Shared polls: the waiting triggers of one event loop share their requests to one connection.

Real hooks and triggers against the simulator over loopback; the simulator's request log says how
many calls the service saw on each route. Nothing here is timed: polls that should share a request
are asked for before its gathering moment ends (hooks whose connection is already resolved reach
the poller without yielding to the loop), and the triggers' own sleeps are the fake clock's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

import pytest

from airflow_provider_videogen.exceptions import (
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenTransientError,
)
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.shared_polls import SharedPolls
from airflow_provider_videogen.styles.contents_generations import ContentsGenerations
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger

ONE_ATTEMPT = RetryPolicy(max_attempts=1)
# Long enough for every poll of a test to join the round, never waited for in full by a passing test
# except by its last, partly filled round.
GATHER = 0.2


async def resolved_hooks(conn_id: str, count: int) -> list[VideoGenHook]:
    hooks = [VideoGenHook(conn_id, retry_policy=ONE_ATTEMPT) for _ in range(count)]
    for hook in hooks:
        await hook.aget_settings()
    return hooks


async def poll_all(hooks: list[VideoGenHook], task_ids: list[str], gather: float = GATHER) -> list[Any]:
    """One poll per hook, all asked for in the same turn of the loop."""
    return await asyncio.gather(
        *(hook.apoll_task(task_id, gather=gather) for hook, task_id in zip(hooks, task_ids, strict=True)),
        return_exceptions=True,
    )


async def close_all(hooks: list[VideoGenHook]) -> None:
    shared = {hook._reads.shared_polls for hook in hooks if hook._reads.shared_polls is not None}
    for hook in hooks:
        await hook.aclose()
    # A shared request still finishing closes its hook once done: let it, before the test's loop closes.
    for polls in shared:
        while polls._sending:
            await asyncio.gather(*polls._sending, return_exceptions=True)


def asked_ids(request: dict[str, Any]) -> list[str]:
    ids = request["query"]["filter.task_ids"]
    return ids if isinstance(ids, list) else [ids]  # one value is logged as a string


def calls(sim: Any, target: str) -> int:
    return len(sim.requests(target=target))


async def test_n_waiting_tasks_cost_one_list_call_per_page_per_round(sim, videogen_connection, caplog):
    n = 1001  # three pages: two calls of 500 ids are refused at once
    task_ids = [sim.add_task(queued_seconds=600) for _ in range(n)]
    hooks = await resolved_hooks("videogen_default", n)
    try:
        with caplog.at_level(logging.WARNING, logger="airflow_provider_videogen.shared_polls"):
            answers = await poll_all(hooks, task_ids)
        assert [task.id for task in answers] == task_ids
        assert {task.status.value for task in answers} == {"queued"}
        # 500 ids make a URL of ~20,000 characters, past the simulator's limit (aiohttp's 8,190, like nginx's
        # and Apache's): its HTTP parser refuses the first call before the request is logged, and the
        # same ids go again in calls that fit in 8,000.
        accepted = sim.requests(target="list")
        assert {r["status"] for r in accepted} == {200} and len(accepted) >= 3
        assert all(len(r["path"]) + len(r["query_string"]) < 8000 for r in accepted)
        asked = [asked_ids(r) for r in accepted]
        per_call = max(map(len, asked))
        assert per_call > 150 and sorted(i for ids in asked for i in ids) == sorted(task_ids)
        assert len([r for r in caplog.records if "long URL" in r.getMessage()]) == 1
        sim.clear_requests()
        for round_number in (1, 2):
            answers = await poll_all(hooks, task_ids)
            assert [task.id for task in answers] == task_ids
            assert len(sim.requests(target="list")) == round_number * math.ceil(n / per_call)
    finally:
        await close_all(hooks)
    assert calls(sim, "query") == 0
    assert all(r["query"]["page_size"] == "500" for r in sim.requests(target="list"))
    # Everything the shared polls used is given back with the last hook.
    assert not SharedPolls._by_loop.get(asyncio.get_running_loop())


async def test_a_round_holding_a_whole_page_goes_out_without_waiting_for_its_gathering_moment(
    sim, videogen_connection, monkeypatch
):
    monkeypatch.setattr(ContentsGenerations, "batch_query_size", 3)
    task_ids = [sim.add_task(queued_seconds=600) for _ in range(6)]
    hooks = await resolved_hooks("videogen_default", 6)
    try:
        # Gathering for an hour: only rounds that are full are sent (the guard fails the test, not a clock).
        answers = await asyncio.wait_for(poll_all(hooks, task_ids, gather=3600.0), timeout=60)
    finally:
        await close_all(hooks)
    assert [task.id for task in answers] == task_ids
    assert [asked_ids(r) for r in sim.requests(target="list")] == [task_ids[:3], task_ids[3:]]


async def test_an_unchanged_task_is_the_same_object_and_a_changed_one_is_read_anew(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    hooks = await resolved_hooks("videogen_default", 1)
    try:
        (first,) = await poll_all(hooks, [task_id])
        (again,) = await poll_all(hooks, [task_id])
        assert again is first  # nothing new to read, nor for the garbage collector to track
        sim.set_status(task_id, "running")
        (changed,) = await poll_all(hooks, [task_id])
    finally:
        await close_all(hooks)
    assert (first.status.value, changed.status.value) == ("queued", "running")
    assert calls(sim, "list") == 3


class TestAHostTakingLongUrls:
    """A host whose request lines may be long (the simulator's ``max_request_line``) gets 500 ids a call."""

    @pytest.fixture
    def videogen_simulator_settings(self, videogen_simulator_settings: dict[str, Any]) -> dict[str, Any]:
        return {**videogen_simulator_settings, "max_request_line": 32_768}

    async def test_n_waiting_tasks_cost_one_list_call_of_500_ids_per_page(self, sim, videogen_connection, caplog):
        n = 1001
        task_ids = [sim.add_task(queued_seconds=600) for _ in range(n)]
        hooks = await resolved_hooks("videogen_default", n)
        try:
            with caplog.at_level(logging.WARNING, logger="airflow_provider_videogen.shared_polls"):
                for _ in range(2):
                    answers = await poll_all(hooks, task_ids)
                    assert [task.id for task in answers] == task_ids
        finally:
            await close_all(hooks)
        asked = [asked_ids(r) for r in sim.requests(target="list")]
        assert [len(ids) for ids in asked] == [500, 500, 1] * 2
        assert [i for ids in asked[:3] for i in ids] == task_ids
        assert not [r for r in caplog.records if "long URL" in r.getMessage()]
        assert calls(sim, "query") == 0


class TestAHostRefusingLongRequestLines:
    """Servers and proxies in front of a host refuse a long request line: 400 or 414 (nginx, Apache), 431
    (Node, Go), 413 (some proxies), and some below 8,000 characters (the simulator's ``request_line_limit``)."""

    @pytest.fixture
    def videogen_simulator_settings(self, videogen_simulator_settings: dict[str, Any]) -> dict[str, Any]:
        return {**videogen_simulator_settings, "max_request_line": 32_768}

    @pytest.mark.parametrize(
        ("limit", "status"), [(10_000, 431), (10_000, 413), (3_000, 414), (3_000, 431), (3_000, 413), (3_000, 400)]
    )
    async def test_every_poll_of_the_round_is_answered_by_list_calls_short_enough(
        self, sim, videogen_connection, limit, status
    ):
        sim.configure(request_line_limit=limit, request_line_status=status)
        task_ids = [sim.add_task(queued_seconds=600) for _ in range(300)]  # one call: ~12,500 characters
        hooks = await resolved_hooks("videogen_default", 300)
        try:
            answers = await poll_all(hooks, task_ids)
            assert [getattr(answer, "id", answer) for answer in answers] == task_ids
            served = [r for r in sim.requests(target="list") if r["status"] == 200]
            assert sorted(i for r in served for i in asked_ids(r)) == sorted(task_ids)
            assert {r["status"] for r in sim.requests(target="list")} == {200, status}
            sim.clear_requests()
            again = await poll_all(hooks, task_ids)  # the host's limit is remembered: nothing is refused
            assert [getattr(answer, "id", answer) for answer in again] == task_ids
            assert {r["status"] for r in sim.requests(target="list")} == {200}
        finally:
            await close_all(hooks)
        assert calls(sim, "query") == 0

    async def test_300_sharing_triggers_all_succeed_behind_a_431(self, sim, videogen_connection):
        sim.configure(request_line_limit=3_000, request_line_status=431)
        task_ids = [sim.add_task(queued_seconds=0, running_seconds=0) for _ in range(300)]
        payloads = await final_payloads(*(sharing_trigger(task_id)[0] for task_id in task_ids))
        assert [p["status"] for p in payloads] == ["success"] * 300
        assert calls(sim, "query") == 0

    async def test_a_list_answer_past_the_answer_limit_is_asked_again_in_smaller_pages(
        self, sim, videogen_connection, caplog
    ):
        sim.configure(task_object_padding=15_000)  # 300 tasks: an answer of 4.5 MB, past the 4 MiB limit
        task_ids = [sim.add_task(queued_seconds=600) for _ in range(300)]
        hooks = await resolved_hooks("videogen_default", 300)
        try:
            with caplog.at_level(logging.WARNING, logger="airflow_provider_videogen.shared_polls"):
                for _ in range(2):
                    answers = await poll_all(hooks, task_ids)
                    assert [getattr(answer, "id", answer) for answer in answers] == task_ids
        finally:
            await close_all(hooks)
        assert [len(asked_ids(r)) for r in sim.requests(target="list")] == [300, 150, 150, 150, 150]
        assert calls(sim, "query") == 0
        (said,) = [r.getMessage() for r in caplog.records if "at most 150 ids" in r.getMessage()]
        assert "list call of 300 ids with more than" in said and sim.api_key not in said


@pytest.mark.parametrize("status", [401, 403])
async def test_a_list_call_refusing_the_key_fails_every_sharers_poll_at_once(sim, videogen_connection, status):
    task_ids = [sim.add_task(queued_seconds=600) for _ in range(3)]
    # The service's own answers: 401 AuthenticationError, 403 AccessDenied.
    sim.add_fault("http_error", target="list", status=status, times=0)
    hooks = await resolved_hooks("videogen_default", 3)
    try:
        errors = await poll_all(hooks, task_ids)
    finally:
        await close_all(hooks)
    assert all(isinstance(error, VideoGenAuthError) and error.http_status == status for error in errors)
    assert (calls(sim, "list"), calls(sim, "query")) == (1, 0)  # the same key would be refused for every task


async def test_a_task_missing_from_the_list_answer_gets_its_own_get(sim, videogen_connection):
    kept, left_out = sim.add_task(queued_seconds=600), sim.add_task(queued_seconds=0, running_seconds=0)
    partial = {"total": 1, "items": [{"id": kept, "model": "m", "status": "queued", "created_at": 1}]}
    sim.add_fault("http_error", target="list", status=200, body=json.dumps(partial), content_type="application/json")
    hooks = await resolved_hooks("videogen_default", 2)
    try:
        first, second = await poll_all(hooks, [kept, left_out])
    finally:
        await close_all(hooks)
    assert (first.id, first.status.value) == (kept, "queued")
    assert (second.id, second.status.value) == (left_out, "succeeded")  # absence is not "not found"
    assert calls(sim, "list") == 1
    assert [r["task_id"] for r in sim.requests(target="query")] == [left_out]


async def test_a_task_listed_twice_in_one_answer_is_decided_by_its_own_get(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=0, running_seconds=600)  # its own GET says running
    contradicting = {
        "total": 2,
        "items": [
            {"id": task_id, "model": "m", "status": "failed", "created_at": 1},
            {"id": task_id, "model": "m", "status": "running", "created_at": 1},
        ],
    }
    sim.add_fault(
        "http_error", target="list", status=200, body=json.dumps(contradicting), content_type="application/json"
    )
    hooks = await resolved_hooks("videogen_default", 1)
    try:
        (answer,) = await poll_all(hooks, [task_id])
    finally:
        await close_all(hooks)
    assert (answer.id, answer.status.value) == (task_id, "running")  # neither listing decides it
    assert calls(sim, "list") == 1
    assert [r["task_id"] for r in sim.requests(target="query")] == [task_id]


# 403 without an API error: a proxy's, not about the key; 307: a redirect to another origin, never followed.
@pytest.mark.parametrize("status", [400, 403, 404, 405, 409, 307])
async def test_a_host_refusing_the_list_call_is_polled_task_by_task_and_it_is_said_once(
    sim, videogen_connection, caplog, status
):
    task_ids = [sim.add_task(queued_seconds=600) for _ in range(3)]
    if status == 307:
        sim.add_fault("redirect", target="list", times=0)
    else:
        sim.add_fault("http_error", target="list", status=status, body="{}", content_type="application/json", times=0)
    hooks = await resolved_hooks("videogen_default", 3)
    try:
        with caplog.at_level(logging.WARNING, logger="airflow_provider_videogen.shared_polls"):
            for round_number in (1, 2):
                answers = await poll_all(hooks, task_ids)
                assert [task.status.value for task in answers] == ["queued"] * 3
                assert calls(sim, "query") == 3 * round_number
    finally:
        await close_all(hooks)
    assert calls(sim, "list") == 2  # 3 ids, then 1: refused even for one id, remembered for the connection
    said = [r for r in caplog.records if "does not serve the list call" in r.getMessage()]
    assert len(said) == 1 and f"HTTP {status}" in said[0].getMessage()


async def test_a_failed_list_call_fails_the_poll_of_every_sharer_and_nothing_more(sim, videogen_connection):
    task_ids = [sim.add_task(queued_seconds=600) for _ in range(2)]
    sim.add_fault("http_error", target="list", status=503, times=1)
    hooks = await resolved_hooks("videogen_default", 2)
    try:
        errors = await poll_all(hooks, task_ids)
        assert all(isinstance(error, VideoGenTransientError) and error.http_status == 503 for error in errors)
        assert calls(sim, "query") == 0  # a failure is not an absence
        answers = await poll_all(hooks, task_ids)
        assert [task.status.value for task in answers] == ["queued", "queued"]
    finally:
        await close_all(hooks)
    assert calls(sim, "list") == 2


async def test_a_bad_task_id_fails_its_own_poll_only(sim, videogen_connection):
    good = sim.add_task(queued_seconds=600)
    hooks = await resolved_hooks("videogen_default", 2)
    try:
        answer, error = await poll_all(hooks, [good, "../other"])
    finally:
        await close_all(hooks)
    assert answer.id == good
    assert isinstance(error, VideoGenConfigurationError)
    assert [asked_ids(r) for r in sim.requests(target="list")] == [[good]]


async def test_one_sharer_cancelled_does_not_cancel_the_poll_of_the_others(sim, videogen_connection):
    task_ids = [sim.add_task(queued_seconds=600) for _ in range(2)]
    hooks = await resolved_hooks("videogen_default", 2)
    try:
        cancelled = asyncio.ensure_future(hooks[0].apoll_task(task_ids[0], gather=GATHER))
        kept = asyncio.ensure_future(hooks[1].apoll_task(task_ids[1], gather=GATHER))
        await asyncio.sleep(0)
        cancelled.cancel()
        assert (await kept).id == task_ids[1]
        assert cancelled.cancelled()
    finally:
        await close_all(hooks)
    assert calls(sim, "list") == 1


def others_running() -> set[asyncio.Task[Any]]:
    """The tasks of this loop still running, besides the test's own."""
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def test_the_last_hook_to_leave_has_closed_everything_the_shared_polls_used_when_its_aclose_returns(
    sim, videogen_connection
):
    task_id = sim.add_task(queued_seconds=600)
    (hook,) = await resolved_hooks("videogen_default", 1)
    try:
        assert (await hook.apoll_task(task_id, gather=0.0)).id == task_id
    finally:
        await hook.aclose()
    # Nothing left to close in a task of its own, which the loop could destroy still pending when it ends.
    assert others_running() == set()
    assert not SharedPolls._by_loop.get(asyncio.get_running_loop())


async def test_a_request_the_last_hook_gave_up_on_is_stopped_and_closed_with_its_aclose(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    sim.add_fault("slow", target="list", delay=30, times=1)
    (hook,) = await resolved_hooks("videogen_default", 1)
    try:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(hook.apoll_task(task_id, gather=0.0), 0.2)
    finally:
        await asyncio.wait_for(hook.aclose(), 5)  # not the 30 s the request would take
    assert others_running() == set()


@pytest.mark.parametrize("api_style", ["video_generations", "openai_videos"])
async def test_without_a_batch_query_polls_of_the_same_task_share_one_request(sim, videogen_connection, api_style):
    videogen_connection(conn_id="vg_gateway", api_style=api_style)
    same, other = (sim.add_task(style=api_style, queued_seconds=600) for _ in range(2))
    hooks = await resolved_hooks("vg_gateway", 3)
    try:
        answers = await poll_all(hooks, [same, same, other])
    finally:
        await close_all(hooks)
    assert [task.id for task in answers] == [same, same, other]
    queried = sorted(r["task_id"] for r in sim.requests() if r["method"] == "GET")
    assert queried == sorted([same, other])


async def test_the_coalesce_polls_extra_false_makes_every_poll_its_own_request(sim, videogen_connection):
    videogen_connection(conn_id="vg_alone", coalesce_polls=False)
    task_id = sim.add_task(queued_seconds=600)
    hooks = await resolved_hooks("vg_alone", 2)
    try:
        await poll_all(hooks, [task_id, task_id])
    finally:
        await close_all(hooks)
    assert (calls(sim, "list"), calls(sim, "query")) == (0, 2)


# ---- triggers sharing polls: their own rules still apply ----


class FakeSleep:
    """A trigger's sleep that returns at once and records what it was asked to wait."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


def sharing_trigger(
    task_id: str, conn_id: str = "videogen_default", **kwargs: Any
) -> tuple[VideoTaskTrigger, FakeSleep]:
    # jitter 1: the trigger gathers for one interval (0.2 s), enough for its sharers to join.
    kwargs.setdefault("poll_interval", 0.2)
    trigger = VideoTaskTrigger(task_id, videogen_conn_id=conn_id, **kwargs)
    trigger.jitter = 1.0
    clock = FakeSleep()
    trigger._sleep = clock.sleep  # type: ignore[method-assign]
    return trigger, clock


async def final_payloads(*triggers: VideoTaskTrigger) -> list[dict[str, Any]]:
    async def one(trigger: VideoTaskTrigger) -> dict[str, Any]:
        (event,) = [event async for event in trigger.run()]
        return event.payload

    return await asyncio.gather(*(one(trigger) for trigger in triggers))


async def test_a_429_on_the_list_call_backs_off_every_trigger_sharing_it(sim, videogen_connection):
    task_ids = [sim.add_task(queued_seconds=0, running_seconds=0) for _ in range(2)]
    sim.add_fault("http_error", target="list", status=429, retry_after="7", times=1)
    (first, first_clock), (second, second_clock) = (sharing_trigger(task_id) for task_id in task_ids)
    payloads = await final_payloads(first, second)
    assert [p["status"] for p in payloads] == ["success", "success"]
    for clock in (first_clock, second_clock):
        assert len(clock.sleeps) == 2 and clock.sleeps[1] >= 7  # each honoured Retry-After
    assert calls(sim, "list") == 2 and calls(sim, "query") == 0


async def test_each_sharer_keeps_its_own_error_budget(sim, videogen_connection):
    task_ids = [sim.add_task(queued_seconds=0, running_seconds=0) for _ in range(2)]
    sim.add_fault("http_error", target="list", status=503, times=2)
    strict, _ = sharing_trigger(task_ids[0], max_consecutive_errors=1)
    patient, patient_clock = sharing_trigger(task_ids[1], max_consecutive_errors=3)
    strict_payload, patient_payload = await final_payloads(strict, patient)
    assert strict_payload["status"] == "error" and "after 1 failed polls" in strict_payload["message"]
    assert patient_payload["status"] == "success" and len(patient_clock.sleeps) == 3


async def test_gateway_triggers_on_one_task_share_its_polls_at_the_styles_interval(sim, videogen_connection):
    videogen_connection(conn_id="vg_gateway", api_style="video_generations")
    task_id = sim.add_task(style="video_generations", queued_seconds=0, running_seconds=0)
    triggers = [sharing_trigger(task_id, "vg_gateway", poll_interval=None) for _ in range(2)]
    for trigger, _ in triggers:
        trigger.jitter = 0.01  # gathers for 0.15 s
    # Without an interval the gateway's own refresh period (15 s) is the trigger's.
    payloads = await final_payloads(*(trigger for trigger, _ in triggers))
    assert [p["status"] for p in payloads] == ["success", "success"]
    for _, clock in triggers:
        assert len(clock.sleeps) == 1 and 15.0 <= clock.sleeps[0] <= 15.15
    assert len(sim.requests(target="query", task_id=task_id)) == 1


def test_the_shared_poller_sits_below_the_hook_and_calls_nothing_private_of_it():
    import ast
    from pathlib import Path

    from airflow_provider_videogen import shared_polls

    tree = ast.parse(Path(shared_polls.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    reached = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert "airflow_provider_videogen.hooks.videogen" not in imported
    assert reached.isdisjoint({"_arequest", "_request", "_settings"})
