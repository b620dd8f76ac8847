"""
The generate-and-land pipeline on Replicate (the ``replicate`` style), here with Kling.

The connection holds the Replicate API token (sent as ``Authorization: Bearer``) and, without a
host, reaches ``https://api.replicate.com/v1``::

    AIRFLOW_CONN_VIDEOGEN_REPLICATE='{"conn_type": "videogen", "password": "<replicate api token>",
        "extra": {"api_style": "replicate"}}'

``model`` is ``owner/name`` (an official model), ``owner/name:<version>`` or a version id;
``generation_params`` are the model's own input fields (an input image too, under the model's own
name: Kling takes ``start_image``), sent as they are. The video task id is the prediction id. The
``timeout`` goes to Replicate as ``Cancel-After``: a prediction nobody waits for any more is stopped
by Replicate itself (``aborted`` and not billed if it never started). Replicate deletes a
prediction's output an hour after it finishes: the task that waited lands it right after the wait,
in the same run.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    dag_id="videogen_replicate_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A kite rises over a windy beach at dusk", type="string"),
        "destination": Param("file:///tmp/videogen/replicate/", type="string"),
    },
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_replicate",
        model="kwaivgi/kling-v2.1",
        prompt="{{ params.prompt }}",
        generation_params={"duration": 5, "ratio": "16:9", "negative_prompt": "blur, distortion"},
        timeout=3600,
        deferrable=True,
        destination="{{ params.destination }}",  # lands the video once it succeeded, in this task
    )
