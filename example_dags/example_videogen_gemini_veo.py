"""
The generate-and-land pipeline on Google's Veo models, through the Gemini API (``gemini_veo`` style).

The connection needs only a Gemini API key: without a host it talks to
``https://generativelanguage.googleapis.com/v1beta``, and the key travels in the ``x-goog-api-key``
header::

    AIRFLOW_CONN_VIDEOGEN_GEMINI='{"conn_type": "videogen", "password": "<gemini api key>",
        "extra": {"api_style": "gemini_veo", "data_center": "google"}}'

The video task id is the operation name (``models/<model>/operations/<id>``). The video is a Gemini
file that needs the key too: the task that waited sends it to Google's own origin only, never
after a redirect elsewhere, and lands it as ``<model>_<id>.mp4``. Google keeps the video about 2
days, so land it soon. Veo makes no last frame, and the Gemini API cannot cancel a generation.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

with DAG(
    dag_id="videogen_gemini_veo_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A hummingbird hovering over a red flower, slow motion", type="string"),
        "destination": Param("file:///tmp/videogen/gemini-veo/", type="string"),
    },
) as dag:
    GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_gemini",
        model="veo-3.1-generate-preview",
        prompt="{{ params.prompt }}",
        generation_params={"ratio": "16:9", "resolution": "720p", "duration": 8, "negative_prompt": "text, logos"},
        timeout=3600,
        deferrable=True,
        destination="{{ params.destination }}",  # lands the video once it succeeded, in this task
    )
