"""A generation whose first try fails mid-wait: for ``dag.test()`` of the durable retry (Airflow 3.3+)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG

from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    "generate_with_retry",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["videogen-tests"],
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        model="doubao-seedance-1-0-pro-250528",
        prompt="{{ dag_run.conf['prompt'] }}",
        poll_interval=0.1,
        deferrable=False,
        retries=1,
        retry_delay=timedelta(seconds=0),
        # One attempt per call, so the simulator's fault fails the first try mid-wait.
        http_retry_policy=RetryPolicy(max_attempts=1),
    )
