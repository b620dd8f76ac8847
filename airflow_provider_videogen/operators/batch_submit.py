"""Submitting a batch's items, each paid for once: its creates, and the creates whose answer was lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.batch_record import (
    CANCELLED,
    FAILED,
    IN_FLIGHT,
    INTENT,
    LAND_FAILED,
    PENDING,
    READY,
    TIMEOUT,
    UNKNOWN,
    BatchItemRecord,
    short_error,
)
from airflow_provider_videogen.exceptions import (
    VideoGenError,
    VideoGenTransientError,
    VideoTaskIdMissingError,
    VideoTaskMayExistError,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.hooks.videogen import VideoGenHook
    from airflow_provider_videogen.operators.batch_requests import BatchItem, BatchRun
    from airflow_provider_videogen.operators.batch_window import BatchWindow

# Seconds a listed generation may seem to predate the intent that asked for it (two clocks).
_CLOCK_SKEW = 60.0


class BatchSubmitter:
    """Sends the creates of a run's pending items, and settles the creates whose answer was not kept.

    :param run: the run's items and record.
    :param hook: the hook of reads and lookups (retried).
    :param create_hook: the hook of the creates: one attempt each, so that a 429 backs the whole batch off.
    :param log: the task's log.
    :param killed: whether the task was killed (then no create more goes out).
    """

    def __init__(
        self,
        run: BatchRun,
        hook: VideoGenHook,
        create_hook: VideoGenHook,
        log: Any,
        killed: Callable[[], bool],
    ) -> None:
        self.run = run
        self.hook = hook
        self.create_hook = create_hook
        self.log = log
        self.killed = killed

    def start_try(self, entries: list[BatchItemRecord]) -> None:
        """At a try's start: items whose generation failed go again; an intent without an id follows the kill rules."""
        run = self.run
        again = 0
        for item, entry in zip(run.items, entries, strict=True):
            if entry.status in (FAILED, CANCELLED) or (entry.status == TIMEOUT and entry.video_task_id is None):
                # A failed generation produced no video (and the single operator submits again after one too).
                run.record.put(item.index, BatchItemRecord(entry.fingerprint))
                again += 1
            elif entry.status == TIMEOUT:
                # It may still finish: reconnect to it.
                entry.status, entry.outcome = IN_FLIGHT, {}
                run.record.put(item.index, entry)
            elif entry.status == LAND_FAILED:
                # Paid for and succeeded: read again and landed, never submitted again.
                entry.status, entry.outcome = READY, {}
                run.record.put(item.index, entry)
        if again:
            self.log.info("%d items that failed, were cancelled or never submitted in an earlier try go again.", again)
        reconnected = sum(1 for e in run.entries() if e.status == IN_FLIGHT)
        if reconnected:
            self.log.info(
                "Reconnecting to %d generations an earlier try submitted: not submitting them again.", reconnected
            )
        self.settle_intents(new_try=True)
        run.flush()

    def submit_round(self, window: BatchWindow, end_time: float | None) -> None:
        """Settle the intents, then submit what the window allows (past ``end_time``: time out the rest); save."""
        self.settle_intents(new_try=False)
        if end_time is not None and time.time() >= end_time:
            self.time_out_unsubmitted()
        else:
            self.submit(window)
        self.run.flush()

    def submit(self, window: BatchWindow) -> None:
        """Submit pending items while the window and the create rate allow; a 429 pauses the window."""
        run = self.run
        window.start_round(run.entries())
        for item in run.items:
            entry = run.entry(item)
            if entry.status != PENDING:
                continue
            if self.killed():
                break
            now = time.time()
            if not window.take(now):
                break
            entry.status, entry.intent_at = INTENT, now
            run.record.put(item.index, entry)
            # The intent goes out with the previous item's id, in one write, before this create is sent.
            run.flush()
            if not self._create(item, entry, window):
                break

    def _create(self, item: BatchItem, entry: BatchItemRecord, window: BatchWindow) -> bool:
        """Send ``item``'s create and keep what it answered; return ``False`` when the batch must pause."""
        try:
            video_task_id = self.create_hook.create_task(self.run.request(item))
        except (VideoTaskMayExistError, VideoTaskIdMissingError) as error:
            self._create_outcome_unknown(item, entry, error)
            if entry.status == UNKNOWN:  # an intent still being settled holds its place
                window.free()
            return True
        except VideoGenTransientError as error:
            # Surely not taken (429, the request never reached the service): the item waits its turn again.
            entry.status, entry.intent_at = PENDING, None
            self.run.record.put(item.index, entry)
            wait = window.back_off(error.retry_after)
            self.log.warning(
                "The service refused a create for now (%s): the whole batch waits %.1f s before the next one; "
                "item %s keeps its turn.",
                error,
                wait,
                item.key,
            )
            return False
        except VideoGenError as error:
            # Refused for good (invalid parameter, input moderation...): this item failed, nothing was paid.
            entry.status, entry.intent_at = FAILED, None
            entry.outcome = {"error": short_error(error.api_code or type(error).__name__, error.api_message or error)}
            self.run.record.put(item.index, entry)
            self.log.warning("Item %s was refused: %s", item.key, error)
            window.free()
            return True
        window.answered()
        entry.status, entry.video_task_id, entry.intent_at, entry.created_at = (
            IN_FLIGHT,
            video_task_id,
            None,
            time.time(),
        )
        self.run.record.put(item.index, entry)
        return True

    def _create_outcome_unknown(self, item: BatchItem, entry: BatchItemRecord, error: VideoGenError) -> None:
        """Settle a create the service may have taken: never sent blindly again (see the operator's description)."""
        style = self.hook.settings.style
        if style.idempotent_create or style.can_reconcile:
            # Settled next round: the same token answers the same generation, or the service's list shows it.
            self.log.warning("Item %s: %s Settled before any other create of it.", item.key, error)
            return
        entry.status, entry.intent_at = UNKNOWN, None
        entry.outcome = {
            "error": short_error(
                "outcome_unknown",
                f"{error} Not submitted again (that could pay twice): if the service's list shows the generation, "
                "wait for it with VideoTaskSensor.",
            )
        }
        self.run.record.put(item.index, entry)
        self.log.warning("Item %s: %s Not submitted again, so that nothing is paid twice.", item.key, error)

    def settle_intents(self, *, new_try: bool) -> None:
        """Decide each item whose create was under way without an answer kept: as ``GenerateVideoOperator`` decides."""
        style = self.hook.settings.style
        owned = {e.video_task_id for e in self.run.entries() if e.video_task_id}
        for item in self.run.items:
            entry = self.run.entry(item)
            if entry.status != INTENT or entry.intent_at is None:
                continue
            if style.idempotent_create:
                # Sent again, the create carries the same idempotency token: it answers the lost generation.
                entry.status, entry.intent_at = PENDING, None
            elif style.can_reconcile:
                self._look_up(item, entry, owned)
            elif new_try:
                # The single operator's rule where the service cannot be asked: submit, and say it plainly.
                self.log.warning(
                    "Item %s: an earlier try was stopped after it may have submitted it, and the %s API style "
                    "cannot list recent generations: submitting again. If the service's list shows a generation "
                    "of it made since, that one was paid for too.",
                    item.key,
                    self.hook.settings.api_style,
                )
                entry.status, entry.intent_at = PENDING, None
            else:
                continue
            self.run.record.put(item.index, entry)

    def _look_up(self, item: BatchItem, entry: BatchItemRecord, owned: set[str]) -> None:
        """Settle an intent from the service's list of recent generations (none of them one the batch owns)."""
        assert entry.intent_at is not None
        found = self.hook.find_generations(self.run.request(item), entry.intent_at - _CLOCK_SKEW)
        found = None if found is None else [task for task in found if task.id not in owned]
        if found is not None and not found:
            entry.status, entry.intent_at = PENDING, None
        elif found is not None and len(found) == 1:
            self.log.warning(
                "Item %s: its generation %s was made but its id not kept; found in the service's list: "
                "reconnecting instead of paying again.",
                item.key,
                found[0].id,
            )
            entry.status, entry.video_task_id, entry.intent_at = IN_FLIGHT, found[0].id, None
            entry.created_at = time.time()
            owned.add(found[0].id)
        else:
            entry.status, entry.intent_at = UNKNOWN, None
            entry.outcome = {
                "error": short_error(
                    "outcome_unknown",
                    "Its create may have been taken, and the service's list cannot tell which generation "
                    "it paid for: not submitted again.",
                )
            }

    def time_out_unsubmitted(self) -> None:
        """At the deadline: every item not yet submitted ends ``timeout``, never paid for."""
        for item in self.run.items:
            entry = self.run.entry(item)
            if entry.status in (PENDING, INTENT):
                entry.status, entry.intent_at = TIMEOUT, None
                entry.outcome = {"error": short_error("timeout", "Not submitted before the deadline.")}
                self.run.record.put(item.index, entry)
