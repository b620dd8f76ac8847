"""The sensor in real DAG runs: ``dag.test()`` runs the deferred trigger inline, against the simulator."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from airflow.exceptions import AirflowFailException

MODERATION_CODE = "OutputVideoSensitiveContentDetected"
MODERATION_MESSAGE = "The request failed because the output video may contain sensitive information."
DAG_FILE = Path(__file__).parents[1] / "dags" / "sensor_wait_for_video.py"


@pytest.fixture(scope="module")
def dag_module(load_dag_file) -> ModuleType:
    return load_dag_file(DAG_FILE)


@pytest.fixture
def failures(monkeypatch) -> list[BaseException]:
    """What the sensor's ``execute_complete`` raised (the exception the task failed with)."""
    from airflow_provider_videogen.sensors.videogen import VideoTaskSensor

    caught: list[BaseException] = []
    real_execute_complete = VideoTaskSensor.execute_complete

    def recording(self: VideoTaskSensor, *args: Any, **kwargs: Any) -> Any:
        try:
            return real_execute_complete(self, *args, **kwargs)
        except BaseException as error:
            caught.append(error)
            raise

    monkeypatch.setattr(VideoTaskSensor, "execute_complete", recording)
    return caught


@pytest.fixture
def running_until_deferred(sim, monkeypatch):
    """Add a video task that is running when the sensor checks it, and final once the sensor defers.

    The task is pinned to ``running`` and unpinned as the sensor defers, so the outcome always
    reaches the sensor through the trigger, however slow the machine.
    """
    from airflow_provider_videogen.sensors.videogen import VideoTaskSensor

    pinned: list[str] = []
    real_defer = VideoTaskSensor.defer

    def defer_then_release(self: VideoTaskSensor, **kwargs: Any) -> Any:
        for task_id in pinned:
            sim.set_status(task_id, "auto")
        return real_defer(self, **kwargs)

    monkeypatch.setattr(VideoTaskSensor, "defer", defer_then_release)

    def add(**task: Any) -> str:
        task_id = sim.add_task(queued_seconds=0, running_seconds=0, **task)
        sim.set_status(task_id, "running")
        pinned.append(task_id)
        return task_id

    return add


def run_dag(dag_module: ModuleType, **conf: Any) -> Any:
    return dag_module.dag.test(run_conf=conf)


@pytest.mark.parametrize("api_style", ["contents_generations", "video_generations"])
def test_dag_with_the_sensor_succeeds(
    dag_module, failures, sim, videogen_connection, running_until_deferred, api_style
):
    conn_id = videogen_connection(conn_id=f"vg_{api_style}", api_style=api_style)
    video_task_id = running_until_deferred(style=api_style, final_status="succeeded")
    run = run_dag(dag_module, video_task_id=video_task_id, conn_id=conn_id)
    assert run.state == "success", failures
    video = run.get_task_instance("wait").xcom_pull(task_ids="wait")
    assert video["id"] == video_task_id
    assert video["status"] == "succeeded"
    assert video["video_url"].startswith(sim.base_url)
    # The check before deferring, the trigger's poll, and the worker's read for the signed URLs
    # (which the trigger's event does not carry). On contents generations the trigger's poll is the
    # list call its shared polls make.
    polls = sim.requests(target="query", task_id=video_task_id) + sim.requests(target="list")
    assert len(polls) == 3


def test_dag_whose_video_task_fails_ends_failed_with_the_api_message(
    dag_module, failures, sim, videogen_connection, running_until_deferred
):
    video_task_id = running_until_deferred(
        final_status="failed", error_code=MODERATION_CODE, error_message=MODERATION_MESSAGE
    )
    run = run_dag(dag_module, video_task_id=video_task_id, conn_id=videogen_connection())
    assert run.state == "failed"
    wait = run.get_task_instance("wait")
    assert wait.state == "failed"
    assert wait.try_number == 1  # not retried, though retries=2
    (failure,) = failures
    assert isinstance(failure, AirflowFailException)
    assert str(failure) == (
        f"Video task {video_task_id} ended failed; error code {MODERATION_CODE}; message: {MODERATION_MESSAGE}"
    )
