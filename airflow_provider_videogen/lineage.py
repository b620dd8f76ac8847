"""OpenLineage facets of the provider's operators: which generation a task made or read, and where its video landed.

Imported only by ``get_openlineage_facets_on_complete`` of the operators, which Airflow's
OpenLineage provider calls when it is installed and enabled: without it this module is never
imported and costs nothing.

The datasets, in OpenLineage's naming:

- the generation, a task of the video service: namespace the connection's base URL
  (``https://ai.rong-api.com``), name the video task id. ``GenerateVideoOperator`` outputs it,
  ``FetchVideoOperator`` (and ``VideoTaskSensor``'s downstream) read it, so the lineage graph joins them.
  ``GenerateVideoOperator`` with a ``destination`` outputs it and the files it landed.
- a landed file: ``s3://bucket`` and the object key, or ``file`` and the absolute path: the final
  path, never the hidden temporary name the atomic write uses.

The run facet ``videogen`` carries what was generated: ``model``, ``seed``, ``duration``,
``resolution``, ``usage``, ``cost`` and the video task id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attr
from airflow.providers.common.compat.openlineage.facet import Dataset, RunFacet
from airflow.providers.openlineage.extractors import OperatorLineage

#: The key of the run facet in an OpenLineage run event.
RUN_FACET_NAME = "videogen"


@attr.define
class VideoGenerationRunFacet(RunFacet):
    """What a video generation was asked for and what it cost.

    :param video_task_id: the service's id of the generation.
    :param model: the model that rendered it.
    :param seed: the seed it used (``None`` when the service does not say).
    :param duration: seconds of video.
    :param resolution: e.g. ``720p``.
    :param usage: the service's usage figures (tokens), as it reports them.
    :param cost: what it cost, where known: ``amount`` (a decimal string), ``currency``, ``basis``
        and ``computed`` (see :mod:`airflow_provider_videogen.cost`).
    """

    video_task_id: str
    model: str | None = None
    seed: int | None = None
    duration: float | None = None
    resolution: str | None = None
    usage: dict[str, Any] | None = None
    cost: dict[str, Any] | None = None


def generation_dataset(base_url: str, video_task_id: str) -> Any:
    """Return the dataset of one generation at the service: namespace the connection's base URL, name the task id."""
    return Dataset(namespace=base_url.rstrip("/"), name=video_task_id)


def file_dataset(uri: str) -> Any:
    """Return the dataset of a landed file, from its plain URI (``s3://bucket/key``, ``file:///dir/name``)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file", "local"):
        return Dataset(namespace="file", name=parts.path)
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.lstrip("/"))


def run_facets(task: Mapping[str, Any]) -> dict[str, Any]:
    """Return the run facets of a generation, from its task dict (``VideoTask.to_dict()`` or a landed result)."""
    usage = task.get("usage")
    facet = VideoGenerationRunFacet(
        video_task_id=str(task.get("id")),
        model=task.get("model"),
        seed=task.get("seed"),
        duration=task.get("duration"),
        resolution=task.get("resolution"),
        usage=dict(usage) if isinstance(usage, Mapping) else None,
        cost=dict(cost) if isinstance(cost := task.get("cost"), Mapping) else None,
    )
    return {RUN_FACET_NAME: facet}


def generation_lineage(base_url: str, task: Mapping[str, Any] | None) -> Any:
    """Return the lineage of ``GenerateVideoOperator``: the generation it made (output), if any."""
    if not task or not task.get("id"):
        return OperatorLineage()
    return OperatorLineage(outputs=[generation_dataset(base_url, str(task["id"]))], run_facets=run_facets(task))


def fetch_lineage(base_url: str, landed: Mapping[str, Any] | None) -> Any:
    """Return the lineage of ``FetchVideoOperator``: the generation read (input) and the files landed (outputs)."""
    if not landed or not landed.get("id"):
        return OperatorLineage()
    outputs = [file_dataset(str(landed[key])) for key in ("video_path", "last_frame_path") if landed.get(key)]
    return OperatorLineage(
        inputs=[generation_dataset(base_url, str(landed["id"]))],
        outputs=outputs,
        run_facets=run_facets(landed),
    )


def generate_and_land_lineage(base_url: str, landed: Mapping[str, Any] | None) -> Any:
    """Return the lineage of ``GenerateVideoOperator`` that landed its video: the generation and the files, all made."""
    if not landed or not landed.get("id"):
        return OperatorLineage()
    files = [file_dataset(str(landed[key])) for key in ("video_path", "last_frame_path") if landed.get(key)]
    return OperatorLineage(
        outputs=[generation_dataset(base_url, str(landed["id"])), *files], run_facets=run_facets(landed)
    )
