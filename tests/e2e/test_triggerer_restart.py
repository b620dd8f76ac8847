"""A triggerer killed outright while videos are being waited for: the runs carry on in its successor."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import AirflowDeployment, ti_key
from .videos import (
    GENERATE_AND_FETCH,
    WAIT_AND_FETCH,
    creates_with,
    fired_events,
    held_prompt,
    held_video_task,
    new_folder,
    release,
    sha256_of,
    video_downloads,
    wait_for_xcom,
    wait_until_triggers_run,
)

pytestmark = pytest.mark.e2e


@dataclass
class DeferredRun:
    dag_id: str
    run_id: str
    deferred_task: str
    video_task_id: str
    folder: Path
    prompt: str | None = None


def test_runs_succeed_after_the_triggerer_is_killed_while_they_are_deferred(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    airflow.wait_for_dag(GENERATE_AND_FETCH)
    airflow.wait_for_dag(WAIT_AND_FETCH)
    runs: list[DeferredRun] = []
    # A generation the example submits itself...
    folder = new_folder(airflow, "restart-generate")
    prompt = held_prompt("A lighthouse in a storm")
    run_id = airflow.trigger_dag(GENERATE_AND_FETCH, {"prompt": prompt, "destination": f"file://{folder}/"})
    video_task_id = wait_for_xcom(airflow, GENERATE_AND_FETCH, run_id, "generate", "video_task_id")
    runs.append(DeferredRun(GENERATE_AND_FETCH, run_id, "generate", video_task_id, folder, prompt))
    # ...and videos created elsewhere that the other example waits for.
    for number in range(2):
        folder = new_folder(airflow, f"restart-wait-{number}")
        video_task_id = held_video_task(sim)
        run_id = airflow.trigger_dag(
            WAIT_AND_FETCH, {"video_task_id": video_task_id, "destination": f"file://{folder}/"}
        )
        runs.append(DeferredRun(WAIT_AND_FETCH, run_id, "wait", video_task_id, folder))
    generating, waiting_elsewhere = runs[0], runs[1:]
    waiting = wait_until_triggers_run(airflow, GENERATE_AND_FETCH, [generating.run_id], "generate", count=1)
    waiting += wait_until_triggers_run(
        airflow, WAIT_AND_FETCH, [run.run_id for run in waiting_elsewhere], "wait", count=len(waiting_elsewhere)
    )
    [killed_triggerer] = {ti["trigger"]["triggerer_id"] for ti in waiting}

    airflow.kill_service("triggerer", signal.SIGKILL)
    assert not airflow.running("triggerer")
    # The videos finish while no triggerer is alive; nothing else may act on the deferred tasks.
    for run in runs:
        release(sim, run.video_task_id)
    time.sleep(3)
    for run in runs:
        states = {ti_key(ti): ti["state"] for ti in airflow.task_instances(run.dag_id, run.run_id)}
        assert states[run.deferred_task] == "deferred", states

    airflow.start_service("triggerer")
    for run in runs:
        finished = airflow.wait_for_run(run.dag_id, run.run_id)
        tis = {ti_key(ti): (ti["state"], ti["try_number"]) for ti in airflow.task_instances(run.dag_id, run.run_id)}
        assert finished["state"] == "success", (run, tis)
        # Nothing was retried: every task ran its one try to the end.
        assert set(tis.values()) == {("success", 1)}, (run, tis)
        # The killed triggerer never fired; its successor took the trigger over and fired once.
        trigger_logs = airflow.trigger_log_events(run.dag_id, run.run_id, run.deferred_task)
        assert fired_events(trigger_logs.get(killed_triggerer, [])) == []
        successors = [job for job in trigger_logs if job != killed_triggerer]
        assert len(successors) == 1, (run, list(trigger_logs))
        [fired] = fired_events(trigger_logs[successors[0]])
        assert "'status': 'success'" in fired["result"]

        # Each video was downloaded exactly once, and landed whole.
        assert len(video_downloads(sim, run.video_task_id)) == 1, run
        video = run.folder / f"{run.video_task_id}.mp4"
        assert sha256_of(video) == sim.get_task(run.video_task_id)["video_sha256"]
        if run.prompt is not None:
            # The generation was submitted once: waiting again is not submitting again.
            assert len(creates_with(sim, run.prompt)) == 1
