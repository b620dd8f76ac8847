"""Reconnect: which request a recorded generation answers, and the window between a create's answer and the record."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_videogen.exceptions import (
    VideoGenerationOutcomeUnknownError,
    VideoTaskMayExistError,
)
from airflow_provider_videogen.styles import STYLES
from airflow_provider_videogen.testing._media import frame_png
from tests.operators.test_generate import STYLE_MODELS, context, operator, operator_log, quick
from tests.task_context import FakeStateStore, recorded_id

ROOT = Path(__file__).parents[2]


# ---- a cleared task: the same request reconnects, a changed one submits anew ------------------


def test_a_cleared_task_with_an_unchanged_request_reconnects_without_a_second_create(sim, videogen_connection):
    store = FakeStateStore()
    params = {"resolution": "720p", "duration": 5}
    first = operator(prompt=quick(), generation_params=params).execute(context(store))
    # The clear: a new try of the same task instance, the DAG unchanged (dict order is not the request).
    again = operator(prompt=quick(), generation_params={"duration": 5, "resolution": "720p"}).execute(context(store))
    assert again["id"] == first["id"]
    assert len(sim.requests(target="create")) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": quick("a grey wolf in the snow")},
        {"generation_params": {"resolution": "1080p"}},
        {"image_urls": ["https://images.example/first-frame.png"]},
    ],
    ids=["prompt", "parameter", "image"],
)
def test_a_cleared_task_whose_request_changed_submits_anew_and_leaves_the_earlier_generation(
    sim, videogen_connection, caplog, capsys, change
):
    store = FakeStateStore()
    first = operator(prompt=quick()).execute(context(store))
    capsys.readouterr()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        changed = operator(**{"prompt": quick(), **change}).execute(context(store))
    assert changed["id"] != first["id"]
    assert len(sim.requests(target="create")) == 2
    assert recorded_id(store) == changed["id"]
    assert sim.get_task(first["id"])["status"] == "succeeded"  # left as it is, never deleted
    lines = operator_log(caplog, capsys)
    assert any(first["id"] in line and "answered a different request" in line for line in lines), lines


def test_a_changed_image_file_counts_by_its_content(sim, videogen_connection, tmp_path):
    conn_id = videogen_connection(conn_id="vg_videos", api_style="openai_videos")
    image = tmp_path / "frame.png"
    image.write_bytes(frame_png("one"))
    store = FakeStateStore()

    def run() -> dict[str, Any]:
        op = operator(videogen_conn_id=conn_id, model="sora-2", prompt=quick())
        op.generation_params = {"image_file": str(image)}
        return op.execute(context(store))

    first = run()
    assert run()["id"] == first["id"]  # the same file: reconnects
    image.write_bytes(frame_png("two"))  # same name, other bytes
    assert run()["id"] != first["id"]
    assert len(sim.requests(target="create")) == 2


def test_a_record_of_the_previous_release_without_a_fingerprint_reconnects(sim, videogen_connection):
    video_task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    store = FakeStateStore()
    store.values["video_task_id"] = video_task_id  # what the previous release kept: the id alone
    result = operator(prompt=quick("whatever the request now is")).execute(context(store))
    assert result["id"] == video_task_id
    assert sim.requests(target="create") == []


# ---- the kill window: a worker SIGKILLed after the create answered, before the record --------


def kill_after_the_create(sim: Any, conn_id: str, model: str, prompt: str, tmp_path: Path) -> tuple[str, dict]:
    """Run a try in a worker process, SIGKILL it once the create answered; return the new id and the store left."""
    store, ready = tmp_path / "store.json", tmp_path / "ready"
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.operators.killed_worker", str(store), str(ready), conn_id, model, prompt],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), worker.stderr.read().decode() if worker.poll() is not None else "no create"
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stderr.close()
    return ready.read_text(), json.loads(store.read_text()) if store.exists() else {}


#: A model the simulator accepts on each style, Replicate's by owner/name (its create route names it).
MODELS = {**STYLE_MODELS, "replicate": "kwaivgi/kling-v2.1"}
RECONCILING = sorted(name for name, style in STYLES.items() if style.can_reconcile and name in MODELS)


def test_every_style_that_closes_the_kill_window_is_tested_with_a_killed_worker():
    assert set(RECONCILING) == {name for name, style in STYLES.items() if style.can_reconcile}
    assert {"openai_videos", "replicate"} <= set(RECONCILING)


@pytest.mark.parametrize("api_style", RECONCILING)
def test_a_worker_killed_between_the_create_answer_and_the_record_is_found_by_the_retry_one_create_in_all(
    sim, videogen_connection, tmp_path, api_style
):
    conn_id = videogen_connection(conn_id="vg_style", api_style=api_style)
    model, prompt = MODELS[api_style], quick()
    paid_for, left = kill_after_the_create(sim, conn_id, model, prompt, tmp_path)
    assert "video_task_id" not in left["video_task_id"]  # an intent: the id was never kept

    store = FakeStateStore()
    store.values.update(left)
    result = operator(videogen_conn_id=conn_id, model=model, prompt=prompt).execute(context(store))
    assert result["id"] == paid_for
    assert len(sim.requests(target="create")) == 1
    assert recorded_id(store) == paid_for


def test_where_the_style_cannot_list_a_killed_try_submits_again_and_says_the_earlier_one_may_be_paid_too(
    sim, videogen_connection, tmp_path, caplog, capsys
):
    assert not STYLES["contents_generations"].can_reconcile
    prompt = quick()
    model = STYLE_MODELS["contents_generations"]
    paid_for, left = kill_after_the_create(sim, "videogen_default", model, prompt, tmp_path)
    store = FakeStateStore()
    store.values.update(left)
    with caplog.at_level(logging.WARNING):
        result = operator(prompt=prompt).execute(context(store))
    assert result["id"] != paid_for
    assert len(sim.requests(target="create")) == 2  # the window stays open on this style: paid again...
    warning = next(line for line in operator_log(caplog, capsys) if "cannot list recent generations" in line)
    assert model in warning and "VideoTaskSensor" in warning  # ...and the log says so, and how to use the other
    assert sim.get_task(paid_for)["status"] != "cancelled"  # the earlier generation is left as it is
    assert recorded_id(store) == result["id"]


def test_a_bedrock_worker_killed_after_the_create_answered_is_retried_with_the_same_token_one_invocation_in_all(
    sim, bedrock_connection, tmp_path, caplog, capsys
):
    from tests.conftest import BEDROCK_BUCKET
    from tests.operators.killed_worker import TaskInstance

    assert STYLES["bedrock_video"].idempotent_create and not STYLES["bedrock_video"].can_reconcile
    conn_id = bedrock_connection("vg_bedrock", f"s3://{BEDROCK_BUCKET}/killed")
    model, prompt = "amazon.nova-reel-v1:1", quick()
    paid_for, left = kill_after_the_create(sim, conn_id, model, prompt, tmp_path)
    store = FakeStateStore()
    store.values.update(left)

    class SameTaskInstance(TaskInstance):  # the retry is a try of the same task instance
        xcom: dict[str, Any] = {}

    with caplog.at_level(logging.INFO):
        result = operator(videogen_conn_id=conn_id, model=model, prompt=prompt).execute(
            {"ti": SameTaskInstance(), "task_state_store": store}
        )
    assert result["id"] == paid_for  # the service answered the repeated create with the same invocation
    assert len({task["id"] for task in sim.tasks() if task["style"] == "bedrock_video"}) == 1
    assert any("idempotency token" in line for line in operator_log(caplog, capsys))


@pytest.mark.parametrize("api_style", RECONCILING)
def test_a_lost_create_answer_on_a_style_that_lists_is_found_by_the_next_try(sim, videogen_connection, api_style):
    conn_id = videogen_connection(conn_id="vg_style", api_style=api_style)
    model = MODELS[api_style]
    sim.add_fault(kind="truncate", target="create", times=1)
    store = FakeStateStore()
    with pytest.raises(VideoTaskMayExistError, match="looks for it in the service's list"):
        operator(videogen_conn_id=conn_id, model=model, prompt=quick()).execute(context(store))
    result = operator(videogen_conn_id=conn_id, model=model, prompt=quick()).execute(context(store))
    (create,) = sim.requests(target="create")
    assert result["id"] == create["task_id"]


def test_a_replicate_prediction_of_another_model_with_the_same_input_is_not_taken(sim, videogen_connection):
    conn_id = videogen_connection(conn_id="vg_replicate", api_style="replicate")
    model, prompt = MODELS["replicate"], quick()
    sim.add_fault(kind="truncate", target="create", times=1)
    store = FakeStateStore()
    with pytest.raises(VideoTaskMayExistError):
        operator(videogen_conn_id=conn_id, model=model, prompt=prompt).execute(context(store))
    # Meanwhile another DAG ran the very same input on another model: not this task's generation.
    (lost,) = sim.requests(target="create")
    other = sim.add_task(style="replicate", model="google/veo-3", created_body={"input": lost["body"]["input"]})
    result = operator(videogen_conn_id=conn_id, model=model, prompt=prompt).execute(context(store))
    (create,) = sim.requests(target="create")
    assert result["id"] == create["task_id"] != other
    assert recorded_id(store) == result["id"]


def test_two_listed_generations_of_the_same_request_end_the_task_for_good_naming_both(sim, videogen_connection):
    conn_id = videogen_connection(conn_id="vg_videos", api_style="openai_videos")
    sim.add_fault(kind="truncate", target="create", times=1)
    store = FakeStateStore()
    with pytest.raises(VideoTaskMayExistError):
        operator(videogen_conn_id=conn_id, model="sora-2", prompt=quick()).execute(context(store))
    # Another run made the very same request meanwhile: which one this task paid for cannot be told.
    other = operator(videogen_conn_id=conn_id, model="sora-2", prompt=quick(), wait_for_completion=False)
    other_id = other.execute(context())
    with pytest.raises(VideoGenerationOutcomeUnknownError, match="2 generations") as caught:
        operator(videogen_conn_id=conn_id, model="sora-2", prompt=quick()).execute(context(store))
    assert other_id in str(caught.value)
    assert len(sim.requests(target="create")) == 2
