"""
Many videos at once with dynamic task mapping: one generation per prompt, all waiting in the triggerer.

``generate`` is mapped over the prompts: each mapped task submits one generation and defers, so a
thousand prompts wait as a thousand cheap triggers rather than a thousand busy worker slots. When
its generation succeeds, the mapped task lands the video in the destination folder itself (two task
runs per video, no separate fetch). Each video stands on its own: the videos of the generations that
succeeded land even when others failed, and the run then fails so the failures are seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

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

    GenerateVideoOperator.partial(
        task_id="generate",
        model="doubao-seedance-1-0-lite-t2v-250428",
        generation_params={"resolution": "480p", "ratio": "16:9", "duration": 5},
        poll_interval=15,
        timeout=2 * 3600,
        deferrable=True,
        destination="{{ params.destination }}",  # each mapped task lands its own video once it succeeded
        max_active_tis_per_dag=100,
    ).expand(prompt=list_prompts())
