"""The human-review example in a real deployment, the person's answers given through the REST API."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import AirflowDeployment, ApiError, wait_for
from .videos import creates_with, new_folder, sha256_of

pytestmark = pytest.mark.e2e

REVIEW = "videogen_review_and_publish"


def hitl_path(run_id: str, task_id: str) -> str:
    return f"/api/v2/dags/{REVIEW}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"


def waiting_review(airflow: AirflowDeployment, run_id: str, task_id: str, timeout: float = 120) -> dict[str, Any]:
    """The review form once the task waits for a person, and the scheduler has seen it wait."""

    def asked() -> dict[str, Any] | None:
        try:
            detail = airflow.api("GET", hitl_path(run_id, task_id))
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        # Airflow 3.3 has a state of its own for it; 3.1 and 3.2 defer the task.
        return detail if detail["task_instance"]["state"] in ("awaiting_input", "deferred") else None

    detail = wait_for(asked, timeout=timeout, message=f"{task_id} of {run_id} to wait for a person")
    # A person answers seconds later, when the scheduler has long handled the end of the process that
    # asked. An answer within a second of the question can reach the scheduler before that, which
    # then fails the task: wait for it as a person would.
    airflow.wait_for_log(
        "scheduler",
        rf"TaskInstance Finished: dag_id={REVIEW}, task_id={task_id}, run_id={re.escape(run_id)},.*"
        r"state=(awaiting_input|deferred)",
        timeout=60,
    )
    return detail


def answer(airflow: AirflowDeployment, run_id: str, task_id: str, option: str) -> None:
    """Answer the review as a person does in the UI: again, a few seconds later, if the database was busy.

    The deployment's SQLite database takes one writer at a time; with other runs writing, the api-server
    may answer 500 "Database error" (its write rolled back), and a person would simply click again.
    """
    for attempt in range(3):
        try:
            airflow.api("PATCH", hitl_path(run_id, task_id), {"chosen_options": [option], "params_input": {}})
            return
        except ApiError as error:
            if error.status != 500 or "Database error" not in error.body or attempt == 2:
                raise
            time.sleep(3)


def states(airflow: AirflowDeployment, run_id: str) -> dict[str, str]:
    return {ti["task_id"]: ti["state"] for ti in airflow.task_instances(REVIEW, run_id)}


def start(airflow: AirflowDeployment, name: str, prompt: str) -> tuple[str, Path]:
    folder = new_folder(airflow, name)
    return airflow.trigger_dag(REVIEW, {"prompt": prompt, "destination": f"file://{folder}/"}), folder


def test_regenerate_then_approve_publishes_the_second_video_and_reject_ends_cleanly(
    airflow: AirflowDeployment, sim: SimulatorProcess
):
    airflow.wait_for_dag(REVIEW)
    quick = "[sim:queued=0.2] [sim:running=0.3]"
    regenerated_prompt, rejected_prompt = f"A red kite, reviewed {quick}", f"A grey sky, reviewed {quick}"
    regenerated, folder = start(airflow, "review-regenerate", regenerated_prompt)
    rejected, rejected_folder = start(airflow, "review-reject", rejected_prompt)

    # The form shows what was generated: the prompt, the model and where the video and last frame are.
    form = waiting_review(airflow, regenerated, "review")
    assert form["options"] == ["Approve", "Regenerate", "Reject"]
    first = airflow.xcom(REVIEW, regenerated, "fetch")
    assert regenerated_prompt in form["subject"]
    for shown in ("doubao-seedance-1-0-pro-250528", first["video_path"], first["last_frame_path"]):
        assert shown in form["body"]
    answer(airflow, regenerated, "review", "Regenerate")

    waiting_review(airflow, rejected, "review")
    answer(airflow, rejected, "review", "Reject")

    again = waiting_review(airflow, regenerated, "review_again")
    assert again["options"] == ["Approve", "Reject"]
    answer(airflow, regenerated, "review_again", "Approve")

    assert airflow.wait_for_run(REVIEW, regenerated)["state"] == "success"
    assert airflow.wait_for_run(REVIEW, rejected)["state"] == "success"

    # Regenerated once with another seed; the second video is the one published.
    first_create, second_create = creates_with(sim, regenerated_prompt)
    assert "seed" not in first_create["body"] and second_create["body"]["seed"] != first["seed"]
    second = airflow.xcom(REVIEW, regenerated, "fetch_again")
    published = folder / "published"
    assert sorted(p.name for p in published.iterdir()) == sorted(
        Path(second[key].removeprefix("file://")).name for key in ("video_path", "last_frame_path")
    )
    assert sha256_of(published / f"{second['id']}.mp4") == second["sha256"]
    assert states(airflow, regenerated) == {
        "generate": "success",
        "fetch": "success",
        "review": "success",
        "publish": "skipped",
        "rejected": "skipped",
        "pick_new_seed": "success",
        "generate_again": "success",
        "fetch_again": "success",
        "review_again": "success",
        "publish_again": "success",
        "rejected_again": "skipped",
    }

    # Rejected: nothing published, no second generation, and the run still succeeds.
    assert len(creates_with(sim, rejected_prompt)) == 1
    assert not (rejected_folder / "published").exists()
    ended = states(airflow, rejected)
    assert (ended["rejected"], ended["publish"], ended["pick_new_seed"]) == ("success", "skipped", "skipped")
    assert json.dumps(form).count("sim-e2e-key") == 0
