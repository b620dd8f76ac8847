"""Both triggerers killed while videos finish, then started again: the deadlines hold, no wait starts over."""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_videogen.testing import SimulatorProcess

from .dags.videogen_e2e_scale import DEADLINE_SECONDS
from .deployment import ti_key
from .distributed import TRIGGERERS, DistributedDeployment
from .videos import DEADLINE, HOLD, created_tasks, fired_events, is_waiting, release, wait_until_triggers_run

pytestmark = pytest.mark.distributed

VIDEOS = 4
# This one is never released: it is still rendering at its deadline.
LATE = VIDEOS - 1
OUTAGE_SECONDS = 5
# What the trigger logs as it starts waiting: "... (poll every 2.0 s, until <deadline>)."
DEADLINE_LOGGED = re.compile(r"until (\S+?)\)")


def _deadlines(events: list[dict[str, Any]]) -> list[str]:
    """The deadlines a trigger logged as it started waiting (once per start)."""
    return [DEADLINE_LOGGED.search(e["event"]).group(1) for e in events if is_waiting(e)]  # type: ignore[union-attr]


def test_deadlines_hold_and_no_wait_starts_over_when_both_triggerers_die_and_return(
    distributed: DistributedDeployment, dsim: SimulatorProcess, figures: Callable[[str], None]
) -> None:
    airflow = distributed
    airflow.wait_for_dag(DEADLINE)
    token = uuid.uuid4().hex[:12]
    prompts = [f"[{token}:{index}] Northern lights over a frozen lake {HOLD}" for index in range(VIDEOS)]
    run_id = airflow.trigger_dag(
        DEADLINE, {"prompts": prompts, "destination": f"file://{airflow.home}/videos/{token}/"}
    )
    wait_until_triggers_run(airflow, DEADLINE, [run_id], "generate", count=VIDEOS)
    first_jobs = set(airflow.triggerer_jobs())
    deadline = {}
    for index in range(VIDEOS):
        [events] = airflow.trigger_log_events(DEADLINE, run_id, "generate", index).values()
        [deadline[index]] = _deadlines(events)

    for name in TRIGGERERS:
        airflow.kill_service(name, signal.SIGKILL)
    killed_at = time.monotonic()
    # Three videos finish while no triggerer is alive; the fourth renders on.
    videos = [ids[0] for ids in created_tasks(dsim, prompts)]
    for video_task_id in videos[:LATE]:
        release(dsim, video_task_id)
    time.sleep(OUTAGE_SECONDS)
    states = {ti_key(ti): ti["state"] for ti in airflow.task_instances(DEADLINE, run_id) if ti["task_id"] == "generate"}
    assert set(states.values()) == {"deferred"}, states

    airflow.start(list(TRIGGERERS))
    restarted_at, restarted_wall = time.monotonic(), time.time()
    run = airflow.wait_for_run(DEADLINE, run_id, timeout=240)
    tis = {ti_key(ti): (ti["state"], ti["try_number"]) for ti in airflow.task_instances(DEADLINE, run_id)}
    assert run["state"] == "failed", tis
    # Three generations succeeded on their first try; the fourth failed at its deadline, and so the
    # fetch, mapped over all four results, never expanded.
    assert tis == {
        "prompts": ("success", 1),
        **{f"generate[{i}]": ("success", 1) for i in range(LATE)},
        f"generate[{LATE}]": ("failed", 1),
        "fetch": ("upstream_failed", 0),
    }
    assert [len(ids) for ids in created_tasks(dsim, prompts)] == [1] * VIDEOS

    for index in range(VIDEOS):
        logs = airflow.trigger_log_events(DEADLINE, run_id, "generate", index)
        before = {job: events for job, events in logs.items() if job in first_jobs}
        after = {job: events for job, events in logs.items() if job not in first_jobs}
        # The killed triggerers never fired; one new triggerer took the trigger and fired once.
        assert [fired_events(events) for events in before.values()] == [[]]
        [events] = after.values()
        # It waited for the deadline set when the try started, not one counted from its own start.
        assert _deadlines(events) == [deadline[index]], (index, events)
        [fired] = fired_events(events)
        if index < LATE:
            assert "'status': 'success'" in fired["result"]
        else:
            assert "'status': 'timeout'" in fired["result"]
            assert f"at the deadline ({deadline[index]})" in fired["result"]
            timed_out_at = datetime.fromisoformat(fired["timestamp"])
    late_by = (timed_out_at - datetime.fromisoformat(deadline[LATE])).total_seconds()
    restarted_clock = datetime.fromtimestamp(restarted_wall, tz=timezone.utc)
    figures(
        f"both triggerers down for {restarted_at - killed_at:.0f} s; the held generation timed out at "
        f"{timed_out_at.time().isoformat('milliseconds')}, {late_by:.1f} s after its original deadline "
        f"{deadline[LATE]} (logged to the second), where a wait counted again from the restart would "
        f"have ended at {(restarted_clock + timedelta(seconds=DEADLINE_SECONDS)).time().isoformat('seconds')}"
    )
