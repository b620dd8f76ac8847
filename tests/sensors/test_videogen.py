"""``VideoTaskSensor``: deferring, the check before it, ``execute_complete`` for every event, and poke mode."""

from __future__ import annotations

import inspect
import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.exceptions import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

from airflow_provider_videogen.exceptions import VideoGenError, VideoTaskNotFoundError
from airflow_provider_videogen.sensors import videogen as sensor_module
from airflow_provider_videogen.sensors.videogen import VideoTaskSensor
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

TASK_ID = "cgt-20250331175019-68d9t"
MODERATION_CODE = "OutputVideoSensitiveContentDetected"
MODERATION_MESSAGE = "The request failed because the output video may contain sensitive information."
CONTEXT: Any = {}


def make_sensor(video_task_id: str = TASK_ID, **kwargs: Any) -> VideoTaskSensor:
    kwargs.setdefault("deferrable", True)
    return VideoTaskSensor(task_id="wait_for_video", video_task_id=video_task_id, **kwargs)


def event(status: str, **overrides: Any) -> dict[str, Any]:
    task = VideoTask(
        id=TASK_ID,
        status=VideoTaskStatus.SUCCEEDED if status == "success" else VideoTaskStatus.RUNNING,
        video_url="https://cdn.example.com/videos/x.mp4?X-Signature=secret",
    )
    payload = {
        "status": status,
        "video_task_id": TASK_ID,
        "task": task.to_dict(),
        "message": f"{status} message",
        "error_code": None,
        "error_message": None,
    }
    payload.update(overrides)
    return payload


def failed_event(status: str = "failed") -> dict[str, Any]:
    task = VideoTask(
        id=TASK_ID, status=VideoTaskStatus(status), error_code=MODERATION_CODE, error_message=MODERATION_MESSAGE
    )
    return {
        "status": "failed",
        "video_task_id": TASK_ID,
        "task": task.to_dict(),
        "message": f"Video task {TASK_ID} ended {status}; error code {MODERATION_CODE}; message: {MODERATION_MESSAGE}",
        "error_code": MODERATION_CODE,
        "error_message": MODERATION_MESSAGE,
    }


@pytest.fixture
def fast_connection(videogen_connection):
    """The default connection, with the hook making one attempt (so transient faults surface at once)."""
    return videogen_connection(max_attempts=1)


# ---- construction ----


def test_video_task_id_and_connection_are_templated():
    assert set(VideoTaskSensor.template_fields) == {"video_task_id", "videogen_conn_id"}


def test_deferrable_defaults_to_airflow_default_deferrable_setting():
    default = inspect.signature(VideoTaskSensor.__init__).parameters["deferrable"].default
    assert default is sensor_module.conf.getboolean("operators", "default_deferrable", fallback=False)


def test_timeout_defaults_to_airflow_default_sensor_timeout():
    expected = sensor_module.conf.getfloat("sensors", "default_timeout")
    assert make_sensor().timeout == expected


def test_deferrable_sensor_refuses_a_zero_poke_interval():
    with pytest.raises(ValueError, match="poke_interval"):
        make_sensor(poke_interval=0)


@pytest.mark.parametrize("deferrable", [True, False])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", float("inf")),
        ("timeout", True),
        ("timeout", 1e13),
        ("timeout", timedelta(days=400)),
        ("poke_interval", float("inf")),
        ("poke_interval", True),
        ("poke_interval", 1e13),
    ],
)
def test_a_number_argument_that_is_not_finite_in_range_and_a_number_is_refused_naming_it(deferrable, name, value):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        make_sensor(deferrable=deferrable, **{name: value})


def test_a_timedelta_poke_interval_and_timeout_are_read_as_seconds():
    sensor = make_sensor(poke_interval=timedelta(seconds=30), timeout=timedelta(hours=2))
    assert (sensor.poke_interval, sensor.timeout) == (30.0, 7200.0)


# ---- deferrable: the check, then deferring ----


