"""Landed videos as assets in a real deployment: the scheduler starts the consumer DAG, not the test."""

from __future__ import annotations

import pytest

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import AirflowDeployment, wait_for
from .videos import new_folder

pytestmark = pytest.mark.e2e

PRODUCER, CONSUMER = "videogen_land_videos", "videogen_use_landed_videos"


def test_landed_videos_start_the_dag_scheduled_on_their_alias(airflow: AirflowDeployment, sim: SimulatorProcess):
    airflow.wait_for_dag(PRODUCER)
    airflow.wait_for_dag(CONSUMER)
    folder = new_folder(airflow, "assets")
    before = {run["dag_run_id"] for run in airflow.api("GET", f"/api/v2/dags/{CONSUMER}/dagRuns")["dag_runs"]}
    prompts = [f"asset e2e {n} [sim:queued=0.2] [sim:running=0.3]" for n in range(2)]

    run_id = airflow.trigger_dag(PRODUCER, {"prompts": prompts, "destination": f"file://{folder}/"})
    assert airflow.wait_for_run(PRODUCER, run_id)["state"] == "success"

    videos = sorted(folder.glob("*.mp4"))
    listed: list[dict] = []

    def consumer_runs_saw_every_video() -> bool:
        # Two videos landing close together start one run or two: each run lists the events since the last.
        runs = airflow.api("GET", f"/api/v2/dags/{CONSUMER}/dagRuns")["dag_runs"]
        ended = [run for run in runs if run["dag_run_id"] not in before and run["state"] in ("success", "failed")]
        assert all((run["state"], run["run_type"]) == ("success", "asset_triggered") for run in ended), ended
        listed[:] = [item for run in ended for item in airflow.xcom(CONSUMER, run["dag_run_id"], "list_new_videos")]
        return len(listed) >= len(videos)

    wait_for(consumer_runs_saw_every_video, timeout=90, message=f"runs of {CONSUMER} started by the scheduler")
    assert sorted(item["asset"] for item in listed) == [video.as_uri() for video in videos]
    for item in listed:
        served = sim.get_task(item["video_task_id"])
        assert (item["sha256"], item["size_bytes"]) == (served["video_sha256"], served["video_size"])
        assert item["last_frame_path"].endswith(f"{item['video_task_id']}.png")
