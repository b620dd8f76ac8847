"""Reconnect: find the generation an earlier try of the task made, so that a retry does not pay for it again.

The task's :class:`~airflow_provider_videogen.generation_record.GenerationRecord` holds what that try
left: the generation's id (reconnect to it, unless it failed or answers another request), or only an
intent, when the try was stopped in the kill window between the create call's answer and the id's
write. Then the service's list is looked up where the style can (the kill-window look-up); where it
cannot, the try submits again and says that the earlier one may have paid too.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_videogen.exceptions import (
    VideoGenerationOutcomeUnknownError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_record import GenerationRecord, Recorded
    from airflow_provider_videogen.generation_request import VideoGenerationRequest
    from airflow_provider_videogen.hooks.videogen import VideoGenHook
    from airflow_provider_videogen.settings import VideoGenConnectionSettings
    from airflow_provider_videogen.video_task import VideoTask

# Seconds a listed generation may seem to predate the intent that asked for it: the service's clock
# and the worker's are not the same clock.
_CLOCK_SKEW = 60.0


class SaveId(Protocol):
    """How the caller keeps a found generation's id in the record (retried; ending the task for good if it fails)."""

    def __call__(self, record: GenerationRecord, video_task_id: str, fingerprint: str | None) -> None:
        """Keep ``video_task_id`` (made for the request of ``fingerprint``) in ``record``."""


def earlier_generation(
    hook: VideoGenHook,
    record: GenerationRecord,
    request: VideoGenerationRequest,
    fingerprint: str,
    log: Any,
    save: SaveId,
) -> tuple[str, VideoTask] | None:
    """Return the generation an earlier try made for this request, if it goes on or succeeded, else ``None``.

    :param fingerprint: the fingerprint of ``request``, as the record keeps it.
    :param log: the operator's log.
    :param save: keeps the id of a generation found in the service's list.
    """
    recorded = record.read()
    if recorded is None:
        return None
    if recorded.request is not None and recorded.request != fingerprint:
        # The DAG's prompt, parameters or images changed before this try (a clear after an edit):
        # the recorded generation answers the old request, not this one.
        _log_request_changed(recorded, log)
        return None
    # Same request, or a record written by the previous release, which kept the id alone: that
    # release reconnected to it whatever the request, and so does this one.
    previous = recorded.video_task_id
    if previous is None:
        previous = reconcile(hook, record, request, recorded, log, save)
        if previous is None:
            return None
    task = previous_task(hook, previous, log)
    if task is None or task.status.is_failure:
        return None
    log.info(
        "Reconnecting to video task %s (%s), submitted by an earlier try: not submitting again.",
        previous,
        task.status.value,
    )
    return previous, task


def _log_request_changed(recorded: Recorded, log: Any) -> None:
    if recorded.video_task_id is not None:
        log.warning(
            "Video task %s, submitted by an earlier try of this task, answered a different request "
            "(the prompt, parameters or input files changed since), left as it is; submitting a new "
            "generation for this one.",
            recorded.video_task_id,
        )
    else:
        log.warning(
            "An earlier try of this task was about to submit a different request at %s; submitting this one.",
            when(recorded.intent_at),
        )


def reconcile(
    hook: VideoGenHook,
    record: GenerationRecord,
    request: VideoGenerationRequest,
    intent: Recorded,
    log: Any,
    save: SaveId,
) -> str | None:
    """Find the generation an earlier try may have paid for before it could keep the id; ``None``: submit.

    The intent was written before its create call; the service's list shows whether that call made
    a generation (created since, with the same model and input). Where the style cannot look, the
    try submits again and logs that the earlier try may have paid too (the window stays open there).
    """
    assert intent.intent_at is not None
    settings = hook.settings
    since = when(intent.intent_at)
    if settings.style.idempotent_create or not settings.style.can_reconcile:
        record.drop_intent()
        _log_no_look_up(settings, request, since, log)
        return None
    found = hook.find_generations(request, intent.intent_at - _CLOCK_SKEW)
    return _listed_generation(found, record, intent, since, log, save)


