"""
The generate-and-land pipeline on Runway's API (the ``runway`` style).

Every call carries the ``X-Runway-Version`` header: the connection's ``runway_version`` extra, by
default Runway's documented current version::

    AIRFLOW_CONN_VIDEOGEN_RUNWAY='{"conn_type": "videogen", "password": "<runway key>",
        "extra": {"api_style": "runway", "runway_version": "2024-11-06"}}'

With an image the generation goes to ``/v1/image_to_video``, without one to ``/v1/text_to_video``.
The wait polls every 5 s, the most often Runway wants (the style's default poll interval). A kill
cancels the task while it is pending or running; a finished one is never touched (Runway's cancel
call deletes it). The output URL is pre-signed and short-lived: the task that waited lands
it right after the wait.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    dag_id="videogen_runway_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A paper plane glides over a city at dawn", type="string"),
        "destination": Param("file:///tmp/videogen/runway/", type="string"),
    },
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_runway",
        model="gen4.5",
        prompt="{{ params.prompt }}",
        generation_params={"ratio": "1280:720", "duration": 5},
        timeout=3600,
        deferrable=True,
        destination="{{ params.destination }}",  # lands the video once it succeeded, in this task
    )
