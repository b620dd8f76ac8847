"""
Generate a video from a prompt, wait for it without holding a worker slot, land it, use its metadata.

1. ``generate`` submits the generation and defers to the triggerer until the video is ready.
2. ``fetch`` streams the MP4 (and its last frame) into object storage: ``destination`` can be any
   ``ObjectStoragePath`` URL (``file:///...``, ``s3://bucket/prefix/`` with ``dest_conn_id``, ...).
3. ``record_metadata`` writes the video's metadata as JSON beside it, for the rest of the pipeline.

Run it against the bundled simulator with ``make demo``, or point the ``videogen_default``
connection at a real service.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, ObjectStoragePath, Param, task

from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator

with DAG(
    dag_id="videogen_generate_and_fetch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "prompt": Param("A paper boat drifting down a rainy street, cinematic", type="string"),
        "model": Param("doubao-seedance-1-0-pro-250528", type="string"),
        "destination": Param(
            "file:///tmp/videogen/videos/",
            type="string",
            description="Folder (ending in /) or file URL where the video lands.",
        ),
    },
) as dag:
    generate = GenerateVideoOperator(
        task_id="generate",
        model="{{ params.model }}",
        prompt="{{ params.prompt }}",
        generation_params={
            "resolution": "720p",
            "ratio": "16:9",
            "duration": 5,
            "generate_audio": False,
            "return_last_frame": True,
        },
        poll_interval=10,
        timeout=3600,
        deferrable=True,
    )

    fetch = FetchVideoOperator(
        task_id="fetch",
        video_task_id="{{ ti.xcom_pull(task_ids='generate', key='video_task_id') }}",
        destination="{{ params.destination }}",
        include_last_frame=True,
    )

    @task
    def record_metadata(landed: dict[str, Any]) -> str:
        """Write what downstream jobs need to know about the video beside it, as JSON."""
        video = ObjectStoragePath(landed["video_path"])
        metadata = video.parent / f"{video.stem}.json"
        keys = (
            "id", "model", "status", "duration", "fps", "resolution", "ratio", "seed", "generate_audio",
            "usage", "video_path", "last_frame_path", "size_bytes", "sha256", "created_at", "updated_at",
        )  # fmt: skip
        metadata.write_text(json.dumps({key: landed.get(key) for key in keys}, indent=2))
        return str(metadata)

    generate >> fetch
    record_metadata(fetch.output)
