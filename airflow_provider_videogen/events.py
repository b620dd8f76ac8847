"""The events of ``VideoTaskTrigger``: their format, their checks, and the exception each one means.

The trigger fires exactly one event; the sensor and ``GenerateVideoOperator`` resume with it on the
worker (and build the same events themselves when a wait ends without the triggerer). Everything
about that protocol lives here, so both waiters read an event the same way:

- the payload: ``status`` (one of :data:`EVENT_STATUSES`), ``video_task_id``, ``task`` (the last
  state read, or ``None``), ``message``, ``error_code`` and ``error_message``;
- what the trigger leaves out: pre-signed URLs and the raw answer (Airflow logs every event);
- :func:`validate_event`, before an event is trusted; :func:`reread_on_success`, for the URLs;
- :func:`raise_for_event`: the one table from an event to the exception a task raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from airflow_provider_videogen._compat import AirflowSensorTimeout
from airflow_provider_videogen.exceptions import (
    VideoGenerationFailedError,
    VideoGenError,
    VideoTaskFailedError,
)
from airflow_provider_videogen.transport import redact_url
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

__all__ = [
    "EVENT_STATUSES",
    "EventStatus",
    "Waiter",
    "event_payload",
    "event_task_dict",
    "final_event_payload",
    "raise_for_event",
    "reread_on_success",
    "validate_event",
    "without_file_urls",
]

EventStatus = Literal["success", "failed", "timeout", "error"]
EVENT_STATUSES: Final[tuple[EventStatus, ...]] = ("success", "failed", "timeout", "error")
"""Every ``status`` a :class:`~airflow_provider_videogen.triggers.videogen.VideoTaskTrigger` event can have."""

Waiter = Literal["sensor", "operator"]

# What each waiter raises for an event that is not a success. A sensor waits on a task someone
# else made: its failure is final. The operator made the task: a retry submits a new generation.
_EXCEPTIONS: Final[dict[tuple[Waiter, EventStatus], type[Exception]]] = {
    ("sensor", "failed"): VideoTaskFailedError,
    ("sensor", "timeout"): AirflowSensorTimeout,
    ("sensor", "error"): VideoGenError,
    ("operator", "failed"): VideoGenerationFailedError,
    ("operator", "timeout"): VideoGenError,
    ("operator", "error"): VideoGenError,
}


def event_payload(
    status: EventStatus,
    video_task_id: str,
    message: str,
    task: VideoTask | None,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    full_task: bool = False,
) -> dict[str, Any]:
    """Build the payload of a :class:`VideoTaskTrigger` event (see the class for its keys).

    :param full_task: carry the task exactly as :meth:`VideoTask.to_dict` gives it. By default (what
        the trigger sends) the task's file URLs are cut to host and path and its ``raw`` answer is left
        out: Airflow logs every event, and a pre-signed URL is a credential for the video. Waits that
        end in the worker keep the whole task, as they never leave it.
    """
    return {
        "status": status,
        "video_task_id": video_task_id,
        "task": (task.to_dict() if full_task else event_task_dict(task)) if task is not None else None,
        "message": message,
        "error_code": error_code,
        "error_message": error_message,
    }


def final_event_payload(video_task_id: str, task: VideoTask, *, full_task: bool = False) -> dict[str, Any]:
    """Build the ``"success"`` or ``"failed"`` event payload for a task in a final state.

    Callers that find a task already final (a sensor before deferring, or poking) use it with
    ``full_task=True`` to handle that task exactly as if the trigger had reported it.
    """
    if task.status is VideoTaskStatus.SUCCEEDED:
        return event_payload("success", video_task_id, f"Video task {task.id} succeeded.", task, full_task=full_task)
    return event_payload(
        "failed",
        video_task_id,
        _sentence(task.describe_failure()),
        task,
        error_code=task.error_code,
        error_message=task.error_message,
        full_task=full_task,
    )


def event_task_dict(task: VideoTask) -> dict[str, Any]:
    """Return the task as a trigger event carries it: no ``raw`` answer, file URLs cut to host and path."""
    data = task.to_dict(include_raw=False)
    for name in ("video_url", "last_frame_url"):
        if data.get(name):
            data[name] = redact_url(data[name])
    return data


def without_file_urls(task: Mapping[str, Any]) -> dict[str, Any]:
    """Return a task's data with its file URLs left out: ``video_url`` and ``last_frame_url`` ``None``, ``raw`` empty.

    For return values that must not put a signed URL in XCom (``include_urls=False``). The raw answer
    goes too, since it holds the same URLs.
    """
    data = dict(task)
    data.update(video_url=None, last_frame_url=None, raw={})
    return data


def reread_on_success(event: Mapping[str, Any], read_task: Callable[[str], VideoTask]) -> Mapping[str, Any]:
    """Replace a trigger's ``"success"`` event by one built from the task read again on the worker.

    The trigger's event holds no pre-signed URLs (see :func:`event_payload`), so the worker reads the
    task once more for them. Any other event is returned as it is.

    :raises VideoGenError: the task read again is no longer succeeded (it was deleted meanwhile...).
    """
    if event["status"] != "success":
        return event
    video_task_id = str(event["video_task_id"])
    task = read_task(video_task_id)
    if task.status is not VideoTaskStatus.SUCCEEDED:
        raise VideoGenError(
            f"Video task {video_task_id!r} succeeded, but read again for its video URL it is "
            f"{task.status.value}. Look at the task at the service.",
            video_task_id=video_task_id,
        )
    return final_event_payload(video_task_id, task, full_task=True)


def validate_event(event: Any, video_task_id: str, waiter: str) -> Mapping[str, Any]:
    """Check a :class:`VideoTaskTrigger` event before trusting it; raise a clear error if it is not one.

    :param event: what the worker resumed with.
    :param video_task_id: the task that was waited for.
    :param waiter: who waited, for the message (e.g. ``"sensor"``).
    """
    problem = None
    if event is None:
        problem = "resumed without a trigger event. Clear the task to wait again"
    elif not isinstance(event, Mapping) or event.get("status") not in EVENT_STATUSES:
        problem = (
            f"got an event it does not understand ({repr(event)[:200]}); expected a dict whose status is "
            f"one of {', '.join(EVENT_STATUSES)}"
        )
    elif not isinstance(event.get("message"), str):
        problem = f"got a {event['status']!r} event without a message"
    elif event["status"] == "success" and not isinstance(event.get("task"), Mapping):
        problem = "got a 'success' event without the task"
    if problem is not None:
        raise VideoGenError(f"The {waiter} for video task {video_task_id!r} {problem}.", video_task_id=video_task_id)
    return event


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def raise_for_event(event: Mapping[str, Any], waiter: Waiter) -> dict[str, Any]:
    """Return the task of a ``"success"`` event; raise the exception any other event means for ``waiter``.

    :raises VideoTaskFailedError: (sensor) the task ended failed, cancelled or expired; not retried.
    :raises VideoGenerationFailedError: (operator) the generation failed; a retry submits a new one.
    :raises AirflowSensorTimeout: (sensor) the deadline passed.
    :raises VideoGenError: the wait could not go on, or (operator) the deadline passed.
    """
    status: EventStatus = event["status"]
    if status == "success":
        return dict(event["task"])
    error_class = _EXCEPTIONS[(waiter, status)]
    if not issubclass(error_class, VideoGenError):
        raise error_class(event["message"])
    raise error_class(
        event["message"],
        video_task_id=event.get("video_task_id"),
        api_code=event.get("error_code"),
        api_message=event.get("error_message"),
    )
