"""The finish of ``GenerateVideoOperator``'s wait: the outcome logged, the event turned into the finished task.

Deferred or not, the wait ends with an event (the trigger's, or the one the worker's wait makes as
the trigger would), and it finishes the same way either way: one line says how the generation ended
and how long the task waited; a generation still queued at the deadline is cancelled where the
style can (with ``cancel_on_kill``); one that did not succeed raises; one that did gets its cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.events import raise_for_event
from airflow_provider_videogen.operators.cancel import cancel_if_queued
from airflow_provider_videogen.operators.generation_cost import request_for_cost, with_cost

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import VideoGenerationRequest
    from airflow_provider_videogen.hooks.videogen import VideoGenHook


def finished_generation(
    event: Mapping[str, Any],
    started_at: float | None,
    hook: VideoGenHook,
    log: Any,
    *,
    cancel_on_kill: bool,
    request: Callable[[], VideoGenerationRequest],
    model: str,
) -> dict[str, Any]:
    """Log the outcome of the wait; return the succeeded generation with its cost, or raise for one that did not.

    :param started_at: when the try started (seconds since the epoch), for the time waited; ``None``: unknown.
    :param log: the operator's log.
    :param cancel_on_kill: cancel a generation still queued when the wait timed out.
    :param request: builds the submitted request again, for the cost's estimate.
    :param model: the operator's model, for an answer that names none.
    """
    log_outcome(log, event, started_at)
    if event["status"] == "timeout" and cancel_on_kill:
        cancel_if_queued(hook, log, event["video_task_id"], reason="the deadline passed")
    finished = raise_for_event(event, "operator")
    return with_cost(finished, request_for_cost(request), model, hook.settings.prices, log)


def log_outcome(log: Any, event: Mapping[str, Any], started_at: float | None) -> None:
    """Say on the worker how the wait ended, and how long it took: at info on a success, else as a warning."""
    status, message = event["status"], event["message"]
    waited = f"{time.time() - started_at:.0f} s" if started_at is not None else "unknown"
    # The event's message already names the task and how it ended: one sentence, the wait added to it.
    sentence = message[:-1] if message.endswith(".") else message
    (log.info if status == "success" else log.warning)("%s (waited %s).", sentence, waited)
