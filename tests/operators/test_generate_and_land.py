"""GenerateVideoOperator with a destination: the task that waited lands the video, as FetchVideoOperator would."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_videogen.download.staging import _StagedFile
from airflow_provider_videogen.exceptions import (
    VideoDestinationError,
    VideoDownloadCancelledError,
    VideoDownloadError,
    VideoGenerationFailedError,
)
from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.links import LandedVideoLink
from airflow_provider_videogen.operators.videogen import GenerateVideoOperator
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_download import RECORD_SUFFIX
from tests.download.file_hosts import files_in
from tests.task_context import FakeStateStore, FakeTaskInstance, recorded_id

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef,attr-defined]

MODEL = "doubao-seedance-1-0-pro-250528"
# One attempt per call: a file-host fault fails the landing of this try at once.
ONE_ATTEMPT = RetryPolicy(max_attempts=1)
FAST = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02)
DAG_FILE = Path(__file__).parents[1] / "dags" / "generate_and_land.py"

#: The keys FetchVideoOperator adds to the task when it lands a video.
LANDED_KEYS = {"video_path", "size_bytes", "sha256", "last_frame_path", "last_frame_size_bytes", "last_frame_sha256"}


def quick(prompt: str = "a red fox in the snow") -> str:
    """A prompt whose simulated generation finishes at once."""
    return f"{prompt} [sim:queued=0] [sim:running=0.1]"


def context(store: FakeStateStore | None = None, **more: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"ti": FakeTaskInstance(), **more}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def operator(**kwargs: Any) -> GenerateVideoOperator:
    defaults: dict[str, Any] = {
        "task_id": "generate",
        "model": MODEL,
        "prompt": quick(),
        "poll_interval": 0.05,
        "deferrable": False,
        "http_retry_policy": FAST,
    }
    return GenerateVideoOperator(**{**defaults, **kwargs})


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _first_event(trigger: VideoTaskTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def test_in_the_worker_the_task_that_waited_lands_the_video_and_returns_the_fetch_keys(
    sim, videogen_connection, tmp_path
):
    ctx = context()
    result = operator(
        generation_params={"return_last_frame": True}, destination=tmp_path.as_uri() + "/", include_last_frame=True
    ).execute(ctx)

    video_task_id = result["id"]
    video = tmp_path / f"{video_task_id}.mp4"
    served = sim.get_task(video_task_id)
    assert result["status"] == "succeeded" and set(result) >= LANDED_KEYS
    assert (result["video_path"], result["sha256"]) == (video.as_uri(), served["video_sha256"])
    assert result["size_bytes"] == video.stat().st_size and sha256_of(video) == served["video_sha256"]
    assert result["last_frame_path"] == (tmp_path / f"{video_task_id}.png").as_uri()
    assert ctx["ti"].xcom["video_task_id"] == video_task_id
    assert len(sim.requests(target="create")) == 1


def test_deferred_the_task_lands_the_video_when_it_resumes(sim, videogen_connection, tmp_path):
    ctx = context()
    op = operator(deferrable=True, destination=tmp_path.as_uri() + "/")
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    assert files_in(tmp_path) == []  # nothing lands before the wait is over

    event = asyncio.run(_first_event(deferred.value.trigger))
    result = op.execute_complete(ctx, event, **(deferred.value.kwargs or {}))

    video_task_id = ctx["ti"].xcom["video_task_id"]
    assert result["video_path"] == (tmp_path / f"{video_task_id}.mp4").as_uri()
    assert sha256_of(tmp_path / f"{video_task_id}.mp4") == sim.get_task(video_task_id)["video_sha256"]
    assert files_in(tmp_path) == [f"{video_task_id}.mp4", f"{video_task_id}.mp4{RECORD_SUFFIX}"]


def test_a_retry_after_the_landing_failed_reconnects_and_lands_without_paying_again(sim, videogen_connection, tmp_path):
    store = FakeStateStore()
    sim.add_fault(kind="http_error", target="download", status=503, times=1)
    with pytest.raises(VideoDownloadError):
        operator(destination=tmp_path.as_uri() + "/", http_retry_policy=ONE_ATTEMPT).execute(context(store))
    video_task_id = recorded_id(store)  # the generation is kept for the retry
    assert files_in(tmp_path) == []

    result = operator(destination=tmp_path.as_uri() + "/").execute(context(store))

    assert result["id"] == video_task_id
    assert len(sim.requests(target="create")) == 1
    assert [r["status"] for r in sim.requests(target="download")] == [503, 200]
    assert files_in(tmp_path) == [f"{video_task_id}.mp4", f"{video_task_id}.mp4{RECORD_SUFFIX}"]
    assert result["sha256"] == sim.get_task(video_task_id)["video_sha256"]


def test_a_failed_generation_lands_nothing_and_fails_the_task_as_without_a_destination(
    sim, videogen_connection, tmp_path
):
    with pytest.raises(VideoGenerationFailedError, match="OutputVideoSensitiveContentDetected"):
        operator(prompt=quick("[sim:fail] a fox"), destination=tmp_path.as_uri() + "/").execute(context())
    assert files_in(tmp_path) == []
    assert sim.requests(target="download") == []


def test_the_landed_video_becomes_an_asset_event_through_the_alias(sim, videogen_connection, tmp_path):
    alias = AssetAlias("videos")
    events = OutletEventAccessors()
    result = operator(destination=tmp_path.as_uri() + "/", outlets=[alias]).execute(context(outlet_events=events))

    [event] = events[alias].asset_alias_events
    assert event.dest_asset_key.uri == result["video_path"]
    assert (event.extra["video_task_id"], event.extra["sha256"]) == (result["id"], result["sha256"])


def test_without_a_destination_nothing_lands_and_the_return_value_is_the_task(sim, videogen_connection):
    result = operator().execute(context())
    assert result["status"] == "succeeded" and not LANDED_KEYS & set(result)
    assert sim.requests(target="download") == []


def test_the_landing_fields_are_templated_and_the_landed_video_is_linked():
    assert {"destination", "dest_conn_id"} <= set(GenerateVideoOperator.template_fields)
    assert any(isinstance(link, LandedVideoLink) for link in GenerateVideoOperator.operator_extra_links)


def test_the_lineage_names_the_generation_and_the_landed_files_as_outputs(sim, videogen_connection, tmp_path):
    pytest.importorskip("airflow.providers.openlineage", reason="the OpenLineage provider is not installed")
    op = operator(
        generation_params={"return_last_frame": True}, destination=tmp_path.as_uri() + "/", include_last_frame=True
    )
    result = op.execute(context())

    lineage = op.get_openlineage_facets_on_complete(None)
    names = [(d.namespace, d.name) for d in lineage.outputs]
    video = tmp_path / f"{result['id']}.mp4"
    assert names == [(sim.base_url, result["id"]), ("file", str(video)), ("file", str(video.with_suffix(".png")))]
    assert lineage.run_facets["videogen"].video_task_id == result["id"]


# ---- a real DAG run: deferred, then an Airflow retry after the landing failed -----------------


@pytest.fixture(scope="module")
def land_dag(load_dag_file) -> Any:
    return load_dag_file(DAG_FILE).dag


def test_a_dag_run_waits_deferred_then_lands_in_the_same_task(land_dag, sim, videogen_connection, tmp_path):
    run = land_dag.test(run_conf={"prompt": quick("a kite"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    [ti] = run.get_task_instances()
    (video,) = tmp_path.glob("*.mp4")
    assert sha256_of(video) == sim.get_task(video.stem)["video_sha256"]
    assert ti.xcom_pull(task_ids="generate")["video_path"] == video.as_uri()


def test_an_airflow_retry_after_the_landing_failed_lands_without_a_second_create(
    land_dag, sim, videogen_connection, tmp_path
):
    sim.add_fault(kind="http_error", target="download", status=503, times=1)
    run = land_dag.test(run_conf={"prompt": quick("a kite"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    assert [ti.try_number for ti in run.get_task_instances()] == [2]  # the first try failed landing
    assert len(sim.requests(target="create")) == 1
    (video,) = tmp_path.glob("*.mp4")
    assert sha256_of(video) == sim.get_task(video.stem)["video_sha256"]


def test_a_destination_without_waiting_is_refused_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="destination needs wait_for_completion=True"):
        operator(destination="file:///tmp/videos/", wait_for_completion=False)


@pytest.mark.parametrize("destination", ["videos/", "", "https://example.com/videos/", "s3://"])
def test_a_rendered_destination_that_cannot_be_landed_in_is_refused_before_the_generation_is_paid_for(
    sim, videogen_connection, destination
):
    with pytest.raises(VideoDestinationError, match="destination"):
        operator(destination=destination).execute(context())
    assert sim.requests(target="create") == []


def test_a_kill_during_the_landing_stops_the_copy_and_never_touches_the_paid_video(
    sim, videogen_connection, tmp_path, monkeypatch
):
    first_chunk_written, killed = threading.Event(), threading.Event()
    write = _StagedFile.write

    def write_then_wait(self: _StagedFile, chunk: bytes) -> None:
        write(self, chunk)
        first_chunk_written.set()
        killed.wait(10)

    monkeypatch.setattr(_StagedFile, "write", write_then_wait)
    op = operator(prompt=quick("[sim:size=2000000] a fox"), destination=tmp_path.as_uri() + "/", chunk_size=64 * 1024)
    ctx = context()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(ctx)
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    assert first_chunk_written.wait(10)
    op.on_kill()
    killed.set()
    worker.join(10)

    assert [type(error) for error in outcome] == [VideoDownloadCancelledError]
    assert files_in(tmp_path) == []  # the temporary file is gone, nothing landed
    assert sim.requests(target="cancel") == []  # the generation succeeded: it is never cancelled or deleted
    assert sim.get_task(ctx["ti"].xcom["video_task_id"])["status"] == "succeeded"
