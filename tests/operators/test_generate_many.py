"""GenerateVideosOperator: many generations in one task, in a window, each paid for once, each with its outcome."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_videogen.exceptions import (
    VideoGenConfigurationError,
    VideoGenerationOverBudgetError,
    VideoGenError,
)
from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.operators.videogen import GenerateVideosOperator
from airflow_provider_videogen.triggers.batch import VideoBatchTrigger
from tests.loopback import API_KEY
from tests.task_context import FakeStateStore, FakeTaskInstance

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef,attr-defined]

MODEL = "doubao-seedance-1-0-pro-250528"
FAST = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02)
ROOT = Path(__file__).parents[2]


def quick(prompt: str, running: float = 0.1) -> str:
    """A prompt whose simulated generation starts at once and runs ``running`` seconds."""
    return f"{prompt} [sim:queued=0] [sim:running={running}]"


def items(count: int, running: float = 0.1, **fields: Any) -> list[dict[str, Any]]:
    return [{"model": MODEL, "prompt": quick(f"clip {n}", running), "key": f"clip-{n}", **fields} for n in range(count)]


def context(store: FakeStateStore | None = None, **more: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"ti": FakeTaskInstance(), **more}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def operator(tmp_path: Path, **kwargs: Any) -> GenerateVideosOperator:
    defaults: dict[str, Any] = {
        "task_id": "generate_many",
        "requests": items(3),
        "destination": tmp_path.as_uri() + "/",
        "poll_interval": 0.05,
        "deferrable": False,
        "http_retry_policy": FAST,
    }
    return GenerateVideosOperator(**{**defaults, **kwargs})


def manifest(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]


def created_ids(sim: Any) -> list[str]:
    """The ids of the generations the simulator made (one per create it took)."""
    return [task["id"] for task in sim.tasks()]


def max_in_flight_seen(sim: Any) -> int:
    """The most generations queued or running at once, by the simulator's clock."""
    tasks = sim.tasks()
    ends = [(t["created_at"], t["created_at"] + t["queued_seconds"] + t["running_seconds"]) for t in tasks]
    return max(sum(1 for start, end in ends if start <= at < end) for at, _ in ends)


def run_deferred(op: GenerateVideosOperator, ctx: dict[str, Any], *, max_rounds: int = 50) -> tuple[Any, int]:
    """Run a deferrable batch as Airflow would: execute, then each trigger's event into execute_complete."""
    rounds = 0
    call = lambda: op.execute(ctx)  # noqa: E731
    for _ in range(max_rounds):
        try:
            return call(), rounds
        except TaskDeferred as deferred:
            rounds += 1
            event = asyncio.run(_first_event(deferred.trigger))
            kwargs = deferred.kwargs or {}
            call = lambda event=event, kwargs=kwargs: op.execute_complete(ctx, event, **kwargs)  # noqa: E731
    raise AssertionError("the batch never ended")


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


# ---- every item lands, with its outcome -------------------------------------------------------


