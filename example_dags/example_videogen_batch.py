"""
Thousands of videos in one task: ``GenerateVideosOperator`` reads its requests from an upstream task.

``list_requests`` builds one generation request per product (in practice: a table, a file, an
API...) and returns the list; its XCom is ``generate``'s ``requests``. One task then submits them in
a window the service takes (``max_in_flight`` queued or running, ``max_creates_per_minute``), waits on
every generation in flight in one trigger, lands each video as ``<destination><key>.mp4`` and writes
``manifest.jsonl`` beside them: one line per item, landed or failed with the API's reason. No
``max_map_length``, no worker slot held while the videos render, and a retry pays for nothing twice.
The task fails, after landing every success, when fewer than ``min_success`` items landed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_provider_videogen.operators.videogen import GenerateVideosOperator

with DAG(
    dag_id="videogen_batch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["videogen", "example"],
    doc_md=__doc__,
    params={
        "products": Param(
            ["a red ceramic teapot", "a walnut desk lamp", "a pair of canvas sneakers"],
            type="array",
        ),
        "destination": Param("file:///tmp/videogen/catalogue/", type="string"),
    },
) as dag:

    @task
    def list_requests(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One request per product, each keyed by its index: the key names its file and its manifest line."""
        products = list((params or {})["products"])
        return [
            {
                "key": f"product-{index:04d}",
                "model": "doubao-seedance-1-0-lite-t2v-250428",
                "prompt": f"{product} turning slowly on a white table, studio light",
                "generation_params": {"resolution": "480p", "ratio": "1:1", "duration": 5},
            }
            for index, product in enumerate(products)
        ]

    GenerateVideosOperator(
        task_id="generate",
        requests=list_requests(),
        destination="{{ params.destination }}",
        max_in_flight=50,
        min_success=1,  # a batch with some refusals (moderation) still delivers the rest
        poll_interval=15,
        timeout=6 * 3600,
        deferrable=True,
        outlets=[AssetAlias("videogen-catalogue")],  # one asset event per landed video
    )
