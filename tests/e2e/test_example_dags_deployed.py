"""The repo's example DAGs in a real deployment: the triggerer does the waiting, workers land the video."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from airflow_provider_videogen.testing import SimulatorProcess
from airflow_provider_videogen.video_download import RECORD_SUFFIX

from .conftest import EXAMPLE_DAGS, StartDeployment
from .deployment import AirflowDeployment, ti_key, wait_for
from .test_review_deployed import REVIEW, answer, waiting_review
from .videos import (
    GENERATE_AND_FETCH,
    TRIGGER_CLASSPATH,
    WAIT_AND_FETCH,
    creates_with,
    fired_events,
    held_prompt,
    held_video_task,
    new_folder,
    release,
    sha256_of,
    video_downloads,
    wait_for_xcom,
    wait_until_triggers_run,
)

pytestmark = pytest.mark.e2e

ASSET_SCHEDULED = "videogen_use_landed_videos"
ALL_EXAMPLES = (
    "videogen_batch",
    "videogen_dashscope_generate_and_fetch",
    "videogen_draft_then_final",
    "videogen_fal_generate_and_fetch",
    "videogen_gateway_generate_and_fetch",
    "videogen_gemini_veo_generate_and_fetch",
    "videogen_generate_and_fetch",
    "videogen_land_videos",
    "videogen_many_videos",
    "videogen_openai_videos_generate_and_fetch",
    "videogen_replicate_generate_and_fetch",
    "videogen_review_and_publish",
    "videogen_runway_generate_and_fetch",
    ASSET_SCHEDULED,
    "videogen_wait_and_fetch",
)
# Parsed in the deployment but not run there: Bedrock signs with an aws connection and writes into an
# S3 bucket, neither of which the deployment has (make airflow's presets are key connections); Vertex
# takes the token of a google_cloud_platform connection, which it has not either.
# Their dag.test() runs, against the simulator (and a moto S3 server), are in tests/test_example_dags.py.
PARSED_ONLY = ("videogen_bedrock_generate_and_fetch", "videogen_vertex_veo_generate_and_fetch")


def finish_in_the_triggerer(
    airflow: AirflowDeployment,
    sim: SimulatorProcess,
    dag_id: str,
    run_id: str,
    task_id: str,
    video_task_id: str,
) -> dict[str, tuple[str, int]]:
    """Let a run whose ``task_id`` waits on a held video finish through the triggerer; return its tasks' states.

    Checks that the task is deferred to the provider's trigger running in a triggerer before the
    video is released, that the run then succeeds, and that that triggerer, and only it, ran the
    trigger and fired the success event the task resumed with.
    """
    [waiting] = wait_until_triggers_run(airflow, dag_id, [run_id], task_id, count=1)
    assert waiting["trigger"]["classpath"] == TRIGGER_CLASSPATH
    triggerer_id = waiting["trigger"]["triggerer_id"]
    release(sim, video_task_id)

    run = airflow.wait_for_run(dag_id, run_id)
    tis = {ti_key(ti): (ti["state"], ti["try_number"]) for ti in airflow.task_instances(dag_id, run_id)}
    assert run["state"] == "success", tis
    trigger_logs = airflow.trigger_log_events(dag_id, run_id, task_id)
    assert list(trigger_logs) == [triggerer_id]
    [fired] = fired_events(trigger_logs[triggerer_id])
    assert "'status': 'success'" in fired["result"]
    return tis


def test_generate_and_fetch_example_waits_in_the_triggerer_and_lands_the_video(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    airflow.wait_for_dag(GENERATE_AND_FETCH)
    prompt = held_prompt("A paper boat drifting down a rainy street")
    folder = new_folder(airflow, "generate-and-fetch")

    run_id = airflow.trigger_dag(GENERATE_AND_FETCH, {"prompt": prompt, "destination": f"file://{folder}/"})

    # While the video renders, "generate" holds no worker: it is deferred to the provider's trigger,
    # which a triggerer has taken and is running.
    video_task_id = wait_for_xcom(airflow, GENERATE_AND_FETCH, run_id, "generate", "video_task_id")
    tis = finish_in_the_triggerer(airflow, sim, GENERATE_AND_FETCH, run_id, "generate", video_task_id)
    # "generate" lands the video itself when it resumes: no fetch task.
    assert tis == {"generate": ("success", 1), "record_metadata": ("success", 1)}

    # One generation submitted, its video downloaded once, landed whole with its last frame and metadata.
    assert len(creates_with(sim, prompt)) == 1
    assert len(video_downloads(sim, video_task_id)) == 1
    expected = sim.get_task(video_task_id)
    video, frame, metadata = (folder / f"{video_task_id}{suffix}" for suffix in (".mp4", ".png", ".json"))
    assert {p.name for p in folder.iterdir()} == {
        video.name,
        video.name + RECORD_SUFFIX,
        frame.name,
        frame.name + RECORD_SUFFIX,
        metadata.name,
    }
    assert (video.stat().st_size, sha256_of(video)) == (expected["video_size"], expected["video_sha256"])
    described = json.loads(metadata.read_text())
    assert (described["id"], described["prompt"], described["files"]["video"]) == (video_task_id, prompt, video.name)
    record = json.loads((folder / (video.name + RECORD_SUFFIX)).read_text())
    assert (record["video_task_id"], record["sha256"]) == (video_task_id, expected["video_sha256"])


def test_urls_in_the_logs_of_a_run_touch_no_punctuation(airflow: AirflowDeployment, sim: SimulatorProcess) -> None:
    # The UI's log view links a URL that follows white space up to the next white space: a full
    # stop, comma or bracket touching it would become part of the link.
    airflow.wait_for_dag(GENERATE_AND_FETCH)
    folder = new_folder(airflow, "urls-in-logs")
    run_id = airflow.trigger_dag(
        GENERATE_AND_FETCH,
        {"prompt": "A lighthouse [sim:queued=0.2] [sim:running=0.5]", "destination": f"file://{folder}/"},
    )
    assert airflow.wait_for_run(GENERATE_AND_FETCH, run_id)["state"] == "success"
    run_logs = airflow.home / "logs" / f"dag_id={GENERATE_AND_FETCH}" / f"run_id={run_id}"
    events = [
        json.loads(line).get("event", "")
        for path in sorted(run_logs.rglob("*.log"))
        for line in path.read_text(errors="replace").splitlines()
        if line.startswith("{")
    ]
    urls = [(event, match) for event in events for match in re.finditer(r"(^|.)(https?://\S+)", event)]
    assert any(sim.base_url in event for event, _ in urls), events  # the run does log URLs
    for event, match in urls:
        before, url = match.group(1), match.group(2)
        assert before in ("", " "), f"{url!r} follows {before!r} in: {event}"
        assert url[-1] not in ".,;:!?)]}'\"", f"{url!r} ends in punctuation in: {event}"


def test_wait_and_fetch_example_waits_in_the_triggerer_and_lands_the_video(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    airflow.wait_for_dag(WAIT_AND_FETCH)
    video_task_id = held_video_task(sim)
    folder = new_folder(airflow, "wait-and-fetch")

    run_id = airflow.trigger_dag(WAIT_AND_FETCH, {"video_task_id": video_task_id, "destination": f"file://{folder}/"})

    tis = finish_in_the_triggerer(airflow, sim, WAIT_AND_FETCH, run_id, "wait", video_task_id)
    assert tis == {"wait": ("success", 1), "describe": ("success", 1), "land": ("success", 1)}

    expected = sim.get_task(video_task_id)
    video = folder / f"{video_task_id}.mp4"
    # Only the video and its integrity record: no temporary file left behind.
    assert {p.name for p in folder.iterdir()} == {video.name, video.name + RECORD_SUFFIX}
    assert (video.stat().st_size, sha256_of(video)) == (expected["video_size"], expected["video_sha256"])
    record = json.loads((folder / (video.name + RECORD_SUFFIX)).read_text())
    assert (record["video_task_id"], record["sha256"]) == (video_task_id, expected["video_sha256"])
    # "land" downloaded it, once; "describe" only read its metadata.
    assert len(video_downloads(sim, video_task_id)) == 1
    landed = airflow.xcom(WAIT_AND_FETCH, run_id, "land")
    assert (landed["sha256"], landed["size_bytes"], landed["video_path"]) == (
        expected["video_sha256"],
        expected["video_size"],
        video.as_uri(),
    )
    described = airflow.xcom(WAIT_AND_FETCH, run_id, "describe")
    assert described["id"] == video_task_id and described["video_url"]
    assert "video_path" not in described


def test_openai_videos_example_waits_in_the_triggerer_and_lands_from_the_content_route(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    dag_id = "videogen_openai_videos_generate_and_fetch"
    airflow.wait_for_dag(dag_id)
    prompt = held_prompt("A lighthouse in a storm")
    folder = new_folder(airflow, "openai-videos")

    run_id = airflow.trigger_dag(dag_id, {"prompt": prompt, "destination": f"file://{folder}/"})

    video_task_id = wait_for_xcom(airflow, dag_id, run_id, "generate", "video_task_id")
    assert video_task_id.startswith("video_")
    tis = finish_in_the_triggerer(airflow, sim, dag_id, run_id, "generate", video_task_id)
    assert tis == {"generate": ("success", 1)}  # the task that waited landed the video

    assert len(creates_with(sim, prompt)) == 1
    contents = [r for r in sim.requests(target="download", task_id=video_task_id)]
    assert [r["path"] for r in contents] == [f"/v1/videos/{video_task_id}/content"] * 2  # video, thumbnail
    expected = sim.get_task(video_task_id)
    video = folder / f"{video_task_id}.mp4"
    assert (video.stat().st_size, sha256_of(video)) == (expected["video_size"], expected["video_sha256"])
    assert (folder / f"{video_task_id}.png").exists()


def test_fal_example_waits_in_the_triggerer_through_the_result_read_and_lands_the_video(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    dag_id = "videogen_fal_generate_and_fetch"
    airflow.wait_for_dag(dag_id)
    prompt = held_prompt("A heron over a misty lake")
    folder = new_folder(airflow, "fal")

    run_id = airflow.trigger_dag(dag_id, {"prompt": prompt, "destination": f"file://{folder}/"})

    video_task_id = wait_for_xcom(airflow, dag_id, run_id, "generate", "video_task_id")
    app, _, request_id = video_task_id.rpartition("/requests/")
    assert app == "fal-ai/kling-video"
    tis = finish_in_the_triggerer(airflow, sim, dag_id, run_id, "generate", request_id)
    assert tis == {"generate": ("success", 1)}  # the task that waited landed the video

    assert len(creates_with(sim, prompt)) == 1
    # COMPLETED was decided by the result: read by the trigger, then by the worker's look again before landing.
    assert {r["path"] for r in sim.requests(target="result", task_id=request_id)} == {f"/{video_task_id}"}
    assert len(video_downloads(sim, request_id)) == 1
    expected = sim.get_task(request_id)
    video = folder / f"{app.replace('/', '~')}~{request_id}.mp4"
    assert (video.stat().st_size, sha256_of(video)) == (expected["video_size"], expected["video_sha256"])


def test_replicate_example_waits_in_the_triggerer_for_the_prediction_and_lands_its_video(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    dag_id = "videogen_replicate_generate_and_fetch"
    airflow.wait_for_dag(dag_id)
    prompt = held_prompt("A kite over a windy beach")
    folder = new_folder(airflow, "replicate")

    run_id = airflow.trigger_dag(dag_id, {"prompt": prompt, "destination": f"file://{folder}/"})

    video_task_id = wait_for_xcom(airflow, dag_id, run_id, "generate", "video_task_id")
    tis = finish_in_the_triggerer(airflow, sim, dag_id, run_id, "generate", video_task_id)
    assert tis == {"generate": ("success", 1)}  # the task that waited landed the video

    [create] = creates_with(sim, prompt)
    assert create["headers"]["Cancel-After"] == "1h" and "Prefer" not in create["headers"]
    assert len(video_downloads(sim, video_task_id)) == 1
    expected = sim.get_task(video_task_id)
    video = folder / f"{video_task_id}.mp4"
    assert (video.stat().st_size, sha256_of(video)) == (expected["video_size"], expected["video_sha256"])


def test_every_example_dag_succeeds_with_make_airflows_preset_connections(
    start_deployment: StartDeployment, sim: SimulatorProcess
) -> None:
    # As make airflow deploys them: the example DAGs alone, with its preset connections (one list, which
    # make distributed defines too), each pointing at the simulator.
    from scripts.airflow_distributed import preset_connection_env

    airflow = start_deployment([EXAMPLE_DAGS], env=preset_connection_env(sim.base_url, sim.api_key), name="examples")
    for dag_id in ALL_EXAMPLES + PARSED_ONLY:
        airflow.wait_for_dag(dag_id)
    # Read once every example is parsed (those that only parse too: the cloud ones import their providers
    # and may come last): the dag-processor may still be on its first pass before.
    dags = sorted(dag["dag_id"] for dag in airflow.api("GET", "/api/v2/dags", query={"limit": 100})["dags"])
    runs: dict[str, str] = {}
    for dag_id in ALL_EXAMPLES:
        if dag_id == ASSET_SCHEDULED:
            continue  # started by the videos videogen_land_videos lands
        conf: dict[str, Any] = {"destination": f"file://{new_folder(airflow, dag_id)}/"}
        if dag_id == WAIT_AND_FETCH:
            conf["video_task_id"] = sim.add_task(queued_seconds=0, running_seconds=0)
        runs[dag_id] = airflow.trigger_dag(dag_id, conf)

    # The review waits for a person; answered as the review test does, once the scheduler has seen it wait
    # (an answer that reaches the scheduler first fails the task).
    waiting_review(airflow, runs[REVIEW], "review", timeout=300)
    answer(airflow, runs[REVIEW], "review", "Approve")

    states = {dag_id: airflow.wait_for_run(dag_id, run_id, timeout=300)["state"] for dag_id, run_id in runs.items()}
    asset_runs = wait_for(
        lambda: [
            run
            for run in airflow.api("GET", f"/api/v2/dags/{ASSET_SCHEDULED}/dagRuns")["dag_runs"]
            if run["state"] in ("success", "failed")
        ],
        timeout=120,
        message=f"{ASSET_SCHEDULED} to run on the landed videos",
    )
    states[ASSET_SCHEDULED] = asset_runs[0]["state"]
    assert sorted(dags) == sorted(ALL_EXAMPLES + PARSED_ONLY)
    failed_tasks = {
        dag_id: {ti["task_id"]: ti["state"] for ti in airflow.task_instances(dag_id, run_id)}
        for dag_id, run_id in runs.items()
        if states[dag_id] != "success"
    }
    assert states == dict.fromkeys(ALL_EXAMPLES, "success"), failed_tasks
