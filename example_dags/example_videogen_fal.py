"""
The generate-and-land pipeline on fal.ai's queue (the ``fal`` style), here with Kling.

The connection holds the fal key (sent as ``Authorization: Key``) and, without a host, reaches
``https://queue.fal.run``::

    AIRFLOW_CONN_VIDEOGEN_FAL='{"conn_type": "videogen", "password": "<fal key>",
        "extra": {"api_style": "fal"}}'

``model`` is the endpoint id as fal shows it; ``generation_params`` are the model's own input fields
(Kling takes ``duration`` as ``"5"`` or ``"10"``), sent as they are. The video task id is
``{owner}/{app}/requests/{request_id}``. fal's ``COMPLETED`` is not success: the wait reads the
result then and ends as the model's output or error says. A kill cancels a request only while it is
still in fal's queue. With the extra ``fal_store_io`` set to ``0`` fal keeps a result only about an
hour: the task that waited lands it right after the wait, in the same run.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    dag_id="videogen_fal_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A heron lifts off a misty lake at sunrise", type="string"),
        "destination": Param("file:///tmp/videogen/fal/", type="string"),
    },
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_fal",
        model="fal-ai/kling-video/v2.1/master/text-to-video",
        prompt="{{ params.prompt }}",
        generation_params={"duration": "5", "ratio": "16:9", "negative_prompt": "blur, distortion"},
        timeout=3600,
        deferrable=True,
        destination="{{ params.destination }}",  # lands the video once it succeeded, in this task
    )