def test_defers_with_the_trigger_its_deadline_and_airflow_timeout(sim, videogen_connection):
    videogen_connection(conn_id="vg", timeout=20)
    task_id = sim.add_task(final_status="succeeded")
    sim.set_status(task_id, "running")
    sensor = make_sensor(task_id, videogen_conn_id="vg", poke_interval=5, timeout=600)
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(CONTEXT)
    after = time.time()
    trigger = deferred.value.trigger
    assert isinstance(trigger, VideoTaskTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_videogen.triggers.videogen.VideoTaskTrigger"
    assert kwargs["video_task_id"] == task_id
    assert kwargs["videogen_conn_id"] == "vg"
    assert kwargs["poll_interval"] == 5.0
    assert before + 600 <= kwargs["end_time"] <= after + 600
    assert deferred.value.method_name == "execute_complete"
    assert before <= deferred.value.kwargs["wait_started_at"] <= after
    # Airflow's own timeout is a backstop: the deadline, plus one request timeout and a minute.
    assert timedelta(seconds=600 + 20 + 60 - (after - before)) <= deferred.value.timeout
    assert deferred.value.timeout <= timedelta(seconds=600 + 20 + 60)
    assert len(sim.requests(target="query")) == 1


async def test_the_poll_after_hint_read_before_deferring_sets_the_triggers_first_poll(sim, videogen_connection):
    videogen_connection(conn_id="vg_videos", api_style="openai_videos")
    sim.configure(openai_poll_after_ms=3000)
    task_id = sim.add_task(style="openai_videos", queued_seconds=0, running_seconds=0)
    sim.set_status(task_id, "running")
    sensor = make_sensor(task_id, videogen_conn_id="vg_videos", poke_interval=1.2, timeout=600)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(CONTEXT)
    sim.set_status(task_id, "auto")  # done by the trigger's first poll
    # Rebuilt from its kwargs, as a triggerer (or one restarted) does.
    trigger = VideoTaskTrigger(**deferred.value.trigger.serialize()[1])
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    trigger._sleep = record  # type: ignore[method-assign]
    (done,) = [e.payload async for e in trigger.run()]
    assert done["status"] == "success"
    assert 2.5 <= sleeps[0] <= 3.0 * (1 + VideoTaskTrigger.jitter)  # the service's 3 s, not the 1.2 s interval


def test_already_succeeded_task_returns_it_without_deferring(sim, videogen_connection):
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0)
    result = make_sensor(task_id).execute(CONTEXT)
    assert result["id"] == task_id
    assert result["status"] == "succeeded"
    assert result["video_url"].startswith(sim.base_url)


def test_already_failed_task_fails_without_deferring_or_retrying(sim, videogen_connection):
    task_id = sim.add_task(
        final_status="failed",
        queued_seconds=0,
        running_seconds=0,
        error_code=MODERATION_CODE,
        error_message=MODERATION_MESSAGE,
    )
    with pytest.raises(AirflowFailException) as failure:
        make_sensor(task_id).execute(CONTEXT)
    assert str(failure.value) == (
        f"Video task {task_id} ended failed; error code {MODERATION_CODE}; message: {MODERATION_MESSAGE}"
    )
    assert len(sim.requests(target="query")) == 1


@pytest.mark.parametrize("final_status", ["cancelled", "expired"])
def test_already_cancelled_or_expired_task_fails_without_deferring(sim, videogen_connection, final_status):
    task_id = sim.add_task(final_status=final_status, queued_seconds=0, running_seconds=0)
    with pytest.raises(AirflowFailException, match=f"Video task {task_id} ended {final_status}"):
        make_sensor(task_id).execute(CONTEXT)


def test_already_failed_task_with_soft_fail_is_skipped(sim, videogen_connection):
    task_id = sim.add_task(final_status="failed", queued_seconds=0, running_seconds=0)
    with pytest.raises(AirflowSkipException):
        make_sensor(task_id, soft_fail=True).execute(CONTEXT)


def test_transient_fault_during_the_check_still_defers(sim, fast_connection):
    task_id = sim.add_task(final_status="succeeded")
    sim.add_fault("http_error", target="query", status=503)
    with pytest.raises(TaskDeferred):
        make_sensor(task_id).execute(CONTEXT)


def test_unknown_task_fails_before_deferring(sim, videogen_connection):
    with pytest.raises(VideoTaskNotFoundError):
        make_sensor("cgt-does-not-exist").execute(CONTEXT)


# ---- execute_complete ----


