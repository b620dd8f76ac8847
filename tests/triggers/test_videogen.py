"""``VideoTaskTrigger``: the poll loop stepped deterministically with a fake clock and a fake hook.

The trigger's only sleep and clock (``_sleep`` and ``_now``) are replaced by :class:`FakeClock`, so no
test really waits: a sleep advances the fake clock and either returns at once or, for tests that
step the loop, parks until the test lets it go. A few tests at the end use the real hook against
the simulator (still with the fake sleep).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.hooks.videogen import PollAnswer, VideoGenConnectionSettings
from airflow_provider_videogen.shared_polls import SharedPolls
from airflow_provider_videogen.triggers import videogen as trigger_module
from airflow_provider_videogen.triggers.videogen import EVENT_STATUSES, VideoTaskTrigger
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus
from tests.hooks.test_create_cancel import (
    CANCEL_STYLES,
    assert_the_finished_task_was_left_alone,
    task_finishing_while_its_cancel_waits,
)

TASK_ID = "cgt-20250331175019-68d9t"
START = 1_700_000_000.0
CLASSPATH = "airflow_provider_videogen.triggers.videogen.VideoTaskTrigger"
API_KEY = "fake-hook-key-5b1e93"  # the fake hook's key; the simulator tests use the simulator's own


def video_task(status: str, **fields: Any) -> VideoTask:
    return VideoTask(id=TASK_ID, status=VideoTaskStatus(status), raw_status=status, **fields)


RUNNING = video_task("running")
QUEUED = video_task("queued")
SUCCEEDED = video_task("succeeded", video_url="https://cdn.example.com/v.mp4?sig=abc", model="seedance")


class FakeClock:
    """The trigger's clock and sleep. A sleep advances the clock; when ``gated`` it also parks until released."""

    def __init__(self, gated: bool = False) -> None:
        self.now = START
        self.sleeps: list[float] = []
        self.gated = gated
        self._parked: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
        self._current: asyncio.Future[None] | None = None

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if not self.gated:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        await self._parked.put(wake)
        await wake

    async def until_asleep(self, pending: asyncio.Task[Any]) -> bool:
        """Wait until the trigger sleeps again (True) or ``pending`` finishes (False)."""
        getter = asyncio.ensure_future(self._parked.get())
        done, _ = await asyncio.wait({getter, pending}, return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            return False
        self._current = getter.result()
        return True

    def wake(self) -> None:
        assert self._current is not None
        self._current.set_result(None)
        self._current = None


class FakeHook:
    """Stands in for ``VideoGenHook``: answers polls from a script whose last entry repeats."""

    instances: list[FakeHook] = []
    script: list[VideoTask | BaseException] = []
    settings_error: BaseException | None = None
    poll_hint: float | None = None

    def __init__(self, videogen_conn_id: str, *, retry_policy: Any = None) -> None:
        self.videogen_conn_id = videogen_conn_id
        self.retry_policy = retry_policy
        self.polled: list[str] = []
        self.settings_calls = 0
        self.closed = False
        self.script = list(type(self).script)
        FakeHook.instances.append(self)

    async def aget_settings(self) -> VideoGenConnectionSettings:
        self.settings_calls += 1
        if self.settings_error is not None:
            raise self.settings_error
        return VideoGenConnectionSettings(conn_id=self.videogen_conn_id, base_url="http://sim", api_key=API_KEY)

    async def aget_task(self, video_task_id: str) -> VideoTask:
        assert not self.closed
        self.polled.append(video_task_id)
        outcome = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def apoll_task(self, video_task_id: str, *, gather: float = 0.0) -> VideoTask:
        return await self.aget_task(video_task_id)

    async def apoll_answer(self, video_task_id: str, *, gather: float = 0.0) -> PollAnswer:
        return PollAnswer(await self.aget_task(video_task_id), self.poll_hint)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch):
    """Install the fake hook; set ``hook.script`` before running the trigger; read ``hook.last``."""

    class Controller:
        def __init__(self) -> None:
            FakeHook.instances = []
            FakeHook.script = [RUNNING]
            FakeHook.settings_error = None

        @property
        def script(self) -> list[VideoTask | BaseException]:
            return FakeHook.script

        @script.setter
        def script(self, value: list[VideoTask | BaseException]) -> None:
            FakeHook.script = value

        @property
        def last(self) -> FakeHook:
            return FakeHook.instances[-1]

    monkeypatch.setattr(trigger_module, "VideoGenHook", FakeHook)
    return Controller()


