"""``VideoBatchTrigger``: one trigger waiting on every generation of a batch in flight, against the simulator."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from airflow_provider_videogen.triggers.batch import VideoBatchTrigger
from tests.loopback import API_KEY


async def _first_event(trigger: VideoBatchTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def batch_trigger(ids: list[str], **kwargs: Any) -> VideoBatchTrigger:
    return VideoBatchTrigger(video_task_ids=ids, poll_interval=0.05, **kwargs)


def test_it_fires_once_resume_after_generations_finished_leaving_the_others_waiting(sim, videogen_connection):
    quick = [sim.add_task(queued_seconds=0, running_seconds=0.1) for _ in range(2)]
    slow = sim.add_task(queued_seconds=30)

    event = asyncio.run(_first_event(batch_trigger([*quick, slow], resume_after=2)))

    assert event["status"] == "ready"
    assert event["finished"] == dict.fromkeys(quick, "success")


def test_it_fires_done_once_every_generation_finished_whatever_its_end(sim, videogen_connection):
    ids = [sim.add_task(queued_seconds=0, running_seconds=0.1), sim.add_task(final_status="failed", queued_seconds=0)]

    event = asyncio.run(_first_event(batch_trigger(ids, resume_after=2)))

    assert event["status"] == "done"
    assert event["finished"] == {ids[0]: "success", ids[1]: "failed"}


def test_it_fires_at_wake_at_when_none_finished_so_that_the_operator_can_create_more(sim, videogen_connection):
    slow = sim.add_task(queued_seconds=30)
    started = time.monotonic()

    event = asyncio.run(_first_event(batch_trigger([slow], wake_at=time.time() + 0.3)))

    assert event == {"status": "ready", "finished": {}, "message": event["message"]}
    assert 0.25 <= time.monotonic() - started < 5


def test_its_arguments_and_event_hold_ids_and_words_only_never_a_url_or_the_key(sim, videogen_connection):
    ids = [sim.add_task(queued_seconds=0, running_seconds=0.1) for _ in range(3)]
    trigger = batch_trigger(ids, resume_after=3, end_time=time.time() + 60, cancel_on_kill=True)
    path, kwargs = trigger.serialize()

    event = asyncio.run(_first_event(VideoBatchTrigger(**kwargs)))

    assert path == "airflow_provider_videogen.triggers.batch.VideoBatchTrigger"
    text = json.dumps([kwargs, event])
    assert "http" not in text and API_KEY not in text
    assert event["finished"] == dict.fromkeys(ids, "success")


def test_killed_it_cancels_every_generation_still_queued_and_leaves_a_finished_one_alone(sim, videogen_connection):
    queued = [sim.add_task(queued_seconds=30) for _ in range(3)]
    finished = sim.add_task(queued_seconds=0, running_seconds=0)

    asyncio.run(batch_trigger([*queued, finished], cancel_on_kill=True).on_kill())

    assert [sim.get_task(video_task_id)["status"] for video_task_id in queued] == ["cancelled"] * 3
    assert sim.get_task(finished)["status"] == "succeeded"
    assert sim.requests(target="cancel", task_id=finished) == []
