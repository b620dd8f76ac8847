"""OpenLineage: the operators' facets, through the OpenLineage provider's own listener and file transport."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_example_dags import quick

DAG_FILE = Path(__file__).parent / "dags" / "lineage_generate_and_fetch.py"

pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider is not installed")


def test_a_dag_run_reports_the_generation_and_the_landed_files_to_openlineage(
    load_dag_file, sim, videogen_connection, tmp_path
):
    load_dag_file(DAG_FILE)
    videogen_connection(prices={"doubao-seedance-*": {"per_million_tokens": "2.5", "currency": "USD"}})
    events_file = tmp_path / "lineage" / "events.jsonl"
    events_file.parent.mkdir()
    videos = tmp_path / "videos"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "videogen-test",
    }
    conf = {"prompt": quick("a lineage boat"), "destination": videos.as_uri() + "/"}
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "videogen_lineage", "-c", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    complete = {e["job"]["name"].rsplit(".", 1)[-1]: e for e in events if e["eventType"] == "COMPLETE"}
    (video,) = videos.glob("*.mp4")
    video_task_id = video.stem
    generation = {"namespace": sim.base_url, "name": video_task_id}

    generate = complete["generate"]
    assert [{"namespace": d["namespace"], "name": d["name"]} for d in generate["outputs"]] == [generation]
    facet = generate["run"]["facets"]["videogen"]
    assert (facet["video_task_id"], facet["model"], facet["resolution"]) == (
        video_task_id,
        "doubao-seedance-1-0-pro-250528",
        "720p",
    )
    assert facet["duration"] == 5 and "seed" in facet and facet["usage"]
    tokens = facet["usage"]["completion_tokens"]
    assert facet["cost"]["basis"] == "priced" and f"{tokens} tokens reported" in facet["cost"]["computed"]

    fetch = complete["fetch"]
    assert [{"namespace": d["namespace"], "name": d["name"]} for d in fetch["inputs"]] == [generation]
    assert [(d["namespace"], d["name"]) for d in fetch["outputs"]] == [
        ("file", str(video)),
        ("file", str(video.with_suffix(".png"))),
    ]
    assert fetch["run"]["facets"]["videogen"]["video_task_id"] == video_task_id
    assert fetch["run"]["facets"]["videogen"]["cost"] == facet["cost"]
    text = events_file.read_text()
    assert ".part" not in text and "?" not in json.dumps([fetch["outputs"], generate["outputs"]])
