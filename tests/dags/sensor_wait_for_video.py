"""A DAG that waits for a video task with the deferrable sensor, for ``dag.test()`` against the simulator.

Run it with ``run_conf={"video_task_id": ..., "conn_id": ...}``: ``wait`` checks the task, defers to
the trigger, and returns the video as its XCom.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG

from airflow_provider_videogen.sensors.videogen import VideoTaskSensor

with DAG(
    "sensor_wait_for_video",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["videogen-tests"],
) as dag:
    wait = VideoTaskSensor(
        task_id="wait",
        video_task_id="{{ dag_run.conf['video_task_id'] }}",
        videogen_conn_id="{{ dag_run.conf.get('conn_id', 'videogen_default') }}",
        deferrable=True,
        poke_interval=0.1,
        timeout=60,
        retries=2,
        retry_delay=timedelta(seconds=0),
    )