def test_every_item_lands_as_its_key_and_the_manifest_describes_each(sim, videogen_connection, tmp_path):
    result = operator(tmp_path, requests=items(4)).execute(context(FakeStateStore()))

    lines = manifest(tmp_path)
    assert [line["key"] for line in lines] == ["clip-0", "clip-1", "clip-2", "clip-3"]
    for line in lines:
        video = tmp_path / f"{line['key']}.mp4"
        served = sim.get_task(line["video_task_id"])
        assert line["status"] == "landed" and line["path"] == video.as_uri()
        assert line["sha256"] == served["video_sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
        assert line["size_bytes"] == video.stat().st_size and line["fingerprint"].startswith("sha256:")
        assert line["error"] is None
    assert result == {
        "items": 4,
        "landed": 4,
        "failed": 0,
        "cancelled": 0,
        "timeout": 0,
        "manifest": (tmp_path / "manifest.jsonl").as_uri(),
        "cost": None,
    }
    assert len(sim.requests(target="create")) == 4


def test_a_failed_item_has_the_api_code_and_min_success_fails_the_task_after_every_success_landed(
    sim, videogen_connection, tmp_path
):
    requests = items(3)
    requests[1]["prompt"] = quick("[sim:fail] clip 1")

    with pytest.raises(VideoGenError, match=r"Only 2 of 3 items landed, fewer than min_success=3"):
        operator(tmp_path, requests=requests).execute(context(FakeStateStore()))

    by_key = {line["key"]: line for line in manifest(tmp_path)}
    assert by_key["clip-1"]["status"] == "failed" and by_key["clip-1"]["path"] is None
    assert by_key["clip-1"]["error"]["code"] == "OutputVideoSensitiveContentDetected"
    assert by_key["clip-1"]["error"]["message"]
    assert {by_key["clip-0"]["status"], by_key["clip-2"]["status"]} == {"landed"}
    assert (tmp_path / "clip-0.mp4").exists() and (tmp_path / "clip-2.mp4").exists()
    assert not (tmp_path / "clip-1.mp4").exists()


def test_with_min_success_met_the_batch_succeeds_and_counts_the_failure(sim, videogen_connection, tmp_path):
    requests = items(3)
    requests[2]["prompt"] = quick("[sim:fail] clip 2")
    result = operator(tmp_path, requests=requests, min_success=2).execute(context(FakeStateStore()))
    assert (result["landed"], result["failed"]) == (2, 1)


def test_an_item_refused_at_create_fails_alone_and_costs_nothing(sim, videogen_connection, tmp_path):
    requests = items(3)
    requests[0]["prompt"] = "[sim:input-moderation] clip 0"
    result = operator(tmp_path, requests=requests, min_success=0).execute(context(FakeStateStore()))
    by_key = {line["key"]: line for line in manifest(tmp_path)}
    assert by_key["clip-0"]["video_task_id"] is None
    assert by_key["clip-0"]["error"]["code"] == "InputTextSensitiveContentDetected"
    assert (result["landed"], result["failed"]) == (2, 1)


# ---- the window -------------------------------------------------------------------------------


def test_the_window_never_holds_more_than_max_in_flight_generations(sim, videogen_connection, tmp_path):
    operator(tmp_path, requests=items(9, running=0.3), max_in_flight=3).execute(context(FakeStateStore()))

    assert len(created_ids(sim)) == 9
    assert max_in_flight_seen(sim) <= 3


def test_the_create_rate_holds_max_creates_per_minute(sim, videogen_connection, tmp_path):
    class ShortMinute(GenerateVideosOperator):
        rate_window = 1.0  # a "minute" of one second, so that the test does not take minutes

    started = time.time()
    ShortMinute(
        task_id="generate_many",
        requests=items(7, running=0.05),
        destination=tmp_path.as_uri() + "/",
        poll_interval=0.05,
        deferrable=False,
        max_in_flight=10,
        max_creates_per_minute=3,
    ).execute(context(FakeStateStore()))

    times = sorted(request["time"] for request in sim.requests(target="create"))
    assert len(times) == 7
    # No window of one second holds more than 3 creates; 7 creates need at least two whole windows.
    assert all(sum(1 for t in times if start <= t < start + 1.0) <= 3 for start in times)
    assert time.time() - started >= 2.0


def test_a_429_on_create_backs_the_whole_batch_off_without_losing_or_paying_twice_for_an_item(
    sim, videogen_connection, tmp_path
):
    sim.add_fault(kind="http_error", target="create", status=429, retry_after=1, times=1)

    result = operator(tmp_path, requests=items(4)).execute(context(FakeStateStore()))

    creates = sim.requests(target="create")
    assert [request["status"] for request in creates] == [429, 200, 200, 200, 200]
    # The batch waited out the Retry-After before its next create, and every item landed once.
    assert creates[1]["time"] - creates[0]["time"] >= 0.9
    assert result["landed"] == 4 and len(created_ids(sim)) == 4
    assert sorted(line["video_task_id"] for line in manifest(tmp_path)) == sorted(created_ids(sim))


# ---- deferred ---------------------------------------------------------------------------------


def test_deferred_the_batch_waits_in_one_trigger_and_lands_on_each_resume(sim, videogen_connection, tmp_path):
    op = operator(tmp_path, requests=items(6, running=0.2), max_in_flight=2, deferrable=True)

    result, rounds = run_deferred(op, context(FakeStateStore()))

    assert result["landed"] == 6 and len(created_ids(sim)) == 6
    assert rounds >= 3  # the window of 2 moved on after each wait
    assert max_in_flight_seen(sim) <= 2


def test_the_trigger_carries_ids_only_and_its_event_no_url_or_key(sim, videogen_connection, tmp_path):
    op = operator(tmp_path, requests=items(2), deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(FakeStateStore()))
    trigger = deferred.value.trigger
    assert isinstance(trigger, VideoBatchTrigger)
    _path, kwargs = trigger.serialize()
    assert sorted(kwargs["video_task_ids"]) == sorted(created_ids(sim))
    event = asyncio.run(_first_event(VideoBatchTrigger(**kwargs)))

    text = json.dumps([kwargs, event])
    assert "http" not in text and API_KEY not in text
    assert event["status"] == "done" and set(event["finished"].values()) == {"success"}


def test_a_retry_reconnects_to_every_item_submitted_and_pays_only_for_the_rest(sim, videogen_connection, tmp_path):
    store = FakeStateStore()
    first = operator(tmp_path, requests=items(5, running=0.3), max_in_flight=2, deferrable=True)
    with pytest.raises(TaskDeferred):
        first.execute(context(store))  # the try is lost while it waits (a worker gone, a triggerer lost)
    submitted = created_ids(sim)
    assert len(submitted) == 2

    retry = operator(tmp_path, requests=items(5, running=0.3), max_in_flight=2)
    result = retry.execute(context(store))

    assert result["landed"] == 5 and len(created_ids(sim)) == 5
    by_key = {line["key"]: line["video_task_id"] for line in manifest(tmp_path)}
    assert set(submitted) <= set(by_key.values())


def test_a_retry_after_a_failed_landing_lands_the_same_generation(sim, videogen_connection, tmp_path):
    store = FakeStateStore()
    sim.add_fault(kind="http_error", target="download", status=403, times=1)
    with pytest.raises(VideoGenError, match="Only 1 of 2 items landed"):
        operator(tmp_path, requests=items(2), http_retry_policy=RetryPolicy(max_attempts=1)).execute(context(store))
    first = {line["key"]: line["video_task_id"] for line in manifest(tmp_path)}

    result = operator(tmp_path, requests=items(2)).execute(context(store))

    assert result["landed"] == 2 and len(created_ids(sim)) == 2
    assert {line["key"]: line["video_task_id"] for line in manifest(tmp_path)} == first


def test_a_batch_removes_the_temporaries_a_killed_try_left_for_its_items_with_one_listing_a_round(
    sim, videogen_connection, tmp_path, monkeypatch
):
    from fsspec.implementations.local import LocalFileSystem

    left = tmp_path / ".clip-1.mp4.0123456789ab.part"  # an earlier try of this batch, killed while copying
    left.write_bytes(b"half a video")
    foreign = tmp_path / ".other.mp4.0123456789ab.part"  # another task's copy into the same folder, maybe live
    foreign.write_bytes(b"someone else's")
    listings: list[str] = []
    for name in ("ls", "glob"):
        real = getattr(LocalFileSystem, name)

        def counted(self, path, *args, _real=real, _name=name, **kwargs):
            if str(path).rstrip("/").startswith(str(tmp_path)):
                listings.append(_name)
            return _real(self, path, *args, **kwargs)

        monkeypatch.setattr(LocalFileSystem, name, counted)

    result = operator(tmp_path, requests=items(4)).execute(context(FakeStateStore()))

    assert result["landed"] == 4
    assert not left.exists() and foreign.read_bytes() == b"someone else's"
    # The folder is listed once for each round's landings: never a glob of the folder per landed file
    # (a batch of thousands into one folder would list it thousands of times).
    assert "glob" not in listings and 1 <= listings.count("ls") <= 4, listings


# ---- a worker SIGKILLed mid-batch -------------------------------------------------------------


def test_a_worker_killed_mid_batch_pays_nothing_twice(sim, videogen_connection, tmp_path):
    conn_id = str(videogen_connection())
    store, out = tmp_path / "store.json", tmp_path / "videos"
    out.mkdir()
    args = [str(store), conn_id, out.as_uri() + "/", MODEL, "6", "1.0"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.operators.killed_batch_worker", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        # Killed once two generations are kept: the window of two is full, the worker waits on them.
        while worker.poll() is None and time.monotonic() < deadline and len(_kept_ids(store)) < 2:
            time.sleep(0.02)
        assert len(_kept_ids(store)) == 2, worker.stderr.read().decode() if worker.poll() is not None else "no ids"
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stderr.close()
    killed_with = set(_kept_ids(store))

    from tests.operators.killed_batch_worker import FileStateStore, TaskInstance, batch

    result = batch(conn_id, out.as_uri() + "/", MODEL, 6, 1.0).execute(
        {"ti": TaskInstance(), "task_state_store": FileStateStore(store)}
    )

    assert result["landed"] == 6
    assert len(sim.requests(target="create")) == 6 and len(created_ids(sim)) == 6
    assert killed_with <= {line["video_task_id"] for line in manifest(out)}


def _kept_ids(store: Path) -> list[str]:
    try:
        values = json.loads(store.read_text())
    except (OSError, ValueError):
        return []
    return [
        entry["id"]
        for page in values.values()
        for entry in (page.get("items") or {}).values()
        if isinstance(entry, dict) and "id" in entry
    ]


# ---- the budget, the requests, the assets ------------------------------------------------------


def test_max_cost_refuses_the_whole_batch_before_any_create(sim, videogen_connection, tmp_path):
    videogen_connection(prices={"*": {"per_video": 0.5, "currency": "USD"}})
    with pytest.raises(VideoGenerationOverBudgetError, match=r"3 items, 1.5 USD, is above max_cost=1"):
        operator(tmp_path, requests=items(3), max_cost=1).execute(context(FakeStateStore()))
    assert sim.requests(target="create") == []


def test_within_max_cost_every_landed_item_has_its_cost_and_the_summary_the_total(sim, videogen_connection, tmp_path):
    videogen_connection(prices={"*": {"per_video": 0.5, "currency": "USD"}})
    result = operator(tmp_path, requests=items(3), max_cost=2).execute(context(FakeStateStore()))
    assert result["cost"] == {"amount": "1.5", "currency": "USD"}
    assert {line["cost"]["amount"] for line in manifest(tmp_path)} == {"0.5"}


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ("not json", r"requests must be a list of generation requests"),
        ([], r"non-empty list"),
        ([{"model": MODEL, "prompt": "a"}, {"prompt": "b"}], r"requests\[1\]\.model must name the model"),
        ([{"model": MODEL, "prompt": "a", "seed": 3}], r"requests\[0\] has unknown field\(s\) seed"),
        ([{"model": MODEL}], r"requests\[0\] has neither a prompt nor image_urls"),
        (
            [{"model": MODEL, "prompt": "a", "generation_params": {"duration": "five"}}],
            r"requests\[0\]\..*generation_params\['duration'\]",
        ),
        ([{"model": MODEL, "prompt": "a", "key": "../x"}], r"requests\[0\]\.key must be"),
        (
            [{"model": MODEL, "prompt": "a", "key": "x"}, {"model": MODEL, "prompt": "b", "key": "x"}],
            r"requests\[1\]\.key 'x' is also the key of requests\[0\]",
        ),
    ],
)
def test_requests_are_checked_once_rendered_naming_the_item_and_field(
    sim, videogen_connection, tmp_path, requests, message
):
    with pytest.raises(VideoGenConfigurationError, match=message):
        operator(tmp_path, requests=requests).execute(context(FakeStateStore()))
    assert sim.requests(target="create") == []