def make_trigger(clock: FakeClock, *, jitter: float = 0.0, **kwargs: Any) -> VideoTaskTrigger:
    kwargs.setdefault("poll_interval", 10.0)
    trigger = VideoTaskTrigger(TASK_ID, **kwargs)
    trigger._sleep = clock.sleep  # type: ignore[method-assign]
    trigger._now = clock.time  # type: ignore[method-assign]
    trigger.jitter = jitter
    return trigger


async def events_of(trigger: VideoTaskTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


async def only_event(trigger: VideoTaskTrigger) -> dict[str, Any]:
    (event,) = await events_of(trigger)
    assert event.payload["status"] in EVENT_STATUSES
    return event.payload


def transient(message: str = "HTTP 503", retry_after: float | None = None) -> VideoGenTransientError:
    return VideoGenTransientError(f"Could not query video task: {message}.", retry_after=retry_after)


# ---- construction and serialization ----


def test_serialize_returns_class_path_and_primitive_kwargs():
    trigger = VideoTaskTrigger(
        TASK_ID,
        videogen_conn_id="vg",
        poll_interval=15,
        end_time=START + 3600,
        max_consecutive_errors=4,
        first_poll_at=START + 30,
    )
    assert trigger.serialize() == (
        CLASSPATH,
        {
            "video_task_id": TASK_ID,
            "videogen_conn_id": "vg",
            "poll_interval": 15.0,
            "end_time": START + 3600,
            "max_consecutive_errors": 4,
            "cancel_on_kill": False,
            "first_poll_at": START + 30,
        },
    )


def test_defaults():
    assert VideoTaskTrigger(TASK_ID).serialize()[1] == {
        "video_task_id": TASK_ID,
        "videogen_conn_id": "videogen_default",
        "poll_interval": None,  # the connection's style's advice, read when the trigger runs
        "end_time": None,
        "max_consecutive_errors": 8,
        "cancel_on_kill": False,
        "first_poll_at": None,  # one interval after the caller's own look at the task
    }


def airflow_round_trip(trigger: VideoTaskTrigger) -> VideoTaskTrigger:
    """Store and reload a trigger the way a deferring task, the API server and the triggerer do."""
    from airflow.models.trigger import Trigger

    try:
        from airflow.utils.module_loading import import_string
    except ImportError:  # pragma: no cover - moved in later versions
        from airflow._shared.module_loading import import_string
    try:
        from airflow.serialization.decoders import smart_decode_trigger_kwargs
    except ImportError:  # Airflow 3.1
        from airflow.serialization.serialized_objects import smart_decode_trigger_kwargs

    classpath, kwargs = trigger.serialize()
    try:  # Airflow 3.2+: the task runner encodes trigger kwargs with serde
        from airflow.sdk.serde import serialize

        encoded = serialize(kwargs)
    except ImportError:  # Airflow 3.1: with BaseSerialization
        from airflow.serialization.serialized_objects import BaseSerialization

        encoded = BaseSerialization.serialize(kwargs)
    stored = json.dumps(encoded)  # what the API server writes to the trigger table
    loaded = {k: smart_decode_trigger_kwargs(v) for k, v in Trigger._decrypt_kwargs(stored).items()}
    return import_string(classpath)(**loaded)


@pytest.mark.parametrize(("end_time", "first_poll_at"), [(None, None), (START + 600.5, START + 3.25)])
def test_round_trip_through_airflow_trigger_storage_rebuilds_an_equal_trigger(end_time, first_poll_at):
    trigger = VideoTaskTrigger(
        TASK_ID, videogen_conn_id="vg", poll_interval=2.5, end_time=end_time, first_poll_at=first_poll_at
    )
    rebuilt = airflow_round_trip(trigger)
    assert type(rebuilt) is VideoTaskTrigger
    assert rebuilt.serialize() == trigger.serialize()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"poll_interval": 0},
        {"poll_interval": -1},
        {"poll_interval": float("nan")},
        {"poll_interval": "10"},
        {"end_time": float("inf")},
        {"max_consecutive_errors": 0},
        {"max_consecutive_errors": 2.5},
    ],
)
def test_invalid_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        VideoTaskTrigger(TASK_ID, **kwargs)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("poll_interval", True),
        ("poll_interval", 1e300),
        ("end_time", True),
        ("end_time", 1e300),
        ("end_time", -1.0),
        ("end_time", "1767225600"),
        ("max_consecutive_errors", True),
        ("first_poll_at", float("nan")),
        ("first_poll_at", float("inf")),
        ("first_poll_at", True),
    ],
)
def test_a_number_argument_that_is_not_finite_in_range_and_a_number_is_refused_naming_it(name, value):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        VideoTaskTrigger(TASK_ID, **{name: value})


