"""``VideoBatchTrigger``: wait on every generation of a batch in flight; fire when the batch can move on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_videogen import _arguments
from airflow_provider_videogen.exceptions import VideoGenError, VideoGenNotSupportedError
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.retry import POLL_SCHEDULE
from airflow_provider_videogen.triggers.poll_loop import PollLoop, format_time

if TYPE_CHECKING:
    from airflow_provider_videogen.settings import VideoGenConnectionSettings

__all__ = ["VideoBatchTrigger"]

# One attempt per poll, as VideoTaskTrigger: the poll loop itself waits between polls.
_ONE_ATTEMPT: Final = RetryPolicy(max_attempts=1)
# Airflow gives on_kill() 30 seconds by default: a few quick retries fit in that.
_KILL_RETRIES: Final = RetryPolicy(max_attempts=3, max_seconds=20.0, initial_wait=0.5, max_wait=5.0)
# Cancel calls sent at once from on_kill: enough to cancel a window of hundreds within the 30 seconds.
_CANCELS_AT_ONCE: Final = 16


class VideoBatchTrigger(BaseTrigger):
    """Poll every generation of a batch in flight; fire once enough have finished, all have, or ``wake_at`` came.

    Each id is polled as :class:`~airflow_provider_videogen.triggers.videogen.VideoTaskTrigger` polls
    its one (its schedule, backoff, error budget and deadline), through the event loop's shared polls:
    on a style with a batch query one list call answers up to its ``batch_query_size`` ids. The
    trigger fires one event and returns; its payload stays small whatever the batch (ids and short
    words only, never a file URL or the key):

    - ``status``: ``"done"`` (every id finished), ``"ready"`` (``resume_after`` of them finished, or
      ``wake_at`` came: the operator can submit or land more) or ``"error"`` (the wait could not start);
    - ``finished``: ``{video task id: how its wait ended}``, each ``"success"``, ``"failed"``,
      ``"timeout"`` or ``"error"`` (as a ``VideoTaskTrigger`` event's ``status``); the operator reads
      each finished task again (fresh file URLs, the API's error);
    - ``message``: one line for the log.

    :param video_task_ids: the generations in flight.
    :param videogen_conn_id: the ``videogen`` connection.
    :param poll_interval: seconds between two polls of one id; ``None``: the style's advice.
    :param end_time: the deadline of every wait (epoch seconds), or ``None``.
    :param resume_after: fire once this many ids finished (at most all of them).
    :param wake_at: fire at this time (epoch seconds) even if fewer finished: the operator may create
        more then (its create rate, or a service's ``Retry-After``); ``None``: no such time.
    :param max_consecutive_errors: failed polls of one id in a row that end its wait with ``"error"``.
    :param cancel_on_kill: cancel the ids the style can still cancel when a user kills the deferred task.
    """

    jitter: float = 0.1

    def __init__(
        self,
        video_task_ids: Sequence[str],
        videogen_conn_id: str = VideoGenHook.default_conn_name,
        poll_interval: float | None = None,
        end_time: float | None = None,
        resume_after: int = 1,
        wake_at: float | None = None,
        max_consecutive_errors: int = 8,
        cancel_on_kill: bool = False,
    ) -> None:
        super().__init__()
        self.video_task_ids = [str(video_task_id) for video_task_id in video_task_ids]
        self.videogen_conn_id = videogen_conn_id
        self.poll_interval = None if poll_interval is None else _arguments.seconds("poll_interval", poll_interval)
        self.end_time = None if end_time is None else _arguments.epoch_seconds("end_time", end_time)
        self.resume_after = _arguments.whole_number("resume_after", resume_after)
        self.wake_at = None if wake_at is None else _arguments.epoch_seconds("wake_at", wake_at)
        self.max_consecutive_errors = _arguments.whole_number("max_consecutive_errors", max_consecutive_errors)
        self.cancel_on_kill = bool(cancel_on_kill)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the keyword arguments that rebuild this trigger (primitives only)."""
        cls = type(self)
        return (
            f"{cls.__module__}.{cls.__qualname__}",
            {
                "video_task_ids": list(self.video_task_ids),
                "videogen_conn_id": self.videogen_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "resume_after": self.resume_after,
                "wake_at": self.wake_at,
                "max_consecutive_errors": self.max_consecutive_errors,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait (see the class), release the hook, yield one event."""
        hook = VideoGenHook(self.videogen_conn_id, retry_policy=_ONE_ATTEMPT)
        try:
            payload = await self.wait(hook)
        finally:
            await hook.aclose()
        self.log.info("%s", payload["message"])
        yield TriggerEvent(payload)

    async def wait(self, hook: VideoGenHook) -> dict[str, Any]:
        """Poll the ids with ``hook`` (one attempt per poll) until the trigger fires; return the event's payload.

        The operator waiting in the worker (``deferrable=False``) calls this too, with a hook whose
        connection it has read already.
        """
        try:
            settings = await hook.aget_settings()
        except Exception as error:
            message = f"Cannot wait for the batch's {len(self.video_task_ids)} video tasks: {error}"
            return {"status": "error", "finished": {}, "message": message}
        waits = self._start_waits(hook, settings)
        finished: dict[str, str] = {}
        try:
            await self._until_the_batch_can_move_on(waits, finished)
        finally:
            # Only this trigger's share of a shared poll is cancelled: the request goes on for the others.
            for future in waits:
                future.cancel()
            if waits:
                await asyncio.gather(*waits, return_exceptions=True)
        return self._payload(finished, in_flight=len(waits))

    def _start_waits(self, hook: VideoGenHook, settings: VideoGenConnectionSettings) -> dict[asyncio.Future[Any], str]:
        """Start one poll loop per id (the trigger's interval, else the style's); return each wait with its id."""
        interval = self.poll_interval if self.poll_interval is not None else settings.style.default_poll_interval
        give_up_at = max(self.end_time, self._now()) + settings.timeout if self.end_time is not None else None
        return {
            asyncio.ensure_future(
                PollLoop(_ItemWait(self, video_task_id), hook, settings, give_up_at, interval, POLL_SCHEDULE).run()
            ): video_task_id
            for video_task_id in self.video_task_ids
        }

    async def _until_the_batch_can_move_on(
        self, waits: dict[asyncio.Future[Any], str], finished: dict[str, str]
    ) -> None:
        """Move each wait that ends from ``waits`` to ``finished``, until enough ended or ``wake_at`` came.

        Enough is ``resume_after`` of them, or all; with no id at all, only ``wake_at`` is waited for.
        """
        enough = min(self.resume_after, len(waits))
        while waits and len(finished) < max(enough, 1):
            timeout = None if self.wake_at is None else max(self.wake_at - self._now(), 0.0)
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                finished[waits.pop(future)] = future.result()["status"]
            if not done:
                break  # wake_at came
        if not waits and self.wake_at is not None and not self.video_task_ids:
            await self._sleep(max(self.wake_at - self._now(), 0.0))  # nothing in flight: only the time

    def _payload(self, finished: dict[str, str], *, in_flight: int) -> dict[str, Any]:
        """Return the event's payload: ``done`` when no wait is in flight any more, else ``ready``; and its log line."""
        counts = _counts(finished)
        status = "done" if not in_flight else "ready"
        left = f"; {in_flight} still in flight" if in_flight else ""
        total = len(self.video_task_ids)
        message = f"{len(finished)} of the batch's {total} video tasks in flight finished ({counts}){left}."
        if self.end_time is not None and "timeout" in finished.values():
            message += f" The deadline ({format_time(self.end_time)}) passed."
        return {"status": status, "finished": finished, "message": message}

    async def on_kill(self) -> None:
        """Cancel every id the style can still cancel, when ``cancel_on_kill`` is set (Airflow 3.3+).

        As :meth:`VideoTaskTrigger.on_kill <airflow_provider_videogen.triggers.videogen.VideoTaskTrigger.on_kill>`:
        only a task in one of the style's ``cancellable_statuses``, never a finished one.
        """
        if not self.cancel_on_kill:
            return
        limit = asyncio.Semaphore(_CANCELS_AT_ONCE)
        async with VideoGenHook(self.videogen_conn_id, retry_policy=_KILL_RETRIES) as hook:

            async def cancel(video_task_id: str) -> None:
                async with limit:
                    try:
                        if await hook.acancel_task(video_task_id):
                            self.log.warning("The task was killed: cancelled video task %s.", video_task_id)
                    except VideoGenNotSupportedError as error:
                        self.log.info("Not cancelling video task %s: %s", video_task_id, error)
                    except VideoGenError as error:
                        self.log.warning("Could not cancel video task %s: %s", video_task_id, error)

            await asyncio.gather(*(cancel(video_task_id) for video_task_id in self.video_task_ids))

    # The only places that read the clock and sleep; tests replace them to step the loop.

    def _now(self) -> float:
        return time.time()

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _ItemWait:
    """One id's wait, as the poll loop reads it: the batch trigger's parameters, clock and sleep, a quieter log."""

    __slots__ = ("_log", "batch", "end_time", "first_poll_at", "jitter", "max_consecutive_errors", "video_task_id")

    def __init__(self, batch: VideoBatchTrigger, video_task_id: str) -> None:
        self.batch = batch
        self.video_task_id = video_task_id
        self.end_time = batch.end_time
        self.first_poll_at: float | None = None
        self.max_consecutive_errors = batch.max_consecutive_errors
        self.jitter = batch.jitter
        # A line per status change of each of hundreds of tasks would drown the triggerer's log: the
        # changes go to debug, failed polls stay warnings.
        self._log = _Quieter(batch.log)

    @property
    def log(self) -> Any:
        """The batch trigger's log, its ``info`` lowered to ``debug``."""
        return self._log

    def _now(self) -> float:
        return self.batch._now()

    async def _sleep(self, seconds: float) -> None:
        await self.batch._sleep(seconds)


class _Quieter:
    """A logger whose ``info`` is ``debug``."""

    __slots__ = ("_log",)

    def __init__(self, log: Any) -> None:
        self._log = log

    def info(self, *args: Any, **kwargs: Any) -> None:
        self._log.debug(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def _counts(finished: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for status in finished.values():
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "none"
