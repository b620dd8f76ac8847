"""Many of the provider's triggers at once in one triggerer, without blocking its event loop."""

from __future__ import annotations

import re

import pytest

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import AirflowDeployment
from .videos import FAN_IN, TRIGGER_CLASSPATH, fired_events, held_video_task, release, wait_until_triggers_run

pytestmark = pytest.mark.e2e

SENSORS = 12
# Airflow's watchdog: the loop did not get back to it in time.
BLOCKED = re.compile(r"async thread was blocked for (?P<seconds>[\d.]+) seconds")
# asyncio's debug mode (PYTHONASYNCIODEBUG=1 in the triggerer): which step of which task ran too long.
SLOW_STEP = re.compile(r"Executing (?P<step><.*>) took (?P<seconds>[\d.]+) seconds")


def test_twelve_deferred_sensors_share_one_triggerer_without_blocking_it(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    airflow.wait_for_dag(FAN_IN)
    video_task_ids = [held_video_task(sim) for _ in range(SENSORS)]
    test_start = airflow.log_size("triggerer")

    run_id = airflow.trigger_dag(FAN_IN, {"video_task_ids": video_task_ids})

    # All twelve wait at the same time, each in its own trigger, all in the same triggerer.
    waiting = wait_until_triggers_run(airflow, FAN_IN, [run_id], "wait", count=SENSORS, timeout=240)
    assert {ti["trigger"]["classpath"] for ti in waiting} == {TRIGGER_CLASSPATH}
    [triggerer_id] = {ti["trigger"]["triggerer_id"] for ti in waiting}
    all_running = airflow.log_size("triggerer")
    for video_task_id in video_task_ids:
        release(sim, video_task_id)

    run = airflow.wait_for_run(FAN_IN, run_id)
    tis = airflow.task_instances(FAN_IN, run_id)
    assert run["state"] == "success", [(ti["task_id"], ti["map_index"], ti["state"]) for ti in tis]
    sensors = [ti for ti in tis if ti["task_id"] == "wait"]
    assert sorted(ti["map_index"] for ti in sensors) == list(range(SENSORS))
    assert {(ti["state"], ti["try_number"]) for ti in sensors} == {("success", 1)}
    for ti in sensors:
        [fired] = fired_events(airflow.trigger_log_events(FAN_IN, run_id, "wait", ti["map_index"])[triggerer_id])
        assert "'status': 'success'" in fired["result"]

    # No step of one of these triggers ever held the event loop long enough for asyncio to report it
    # (asyncio names the task, and Airflow names each trigger's task after its task instance)...
    triggerer_log = airflow.log_since("triggerer", test_start)
    ours = f"name='{FAN_IN}/{run_id}/"
    slow_steps = [m.group(0) for m in SLOW_STEP.finditer(triggerer_log)]
    assert [step for step in slow_steps if ours in step or "airflow_provider_videogen" in step] == []
    # ...and while all twelve polled and then fired, Airflow's watchdog never found the loop blocked.
    # (Before that, the first trigger of a class in a triggerer process blocks it once: Airflow
    # imports the trigger's module and deserializes the DAG inside the loop. asyncio attributes that
    # to Airflow's own TriggerRunner.arun, which the check above lets through.)
    after_start = airflow.log_since("triggerer", all_running)
    assert [m.group(0) for m in BLOCKED.finditer(after_start)] == []
