"""Cancelling a video task: one rule, walked by a sync and an async shell.

A cancel must never delete a video: on some APIs (the contents-generations and Runway styles) the
call that cancels a queued task *deletes* a finished one, its video with it. So the rule reads the
task first and cancels only while its style may (its ``cancellable_statuses``); and a cancel call
the service refused for now (a 429, a proxy's empty 503, a connection never opened) is sent again
only after the task, read again, may still be cancelled (it may have finished during the wait).

The rule (:func:`cancel_steps`) makes no call and never sleeps: it yields its steps (read the task,
send the cancel call, wait) and is told what each gave. :func:`cancel` and :func:`acancel` are its shells
with ``requests`` and ``aiohttp``: they only send and sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from airflow_provider_videogen.client import ApiRequest, VideoGenClient, surely_not_taken
from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenError,
    VideoGenNotSupportedError,
    VideoGenTransientError,
)
from airflow_provider_videogen.retry import RetryPolicy
from airflow_provider_videogen.styles import STYLES

if TYPE_CHECKING:
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

__all__ = [
    "CancelRetries",
    "ReadTask",
    "Wait",
    "acancel",
    "cancel",
    "cancel_request",
    "cancel_steps",
    "check_can_cancel",
]


class ReadTask(NamedTuple):
    """A step of the rule: read the task (the rule is told the task, or the error of the read)."""


class Wait(NamedTuple):
    """A step of the rule: wait this many seconds before the next one."""

    seconds: float


#: A step of the rule: read the task, send a request (the rule is told its result or its error), or wait.
Step: TypeAlias = ReadTask | ApiRequest | Wait
#: The rule: yields its steps, is sent each request's result (or thrown its error), returns whether it cancelled.
Steps: TypeAlias = Generator[Step, Any, bool]


def cancel(
    client: VideoGenClient,
    settings: VideoGenConnectionSettings,
    video_task_id: str,
    log: Any,
    read_task: Callable[[str], VideoTask],
) -> bool:
    """Cancel a video task while its style can, with sync calls; return whether it was cancelled.

    :param client: sends the cancel call.
    :param settings: the connection.
    :param video_task_id: the task to cancel.
    :param log: where the decisions are said (the hook's log).
    :param read_task: reads the task (the hook's ``get_task``).
    :raises VideoGenNotSupportedError: on a style that has no cancel call.
    """
    steps = cancel_steps(settings, video_task_id, log)
    step = _advance(steps)
    while not isinstance(step, bool):
        if isinstance(step, Wait):
            time.sleep(step.seconds)
            step = _advance(steps)
            continue
        try:
            value = read_task(video_task_id) if isinstance(step, ReadTask) else client.send(step).value
        except VideoGenError as error:
            step = _advance(steps, failure=error)
        else:
            step = _advance(steps, value)
    return step


async def acancel(
    client: VideoGenClient,
    settings: VideoGenConnectionSettings,
    video_task_id: str,
    log: Any,
    read_task: Callable[[str], Awaitable[VideoTask]],
) -> bool:
    """Cancel a video task as :func:`cancel` does, without blocking the event loop (``read_task``: ``aget_task``)."""
    steps = cancel_steps(settings, video_task_id, log)
    step = _advance(steps)
    while not isinstance(step, bool):
        if isinstance(step, Wait):
            await asyncio.sleep(step.seconds)
            step = _advance(steps)
            continue
        try:
            value = await read_task(video_task_id) if isinstance(step, ReadTask) else (await client.asend(step)).value
        except VideoGenError as error:
            step = _advance(steps, failure=error)
        else:
            step = _advance(steps, value)
    return step


def _advance(steps: Steps, outcome: Any = None, failure: VideoGenError | None = None) -> Step | bool:
    """Tell the rule what its last step gave; return its next step, or whether it cancelled once it ended."""
    try:
        return steps.send(outcome) if failure is None else steps.throw(failure)
    except StopIteration as ended:
        return bool(ended.value)


def cancel_steps(settings: VideoGenConnectionSettings, video_task_id: str, log: Any) -> Steps:
    """Walk the rule of a cancel (see the module's description) as steps, for a shell to carry out.

    An error a step's request raised and the rule does not handle (a refused key, an unknown task, a
    cancel refused for now past the retry policy) ends it, raised from the shell.
    """
    check_can_cancel(settings)
    retries = CancelRetries(settings.retry_policy)
    while True:
        task: VideoTask = yield ReadTask()
        if not _may_cancel(task, settings, log):
            return False
        wait: float | None = None
        try:
            yield cancel_request(settings, video_task_id)
        except VideoGenAPIError as error:
            # It started running between the read and the cancel call: the service refuses to cancel it.
            log.warning("Video task %s could not be cancelled: %s", video_task_id, error)
            return False
        except VideoGenTransientError as error:
            wait = retries.wait_after(error)
            if wait is None:
                raise
            log.warning(
                "The cancel of video task %s was refused for now (%s); reading the task again in %.1f s, and "
                "cancelling it only if it can still be cancelled then.",
                video_task_id,
                error,
                wait,
            )
        if wait is None:
            log.info("Cancelled video task %s.", video_task_id)
            return True
        yield Wait(wait)


def _may_cancel(task: VideoTask, settings: VideoGenConnectionSettings, log: Any) -> bool:
    if task.status in settings.style.cancellable_statuses and not task.is_terminal:
        return True
    log.info("Video task %s is %s, which cannot be cancelled: leaving it alone.", task.id, task.status.value)
    return False


def cancel_request(settings: VideoGenConnectionSettings, video_task_id: str) -> ApiRequest:
    """Return the cancel call of a task (a DELETE on most styles): one attempt; :class:`CancelRetries` says if another.

    Never retried blindly: on the contents-generations and Runway APIs the same call deletes a task
    that finished meanwhile, its video with it.
    """
    url = settings.cancel_url(video_task_id)
    return ApiRequest(settings.style.cancel_method, url, "cancel", settings, video_task_id, policy=_ONE_ATTEMPT)


def check_can_cancel(settings: VideoGenConnectionSettings) -> None:
    """Raise :class:`VideoGenNotSupportedError` naming the styles that can cancel, if the connection's style cannot."""
    if not settings.style.can_cancel:
        able = ", ".join(name for name, style in STYLES.items() if style.can_cancel)
        raise VideoGenNotSupportedError(
            f"Cancelling is not supported by the {settings.api_style} API style (connection "
            f"{settings.conn_id!r}): {settings.style.no_cancel_reason}. Only {able} can cancel."
        )


class CancelRetries:
    """Whether, and after how long, a cancel call is sent again; the task is read again before each.

    Like a create, a cancel is sent again only where the service surely did not take it (a 429, a
    proxy's empty 503, a connection never opened), within the retry policy's attempts and time.

    :param policy: the connection's retry policy.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.started = time.monotonic()
        self.failures = 0

    def wait_after(self, error: VideoGenTransientError) -> float | None:
        """Seconds to wait after the cancel call failed with ``error``; ``None``: do not send it again."""
        self.failures += 1
        if not surely_not_taken(error) or self.failures >= self.policy.max_attempts:
            return None
        wait = self.policy.wait_after(self.failures, error.retry_after)
        if time.monotonic() - self.started + wait >= self.policy.max_seconds:
            return None
        return wait


_ONE_ATTEMPT = RetryPolicy(max_attempts=1)
