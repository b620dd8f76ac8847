"""
The generate-and-land pipeline on Alibaba Cloud Model Studio's Wan models (the ``dashscope`` style).

The API key belongs to one region: ``intl`` (Singapore, the default), ``us`` (Virginia) or ``cn``
(Beijing), chosen with the connection's ``data_center``::

    AIRFLOW_CONN_VIDEOGEN_DASHSCOPE='{"conn_type": "videogen", "password": "<dashscope key>",
        "extra": {"api_style": "dashscope", "data_center": "intl"}}'

The wait polls every 15 s, the service's own advice (the style's default poll interval). A task
still ``PENDING`` when the run is killed is cancelled; a running one cannot be. The video URL is
pre-signed for 24 hours: the task that waited lands it right after the wait.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    dag_id="videogen_dashscope_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A kitten running in the moonlight, cinematic", type="string"),
        "image_url": Param("https://example.com/first-frame.png", type="string"),
        "destination": Param("file:///tmp/videogen/dashscope/", type="string"),
    },
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_dashscope",
        model="wan2.5-i2v-preview",
        prompt="{{ params.prompt }}",
        image_urls=["{{ params.image_url }}"],
        generation_params={"resolution": "720P", "duration": 5, "prompt_extend": True},
        timeout=3600,
        deferrable=True,
        destination="{{ params.destination }}",  # lands the video once it succeeded, in this task
    )
