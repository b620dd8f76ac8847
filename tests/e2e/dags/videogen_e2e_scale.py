"""Videos at scale on the ``videos`` queue: one mapped generation per prompt, each landed by a mapped fetch.

``videogen_e2e_land`` lands each video in the generation's own task instead (``destination``).

``videogen_e2e_scale`` waits up to an hour per generation; ``videogen_e2e_deadline`` only
:data:`DEADLINE_SECONDS`, for the test that the deadline survives triggerer restarts. Both run every
task on the ``videos`` queue: Celery workers take them from it, and with ``[triggerer]
queues_enabled`` the generations' triggers carry it too, so only triggerers started with
``--queues`` including ``videos`` run them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator

QUEUE = "videos"
DEADLINE_SECONDS = 60
POLL_SECONDS = 2


def video_task_id_of(finished: dict[str, Any]) -> str:
    return finished["id"]


def videos_dag(dag_id: str, timeout: float, retries: int, *, land_in_generate: bool = False) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        params={"prompts": [], "destination": "file:///tmp/videogen-e2e/"},
        # All mapped generations may wait at once (deferred tasks hold no pool slot).
        max_active_tasks=1000,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=2), "queue": QUEUE},
        tags=["e2e"],
    ) as dag:

        @task
        def prompts(params: dict[str, Any] | None = None) -> list[str]:
            return list((params or {})["prompts"])

        generate = GenerateVideoOperator.partial(
            task_id="generate",
            model="doubao-seedance-1-0-lite-t2v-250428",
            generation_params={"resolution": "480p", "duration": 5},
            poll_interval=POLL_SECONDS,
            timeout=timeout,
            deferrable=True,
            # The task that waited lands the video itself: two task runs a video instead of three.
            destination="{{ params.destination }}" if land_in_generate else None,
        ).expand(prompt=prompts())
        if land_in_generate:
            return dag

        FetchVideoOperator.partial(
            task_id="fetch",
            destination="{{ params.destination }}",
        ).expand(video_task_id=generate.output.map(video_task_id_of))
    return dag


# A lost worker's task is retried (on another worker); a generation is never submitted twice.
videos_dag("videogen_e2e_scale", timeout=3600, retries=2)
# The same videos, each landed by the task that waited for it (no fetch task).
videos_dag("videogen_e2e_land", timeout=3600, retries=2, land_in_generate=True)
# A generation past its deadline fails for good: a retry would wait again, from the start of its own try.
videos_dag("videogen_e2e_deadline", timeout=DEADLINE_SECONDS, retries=0)
