"""``sensor >> fetch`` in a real DAG run: ``dag.test()`` defers the sensor, then the fetch lands the files."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import pytest

DAG_FILE = Path(__file__).parents[1] / "dags" / "fetch_video_after_sensor.py"
LOGICAL_DATE = datetime(2025, 5, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def dag_module(load_dag_file) -> ModuleType:
    return load_dag_file(DAG_FILE)


def test_sensor_then_fetch_lands_the_video_and_last_frame(dag_module, sim, videogen_connection, tmp_path):
    video_task_id = sim.add_task(queued_seconds=0.2, running_seconds=0.3, return_last_frame=True)

    run = dag_module.dag.test(
        logical_date=LOGICAL_DATE,
        run_conf={"video_task_id": video_task_id, "destination": f"file://{tmp_path}/"},
    )

    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    folder = tmp_path / "2025-05-01"  # the templated {{ ds }}
    video = folder / f"{video_task_id}.mp4"
    assert hashlib.sha256(video.read_bytes()).hexdigest() == sim.get_task(video_task_id)["video_sha256"]
    assert (folder / f"{video_task_id}.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
