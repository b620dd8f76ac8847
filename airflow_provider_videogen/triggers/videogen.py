"""``VideoTaskTrigger``: wait in Airflow's triggerer until a video task reaches a final state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Final

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_videogen import _arguments

# The event format has its own module; its names stay importable from here.
from airflow_provider_videogen.events import (
    EVENT_STATUSES,
    EventStatus,
    event_payload,
    event_task_dict,
    final_event_payload,
    reread_on_success,
    validate_event,
)
from airflow_provider_videogen.exceptions import VideoGenError, VideoGenNotSupportedError
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.retry import POLL_SCHEDULE
from airflow_provider_videogen.styles.base import ApiStyle
from airflow_provider_videogen.triggers.poll_loop import PollLoop, error_event, format_time

__all__ = [
    "EVENT_STATUSES",
    "EventStatus",
    "VideoTaskTrigger",
    "deferral_timeout",
    "event_payload",
    "event_task_dict",
    "final_event_payload",
    "reread_on_success",
    "validate_event",
]


# The hook makes one attempt per poll: the trigger itself waits between polls (backing off after
# failures and honouring Retry-After). This keeps one place that sleeps, so the error budget counts
# polls rather than hidden retries, and a struggling service is not hit by a burst of quick retries
# from each of thousands of waiting triggers at once.
_ONE_ATTEMPT: Final = RetryPolicy(max_attempts=1)
# Airflow gives on_kill() 30 seconds by default: a few quick retries fit in that.
_KILL_RETRIES: Final = RetryPolicy(max_attempts=3, max_seconds=20.0, initial_wait=0.5, max_wait=5.0)


class VideoTaskTrigger(BaseTrigger):
    """Poll a video task from the triggerer until it reaches a final state, then fire one event.

    Deferring to this trigger frees the worker slot: thousands of video tasks can wait at once in one
    triggerer, which polls them all from one event loop and one shared HTTP session. The triggers of
    one loop waiting on tasks of one connection share their polls (unless the connection's extra
    ``coalesce_polls`` is false): on a style with a batch query one list call per interval answers
    up to its ``batch_query_size`` of them, on the other styles triggers waiting on the same task
    share one poll (:mod:`~airflow_provider_videogen.shared_polls`). Each trigger keeps its own
    schedule and rules.

    The trigger fires exactly one event and returns. Its payload is a ``dict``:

    - ``status``: ``"success"`` (the task succeeded), ``"failed"`` (the task ended ``failed``,
      ``cancelled`` or ``expired``), ``"timeout"`` (``end_time`` passed first) or ``"error"`` (the
      wait could not go on: a permanent error such as a refused API key or an unknown task, or too
      many failed polls in a row).
    - ``video_task_id``: the id waited for.
    - ``task``: the last state read, as :meth:`VideoTask.to_dict()
      <airflow_provider_videogen.video_task.VideoTask.to_dict>` (``None`` if it was never read).
    - ``message``: one line saying what happened, for logs and errors.
    - ``error_code`` and ``error_message``: the API's own error code and message, for ``"failed"``
      (why the generation failed) and ``"error"`` (why the request was refused), else ``None``.

    A transient fault (connection error, timeout, 429, 5xx, unreadable answer) does not end the wait:
    the next poll comes after an exponential backoff (at least the service's ``Retry-After``), and
    only ``max_consecutive_errors`` failed polls in a row end it with ``"error"``. Each poll is a single
    request: the connection's ``max_attempts`` and ``max_retry_seconds`` govern calls made on workers,
    while in the triggerer this backoff between polls takes their place.

    By default this trigger only waits: it never cancels or changes the video task. The operator
    that created the task may pass ``cancel_on_kill=True``: then, on Airflow 3.3+, a user killing the
    deferred task (mark failed, clear...) cancels the video task if it is still queued. A triggerer
    restart or a move to another triggerer never cancels anything (that is ``cleanup()``, not ``on_kill()``).

    :param video_task_id: the id the create call returned.
    :param videogen_conn_id: the ``videogen`` connection to use.
    :param poll_interval: seconds between two polls (a random 0-10% is added to each wait, so that
        triggers started together do not poll in lockstep; a shared poll waits at most half that spread
        for others to join it, or none once it holds a whole page of ids).
        ``None``: the API style's own (its ``default_poll_interval``, listed in the docs' style table).
    :param end_time: deadline as an absolute time in seconds since the epoch (``time.time()``), or
        ``None`` to wait without one. Being absolute, it survives a triggerer restart. The task is
        polled one last time at the deadline, and the wait ends within one request timeout (the
        connection's ``timeout``) of it: a poll still unanswered then is given up.
    :param max_consecutive_errors: failed polls in a row that end the wait with ``"error"``.
    :param cancel_on_kill: cancel the video task while its style can (in one of its
        ``cancellable_statuses``), when a user kills the deferred task (Airflow 3.3+; styles with a
        cancel call only). For the operator that created the task.
    :param first_poll_at: the earliest time of the first poll, in seconds since the epoch: when the
        service's answer to the caller's own look at the task asked for a later next poll (the
        ``/v1/videos`` style's ``openai-poll-after-ms``) than one ``poll_interval`` from now. ``None``:
        one interval from now. Being absolute, it survives a triggerer restart.
    """

    #: Longest wait between two polls after failures, in seconds (unless ``poll_interval`` is longer).
    max_backoff: float = POLL_SCHEDULE.max_wait
    #: Longest ``Retry-After`` (or poll hint) honoured, in seconds.
    max_retry_after: float = POLL_SCHEDULE.max_retry_after
    #: Largest random fraction of a wait added to it.
    jitter: float = 0.1

    def __init__(
        self,
        video_task_id: str,
        videogen_conn_id: str = VideoGenHook.default_conn_name,
        poll_interval: float | None = None,
        end_time: float | None = None,
        max_consecutive_errors: int = 8,
        cancel_on_kill: bool = False,
        first_poll_at: float | None = None,
    ) -> None:
        super().__init__()
        self.video_task_id = video_task_id
        self.videogen_conn_id = videogen_conn_id
        self.poll_interval = None if poll_interval is None else _arguments.seconds("poll_interval", poll_interval)
        self.end_time = None if end_time is None else _arguments.epoch_seconds("end_time", end_time)
        self.max_consecutive_errors = _arguments.whole_number("max_consecutive_errors", max_consecutive_errors)
        self.cancel_on_kill = bool(cancel_on_kill)
        self.first_poll_at = None if first_poll_at is None else _arguments.epoch_seconds("first_poll_at", first_poll_at)
        # The connection's style's advice, known once the connection is read.
        self._style_interval = ApiStyle.default_poll_interval

    @property
    def _interval(self) -> float:
        """Seconds between two polls: the one asked for, else the connection's style's advice."""
        return self.poll_interval if self.poll_interval is not None else self._style_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the keyword arguments that rebuild this trigger (primitives only)."""
        cls = type(self)
        return (
            f"{cls.__module__}.{cls.__qualname__}",
            {
                "video_task_id": self.video_task_id,
                "videogen_conn_id": self.videogen_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "max_consecutive_errors": self.max_consecutive_errors,
                "cancel_on_kill": self.cancel_on_kill,
                "first_poll_at": self.first_poll_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the task is final, the deadline passes or the wait fails; yield one event."""
        hook = VideoGenHook(self.videogen_conn_id, retry_policy=_ONE_ATTEMPT)
        try:
            payload = await self._wait(hook)
        finally:
            # Also runs when the triggerer cancels the wait (deferral timeout, task cleared, shutdown).
            await hook.aclose()
        if payload["status"] == "success":
            self.log.info("%s", payload["message"])
        else:
            self.log.warning("%s", payload["message"])
        # The hook is released before the event is yielded: the triggerer may never resume us after it.
        yield TriggerEvent(payload)

    async def on_kill(self) -> None:
        """Cancel the video task while its style can, when ``cancel_on_kill`` is set (Airflow 3.3+).

        Airflow calls this only when a user acts on the deferred task, never on a triggerer restart.
        Only a task in a status its style may cancel is (its ``cancellable_statuses``), never a
        finished one: the same call would delete a finished task's video. A cancel the service refused
        for now (429) is sent again only once the task, read again, may still be cancelled.
        """
        if not self.cancel_on_kill:
            return
        async with VideoGenHook(self.videogen_conn_id, retry_policy=_KILL_RETRIES) as hook:
            try:
                cancelled = await hook.acancel_task(self.video_task_id)
            except VideoGenNotSupportedError as error:
                self.log.info("Not cancelling video task %s: %s", self.video_task_id, error)
            except VideoGenError as error:
                self.log.warning("Could not cancel video task %s: %s", self.video_task_id, error)
            else:
                if cancelled:
                    self.log.warning("The task was killed: cancelled video task %s.", self.video_task_id)

    # ---- the poll loop ----

    async def _wait(self, hook: VideoGenHook) -> dict[str, Any]:
        try:
            # Resolved once: the hook keeps the settings, so no poll looks the connection up again.
            settings = await hook.aget_settings()
        except Exception as error:
            message = f"Cannot wait for video task {self.video_task_id!r}: {error}"
            return error_event(self.video_task_id, None, message, error)
        self._style_interval = settings.style.default_poll_interval
        self.log.info(
            "Waiting for video task %s at %s (poll every %.1f s%s).",
            self.video_task_id,
            settings.base_url,
            self._interval,
            f", until {format_time(self.end_time)}" if self.end_time is not None else "",
        )
        # The wait ends within one request timeout of its deadline (of its start, if it starts past it):
        # a poll still unanswered then is given up, however many requests it has made or still needs.
        give_up_at = max(self.end_time, self._now()) + settings.timeout if self.end_time is not None else None
        return await PollLoop(self, hook, settings, give_up_at, self._interval, self._schedule()).run()

    def _schedule(self) -> RetryPolicy:
        """Return the wait schedule with this trigger's caps (class attributes a subclass or a test may change)."""
        if (self.max_backoff, self.max_retry_after) == (POLL_SCHEDULE.max_wait, POLL_SCHEDULE.max_retry_after):
            return POLL_SCHEDULE
        return RetryPolicy(max_wait=self.max_backoff, max_retry_after=self.max_retry_after)

    # The only places that read the clock and sleep; tests replace them to step the loop.

    def _now(self) -> float:
        return time.time()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# Airflow's own deferral timeout is a backstop (e.g. when no triggerer is running): it is set this
# much later than the trigger's deadline, on top of one request timeout, so that normally the
# trigger's last poll at the deadline wins and its "timeout" event names the task's last status.
_DEFERRAL_GRACE_SECONDS = 60.0


def deferral_timeout(end_time: float | None, request_timeout: float) -> timedelta | None:
    """Airflow's deferral timeout for a wait whose trigger ends at ``end_time`` (epoch seconds)."""
    if end_time is None:
        return None
    return timedelta(seconds=max(end_time - time.time(), 0.0) + request_timeout + _DEFERRAL_GRACE_SECONDS)
