"""Wait for a video task with the sensor, then land its video and last frame: for ``dag.test()`` against the simulator.

Run it with ``run_conf={"video_task_id": ..., "destination": "file:///some/folder/"}``: ``submit`` stands in for
the task that created the video, ``wait`` defers to the trigger, ``fetch`` copies the files into
``<destination><ds>/`` (both templated), and ``check`` reads the result ``fetch`` returned.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.sensors.videogen import VideoTaskSensor

with DAG(
    "fetch_video_after_sensor",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["videogen-tests"],
) as dag:

    @task
    def submit(dag_run: Any = None) -> str:
        return str(dag_run.conf["video_task_id"])

    wait = VideoTaskSensor(
        task_id="wait",
        video_task_id="{{ ti.xcom_pull(task_ids='submit') }}",
        deferrable=True,
        poke_interval=0.1,
        timeout=60,
    )

    fetch = FetchVideoOperator(
        task_id="fetch",
        video_task_id="{{ ti.xcom_pull(task_ids='submit') }}",
        destination="{{ dag_run.conf['destination'] }}{{ ds }}/",
        include_last_frame=True,
    )

    @task
    def check(landed: dict[str, Any]) -> str:
        for key in ("video_path", "last_frame_path", "sha256", "size_bytes", "video_url"):
            if not landed.get(key):
                raise ValueError(f"fetch returned no {key}: {landed!r}")
        return str(landed["video_path"])

    submit() >> wait >> fetch
    check(fetch.output)
