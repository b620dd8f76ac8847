"""
A person reviews each generated video before it is published.

1. ``generate`` and ``fetch`` make the video and land it with its last frame in ``destination``.
2. ``review`` asks a person (Airflow's human-in-the-loop, *Required actions* in the UI, Airflow
   3.1+ with the ``standard`` provider), showing the prompt, the model, the seed and where the
   video and its last frame landed: **Approve**, **Regenerate** or **Reject**.
3. *Approve*: ``publish`` copies the video and its last frame to ``<destination>published/``.
   *Reject*: the run ends there, successfully, with nothing published.
   *Regenerate*: once, with a new seed: ``generate_again`` and ``fetch_again`` make a second video
   and ``review_again`` asks again, now with *Approve* or *Reject* only.

The answer can also be given through the REST API
(``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/review/-1/hitlDetails`` with
``{"chosen_options": ["Approve"]}``).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator

GENERATION = {"resolution": "720p", "ratio": "16:9", "duration": 5, "return_last_frame": True}


def review_body(fetch_task_id: str) -> str:
    """The review form's text (Markdown): what was asked for and where the video landed."""
    landed = f"ti.xcom_pull(task_ids='{fetch_task_id}')"
    return (
        "**Prompt:** {{ params.prompt }}\n\n"
        "**Model:** {{ params.model }}\n\n"
        f"**Seed:** {{{{ {landed}['seed'] }}}}\n\n"
        f"**Video:** `{{{{ {landed}['video_path'] }}}}` ({{{{ {landed}['size_bytes'] }}}} bytes)\n\n"
        f"**Last frame:** `{{{{ {landed}['last_frame_path'] }}}}`\n"
    )


def generate_and_fetch(suffix: str, generation_params: dict[str, Any]) -> FetchVideoOperator:
    """``generate<suffix> >> fetch<suffix>``: one video made and landed with its last frame; return the fetch."""
    generate = GenerateVideoOperator(
        task_id=f"generate{suffix}",
        model="{{ params.model }}",
        prompt="{{ params.prompt }}",
        generation_params=generation_params,
        poll_interval=10,
        timeout=3600,
        deferrable=True,
    )
    fetch = FetchVideoOperator(
        task_id=f"fetch{suffix}",
        video_task_id=f"{{{{ ti.xcom_pull(task_ids='generate{suffix}', key='video_task_id') }}}}",
        destination="{{ params.destination }}",
        include_last_frame=True,
    )
    generate >> fetch
    return fetch


@task
def publish_video(landed: dict[str, Any]) -> dict[str, str]:
    """Copy the approved video and its last frame to ``published/`` beside them; return the new paths."""
    published = {}
    for key in ("video_path", "last_frame_path"):
        source = ObjectStoragePath(landed[key])
        target = source.parent / "published" / source.name
        if (target.protocol or "file") in ("file", "local"):
            target.parent.mkdir(parents=True, exist_ok=True)
        source.copy(target)
        published[key] = str(target)
    return published


@task
def pick_new_seed(landed: dict[str, Any]) -> int:
    """A seed other than the first video's, for the regenerated one."""
    first = landed.get("seed")
    return int(first) + 1 if isinstance(first, int) and first >= 0 else random.randint(1, 2**31 - 1)


with DAG(
    dag_id="videogen_review_and_publish",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example", "human-in-the-loop"],
    doc_md=__doc__,
    params={
        "prompt": Param("A paper boat drifting down a rainy street, cinematic", type="string"),
        "model": Param("doubao-seedance-1-0-pro-250528", type="string"),
        "destination": Param("file:///tmp/videogen/review/", type="string"),
    },
) as dag:
    fetch = generate_and_fetch("", GENERATION)
    review = HITLBranchOperator(
        task_id="review",
        subject="Publish this video? {{ params.prompt }}",
        body=review_body("fetch"),
        options=["Approve", "Regenerate", "Reject"],
        options_mapping={"Approve": "publish", "Regenerate": "pick_new_seed", "Reject": "rejected"},
    )
    new_seed = pick_new_seed(fetch.output)
    fetch_again = generate_and_fetch("_again", {**GENERATION, "seed": new_seed})
    review_again = HITLBranchOperator(
        task_id="review_again",
        subject="Publish the regenerated video? {{ params.prompt }}",
        body=review_body("fetch_again"),
        options=["Approve", "Reject"],
        options_mapping={"Approve": "publish_again", "Reject": "rejected_again"},
    )

    fetch >> review
    review >> [publish_video.override(task_id="publish")(fetch.output), new_seed, EmptyOperator(task_id="rejected")]
    fetch_again >> review_again
    review_again >> [
        publish_video.override(task_id="publish_again")(fetch_again.output),
        EmptyOperator(task_id="rejected_again"),
    ]
