"""
Many videos at once with dynamic task mapping: one generation per prompt, all waiting in the triggerer.

``generate`` is mapped over the prompts: each mapped task submits one generation and defers, so a
thousand prompts wait as a thousand cheap triggers rather than a thousand busy worker slots.
``fetch`` is mapped over the finished tasks and lands each video in the destination folder: the
videos of the generations that succeeded land even when others failed, and the run then fails (through
``all_generated``) so the failures are seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator


def video_task_id_of(finished: dict[str, Any]) -> str:
    """Pick the video task id out of a finished generation's XCom value."""
    return finished["id"]


with DAG(
    dag_id="videogen_many_videos",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompts": Param(
            [
                "A hummingbird drinking from a red flower, macro, slow motion",
                "Timelapse of clouds rolling over a mountain ridge at sunrise",
                "A cat knocking a cup off a table, cartoon style",
            ],
            type="array",
        ),
        "destination": Param("file:///tmp/videogen/batch/", type="string"),
    },
) as dag:

    @task
    def list_prompts(params: dict[str, Any] | None = None) -> list[str]:
        """The prompts to generate, from the run's params (in practice: a table, a file, an API...)."""
        return list((params or {})["prompts"])

    generate = GenerateVideoOperator.partial(
        task_id="generate",
        model="doubao-seedance-1-0-lite-t2v-250428",
        generation_params={"resolution": "480p", "ratio": "16:9", "duration": 5},
        poll_interval=15,
        timeout=2 * 3600,
        deferrable=True,
        max_active_tis_per_dag=100,
    ).expand(prompt=list_prompts())

    # Fetch what was made even when some generations failed (all_done): one failure must not cost the
    # batch its other videos. The run still fails when a generation failed: see all_generated.
    FetchVideoOperator.partial(
        task_id="fetch",
        destination="{{ params.destination }}",
        trigger_rule="all_done",
    ).expand(video_task_id=generate.output.map(video_task_id_of))

    @task
    def all_generated() -> None:
        """Succeeds only when every generation did: a failed generation fails the run (after the fetch)."""

    generate >> all_generated()
