"""
Draft first, then the full render: pay for the expensive video only once a cheap draft passed a check.

1. ``draft`` renders a short, low-resolution draft (480p, 3 s), capped at ``max_cost=0.10``: its
   cost is estimated from the request before the create call, and a draft estimated above the cap
   (or a model without a price) fails before anything is paid.
2. ``check_draft`` looks at the draft: it must have succeeded with a video, and the run's
   ``render_final`` parameter must allow the final render (a stand-in for your own check: a
   classifier, a frame comparison, or Airflow's human-in-the-loop as in ``videogen_review_and_publish``).
   A draft that fails the check skips the final render, so it is never paid for.
3. ``final`` renders the full video (1080p, 5 s) with the draft's seed, so the composition stays the
   draft's, capped at ``max_cost=1.00``; ``fetch`` lands it.
4. ``report_costs`` returns each step's cost (``amount``, ``currency``, ``basis``, ``computed``),
   which every finished generation also logs.

The costs come from the ``prices`` extra of the ``videogen_priced`` connection, in its currency;
prices are yours to set (services change them), for example::

    {"doubao-seedance-*": {"per_million_tokens": 2.5, "currency": "USD"}}

A Seedance video's tokens are width x height x frames / 1024, so the draft is estimated at about
29 thousand tokens and the final render at about 243 thousand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator

CONNECTION = "videogen_priced"

with DAG(
    dag_id="videogen_draft_then_final",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A lighthouse in a storm at night, waves breaking, cinematic", type="string"),
        "model": Param("doubao-seedance-1-0-pro-250528", type="string"),
        "render_final": Param(True, type="boolean", description="Render the full video once the draft passed."),
        "destination": Param(
            "file:///tmp/videogen/final/",
            type="string",
            description="Folder (ending in /) or file URL where the final video lands.",
        ),
    },
) as dag:
    draft = GenerateVideoOperator(
        task_id="draft",
        videogen_conn_id=CONNECTION,
        model="{{ params.model }}",
        prompt="{{ params.prompt }}",
        generation_params={"resolution": "480p", "ratio": "16:9", "duration": 3, "generate_audio": False},
        max_cost=0.10,
        poll_interval=10,
        timeout=3600,
        deferrable=True,
    )

    @task.short_circuit
    def check_draft(draft: dict[str, Any], params: dict[str, Any] | None = None) -> bool:
        """Let the final render run only for a draft with a video, and when the run asks for it."""
        return bool(draft.get("video_url")) and bool((params or {}).get("render_final"))

    final = GenerateVideoOperator(
        task_id="final",
        videogen_conn_id=CONNECTION,
        model="{{ params.model }}",
        prompt="{{ params.prompt }}",
        generation_params={
            "resolution": "1080p",
            "ratio": "16:9",
            "duration": 5,
            "generate_audio": False,
            "seed": "{{ ti.xcom_pull(task_ids='draft')['seed'] }}",
        },
        max_cost=1.00,
        poll_interval=10,
        timeout=3600,
        deferrable=True,
    )

    fetch = FetchVideoOperator(
        task_id="fetch",
        videogen_conn_id=CONNECTION,
        video_task_id="{{ ti.xcom_pull(task_ids='final', key='video_task_id') }}",
        destination="{{ params.destination }}",
    )

    @task
    def report_costs(draft: dict[str, Any], landed: dict[str, Any]) -> dict[str, Any]:
        """Return what each step cost (``None`` where the connection has no price for the model)."""
        return {"draft": draft.get("cost"), "final": landed.get("cost")}

    check_draft(draft.output) >> final >> fetch
    report_costs(draft.output, fetch.output)