def _listed_generation(
    found: list[VideoTask] | None, record: GenerationRecord, intent: Recorded, since: str, log: Any, save: SaveId
) -> str | None:
    """Return the one generation the list found (kept in the record); ``None``: none, submit; several: fail for good."""
    if found is not None and not found:
        log.info(
            "An earlier try of this task was about to submit at %s; the service lists no generation of this "
            "request since, so it paid for none: submitting.",
            since,
        )
        return None
    if found is None or len(found) > 1:
        record.drop_intent()
        raise _outcome_unknown(found, since)
    video_task_id = found[0].id
    log.warning(
        "An earlier try of this task submitted video task %s at %s but was stopped before it kept the id; "
        "found in the service's list: reconnecting instead of paying again.",
        video_task_id,
        since,
    )
    save(record, video_task_id, intent.request)
    return video_task_id


def _log_no_look_up(
    settings: VideoGenConnectionSettings, request: VideoGenerationRequest, since: str, log: Any
) -> None:
    """Say why a try that found an intent submits without looking the generation up."""
    if settings.style.idempotent_create:
        # The create carries the service's idempotency token, derived from this task instance and the
        # request: sent again, it answers the generation the lost try made, if it made one.
        log.info(
            "An earlier try of this task was stopped after it may have submitted a generation at %s; the %s "
            "API style's create carries an idempotency token, so sending it again answers that generation "
            "if it was made (nothing is paid twice).",
            since,
            settings.api_style,
        )
        return
    # The worker may have been lost before the create call was sent as well as after its answer:
    # with no list to tell which, the try submits, and says plainly that it may pay twice.
    log.warning(
        "An earlier try of this task was stopped (its worker lost) after it may have submitted a generation "
        "with model %r at %s, and the %s API style cannot list recent generations to find it: submitting "
        "again. If the service's task list shows a generation of this request made since then, it was paid "
        "for too; wait for it with VideoTaskSensor(video_task_id=...) to use it.",
        request.model,
        since,
        settings.api_style,
    )


def _outcome_unknown(found: list[VideoTask] | None, since: str) -> VideoGenerationOutcomeUnknownError:
    """Return the error of a look-up that cannot tell which generation the earlier try paid for."""
    ids = ", ".join(task.id for task in found or ())
    return VideoGenerationOutcomeUnknownError(
        f"An earlier try of this task was stopped after it may have submitted a generation at {since}, and "
        + (
            f"the service lists {len(found or ())} generations of the same request since ({ids}): "
            if found
            else "the service's list does not reach back that far: "
        )
        + "which one it paid for cannot be told. This task fails without retries so that no other generation "
        "is paid for: wait for the right one with VideoTaskSensor(video_task_id=...), or clear this task to "
        "submit again."
    )


def previous_task(hook: VideoGenHook, video_task_id: str, log: Any) -> VideoTask | None:
    """Read the generation an earlier try submitted; ``None`` only when the API itself says it is gone."""
    try:
        # A 404 from a proxy in front of the API is no proof the task is gone, and taking it for
        # gone pays for the generation again: only the API's own "not found" counts.
        task = hook.get_task(video_task_id, only_the_api_says_not_found=True)
    except VideoTaskNotFoundError as error:
        # The record is at most RETENTION (7 days) old, as long as the contents-generations API
        # keeps tasks: such a task is expected to be there still. Say so loudly, as the new
        # generation is paid for and the old one may not be lost (another key or data center).
        log.warning(
            "Video task %s, submitted by an earlier try of this task less than 7 days ago, is not found at %s "
            "(%s: %s): it expired (some services keep tasks for a day or two), was deleted, or the connection "
            "now points at another account, data center or gateway. Submitting a new generation.",
            video_task_id,
            hook.settings.base_url,
            error.api_code or f"HTTP {error.http_status}",
            error.api_message or "no message",
        )
        return None
    except VideoGenTransientError as error:
        raise VideoGenTransientError(
            f"Could not tell whether video task {video_task_id}, submitted by an earlier try of this task, "
            "still exists, so not submitting again (that could pay for a second generation); the next try "
            f"of this task looks again. {error}",
            video_task_id=video_task_id,
            http_status=error.http_status,
            api_code=error.api_code,
            api_message=error.api_message,
            retry_after=error.retry_after,
        ) from None
    if task.status.is_failure:
        log.warning("%s: submitting a new generation.", _sentence(task.describe_failure()))
    return task


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def when(timestamp: float | None) -> str:
    """Return a unix time as an ISO 8601 UTC time, for log lines and messages."""
    if timestamp is None:
        return "an unknown time"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")
