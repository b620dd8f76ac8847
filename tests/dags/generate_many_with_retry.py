"""A batch whose first try fails after paying for every item: for ``dag.test()`` of its durable retry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG

from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.operators.videogen import GenerateVideosOperator

with DAG(
    "generate_many_with_retry",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["videogen-tests"],
) as dag:
    GenerateVideosOperator(
        task_id="generate_many",
        requests="{{ dag_run.conf['requests'] | tojson }}",
        destination="{{ dag_run.conf['destination'] }}",
        max_in_flight=2,
        poll_interval=0.1,
        deferrable=False,
        retries=1,
        retry_delay=timedelta(seconds=0),
        # One attempt per call, so the simulator's download fault fails a landing of the first try.
        http_retry_policy=RetryPolicy(max_attempts=1),
    )