async def test_serialized_kwargs_and_every_event_never_contain_the_api_key(hook):
    auth = VideoGenAuthError("The service refused the API key of connection 'videogen_default'.", http_status=401)
    leaky = RuntimeError(f"boom with Bearer {API_KEY}")
    outcomes: list[VideoTask | BaseException] = [SUCCEEDED, video_task("failed"), auth, leaky]
    payloads = []
    for outcome in outcomes:
        hook.script = [outcome]
        payloads.append(await only_event(make_trigger(FakeClock())))
    hook.script = [RUNNING]
    payloads.append(await only_event(make_trigger(FakeClock(), end_time=START + 30)))
    assert {p["status"] for p in payloads} == set(EVENT_STATUSES)
    assert API_KEY not in json.dumps(payloads)
    assert API_KEY not in json.dumps(VideoTaskTrigger(TASK_ID).serialize())


# ---- waiting ----


async def test_keeps_polling_while_the_task_is_running(hook):
    hook.script = [QUEUED, RUNNING, RUNNING]
    clock = FakeClock(gated=True)
    pending = asyncio.create_task(anext(make_trigger(clock).run()))
    assert await clock.until_asleep(pending)  # the first wait, before any poll
    for _ in range(3):
        clock.wake()
        assert await clock.until_asleep(pending)
    assert hook.last.polled == [TASK_ID] * 3
    assert not pending.done()
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending


async def test_first_poll_waits_one_interval_because_the_caller_just_checked(hook):
    hook.script = [SUCCEEDED]
    clock = FakeClock()
    await only_event(make_trigger(clock, poll_interval=7.0))
    assert clock.sleeps == [7.0]


async def test_first_poll_comes_at_the_callers_first_poll_time_when_later_than_one_interval(hook):
    hook.script = [SUCCEEDED]
    clock = FakeClock()
    await only_event(make_trigger(clock, poll_interval=1.2, first_poll_at=START + 3.0))  # the service's hint
    assert clock.sleeps == [3.0]


@pytest.mark.parametrize("first_poll_at", [START + 0.5, START - 3600.0])  # sooner; long past (a restart)
async def test_first_poll_waits_at_least_one_interval_whatever_the_first_poll_time(hook, first_poll_at):
    hook.script = [SUCCEEDED]
    clock = FakeClock()
    await only_event(make_trigger(clock, poll_interval=7.0, first_poll_at=first_poll_at))
    assert clock.sleeps == [7.0]


async def test_unrecognised_status_is_not_final(hook):
    hook.script = [video_task("unknown"), video_task("unknown"), SUCCEEDED]
    payload = await only_event(make_trigger(FakeClock()))
    assert payload["status"] == "success"
    assert len(hook.last.polled) == 3


async def test_success_yields_one_event_with_the_task_and_returns(hook):
    hook.script = [QUEUED, RUNNING, SUCCEEDED]
    events = await events_of(make_trigger(FakeClock()))
    assert [e.payload for e in events] == [
        {
            "status": "success",
            "video_task_id": TASK_ID,
            "task": {**SUCCEEDED.to_dict(), "video_url": "https://cdn.example.com/v.mp4?…"},
            "message": f"Video task {TASK_ID} succeeded.",
            "error_code": None,
            "error_message": None,
        }
    ]


async def test_the_event_carries_no_signed_query_and_no_raw_answer(hook):
    """Airflow logs every trigger event: a pre-signed URL there is a credential for the video."""
    signed = VideoTask(
        id=TASK_ID,
        status=VideoTaskStatus.SUCCEEDED,
        video_url="https://user:pw@cdn.example.com:8443/v.mp4?X-Signature=s3cr3t",
        last_frame_url="https://cdn.example.com/f.png?X-Signature=s3cr3t",
        raw={"content": {"video_url": "https://cdn.example.com/v.mp4?X-Signature=s3cr3t"}, "pad": "x" * 100_000},
    )
    hook.script = [signed]
    (event,) = await events_of(make_trigger(FakeClock()))
    text = json.dumps(event.payload)
    assert "s3cr3t" not in text and "pw@" not in text
    assert event.payload["task"]["video_url"] == "https://cdn.example.com:8443/v.mp4?…"
    assert event.payload["task"]["last_frame_url"] == "https://cdn.example.com/f.png?…"
    assert event.payload["task"]["raw"] == {}
    assert len(text) < 2_000


