"""The wait in the worker: poll a generation until it ends or the deadline passes, pausing as the schedule says.

``GenerateVideoOperator`` waits here when it is not deferrable; the triggerer's wait
(:class:`~airflow_provider_videogen.triggers.videogen.VideoTaskTrigger`) follows the same schedule
(:data:`~airflow_provider_videogen.retry.POLL_SCHEDULE`), with the service's poll hint and its cap.
``GenerateVideosOperator`` runs its trigger's own wait here (:func:`wait_as_the_trigger`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.events import event_payload, final_event_payload
from airflow_provider_videogen.retry import POLL_SCHEDULE

if TYPE_CHECKING:
    from airflow_provider_videogen.hooks.videogen import VideoGenHook
    from airflow_provider_videogen.triggers.batch import VideoBatchTrigger
    from airflow_provider_videogen.video_task import VideoTask


def wait_in_worker(
    hook: VideoGenHook, video_task_id: str, end_time: float | None, poll_interval: Callable[[], float], log: Any
) -> dict[str, Any]:
    """Poll ``video_task_id`` until it ends or ``end_time`` passes; return the event the trigger would have sent.

    :param end_time: the deadline, in seconds since the epoch; ``None``: none.
    :param poll_interval: returns the seconds between two polls (the service's hint may ask for longer).
    :param log: the operator's log, which says each new status.
    """
    last_status = None
    while True:
        task, poll_hint = hook.poll_answer(video_task_id)
        if task.is_terminal:
            return final_event_payload(video_task_id, task, full_task=True)
        if task.status is not last_status:
            last_status = task.status
            log.info("Video task %s is %s.", video_task_id, task.status.value)
        if end_time is not None and time.time() >= end_time:
            return _timeout_payload(video_task_id, task, end_time)
        wait = POLL_SCHEDULE.next_wait(poll_hint=poll_hint, interval=poll_interval())
        remaining = end_time - time.time() if end_time is not None else wait
        time.sleep(max(0.0, min(wait, remaining)))


def wait_as_the_trigger(trigger: VideoBatchTrigger, hook: VideoGenHook) -> dict[str, Any]:
    """Wait as ``trigger`` would in the triggerer, here in the worker (``deferrable=False``); return its event.

    :param hook: the hook the wait polls with, its connection read here first; closed once the wait ends.
    """
    hook.settings  # read synchronously here: the async wait then finds it and looks nothing up  # noqa: B018

    async def wait() -> dict[str, Any]:
        try:
            return await trigger.wait(hook)
        finally:
            await hook.aclose()

    return asyncio.run(wait())


def _timeout_payload(video_task_id: str, task: VideoTask, end_time: float) -> dict[str, Any]:
    deadline = datetime.fromtimestamp(end_time, tz=timezone.utc).isoformat(timespec="seconds")
    message = f"Video task {video_task_id!r} was still {task.status.value} at the deadline ({deadline})."
    return event_payload("timeout", video_task_id, message, task)
