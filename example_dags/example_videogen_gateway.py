"""
The generate-and-land pipeline on the "video generations" API style of new-api gateways.

Only the connection differs: ``videogen_gateway`` has ``"api_style": "video_generations"`` and the
gateway's URL as host, e.g.::

    AIRFLOW_CONN_VIDEOGEN_GATEWAY='{"conn_type": "videogen", "password": "<gateway key>",
        "host": "https://gateway.example.com", "extra": {"api_style": "video_generations"}}'

The same generation fields work: Seedance options such as ``resolution`` and ``ratio`` are sent in
the gateway's ``metadata``. Gateways have no cancel call, so a killed task leaves the generation
running (the operator logs that instead of failing).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    dag_id="videogen_gateway_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("Ocean waves at golden hour, drone shot", type="string"),
        "destination": Param("file:///tmp/videogen/gateway/", type="string"),
    },
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_gateway",
        model="doubao-seedance-1-0-pro-250528",
        prompt="{{ params.prompt }}",
        generation_params={"duration": 5, "resolution": "720p", "ratio": "16:9"},
        poll_interval=15,  # the gateway refreshes from upstream about every 15 s
        timeout=3600,
        deferrable=True,
        destination="{{ params.destination }}",  # lands the video once it succeeded, in this task
    )