def test_success_event_returns_the_task_read_again_with_its_signed_urls(sim, videogen_connection):
    """The trigger's event carries no pre-signed URL: the worker reads the task once more for it."""
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0)
    sim.clear_requests()
    payload = event("success", video_task_id=task_id, task={**event("success")["task"], "id": task_id})
    result = make_sensor(task_id).execute_complete(CONTEXT, event=payload)
    assert result["id"] == task_id
    assert "X-Signature=" in result["video_url"] and result["video_url"].startswith(sim.base_url)
    assert len(sim.requests(target="query")) == 1


@pytest.mark.parametrize("include_urls", [True, False])
def test_the_return_value_holds_the_signed_file_urls_only_with_include_urls(sim, videogen_connection, include_urls):
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0, return_last_frame=True)
    success = event("success", video_task_id=task_id, task={**event("success")["task"], "id": task_id})
    # Both ways a wait ends on the worker: the task found final before deferring, and the trigger's event.
    found_final = make_sensor(task_id, include_urls=include_urls).execute(CONTEXT)
    resumed = make_sensor(task_id, include_urls=include_urls).execute_complete(CONTEXT, event=success)
    for result in (found_final, resumed):
        assert (result["id"], result["status"]) == (task_id, "succeeded")
        if include_urls:
            assert "X-Signature=" in result["video_url"] and "X-Signature=" in result["last_frame_url"]
        else:
            assert result["video_url"] is None and result["last_frame_url"] is None
            assert "/_files/" not in json.dumps(result)  # nor in the raw answer, which holds them too


def test_success_event_for_a_task_no_longer_succeeded_is_a_clear_error(sim, videogen_connection):
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0)
    sim.delete_task(task_id)
    with pytest.raises(VideoTaskNotFoundError):
        make_sensor(task_id).execute_complete(CONTEXT, event=event("success", video_task_id=task_id))


@pytest.mark.parametrize("final_status", ["failed", "cancelled", "expired"])
def test_failed_event_fails_without_retry_naming_status_code_and_message(final_status):
    with pytest.raises(AirflowFailException) as failure:
        make_sensor().execute_complete(CONTEXT, event=failed_event(final_status))
    assert str(failure.value) == (
        f"Video task {TASK_ID} ended {final_status}; error code {MODERATION_CODE}; message: {MODERATION_MESSAGE}"
    )


def test_timeout_event_raises_sensor_timeout():
    with pytest.raises(AirflowSensorTimeout, match="timeout message"):
        make_sensor().execute_complete(CONTEXT, event=event("timeout"))


def test_timeout_event_with_soft_fail_skips():
    sensor = make_sensor(soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": event("timeout")}, CONTEXT)


def test_airflow_deferral_timeout_surfaces_as_sensor_timeout():
    next_kwargs = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(AirflowSensorTimeout):
        make_sensor().resume_execution(TRIGGER_FAIL_REPR, next_kwargs, CONTEXT)


def test_error_event_raises_a_videogen_error_with_the_api_error():
    payload = event("error", message="Stopped waiting: refused key", error_code="AuthenticationError")
    with pytest.raises(VideoGenError, match="refused key") as error:
        make_sensor().execute_complete(CONTEXT, event=payload)
    assert not isinstance(error.value, AirflowFailException)  # the task's retries apply
    assert error.value.api_code == "AuthenticationError"
    assert error.value.video_task_id == TASK_ID


def test_missing_event_is_a_clear_error():
    with pytest.raises(VideoGenError, match="without a trigger event"):
        make_sensor().execute_complete(CONTEXT, event=None)


@pytest.mark.parametrize(
    "payload",
    [{"status": "done", "message": "?"}, {"message": "no status"}, "success", ["success"]],
    ids=["unknown-status", "no-status", "string", "list"],
)
def test_unknown_event_is_a_clear_error(payload):
    with pytest.raises(VideoGenError, match="does not understand"):
        make_sensor().execute_complete(CONTEXT, event=payload)


def test_success_event_without_the_task_is_a_clear_error():
    with pytest.raises(VideoGenError, match="without the task"):
        make_sensor().execute_complete(CONTEXT, event=event("success", task=None))


def test_execute_complete_logs_the_key_facts_on_the_worker(caplog, monkeypatch, sim, videogen_connection):
    logger = logging.getLogger("test.video_task_sensor")
    monkeypatch.setattr(VideoTaskSensor, "log", property(lambda self: logger))
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0)
    sensor = make_sensor(task_id)
    started = time.time() - 95
    with caplog.at_level(logging.INFO, logger="test.video_task_sensor"):
        sensor.execute_complete(CONTEXT, event=event("success", video_task_id=task_id), wait_started_at=started)
    (record,) = caplog.records
    line = record.getMessage()
    assert line.startswith(f"Video task {task_id}: wait ended with success; task status succeeded; waited 9")
    assert "video URL host 127.0.0.1" in line
    assert "X-Signature" not in line  # the signed part of the URL is never logged


