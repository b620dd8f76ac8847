"""
Landed videos as Airflow assets: one DAG lands videos, another runs when they arrive.

``videogen_land_videos`` generates one video per prompt and lands each in ``destination``: the
mapped ``generate`` task lands its video once it succeeded. It declares
``outlets=[AssetAlias("videogen_videos")]``: every landed video becomes an event of the asset
named by the video's own URI (``file:///tmp/videogen/assets/<id>.mp4``,
``s3://bucket/videos/<id>.mp4``...), added through that alias, with the video described in the
event's ``extra`` (``video_task_id``, ``model``, ``video_path``, ``sha256``, ``size_bytes``,
``duration``, ``last_frame_path``). The alias is what lets a templated or mapped destination name
its assets at run time; with a fixed destination, a plain ``Asset("s3://bucket/videos/")`` outlet
works too.

``videogen_use_landed_videos`` is scheduled on the alias: the scheduler starts it when videos
have landed, and its task reads the events that triggered it (here: it lists them; in practice it
would transcode, index or publish them). Videos landing close together may start one run or
several: each run gets the events since the previous one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

VIDEOS = AssetAlias("videogen_videos")


with DAG(
    dag_id="videogen_land_videos",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example", "assets"],
    doc_md=__doc__,
    params={
        "prompts": Param(["A lighthouse in a storm, cinematic", "Koi fish in a pond, top view"], type="array"),
        "destination": Param("file:///tmp/videogen/assets/", type="string"),
    },
) as producer:

    @task
    def list_prompts(params: dict[str, Any] | None = None) -> list[str]:
        """The prompts to generate, from the run's params."""
        return list((params or {})["prompts"])

    GenerateVideoOperator.partial(
        task_id="generate",
        model="doubao-seedance-1-0-pro-250528",
        generation_params={"resolution": "720p", "ratio": "16:9", "duration": 5, "return_last_frame": True},
        poll_interval=10,
        timeout=3600,
        deferrable=True,
        destination="{{ params.destination }}",
        include_last_frame=True,
        outlets=[VIDEOS],
    ).expand(prompt=list_prompts())


with DAG(
    dag_id="videogen_use_landed_videos",
    schedule=VIDEOS,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example", "assets"],
    doc_md=__doc__,
) as consumer:

    @task
    def list_new_videos(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """List the videos whose landing started this run, from the asset events' ``extra``."""
        videos = []
        # The events come under the alias the DAG is scheduled on (and again under each asset): read the alias's.
        for event in (triggering_asset_events or {}).get(VIDEOS, []):
            videos.append({"asset": event.asset.uri, **event.extra})
            print(f"New video {event.extra.get('video_task_id')} at {event.asset.uri}")
        return videos

    list_new_videos()
