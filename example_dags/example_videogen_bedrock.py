"""
The generate-and-fetch pipeline on Amazon Bedrock (the ``bedrock_video`` style), here with Nova Reel.

The ``videogen`` connection holds no key: it names the Airflow ``aws`` connection whose credentials
sign every request (``aws_conn_id``, default ``aws_default``; keys, a profile, an assumed role or the
worker's own role), the region (``data_center``) and the S3 prefix Bedrock writes the videos under::

    AIRFLOW_CONN_VIDEOGEN_BEDROCK='{"conn_type": "videogen", "extra": {"api_style": "bedrock_video",
        "data_center": "us_east_1", "aws_conn_id": "aws_default",
        "bedrock_output_s3_uri": "s3://my-bucket/bedrock/"}}'

The create carries ``clientRequestToken``, derived from the task instance and the request: a retry
of ``generate`` that repeats the create gets the same invocation, and Bedrock bills it once. The
video task id is the invocation ARN. Bedrock writes the video into the prefix itself
(``<prefix>/<invocation id>/output.mp4``); ``fetch`` checks that the invocation completed and
returns that ``s3://`` URI as ``video_url``. Bedrock has no cancel call.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator

with DAG(
    dag_id="videogen_bedrock_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A heron lifts off a misty lake at sunrise, cinematic dolly shot", type="string"),
    },
) as dag:
    generate = GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id="videogen_bedrock",
        model="amazon.nova-reel-v1:1",
        prompt="{{ params.prompt }}",
        generation_params={"duration": 6, "seed": 42},
        timeout=3600,
        deferrable=True,
    )

    fetch = FetchVideoOperator(
        task_id="fetch",
        videogen_conn_id="videogen_bedrock",
        video_task_id="{{ ti.xcom_pull(task_ids='generate', key='video_task_id') }}",
    )

    generate >> fetch
