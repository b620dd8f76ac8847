"""Cancelling a generation where its style still can: when the task is killed, or its deadline passes.

Both generate operators cancel through :func:`cancel_if_queued`, with the same log lines. Most
styles can cancel only a queued generation (a running one cannot be stopped, and on a finished one
the same call would delete its video); a style that cannot cancel at all says so and is skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.exceptions import VideoGenError, VideoGenNotSupportedError

if TYPE_CHECKING:
    from airflow_provider_videogen.hooks.videogen import VideoGenHook


def cancel_if_queued(hook: VideoGenHook, log: Any, video_task_id: str, *, reason: str) -> None:
    """Cancel a generation where the style still can (most: only a queued one); say why, or why not."""
    try:
        if hook.cancel_task(video_task_id):
            log.warning("Cancelled video task %s because %s.", video_task_id, reason)
    except VideoGenNotSupportedError as error:
        log.info("Not cancelling video task %s: %s", video_task_id, error)
    except VideoGenError as error:
        log.warning("Could not cancel video task %s: %s", video_task_id, error)