@pytest.mark.parametrize("status", ["failed", "cancelled", "expired"])
async def test_remote_failure_states_yield_failed_with_the_api_error(hook, status):
    task = video_task(
        status,
        error_code="OutputVideoSensitiveContentDetected",
        error_message="The output video may contain sensitive information.",
    )
    hook.script = [RUNNING, task]
    payload = await only_event(make_trigger(FakeClock()))
    assert payload["status"] == "failed"
    assert payload["task"] == task.to_dict()
    assert payload["error_code"] == "OutputVideoSensitiveContentDetected"
    assert payload["error_message"] == "The output video may contain sensitive information."
    assert payload["message"] == (
        f"Video task {TASK_ID} ended {status}; error code OutputVideoSensitiveContentDetected; "
        "message: The output video may contain sensitive information."
    )


# ---- transient and permanent errors ----


async def test_transient_errors_are_survived_with_exponential_backoff(hook):
    hook.script = [transient(), transient(), transient(), SUCCEEDED]
    clock = FakeClock()
    payload = await only_event(make_trigger(clock, poll_interval=10.0))
    assert payload["status"] == "success"
    assert clock.sleeps == [10.0, 10.0, 20.0, 40.0]


async def test_backoff_is_capped(hook):
    hook.script = [transient()] * 7 + [SUCCEEDED]
    clock = FakeClock()
    trigger = make_trigger(clock, poll_interval=10.0)
    trigger.max_backoff = 50.0
    await only_event(trigger)
    assert clock.sleeps == [10.0, 10.0, 20.0, 40.0, 50.0, 50.0, 50.0, 50.0]


async def test_retry_after_lengthens_the_next_wait(hook):
    hook.script = [transient("HTTP 429", retry_after=45.0), SUCCEEDED]
    clock = FakeClock()
    await only_event(make_trigger(clock, poll_interval=10.0))
    assert clock.sleeps == [10.0, 45.0]


async def test_retry_after_is_capped(hook):
    hook.script = [transient("HTTP 429", retry_after=86_400.0), SUCCEEDED]
    clock = FakeClock()
    await only_event(make_trigger(clock, poll_interval=10.0))
    assert clock.sleeps == [10.0, VideoTaskTrigger.max_retry_after]


@pytest.mark.parametrize("retry_after", [math.nan, math.inf, -1.0])
async def test_a_non_finite_retry_after_is_ignored_by_the_backoff(hook, retry_after):
    hook.script = [transient("HTTP 503", retry_after=retry_after), SUCCEEDED]
    clock = FakeClock()
    await only_event(make_trigger(clock, poll_interval=10.0))
    assert clock.sleeps == [10.0, 10.0]


async def test_a_successful_poll_resets_the_error_count(hook):
    hook.script = [transient(), transient(), RUNNING, transient(), transient(), SUCCEEDED]
    clock = FakeClock()
    payload = await only_event(make_trigger(clock, max_consecutive_errors=3))
    assert payload["status"] == "success"
    assert clock.sleeps == [10.0, 10.0, 20.0, 10.0, 10.0, 20.0]


async def test_error_budget_exhausted_yields_error_with_the_last_error(hook):
    hook.script = [RUNNING, transient("HTTP 502"), transient("HTTP 503")]
    payload = await only_event(make_trigger(FakeClock(), max_consecutive_errors=3))
    assert payload["status"] == "error"
    assert payload["task"] == RUNNING.to_dict()
    assert payload["message"] == (
        f"Stopped waiting for video task {TASK_ID!r} after 3 failed polls in a row; "
        "last error: Could not query video task: HTTP 503."
    )
    assert len(hook.last.polled) == 4


