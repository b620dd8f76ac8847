"""Generate and land in one deferred task, with one retry: for ``dag.test()`` of the landing after the wait."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG

from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    "videogen_generate_and_land",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["videogen-tests"],
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        model="doubao-seedance-1-0-pro-250528",
        prompt="{{ dag_run.conf['prompt'] }}",
        destination="{{ dag_run.conf['destination'] }}",
        poll_interval=0.1,
        deferrable=True,
        retries=1,
        retry_delay=timedelta(seconds=0),
        # One attempt per call, so a file-host fault fails the first try's landing.
        http_retry_policy=RetryPolicy(max_attempts=1),
    )
