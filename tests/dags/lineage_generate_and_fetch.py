"""``generate >> fetch`` polling quickly, for the OpenLineage test (run by ``airflow dags test`` in a subprocess)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator

with DAG(dag_id="videogen_lineage", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    generate = GenerateVideoOperator(
        task_id="generate",
        model="doubao-seedance-1-0-pro-250528",
        prompt="{{ dag_run.conf['prompt'] }}",
        generation_params={"resolution": "720p", "duration": 5, "return_last_frame": True},
        poll_interval=0.2,
        deferrable=True,
    )
    fetch = FetchVideoOperator(
        task_id="fetch",
        video_task_id="{{ ti.xcom_pull(task_ids='generate', key='video_task_id') }}",
        destination="{{ dag_run.conf['destination'] }}",
        include_last_frame=True,
    )
    generate >> fetch