@pytest.mark.parametrize(
    "error",
    [
        VideoGenAuthError("refused key", http_status=401, api_code="AuthenticationError", api_message="bad key"),
        VideoGenAuthError("no access", http_status=403, api_code="AccessDenied", api_message="no access"),
        VideoTaskNotFoundError("not found", http_status=404, api_code="ResourceNotFound", api_message="gone"),
        VideoGenAPIError("not a task", http_status=400, api_code="InvalidParameter", api_message="bad"),
    ],
    ids=["401", "403", "not-found", "other-4xx"],
)
async def test_permanent_api_errors_end_the_wait_at_once(hook, error):
    hook.script = [error]
    payload = await only_event(make_trigger(FakeClock()))
    assert payload["status"] == "error"
    assert payload["message"] == f"Stopped waiting for video task {TASK_ID!r}: {error}"
    assert (payload["error_code"], payload["error_message"]) == (error.api_code, error.api_message)
    assert len(hook.last.polled) == 1


async def test_invalid_video_task_id_ends_the_wait_at_once(hook):
    hook.script = [VideoGenConfigurationError("Invalid video task id '../x': it contains '/'.")]
    payload = await only_event(make_trigger(FakeClock()))
    assert payload["status"] == "error"
    assert "Invalid video task id" in payload["message"]


async def test_unexpected_exception_ends_the_wait_with_its_type(hook):
    hook.script = [RUNNING, KeyError("surprise")]
    payload = await only_event(make_trigger(FakeClock()))
    assert payload["status"] == "error"
    assert payload["task"] == RUNNING.to_dict()
    assert payload["message"] == f"Stopped waiting for video task {TASK_ID!r}: KeyError: 'surprise'"


async def test_missing_connection_ends_the_wait_without_polling(hook):
    FakeHook.settings_error = VideoGenConfigurationError("Connection 'videogen_default' has no API key.")
    payload = await only_event(make_trigger(FakeClock()))
    assert payload["status"] == "error"
    assert payload["task"] is None
    assert "has no API key" in payload["message"]
    assert hook.last.polled == []


# ---- the deadline ----


async def test_deadline_yields_timeout_with_the_last_task(hook):
    hook.script = [RUNNING]
    clock = FakeClock()
    payload = await only_event(make_trigger(clock, end_time=START + 25))
    assert payload == {
        "status": "timeout",
        "video_task_id": TASK_ID,
        "task": RUNNING.to_dict(),
        "message": f"Video task {TASK_ID!r} was still running at the deadline (2023-11-14T22:13:45+00:00); "
        "stopped waiting.",
        "error_code": None,
        "error_message": None,
    }


async def test_last_wait_is_cut_to_end_at_the_deadline_for_one_last_poll(hook):
    hook.script = [RUNNING]
    clock = FakeClock()
    await only_event(make_trigger(clock, end_time=START + 25))
    assert clock.sleeps == [10.0, 10.0, 5.0]
    assert clock.now == START + 25
    assert len(hook.last.polled) == 3


async def test_final_state_read_at_the_deadline_wins_over_the_timeout(hook):
    hook.script = [RUNNING, RUNNING, SUCCEEDED]
    payload = await only_event(make_trigger(FakeClock(), end_time=START + 25))
    assert payload["status"] == "success"


async def test_deadline_already_past_polls_once_then_times_out(hook):
    hook.script = [RUNNING]
    clock = FakeClock()
    payload = await only_event(make_trigger(clock, end_time=START - 60))
    assert payload["status"] == "timeout"
    assert clock.sleeps == [0.0]
    assert len(hook.last.polled) == 1


async def test_timeout_while_polls_fail_names_the_last_error(hook):
    hook.script = [transient("HTTP 502")]
    payload = await only_event(make_trigger(FakeClock(), end_time=START + 15))
    assert payload["status"] == "timeout"
    assert payload["task"] is None
    assert "never read successfully" in payload["message"]
    assert payload["message"].endswith("The last poll failed: Could not query video task: HTTP 502.")


# ---- efficiency and resources ----


async def test_jitter_spreads_each_wait_by_up_to_ten_percent(hook):
    hook.script = [RUNNING] * 50 + [SUCCEEDED]
    clock = FakeClock()
    await only_event(make_trigger(clock, jitter=VideoTaskTrigger.jitter, poll_interval=10.0))
    assert all(10.0 <= s <= 11.0 for s in clock.sleeps)
    assert len(set(clock.sleeps)) > 1


async def test_hook_makes_one_attempt_per_poll_and_resolves_the_connection_once(hook):
    hook.script = [QUEUED, RUNNING, RUNNING, SUCCEEDED]
    await only_event(make_trigger(FakeClock(), videogen_conn_id="vg"))
    (fake,) = FakeHook.instances
    assert fake.videogen_conn_id == "vg"
    assert fake.retry_policy.max_attempts == 1
    assert fake.settings_calls == 1
    assert len(fake.polled) == 4


