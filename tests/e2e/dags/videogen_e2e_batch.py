"""Many videos in one task on the ``videos`` queue: one ``GenerateVideosOperator`` for every request.

The requests come from an upstream task (the run's ``requests`` param), as in the example DAG. All
of them may be in flight at once, and the batch waits in one trigger, which only triggerers started
with ``--queues`` including ``videos`` run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_videogen.operators.videogen import GenerateVideosOperator

QUEUE = "videos"
POLL_SECONDS = 2

with DAG(
    dag_id="videogen_e2e_batch",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"requests": [], "destination": "file:///tmp/videogen-e2e/"},
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2), "queue": QUEUE},
    tags=["e2e"],
) as dag:

    @task
    def requests(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return list((params or {})["requests"])

    GenerateVideosOperator(
        task_id="generate_many",
        requests=requests(),
        destination="{{ params.destination }}",
        # Every item in flight at once, submitted as fast as the simulator takes them.
        max_in_flight=500,
        max_creates_per_minute=6000,
        poll_interval=POLL_SECONDS,
        timeout=3600,
        deferrable=True,
    )
