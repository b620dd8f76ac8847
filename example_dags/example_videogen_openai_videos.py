"""
The generate-and-land pipeline on the ``/v1/videos`` API style (the OpenAI Videos shape of gateways).

new-api serves this shape beside ``/v1/video/generations``, and LiteLLM's ``/videos`` routes put Veo,
Runway, Seedance, Kling and Sora-on-Azure behind it: one connection reaches every model a gateway
carries. Only the connection differs::

    AIRFLOW_CONN_VIDEOGEN_OPENAI='{"conn_type": "videogen", "password": "<gateway key>",
        "host": "https://gateway.example.com", "extra": {"api_style": "openai_videos"}}'

The video is not a public URL here: the task that waited streams it from ``/videos/{id}/content``
with the connection's key (sent to the gateway's own origin only), and the thumbnail stands in for
the last frame. The shape has no cancel call.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    dag_id="videogen_openai_videos_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A lighthouse in a storm, slow push in", type="string"),
        "destination": Param("file:///tmp/videogen/openai-videos/", type="string"),
    },
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_openai",
        model="sora-2",
        prompt="{{ params.prompt }}",
        generation_params={"duration": 8, "width": 1280, "height": 720},
        poll_interval=15,
        timeout=3600,
        deferrable=True,
        destination="{{ params.destination }}",  # lands the video once it succeeded, in this task
        include_last_frame=True,
    )