def test_requests_rendered_as_json_text_from_an_upstream_xcom_are_read(sim, videogen_connection, tmp_path):
    result = operator(tmp_path, requests=json.dumps(items(2))).execute(context(FakeStateStore()))
    assert result["landed"] == 2


def test_a_destination_that_is_not_a_folder_is_refused_before_anything_is_paid(sim, videogen_connection, tmp_path):
    with pytest.raises(VideoGenConfigurationError, match="destination must be a folder"):
        operator(tmp_path, destination=(tmp_path / "x.mp4").as_uri()).execute(context(FakeStateStore()))
    assert sim.requests(target="create") == []


def test_each_landed_video_is_one_asset_event_through_the_alias(sim, videogen_connection, tmp_path):
    alias = AssetAlias("generated-videos")
    events = OutletEventAccessors()
    operator(tmp_path, requests=items(3), outlets=[alias]).execute(context(FakeStateStore(), outlet_events=events))
    added = events[alias].asset_alias_events
    assert sorted(event.dest_asset_key.uri for event in added) == sorted(
        (tmp_path / f"clip-{n}.mp4").as_uri() for n in range(3)
    )
    assert all("http" not in json.dumps(event.extra) for event in added)


# ---- kill and deadline ------------------------------------------------------------------------


def test_killed_in_the_worker_the_batch_cancels_its_queued_generations_and_submits_no_more(
    sim, videogen_connection, tmp_path
):
    import threading

    requests = [{"model": MODEL, "prompt": f"clip {n} [sim:queued=30]", "key": f"clip-{n}"} for n in range(4)]
    op = operator(tmp_path, requests=requests, max_in_flight=2)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context(FakeStateStore()))
        except BaseException as error:
            failure.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while len(created_ids(sim)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # the worker waits on its full window
    op.on_kill()
    worker.join(timeout=20)

    assert not worker.is_alive()
    assert failure and "killed" in str(failure[0])
    assert [task["status"] for task in sim.tasks()] == ["cancelled", "cancelled"]
    assert len(sim.requests(target="create")) == 2


def test_at_the_deadline_items_in_flight_time_out_and_are_cancelled_and_the_rest_are_never_paid(
    sim, videogen_connection, tmp_path
):
    requests = [{"model": MODEL, "prompt": f"clip {n} [sim:queued=30]", "key": f"clip-{n}"} for n in range(4)]

    result = operator(tmp_path, requests=requests, max_in_flight=2, timeout=1, min_success=0).execute(
        context(FakeStateStore())
    )

    assert (result["timeout"], result["landed"]) == (4, 0)
    assert [task["status"] for task in sim.tasks()] == ["cancelled", "cancelled"]
    errors = {line["key"]: line["error"]["message"] for line in manifest(tmp_path)}
    assert errors["clip-0"] == "Still not finished at the deadline."
    assert errors["clip-3"] == "Not submitted before the deadline."


def test_an_airflow_retry_of_a_batch_whose_landing_failed_reconnects_and_creates_nothing_more(
    load_dag_file, sim, videogen_connection, tmp_path
):
    """A real retry: through the task_state_store on Airflow 3.3+, through Variables on 3.1 and 3.2."""
    dag = load_dag_file(Path(__file__).parents[1] / "dags" / "generate_many_with_retry.py").dag
    sim.add_fault(kind="http_error", target="download", status=403, times=1)

    run = dag.test(run_conf={"requests": items(3), "destination": tmp_path.as_uri() + "/"})

    assert run.state == "success"
    assert [ti.try_number for ti in run.get_task_instances()] == [2]  # the first try really failed
    assert len(sim.requests(target="create")) == 3
    assert [line["status"] for line in manifest(tmp_path)] == ["landed"] * 3


# ---- a create whose answer was lost ------------------------------------------------------------


def test_a_lost_create_answer_where_the_style_cannot_look_ends_the_item_unknown_and_never_sends_it_again(
    sim, videogen_connection, tmp_path
):
    store = FakeStateStore()
    sim.add_fault(kind="truncate", target="create", times=1)

    result = operator(tmp_path, requests=items(3), min_success=0).execute(context(store))

    by_key = {line["key"]: line for line in manifest(tmp_path)}
    assert by_key["clip-0"]["status"] == "failed" and by_key["clip-0"]["error"]["code"] == "outcome_unknown"
    assert (result["landed"], result["failed"]) == (2, 1)
    # A retry of the task does not send it again either: the generation may exist and be paid for.
    operator(tmp_path, requests=items(3), min_success=0).execute(context(store))
    assert len(sim.requests(target="create")) == 3


def test_a_lost_create_answer_where_the_style_lists_is_found_and_landed_with_one_create(
    sim, videogen_connection, tmp_path
):
    from tests.operators.test_generate import STYLE_MODELS

    conn_id = videogen_connection(conn_id="vg_videos", api_style="openai_videos")
    requests = [
        {"model": STYLE_MODELS["openai_videos"], "prompt": quick(f"clip {n}"), "key": f"clip-{n}"} for n in range(2)
    ]
    sim.add_fault(kind="truncate", target="create", times=1)

    result = operator(tmp_path, requests=requests, videogen_conn_id=conn_id).execute(context(FakeStateStore()))

    assert result["landed"] == 2
    creates = sim.requests(target="create")
    assert len(creates) == 2
    assert sorted(line["video_task_id"] for line in manifest(tmp_path)) == sorted(r["task_id"] for r in creates)
