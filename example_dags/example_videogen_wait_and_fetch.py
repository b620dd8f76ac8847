"""
Wait for a video task created elsewhere, then land it.

The video task id comes from the run's ``params`` (trigger the DAG with
``{"video_task_id": "cgt-..."}``); in a larger DAG it would come from an upstream task's XCom,
e.g. ``video_task_id="{{ ti.xcom_pull(task_ids='submit') }}"``.

``wait`` checks the task once and, if it is not finished, defers to the triggerer: no worker slot
is held while the video renders. A task that ends failed, cancelled or expired fails ``wait`` with
the API's error code and message (output moderation, for instance). ``describe`` shows the
metadata-only mode of ``FetchVideoOperator``: the video URL and metadata to XCom, nothing downloaded.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.sensors.videogen import VideoTaskSensor

with DAG(
    dag_id="videogen_wait_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "video_task_id": Param("", type="string", description="The id the create call returned."),
        "destination": Param("file:///tmp/videogen/videos/", type="string"),
    },
) as dag:
    wait = VideoTaskSensor(
        task_id="wait",
        video_task_id="{{ params.video_task_id }}",
        poke_interval=10,
        timeout=3600,
        deferrable=True,
    )

    describe = FetchVideoOperator(task_id="describe", video_task_id="{{ params.video_task_id }}")

    land = FetchVideoOperator(
        task_id="land",
        video_task_id="{{ params.video_task_id }}",
        destination="{{ params.destination }}",
    )

    wait >> [describe, land]
