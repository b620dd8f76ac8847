"""
Generate a video from a prompt, wait for it without holding a worker slot, land it, use its metadata.

1. ``generate`` submits the generation and defers to the triggerer until the video is ready; when it
   resumes, it streams the MP4 (and its last frame) into object storage itself: ``destination`` can
   be any ``ObjectStoragePath`` URL (``file:///...``, ``s3://bucket/prefix/`` with ``dest_conn_id``,
   ...). Two task runs for the video, and a retry after a failed landing lands the same generation.
2. ``record_metadata`` writes what was generated beside the video, for the rest of the pipeline.

To land a video generated elsewhere, see ``videogen_wait_and_fetch`` (``VideoTaskSensor`` and
``FetchVideoOperator``).

``generate`` declares ``outlets=[AssetAlias("videogen_walkthrough_videos")]``: each landed video becomes
an asset event (the Assets page lists it, its ``extra`` says which generation it is). That is one
asset per video: fine for a walkthrough, too many at volume. For thousands of videos, land them in
a fixed folder and declare that folder's ``Asset`` instead (one asset, one event per video, the
video in the event's ``extra``); see the docs' *Part of Airflow* page.

What lands in the destination folder, for a video task ``<id>``:

- ``<id>.mp4`` and ``<id>.png``: the video and its last frame.
- ``<id>.json``: what was generated (prompt, model, resolution, duration, seed, usage...) and the
  names of the two files; written by ``record_metadata``.
- ``<id>.mp4.videogen.json`` and ``<id>.png.videogen.json``: the integrity record of each file
  (size, SHA-256, where it came from), written by ``generate`` so that a retry or a new run finds the
  file landed and downloads nothing. ``<id>.json`` does not repeat them; keep them with the files.

Run it against the bundled simulator with ``make demo``, or point the ``videogen_default``
connection at a real service.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, AssetAlias, ObjectStoragePath, Param, task

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

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
        destination="{{ params.destination }}",
        include_last_frame=True,
        # The destination is a param: an alias names each video's asset when it lands.
        outlets=[AssetAlias("videogen_walkthrough_videos")],
    )

    @task
    def record_metadata(landed: dict[str, Any], params: dict[str, Any] | None = None) -> str:
        """Write what was generated beside the video as ``<id>.json`` (checksums: see the integrity records)."""
        video = ObjectStoragePath(landed["video_path"])
        frame = ObjectStoragePath(landed["last_frame_path"]) if landed.get("last_frame_path") else None
        metadata = video.parent / f"{video.stem}.json"
        keys = (
            "model", "duration", "fps", "resolution", "ratio", "seed", "generate_audio", "usage", "created_at",
            "updated_at",
        )  # fmt: skip
        generated = {"id": landed["id"], "prompt": (params or {}).get("prompt")}
        generated.update({key: landed.get(key) for key in keys})
        generated["files"] = {"video": video.name, "last_frame": frame.name if frame else None}
        metadata.write_text(json.dumps(generated, indent=2))
        return str(metadata)

    record_metadata(generate.output)
