"""
The generate-and-fetch pipeline on Vertex AI (the ``vertex_veo`` style), with Veo.

The ``videogen`` connection holds no key: it names the Airflow ``google_cloud_platform`` connection
whose credentials call Vertex (``gcp_conn_id``, default ``google_cloud_default``; a key file,
impersonation or the worker's application default credentials), the project and the location::

    AIRFLOW_CONN_VIDEOGEN_VERTEX='{"conn_type": "videogen", "extra": {"api_style": "vertex_veo",
        "data_center": "us_central1", "gcp_conn_id": "google_cloud_default",
        "project_id": "my-project", "location": "us-central1"}}'

The video task id is the operation name. Without an output prefix Vertex returns the video inline
(base64 inside the operation): ``fetch`` lands it into ``destination``, decoded as the answer
streams in, checked and recorded like any download. With one (the connection's
``vertex_output_gcs_uri`` extra) Vertex writes it into your bucket, and ``fetch`` copies it from
there into ``destination`` through the same Google connection (without a destination it returns the
``gs://`` URI). Vertex documents no cancel for Veo.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator

with DAG(
    dag_id="videogen_vertex_veo_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A heron lifts off a misty lake at sunrise, cinematic dolly shot", type="string"),
        "destination": Param("file:///tmp/videogen/vertex/", type="string"),
    },
) as dag:
    generate = GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_vertex",
        model="veo-3.0-generate-001",
        prompt="{{ params.prompt }}",
        generation_params={"duration": 8, "ratio": "16:9", "resolution": "720p", "sample_count": 1},
        timeout=3600,
        deferrable=True,
    )

    fetch = FetchVideoOperator(
        task_id="fetch",
        videogen_conn_id="videogen_vertex",
        video_task_id="{{ ti.xcom_pull(task_ids='generate', key='video_task_id') }}",
        destination="{{ params.destination }}",
    )

    generate >> fetch
