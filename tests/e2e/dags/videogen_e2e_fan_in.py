"""Many deferred sensors at once: one mapped ``VideoTaskSensor`` per id in ``conf["video_task_ids"]``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_videogen.sensors.videogen import VideoTaskSensor

with DAG(
    dag_id="videogen_e2e_fan_in",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"video_task_ids": []},
    default_args={"retries": 0},
    tags=["e2e"],
):

    @task
    def video_task_ids(params: dict[str, Any] | None = None) -> list[str]:
        return list((params or {})["video_task_ids"])

    VideoTaskSensor.partial(
        task_id="wait",
        deferrable=True,
        poke_interval=1,
        timeout=300,
    ).expand(video_task_id=video_task_ids())
