"""One wait of a ``VideoTaskTrigger``: the state it keeps between polls, and the loop that polls.

The trigger is what Airflow serializes and runs; this is what one run of it keeps while it polls:
the last task read, the failed polls in a row, the wait schedule. It is slotted (a triggerer holds
thousands of them at once), and reads the trigger's parameters once, when the wait starts.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, Protocol

from airflow_provider_videogen.events import event_payload, final_event_payload
from airflow_provider_videogen.exceptions import VideoGenError, VideoGenTransientError
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

if TYPE_CHECKING:
    from airflow_provider_videogen.client import PollAnswer
    from airflow_provider_videogen.hooks.videogen import VideoGenHook
    from airflow_provider_videogen.retry import RetryPolicy
    from airflow_provider_videogen.settings import VideoGenConnectionSettings

__all__ = ["PollLoop", "Waiter", "error_event", "format_time"]

# Requests one shared poll may make one after another, each within the request timeout: a list call,
# its shorter retries while a host refuses it (a safe URL length, then 8 halvings of 500 ids), the
# other ids' calls and the task's own GET. A poll begun further than that from the time the wait
# gives up cannot outlast it, so only nearer polls are bounded (a bound costs a task and a timer).
_POLL_REQUESTS_AT_MOST: Final = 12


class Waiter(Protocol):
    """What the loop reads of the trigger it waits for (a ``VideoTaskTrigger``: it sits above this module)."""

    video_task_id: str
    end_time: float | None
    first_poll_at: float | None
    max_consecutive_errors: int
    jitter: float

    @property
    def log(self) -> Any:
        """Where the wait says what happens (Airflow's logger of the trigger)."""
        ...

    def _now(self) -> float: ...

    async def _sleep(self, seconds: float) -> None: ...


class PollLoop:
    """Poll one video task on the trigger's schedule until it is final, the deadline passes or the wait fails.

    :param trigger: the trigger waiting (its parameters, clock, sleep and log).
    :param hook: polls the task (one attempt per poll: this loop waits between polls itself).
    :param settings: the connection, resolved once for the whole wait.
    :param give_up_at: when a poll still unanswered is given up (epoch seconds), or ``None``.
    :param interval: seconds between two polls (the one asked for, else the style's).
    :param schedule: the wait schedule, with the trigger's caps.
    """

    __slots__ = (
        "failures",
        "give_up_at",
        "hook",
        "interval",
        "last_error",
        "last_progress",
        "last_status",
        "last_task",
        "schedule",
        "settings",
        "trigger",
        "video_task_id",
    )

    def __init__(
        self,
        trigger: Waiter,
        hook: VideoGenHook,
        settings: VideoGenConnectionSettings,
        give_up_at: float | None,
        interval: float,
        schedule: RetryPolicy,
    ) -> None:
        self.trigger = trigger
        self.hook = hook
        self.settings = settings
        self.give_up_at = give_up_at
        self.video_task_id = trigger.video_task_id
        # Both fixed for the wait.
        self.interval = interval
        self.schedule = schedule
        self.last_task: VideoTask | None = None
        self.last_status: VideoTaskStatus | None = None
        self.last_progress: int | None = None
        self.failures = 0
        self.last_error: BaseException | None = None

    async def run(self) -> dict[str, Any]:
        """Poll on the schedule until the task is final, the deadline passes or the wait fails; return the event."""
        trigger, end_time = self.trigger, self.trigger.end_time
        # The caller has just looked at the task (the sensor before deferring, an operator after
        # creating it), so the first poll waits one interval too, or until the time the service asked for.
        delay = self._first_poll()
        while True:
            # Set when this wait ends at the deadline: the poll after it is the last one. (Deciding it
            # here, not by reading the clock after the poll, means a timer firing a hair early cannot
            # cause an extra poll a few milliseconds later.)
            final_deadline: float | None = None
            if end_time is not None:
                remaining = end_time - trigger._now()
                if remaining <= delay:
                    delay, final_deadline = max(remaining, 0.0), end_time
            await trigger._sleep(delay)
            # Shared with the loop's other polls of this connection that come within half the jitter's
            # spread (at the deadline: none later), so that sharing delays a poll by that much at most.
            gather = 0.0 if final_deadline is not None else self.interval * trigger.jitter / 2
            after = await self._poll_once(gather)
            if isinstance(after, dict):
                return after
            delay = after
            if final_deadline is not None:
                return self._timeout_event(final_deadline, self.last_task, self.last_error)

    async def _poll_once(self, gather: float) -> float | dict[str, Any]:
        """Poll once; return the seconds to the next poll, or the event that ends the wait."""
        try:
            task, poll_hint = await self._poll(gather)
        except VideoGenTransientError as error:
            self.failures += 1
            self.last_error = error
            return self._after_failed_poll(error)
        except Exception as error:
            # Refused key, unknown task, bad id or answer, missing connection: polling again cannot help.
            message = f"Stopped waiting for video task {self.video_task_id!r}: {_describe_error(error)}"
            return error_event(self.video_task_id, self.last_task, self.settings.redact(message), error)
        self.failures, self.last_error, self.last_task = 0, None, task
        if task.is_terminal:
            return final_event_payload(self.video_task_id, task)
        if (task.status, task.progress) != (self.last_status, self.last_progress):  # log changes, not polls
            self.last_status, self.last_progress = task.status, task.progress
            self._log_progress(task)
        return self.schedule.next_wait(poll_hint=poll_hint, interval=self.interval, jitter=self.trigger.jitter)

    def _after_failed_poll(self, error: VideoGenTransientError) -> float | dict[str, Any]:
        """Return the seconds to the next poll after ``failures`` failed polls in a row, or the ending event."""
        trigger, failures, give_up_at = self.trigger, self.failures, self.give_up_at
        if give_up_at is not None and trigger.end_time is not None and trigger._now() >= give_up_at:
            return self._timeout_event(trigger.end_time, self.last_task, error)  # given up: no poll after it
        if failures >= trigger.max_consecutive_errors:
            return error_event(
                self.video_task_id,
                self.last_task,
                f"Stopped waiting for video task {self.video_task_id!r} after {failures} failed polls "
                f"in a row; last error: {error}",
                error,
            )
        delay = self.schedule.next_wait(
            failures, retry_after=error.retry_after, interval=self.interval, jitter=trigger.jitter
        )
        trigger.log.warning(
            "Poll %d of video task %s failed (%s); polling again in %.1f s.",
            failures,
            self.video_task_id,
            error,
            delay,
        )
        return delay

    def _log_progress(self, task: VideoTask) -> None:
        """Say the task's new status (and progress), once per change, not once per poll."""
        shown = task.status.value if task.status is not VideoTaskStatus.UNKNOWN else repr(task.raw_status)
        done = f" ({task.progress}%)" if task.progress is not None else ""
        self.trigger.log.info("Video task %s is %s%s.", self.video_task_id, shown, done)

    async def _poll(self, gather: float) -> PollAnswer:
        """Poll the task once; near the deadline, give the answer up at ``give_up_at`` (epoch seconds)."""
        poll = self.hook.apoll_answer(self.video_task_id, gather=gather)
        give_up_at = self.give_up_at
        if give_up_at is None:
            return await poll
        left = give_up_at - self.trigger._now()
        if left > gather + _POLL_REQUESTS_AT_MOST * self.settings.timeout:
            return await poll
        try:
            # Cancels only this trigger's share of a shared poll: the request goes on for the others.
            return await asyncio.wait_for(poll, max(left, 0.0))
        except asyncio.TimeoutError:
            raise VideoGenTransientError(
                f"No answer to the poll of video task {self.video_task_id!r} by {format_time(give_up_at)}: a wait "
                "ends within one request timeout of its deadline.",
                video_task_id=self.video_task_id,
            ) from None

    def _first_poll(self) -> float:
        """Seconds before the first poll: one interval, or until ``first_poll_at`` if that is later."""
        first_poll_at = self.trigger.first_poll_at
        hint = None if first_poll_at is None else first_poll_at - self.trigger._now()
        return self.schedule.next_wait(poll_hint=hint, interval=self.interval, jitter=self.trigger.jitter)

    def _timeout_event(self, deadline: float, task: VideoTask | None, error: BaseException | None) -> dict[str, Any]:
        state = f"still {task.status.value}" if task is not None else "never read successfully"
        message = (
            f"Video task {self.video_task_id!r} was {state} at the deadline ({format_time(deadline)}); stopped waiting."
        )
        if error is not None:
            message += f" The last poll failed: {error}"
        return event_payload("timeout", self.video_task_id, message, task)


def error_event(video_task_id: str, task: VideoTask | None, message: str, error: BaseException) -> dict[str, Any]:
    """Return the ``"error"`` event of a wait that cannot go on, with the API's error code and message if any."""
    return event_payload(
        "error",
        video_task_id,
        message,
        task,
        error_code=getattr(error, "api_code", None),
        error_message=getattr(error, "api_message", None),
    )


def _describe_error(error: BaseException) -> str:
    # The provider's own errors are complete sentences; name the type of anything else.
    return str(error) if isinstance(error, VideoGenError) else f"{type(error).__name__}: {error}"


def format_time(epoch_seconds: float) -> str:
    """Return an epoch time as an ISO 8601 UTC time to the second, for messages."""
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).isoformat(timespec="seconds")
