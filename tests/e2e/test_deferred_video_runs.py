"""The sensor and the fetch operator in a real deployment: the triggerer waits, a worker lands the video."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from airflow_provider_videogen.testing import SimulatorProcess
from airflow_provider_videogen.video_download import RECORD_SUFFIX

from .deployment import AirflowDeployment, ti_key
from .videos import (
    TRIGGER_CLASSPATH,
    WAIT_AND_FETCH,
    fired_events,
    held_video_task,
    new_folder,
    release,
    sha256_of,
    wait_until_triggers_run,
)

pytestmark = pytest.mark.e2e


def test_sensor_defers_to_the_triggerer_and_the_video_lands_in_the_destination(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    airflow.wait_for_dag(WAIT_AND_FETCH)
    video_task_id = held_video_task(sim)
    folder = new_folder(airflow, "single")

    run_id = airflow.trigger_dag(WAIT_AND_FETCH, {"video_task_id": video_task_id, "destination": f"file://{folder}/"})

    # While the video renders the sensor holds no worker: it is deferred to the provider's trigger,
    # which a triggerer has taken and is running.
    [waiting] = wait_until_triggers_run(airflow, WAIT_AND_FETCH, [run_id], "wait", count=1)
    assert waiting["trigger"]["classpath"] == TRIGGER_CLASSPATH
    triggerer_id = waiting["trigger"]["triggerer_id"]
    release(sim, video_task_id)

    run = airflow.wait_for_run(WAIT_AND_FETCH, run_id)
    tis = {ti_key(ti): ti for ti in airflow.task_instances(WAIT_AND_FETCH, run_id)}
    assert run["state"] == "success", {key: ti["state"] for key, ti in tis.items()}
    assert {key: (ti["state"], ti["try_number"]) for key, ti in tis.items()} == {
        "wait": ("success", 1),
        "fetch": ("success", 1),
    }

    # That triggerer fired the success event the sensor resumed with.
    trigger_logs = airflow.trigger_log_events(WAIT_AND_FETCH, run_id, "wait")
    assert list(trigger_logs) == [triggerer_id]
    [fired] = fired_events(trigger_logs[triggerer_id])
    assert "'status': 'success'" in fired["result"]

    video = folder / f"{video_task_id}.mp4"
    expected = sim.get_task(video_task_id)
    assert video.stat().st_size == expected["video_size"]
    assert sha256_of(video) == expected["video_sha256"]
    assert len(sim.requests(target="download", task_id=video_task_id)) == 1
    # Only the video and its integrity record: no temporary file left behind.
    assert {p.name for p in folder.iterdir()} == {video.name, video.name + RECORD_SUFFIX}
    record = json.loads((folder / (video.name + RECORD_SUFFIX)).read_text())
    assert (record["video_task_id"], record["sha256"]) == (video_task_id, expected["video_sha256"])
    # What the operator returned, as the REST API shows it.
    result = airflow.xcom(WAIT_AND_FETCH, run_id, "fetch")
    assert (result["sha256"], result["size_bytes"]) == (expected["video_sha256"], expected["video_size"])
    assert result["video_path"].endswith(f"{folder}/{video.name}")


def test_runs_survive_a_triggerer_killed_while_they_are_deferred(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    airflow.wait_for_dag(WAIT_AND_FETCH)
    runs: dict[str, tuple[str, Path]] = {}
    for number in range(3):
        video_task_id = held_video_task(sim)
        folder = new_folder(airflow, f"killed-triggerer-{number}")
        run_id = airflow.trigger_dag(
            WAIT_AND_FETCH, {"video_task_id": video_task_id, "destination": f"file://{folder}/"}
        )
        runs[run_id] = (video_task_id, folder)
    waiting = wait_until_triggers_run(airflow, WAIT_AND_FETCH, list(runs), "wait", count=len(runs))
    [first_triggerer] = {ti["trigger"]["triggerer_id"] for ti in waiting}

    airflow.kill_service("triggerer", signal.SIGKILL)
    assert not airflow.running("triggerer")
    # The videos finish while no triggerer is alive; nothing else may act on the deferred sensors.
    for video_task_id, _ in runs.values():
        release(sim, video_task_id)
    time.sleep(3)
    for run_id in runs:
        states = {ti_key(ti): ti["state"] for ti in airflow.task_instances(WAIT_AND_FETCH, run_id)}
        assert states == {"wait": "deferred", "fetch": None}, states

    airflow.start_service("triggerer")
    for run_id, (video_task_id, folder) in runs.items():
        run = airflow.wait_for_run(WAIT_AND_FETCH, run_id)
        tis = {ti_key(ti): ti for ti in airflow.task_instances(WAIT_AND_FETCH, run_id)}
        assert run["state"] == "success", {key: ti["state"] for key, ti in tis.items()}
        # Neither the sensor nor the fetch was retried: each ran its one try to the end.
        assert {key: (ti["state"], ti["try_number"]) for key, ti in tis.items()} == {
            "wait": ("success", 1),
            "fetch": ("success", 1),
        }
        # The killed triggerer never fired; the new one took the trigger over and did.
        trigger_logs = airflow.trigger_log_events(WAIT_AND_FETCH, run_id, "wait")
        assert fired_events(trigger_logs.get(first_triggerer, [])) == []
        successors = [job for job in trigger_logs if job != first_triggerer]
        assert len(successors) == 1, trigger_logs.keys()
        assert len(fired_events(trigger_logs[successors[0]])) == 1

        video = folder / f"{video_task_id}.mp4"
        assert sha256_of(video) == sim.get_task(video_task_id)["video_sha256"]
        assert len(sim.requests(target="download", task_id=video_task_id)) == 1
