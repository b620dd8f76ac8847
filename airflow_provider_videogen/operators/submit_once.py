"""Submit once: the part of ``GenerateVideoOperator`` that makes a generation be paid for at most once.

A try either reconnects to the generation an earlier try of the task submitted (its id is kept in a
:class:`~airflow_provider_videogen.generation_record.GenerationRecord`) or submits a new one and
keeps its id before anything else can fail; a kill that comes during the create call acts once the
id is kept; and the record is dropped only once the task has ended for good.

The record also keeps the fingerprint of the request: an earlier generation reconnects only when it
answers the request this try would send. And before the create call a try writes an intent: a try
that finds one without an id (its worker was killed between the create's answer and the id's write)
looks for the generation in the service's list where the style can, instead of paying again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_videogen._compat import AirflowFailException, TaskDeferred
from airflow_provider_videogen.exceptions import (
    VideoGenerationNotSavedError,
    VideoGenerationOutcomeUnknownError,
    VideoGenError,
    VideoTaskIdMissingError,
    VideoTaskMayExistError,
)
from airflow_provider_videogen.generation_record import (
    GenerationRecord,
    generation_record,
    request_fingerprint,
)
from airflow_provider_videogen.operators.reconnect import earlier_generation

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_videogen.generation_request import VideoGenerationRequest
    from airflow_provider_videogen.hooks.videogen import VideoGenHook
    from airflow_provider_videogen.video_task import VideoTask

# Saving the id after a create: attempts, and the pause after the first failure (growing).
_SAVE_ATTEMPTS = 3
_SAVE_BACKOFF = 0.5


class CancelIfQueued(Protocol):
    """How the operator cancels a generation its style can still cancel."""

    def __call__(self, video_task_id: str, *, reason: str) -> None:
        """Cancel ``video_task_id`` if its style still can, saying ``reason`` in the log."""


class SubmitOnce:
    """The submit-once state of one ``GenerateVideoOperator``: its record, a create call under way, a kill.

    :meth:`begin` starts a try with the task's record, the operator's hook and its log; the kill
    flag is set by the operator's ``on_kill``, from another thread, whenever it comes.
    """

    def __init__(self) -> None:
        self.record: GenerationRecord | None = None
        #: A create call is under way: a kill acts once it has returned the new id.
        self.submitting = False
        #: The task was killed during this try.
        self.killed = False
        self._hook: VideoGenHook | None = None
        # The operator's own log once a try has begun (stdlib or structlog, by Airflow version).
        self._log: Any = logging.getLogger(__name__)

    def begin(self, context: Context, state_store_key: str, hook: VideoGenHook, log: Any) -> None:
        """Start a try: find the task's record (none on Airflow before 3.3) under ``state_store_key``."""
        self.record = generation_record(context, state_store_key)
        self._hook, self._log = hook, log

    def reconnect_or_submit(
        self,
        context: Context,
        request: Callable[[], VideoGenerationRequest],
        cancel: CancelIfQueued | None,
    ) -> tuple[str, VideoTask | None]:
        """Return the id of this task's generation: the one an earlier try submitted for this request, else a new one.

        :param request: builds the request to submit.
        :param cancel: how to cancel after a kill during the create call; ``None``: never cancel.
        """
        built = request()
        fingerprint = self._fingerprint(built)
        reconnected = self._reconnect(context, built, fingerprint)
        if reconnected is not None:
            return reconnected
        video_task_id = self._submit(built, fingerprint)
        # The id reaches XCom and the log first: whatever fails next, a person can still find it.
        context["ti"].xcom_push(key="video_task_id", value=video_task_id)
        self._log.info("Submitted video task %s.", video_task_id)
        # The record first, even after a kill: a generation that cannot be cancelled (no cancel call,
        # or already running) goes on and is paid for, and only the record lets the next try reconnect.
        try:
            if self.record is not None:
                self._save(self.record, video_task_id, fingerprint)
        except BaseException:
            # Saving failed for good (the task ends without retries); a kill still cancels what it can.
            if self.killed and cancel is not None:
                cancel(video_task_id, reason="the task was killed while submitting it")
            raise
        if self.killed:
            self._end_killed_submission(video_task_id, cancel)
        return video_task_id, None

    @contextmanager
    def ending_the_try(self, context: Context) -> Iterator[None]:
        """Drop the durable record once the task ends: it succeeded, or it failed with no retry to follow."""
        try:
            yield
        except TaskDeferred:
            raise
        except BaseException as error:
            if self.record is not None and not _will_retry(context, error):
                self.record.forget()
            raise
        if self.record is not None:
            self.record.forget()

    # ---- helpers ----

    def _fingerprint(self, request: VideoGenerationRequest) -> str:
        """Return the fingerprint of what the create call would send for ``request`` (never the key)."""
        assert self._hook is not None
        settings = self._hook.settings
        style = settings.style
        return request_fingerprint(
            style=style.name,
            base_url=settings.base_url,
            model=request.model,
            body=style.create_body(request),
            uploads=style.create_uploads(request),
        )

    def _reconnect(
        self, context: Context, request: VideoGenerationRequest, fingerprint: str
    ) -> tuple[str, VideoTask] | None:
        """Return the generation an earlier try made for this request, if it goes on or succeeded, else ``None``."""
        if self.record is None:
            self._log.debug("No durable record for this task: a retry of it submits again.")
            return None
        assert self._hook is not None
        found = earlier_generation(self._hook, self.record, request, fingerprint, self._log, self._save)
        if found is not None:
            context["ti"].xcom_push(key="video_task_id", value=found[0])
        return found

    def _submit(self, request: VideoGenerationRequest, fingerprint: str) -> str:
        """Write the intent, make the create call, marking it under way for a kill that comes meanwhile."""
        assert self._hook is not None
        if self.record is not None:
            self._save_intent(self.record, fingerprint)
        self.submitting = True
        try:
            return self._hook.create_task(request)
        except (VideoTaskMayExistError, VideoTaskIdMissingError) as error:
            if self._hook.settings.style.idempotent_create:
                # The next try sends the same idempotency token: the service answers the same generation.
                raise
            if self.record is not None and self._hook.settings.style.can_reconcile:
                # The intent stays: the next try finds the generation in the service's list, or pays once.
                raise VideoTaskMayExistError(
                    f"{error} The next try of this task looks for it in the service's list before submitting again.",
                    http_status=error.http_status,
                    api_code=error.api_code,
                    api_message=error.api_message,
                ) from error
            if self.record is not None:
                self.record.drop_intent()
            # A retry would submit again without knowing whether this generation exists: pay at most once.
            raise VideoGenerationOutcomeUnknownError(
                f"{error} This task fails without retries so that no second generation is paid for. If the "
                "service's task list shows the generation, wait for it with VideoTaskSensor(video_task_id=...) "
                "and fetch it; if it does not, clear this task to submit again."
            ) from error
        except BaseException:
            # Refused, or surely not taken: no generation answers the intent.
            if self.record is not None:
                self.record.drop_intent()
            raise
        finally:
            self.submitting = False

    def _save_intent(self, record: GenerationRecord, fingerprint: str) -> None:
        """Say, before the create call, that this request is about to be paid for; go on without it if it fails.

        A worker killed between the call's answer and the id's write leaves the intent behind, and the next
        try looks for the generation instead of paying again. Only a help: the id's own write (retried, and
        ending the task for good if it fails) is what keeps a generation from being paid for twice.
        """
        try:
            record.save_intent(fingerprint, time.time())
        except Exception as error:
            self._log.warning(
                "Could not note in %s that a generation is about to be submitted (%s: %s); submitting all the "
                "same. Should this worker be lost before the new id is saved, the next try cannot look for it.",
                record.where,
                type(error).__name__,
                error,
            )

    def _save(self, record: GenerationRecord, video_task_id: str, fingerprint: str | None) -> None:
        """Keep the id where a retry finds it; if that keeps failing, end the task for good rather than pay twice."""
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            try:
                record.save(video_task_id, fingerprint)
                return
            except Exception as error:
                if attempt == _SAVE_ATTEMPTS:
                    cause = record.why_not_saved()
                    raise VideoGenerationNotSavedError(
                        f"Video task {video_task_id} was submitted, but its id could not be saved in {record.where} "
                        f"({type(error).__name__}: {error}), so a retry of this task would submit and pay for "
                        "another generation: the task fails without retries instead. The generation goes on: wait "
                        f"for it with VideoTaskSensor(video_task_id={video_task_id!r}) (the id is also in this "
                        "task's XCom under video_task_id)." + (f" Why the write fails: {cause}" if cause else ""),
                        video_task_id=video_task_id,
                    ) from error
                self._log.warning(
                    "Saving the id of video task %s in %s failed (%s); trying again.",
                    video_task_id,
                    record.where,
                    error,
                )
                time.sleep(_SAVE_BACKOFF * attempt)

    def _end_killed_submission(self, video_task_id: str, cancel: CancelIfQueued | None) -> None:
        """After the record is saved: cancel the generation a kill came during the create of, if it can; end the try."""
        if cancel is not None:
            cancel(video_task_id, reason="the task was killed while submitting it")
        raise VideoGenError(
            f"The task was killed while submitting video task {video_task_id}; not waiting for it. Its id is kept "
            "for this task's next try, which reconnects to it unless it was cancelled.",
            video_task_id=video_task_id,
        )


def request_identity(context: Context) -> str | None:
    """Return the task instance's key (DAG, task, run, map index; not the try): the same for every try of it.

    A create's idempotency token is derived from it and the request's body, so every try of one task
    instance that repeats the same create gets the same generation (``None`` without a task instance).
    """
    ti = context.get("ti")
    parts = [getattr(ti, name, None) for name in ("dag_id", "task_id", "run_id", "map_index")]
    if ti is None or None in parts[:3]:
        return None
    return "/".join(str(part) for part in parts)


def _will_retry(context: Context, error: BaseException) -> bool:
    """Whether Airflow retries the task after this try fails with ``error`` (unknown: assume it does)."""
    if isinstance(error, AirflowFailException):
        return False
    ti = context.get("ti")
    try_number, max_tries = getattr(ti, "try_number", None), getattr(ti, "max_tries", None)
    if not isinstance(try_number, int) or not isinstance(max_tries, int):
        return True
    return try_number <= max_tries