async def test_hook_is_closed_before_the_event_is_yielded(hook):
    hook.script = [SUCCEEDED]
    run: AsyncIterator[TriggerEvent] = make_trigger(FakeClock()).run()
    await anext(run)
    assert hook.last.closed


async def test_hook_is_closed_when_the_wait_is_cancelled(hook):
    clock = FakeClock(gated=True)
    pending = asyncio.create_task(anext(make_trigger(clock).run()))
    assert await clock.until_asleep(pending)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert hook.last.closed


async def test_logs_status_changes_not_polls_at_info(hook, caplog):
    hook.script = [QUEUED] * 5 + [RUNNING] * 20 + [SUCCEEDED]
    trigger = make_trigger(FakeClock())
    trigger._log = logging.getLogger("test.video_task_trigger")
    with caplog.at_level(logging.INFO, logger="test.video_task_trigger"):
        await only_event(trigger)
    assert [r.getMessage() for r in caplog.records] == [
        f"Waiting for video task {TASK_ID} at http://sim (poll every 10.0 s).",
        f"Video task {TASK_ID} is queued.",
        f"Video task {TASK_ID} is running.",
        f"Video task {TASK_ID} succeeded.",
    ]


async def test_logs_the_progress_percentage_when_it_changes_not_every_poll(hook, caplog):
    at = [video_task("running", progress=p) for p in (10, 10, 10, 45, 45, 90)]
    hook.script = [QUEUED] * 2 + at + [SUCCEEDED]
    trigger = make_trigger(FakeClock())
    trigger._log = logging.getLogger("test.video_task_trigger")
    with caplog.at_level(logging.INFO, logger="test.video_task_trigger"):
        await only_event(trigger)
    assert [r.getMessage() for r in caplog.records][1:-1] == [
        f"Video task {TASK_ID} is queued.",
        f"Video task {TASK_ID} is running (10%).",
        f"Video task {TASK_ID} is running (45%).",
        f"Video task {TASK_ID} is running (90%).",
    ]


async def test_on_kill_leaves_the_video_task_alone(hook):
    trigger = make_trigger(FakeClock())
    await trigger.on_kill()
    assert FakeHook.instances == []


# ---- the real hook against the simulator (fake sleep, real HTTP) ----


@pytest.fixture
def real_hook_trigger(sim, videogen_connection):
    def build(video_task_id: str, **kwargs: Any) -> tuple[VideoTaskTrigger, FakeClock]:
        clock = FakeClock()
        trigger = VideoTaskTrigger(video_task_id, poll_interval=0.5, **kwargs)
        trigger._sleep = clock.sleep  # type: ignore[method-assign]
        return trigger, clock

    return build


@pytest.mark.parametrize("target", ["list", "query"])  # shared polls (the default) or each trigger on its own
async def test_simulator_success_after_surviving_a_rate_limit_with_retry_after(
    sim, real_hook_trigger, videogen_connection, target
):
    videogen_connection(coalesce_polls=target == "list")
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0)
    sim.add_fault("http_error", target=target, status=429, retry_after="3", times=2)
    trigger, clock = real_hook_trigger(task_id)
    payload = await only_event(trigger)
    assert payload["status"] == "success"
    assert payload["task"]["video_url"]
    assert clock.sleeps[1] >= 3 and clock.sleeps[2] >= 3
    assert len(sim.requests(target=target)) == 3
    assert sim.api_key not in json.dumps(payload)


async def test_simulator_failed_gateway_task_carries_the_api_error(sim, real_hook_trigger, videogen_connection):
    videogen_connection(conn_id="vg_video", api_style="video_generations")
    task_id = sim.add_task(
        style="video_generations",
        final_status="failed",
        queued_seconds=0,
        running_seconds=0,
        error_code="OutputVideoSensitiveContentDetected",
        error_message="The output video may contain sensitive information.",
    )
    trigger, _ = real_hook_trigger(task_id, videogen_conn_id="vg_video")
    payload = await only_event(trigger)
    assert payload["status"] == "failed"
    assert payload["error_code"] == "OutputVideoSensitiveContentDetected"
    assert "sensitive information" in payload["message"]