# ---- poke and reschedule modes ----


def test_poke_returns_false_while_the_task_runs(sim, videogen_connection):
    task_id = sim.add_task(final_status="succeeded")
    sim.set_status(task_id, "running")
    assert make_sensor(task_id, deferrable=False).poke(CONTEXT) is False


def test_poke_mode_waits_until_success_and_returns_the_task(sim, videogen_connection):
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0.05, running_seconds=0.1)
    sensor = make_sensor(task_id, deferrable=False, poke_interval=0.05, timeout=30)
    result = sensor.execute(CONTEXT)
    assert result["status"] == "succeeded"
    assert len(sim.requests(target="query")) >= 2


def test_poke_mode_failed_task_fails_without_retry(sim, videogen_connection):
    task_id = sim.add_task(final_status="expired", queued_seconds=0, running_seconds=0)
    with pytest.raises(AirflowFailException, match="ended expired"):
        make_sensor(task_id, deferrable=False).execute(CONTEXT)


def test_poke_mode_times_out_as_a_sensor_timeout(sim, videogen_connection):
    task_id = sim.add_task(final_status="succeeded")
    sim.set_status(task_id, "running")
    with pytest.raises(AirflowSensorTimeout):
        make_sensor(task_id, deferrable=False, poke_interval=0.01, timeout=0).execute(CONTEXT)


def test_poke_mode_timeout_with_soft_fail_skips(sim, videogen_connection):
    task_id = sim.add_task(final_status="succeeded")
    sim.set_status(task_id, "running")
    with pytest.raises(AirflowSkipException):
        make_sensor(task_id, deferrable=False, poke_interval=0.01, timeout=0, soft_fail=True).execute(CONTEXT)


class FirstTryTI:
    """The bit of the task instance that reschedule mode reads: when the first try started."""

    def __init__(self, first_try: datetime) -> None:
        self.first_try = first_try

    def get_first_reschedule_date(self, context: Any) -> datetime:
        return self.first_try


def test_reschedule_mode_frees_the_worker_slot_while_the_task_runs(sim, videogen_connection):
    task_id = sim.add_task(final_status="succeeded")
    sim.set_status(task_id, "running")
    sensor = make_sensor(task_id, deferrable=False, mode="reschedule", poke_interval=30, timeout=3600)
    with pytest.raises(AirflowRescheduleException):
        sensor.execute({"ti": FirstTryTI(datetime.now(timezone.utc))})


def test_reschedule_mode_counts_the_wait_from_the_first_try(sim, videogen_connection, caplog, monkeypatch):
    logger = logging.getLogger("test.video_task_sensor")
    monkeypatch.setattr(VideoTaskSensor, "log", property(lambda self: logger))
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0)
    sensor = make_sensor(task_id, deferrable=False, mode="reschedule", poke_interval=30, timeout=3600)
    first_try = datetime.now(timezone.utc) - timedelta(minutes=5)
    with caplog.at_level(logging.INFO, logger="test.video_task_sensor"):
        sensor.execute({"ti": FirstTryTI(first_try)})
    expected = f"Video task {task_id}: wait ended with success; task status succeeded; waited 5 min"
    assert any(r.getMessage().startswith(expected) for r in caplog.records)


def test_a_default_timeout_out_of_range_names_the_airflow_setting(monkeypatch):
    monkeypatch.setenv("AIRFLOW__SENSORS__DEFAULT_TIMEOUT", "1e13")
    with pytest.raises(ValueError, match=r"^\[sensors\] default_timeout must be"):
        make_sensor()
