"""Wait for one video task in the triggerer, then land its MP4 in a folder.

Triggered by the end-to-end tests with ``conf``: ``video_task_id`` (a task the simulator knows) and
``destination`` (a ``file:///.../`` folder).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.sensors.videogen import VideoTaskSensor

with DAG(
    dag_id="videogen_e2e_wait_and_fetch",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=8,
    params={"video_task_id": "", "destination": ""},
    # No retries: a retried sensor could find the video done without the triggerer.
    default_args={"retries": 0},
    tags=["e2e"],
):
    wait = VideoTaskSensor(
        task_id="wait",
        video_task_id="{{ params.video_task_id }}",
        deferrable=True,
        poke_interval=1,
        timeout=300,
    )
    fetch = FetchVideoOperator(
        task_id="fetch",
        video_task_id="{{ params.video_task_id }}",
        destination="{{ params.destination }}",
    )
    wait >> fetch