async def test_simulator_refused_key_ends_the_wait_at_once(sim, real_hook_trigger, videogen_connection):
    videogen_connection(conn_id="vg_bad_key", api_key="wrong-key")
    task_id = sim.add_task(final_status="succeeded")
    trigger, _ = real_hook_trigger(task_id, videogen_conn_id="vg_bad_key")
    payload = await only_event(trigger)
    assert payload["status"] == "error"
    assert "refused the API key" in payload["message"]
    assert len(sim.requests(target="list")) == 1 and len(sim.requests()) == 1


# ---- on_kill with cancel_on_kill (set by the operator that created the task) ----


async def test_on_kill_with_cancel_on_kill_cancels_a_queued_task(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    await VideoTaskTrigger(task_id, cancel_on_kill=True).on_kill()
    assert sim.get_task(task_id)["status"] == "cancelled"


@pytest.mark.parametrize("status", ["running", "succeeded"])
async def test_on_kill_with_cancel_on_kill_leaves_a_task_that_is_not_queued(status, sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    sim.set_status(task_id, status)
    await VideoTaskTrigger(task_id, cancel_on_kill=True).on_kill()
    assert sim.get_task(task_id)["status"] == status
    assert sim.requests(method="DELETE") == []


@pytest.mark.parametrize("api_style", CANCEL_STYLES)
async def test_on_kill_does_not_send_a_cancel_again_after_a_429_to_a_task_that_finished_meanwhile(
    api_style, sim, videogen_connection
):
    conn_id, task_id = task_finishing_while_its_cancel_waits(sim, videogen_connection, api_style)
    await VideoTaskTrigger(task_id, videogen_conn_id=conn_id, cancel_on_kill=True).on_kill()
    assert_the_finished_task_was_left_alone(sim, task_id)


async def test_on_kill_without_cancel_on_kill_sends_nothing(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    await VideoTaskTrigger(task_id).on_kill()
    assert sim.requests() == []
    assert sim.get_task(task_id)["status"] == "queued"


async def test_on_kill_on_video_generations_sends_nothing_and_does_not_raise(sim, videogen_connection):
    videogen_connection(conn_id="vg_video", api_style="video_generations")
    task_id = sim.add_task(style="video_generations", queued_seconds=600)
    await VideoTaskTrigger(task_id, videogen_conn_id="vg_video", cancel_on_kill=True).on_kill()
    assert sim.requests() == []


def test_cancel_on_kill_survives_serialization():
    trigger = VideoTaskTrigger(TASK_ID, cancel_on_kill=True)
    assert airflow_round_trip(trigger).cancel_on_kill is True


@pytest.mark.parametrize("target", ["list", "query"])
async def test_simulator_slow_answers_near_the_deadline_end_the_wait_within_one_request_timeout_of_it(
    sim, videogen_connection, target
):
    request_timeout = 2.0
    videogen_connection(coalesce_polls=target == "list", timeout=request_timeout)
    task_id = sim.add_task(queued_seconds=600)
    sim.add_fault("slow", target=target, delay=5, times=0)  # every poll's answer comes after the request timeout
    end_time = time.time() + 1.5
    trigger = VideoTaskTrigger(task_id, poll_interval=1.0, end_time=end_time)  # real clock and sleep
    trigger.jitter = 0.0  # a poll half a second before the deadline, then the last one at it
    payloads = [event.payload for event in await events_of(trigger)]
    ended_at = time.time()
    assert [p["status"] for p in payloads] == ["timeout"]
    assert ended_at <= end_time + request_timeout + 0.5  # 0.5 s for a busy machine; unbounded, 2 timeouts later
    assert sim.api_key not in json.dumps(payloads)
    # A shared request given up on goes on for any other sharer until its own timeout: let it end here.
    for polls in list(SharedPolls._by_loop.get(asyncio.get_running_loop(), {}).values()):
        while polls._sending:
            await asyncio.gather(*polls._sending, return_exceptions=True)


@pytest.mark.parametrize("target", ["list", "query"])
@pytest.mark.parametrize("body", ["null", "[]"])
async def test_simulator_one_stray_json_answer_does_not_end_the_wait(
    sim, real_hook_trigger, videogen_connection, body, target
):
    videogen_connection(coalesce_polls=target == "list")
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0)
    sim.add_fault("http_error", target=target, status=200, body=body, content_type="application/json")
    trigger, _ = real_hook_trigger(task_id)
    payload = await only_event(trigger)
    assert payload["status"] == "success"
    assert len(sim.requests(target=target)) == 2 and len(sim.requests()) == 2
