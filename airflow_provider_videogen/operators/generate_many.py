"""``GenerateVideosOperator``: many generations in one task, in a window the service takes, each paid for once.

The operator keeps its parameters and Airflow's entry points; the rest is by concern:
:mod:`~airflow_provider_videogen.operators.batch_requests` (the items and their record),
:mod:`~airflow_provider_videogen.operators.batch_window` (in flight, creates per minute, back-off),
:mod:`~airflow_provider_videogen.operators.batch_submit` (creates, lost answers) and
:mod:`~airflow_provider_videogen.operators.batch_landing` (landing, manifest, summary); the wait in the
worker (``deferrable=False``) is :mod:`~airflow_provider_videogen.operators.worker_wait`'s, and a cancel
:mod:`~airflow_provider_videogen.operators.cancel`'s, as ``GenerateVideoOperator``'s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_videogen import _arguments
from airflow_provider_videogen._compat import conf
from airflow_provider_videogen.batch_record import Pages
from airflow_provider_videogen.exceptions import VideoGenError
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.batch_landing import (
    MANIFEST_NAME,
    BatchLanding,
    batch_folder,
    finish_batch,
    log_round,
)
from airflow_provider_videogen.operators.batch_requests import (
    ITEM_FIELDS,
    KEY_PATTERN,
    BatchItem,
    BatchRun,
    check_budget,
    check_requests,
)
from airflow_provider_videogen.operators.batch_submit import BatchSubmitter
from airflow_provider_videogen.operators.batch_window import (
    DEFAULT_MAX_CREATES_PER_MINUTE,
    DEFAULT_MAX_IN_FLIGHT,
    BatchWindow,
)
from airflow_provider_videogen.operators.cancel import cancel_if_queued
from airflow_provider_videogen.operators.generation_arguments import read_wait_and_cap
from airflow_provider_videogen.operators.worker_wait import wait_as_the_trigger
from airflow_provider_videogen.triggers.batch import VideoBatchTrigger
from airflow_provider_videogen.triggers.videogen import deferral_timeout

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

__all__ = [
    "BATCH_CHUNK_SIZE",
    "DEFAULT_MAX_CREATES_PER_MINUTE",
    "DEFAULT_MAX_IN_FLIGHT",
    "ITEM_FIELDS",
    "KEY_PATTERN",
    "MANIFEST_NAME",
    "BatchItem",
    "GenerateVideosOperator",
    "check_requests",
]

#: Bytes read and written per step of each copy: a landing sets aside a few buffers of this size
#: whatever the file, and a batch lands thousands of videos of a few MiB (FetchVideoOperator's 8 MiB
#: suits one large file).
BATCH_CHUNK_SIZE = 1024 * 1024
# One attempt per create call: a 429 backs the whole batch off here, rather than one create inside the hook.
_ONE_ATTEMPT = RetryPolicy(max_attempts=1)


class GenerateVideosOperator(BaseOperator):
    """Generate many videos in one task: a sliding window of generations, each paid for once and landed.

    ``requests`` (templated, so it can come from an upstream task's XCom) lists the generations; each
    item has ``model``, ``prompt``, ``image_urls``, ``generation_params`` (as
    :class:`~airflow_provider_videogen.operators.generate.GenerateVideoOperator`'s parameters) and an
    optional ``key`` that names it in the manifest and its file, ``<destination><key>.mp4`` (by
    default its index). Thousands of items are fine: one task, no ``max_map_length``.

    **The window.** At most ``max_in_flight`` generations are queued or running at once, and at most
    ``max_creates_per_minute`` create calls go out in any minute. A 429 on a create backs the whole
    batch off (for its ``Retry-After``, else an exponential backoff): the item waits its turn again,
    never failed, and a create the service may have taken is never sent again (see below).

    **Waiting.** The worker submits what the window allows, then defers to one
    :class:`~airflow_provider_videogen.triggers.batch.VideoBatchTrigger` waiting on every generation in
    flight (one list call per poll answers up to 500 of them where the style has one). It fires when
    enough finished to submit more, when all did, when the next create is allowed, or at the deadline;
    the worker then lands the finished videos (``landing_threads`` at a time, each as
    ``FetchVideoOperator`` lands one: streamed, verified, atomic, idempotent), submits more, and defers
    again. ``deferrable=False`` runs the same loop in the worker. One log line per round says how far
    the batch is.

    **Never paid twice, item by item.** Each item's fingerprint and video task id are kept in a record
    (the ``task_state_store`` on Airflow 3.3+, Airflow Variables on 3.1 and 3.2; see
    :mod:`~airflow_provider_videogen.batch_record`) as soon as its create answered, before the next
    create. A retry, or a worker lost mid-batch, reconnects to every item with an id and pays only for
    items never submitted; an item whose create may have been taken without its id being kept follows
    ``GenerateVideoOperator``'s rules for its style (an idempotency token answers the same generation;
    a style that lists recent generations is looked up; elsewhere the retry submits it again and says
    so). A create whose outcome is unknown on a style that cannot look is never sent again: the item
    ends failed (code ``outcome_unknown``). A retry submits again the items whose generation failed.

    **Outcomes.** Each item ends ``landed``, ``failed`` (the API's code and message), ``cancelled`` or
    ``timeout``. ``manifest.jsonl``, written beside the videos, has a line per item: ``key``,
    ``fingerprint``, ``video_task_id``, ``status``, ``path``, ``size_bytes``, ``sha256``, ``cost``,
    ``error``. The return value stays small for any batch: the counts, the total cost and the
    manifest's path. After every success has landed, the task fails if fewer than ``min_success``
    items landed. Each landed video is one asset event through an ``AssetAlias`` outlet.

    :param requests: the generations (templated; a list of mappings, or its JSON text).
    :param destination: the folder the videos land in, ending in ``/`` (templated), e.g.
        ``s3://bucket/videos/`` or ``file:///data/videos/``; the manifest is written there too.
    :param dest_conn_id: the storage connection of the destination (templated).
    :param videogen_conn_id: the ``videogen`` connection (templated).
    :param max_in_flight: most generations queued or running at once; ``None``: the style's published
        limit (its ``max_in_flight``), else 10.
    :param max_creates_per_minute: most create calls in any minute; ``None``: the style's published
        limit, else 60.
    :param min_success: fewest items that must land for the task to succeed; ``None`` (the default): all.
    :param poll_interval: seconds between two polls of a generation; ``None``: the style's advice.
    :param timeout: seconds the try may take at most; past it, items still in flight end ``timeout``
        (cancelled where still queued, with ``cancel_on_kill``) and items never submitted end ``timeout``.
    :param cancel_on_kill: cancel the generations the style can still cancel when the task is killed
        or times out (only queued ones on most styles; never a finished one).
    :param deferrable: wait in the triggerer (defaults to ``[operators] default_deferrable``).
    :param http_retry_policy: retries of the API calls (but the create, see above) and of broken downloads.
    :param max_cost: the most the whole batch may cost (see ``GenerateVideoOperator``'s ``max_cost``):
        every item's estimate is summed before the first create; above it nothing is paid.
    :param overwrite: replace a destination file that holds a different video.
    :param chunk_size: bytes read and written per step of a copy (1 MiB: each landing sets aside a few
        buffers of this size whatever the video's size, and a batch lands many small videos).
    :param landing_threads: videos landed at once.
    """

    template_fields: Sequence[str] = ("requests", "destination", "dest_conn_id", "videogen_conn_id")
    template_fields_renderers = {"requests": "json"}
    ui_color = "#f8d8b8"

    #: The record's key in the ``task_state_store`` (its pages are ``<key>.<n>``). Renaming it would
    #: make in-flight retries submit again.
    state_store_key = "video_batch"
    #: Seconds of the window ``max_creates_per_minute`` counts creates in (a test may shorten it).
    rate_window: float = 60.0

    def __init__(
        self,
        *,
        requests: Sequence[Mapping[str, Any]] | str,
        destination: str | ObjectStoragePath,
        dest_conn_id: str | None = None,
        videogen_conn_id: str = VideoGenHook.default_conn_name,
        max_in_flight: int | None = None,
        max_creates_per_minute: int | None = None,
        min_success: int | None = None,
        poll_interval: float | None = None,
        timeout: float | timedelta | None = None,
        cancel_on_kill: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        http_retry_policy: RetryPolicy | None = None,
        max_cost: float | Decimal | str | None = None,
        overwrite: bool = False,
        chunk_size: int = BATCH_CHUNK_SIZE,
        landing_threads: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Checked when the DAG is parsed, as GenerateVideoOperator's: none is a template field.
        self.max_in_flight = None if max_in_flight is None else _arguments.whole_number("max_in_flight", max_in_flight)
        self.max_creates_per_minute = (
            None
            if max_creates_per_minute is None
            else _arguments.whole_number("max_creates_per_minute", max_creates_per_minute)
        )
        self.min_success = (
            None if min_success is None else _arguments.whole_number("min_success", min_success, minimum=0)
        )
        self.poll_interval, self.timeout, self.max_cost = read_wait_and_cap(poll_interval, timeout, max_cost)
        self.landing_threads = _arguments.whole_number("landing_threads", landing_threads)
        self.chunk_size = _arguments.whole_number("chunk_size", chunk_size)
        self.requests = requests
        self.destination = destination
        self.dest_conn_id = dest_conn_id
        self.videogen_conn_id = videogen_conn_id
        self.cancel_on_kill = cancel_on_kill
        self.deferrable = deferrable
        self.http_retry_policy = http_retry_policy
        self.overwrite = overwrite
        # What one run (execute or a resume) works with; rebuilt by every run.
        self._run: BatchRun | None = None
        self._landing: BatchLanding | None = None
        self._submission: BatchSubmitter | None = None
        # The record's pages where Airflow offers no store (execute called outside Airflow): this object's.
        self._memory_pages = Pages()
        self._killed = False
        self._in_flight_ids: list[str] = []

    @cached_property
    def hook(self) -> VideoGenHook:
        """The sync hook: reads, cancels, landings."""
        return VideoGenHook(self.videogen_conn_id, retry_policy=self.http_retry_policy)

    @cached_property
    def create_hook(self) -> VideoGenHook:
        """The hook of the create calls: one attempt each, so that a 429 backs the whole batch off."""
        return VideoGenHook(self.videogen_conn_id, retry_policy=_ONE_ATTEMPT)

    # ---- Airflow's entry points ----

    def execute(self, context: Context) -> Any:
        """Check the requests and the budget, reconnect to what an earlier try submitted, then run the batch."""
        started_at = time.time()
        folder = self._begin(context)
        entries = self._batch.read_record(self.hook.settings, self.log)
        self._submitter.start_try(entries)
        check_budget(self._batch, self.hook.settings.prices, self.max_cost, self.videogen_conn_id, self.log)
        return self._advance(context, folder, started_at, paused_until=None, rounds=0)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        started_at: float | None = None,
        paused_until: float | None = None,
        rounds: int = 0,
    ) -> Any:
        """Resume with the trigger's event: read the finished generations, then run the batch on."""
        folder = self._begin(context)
        self._batch.read_record(self.hook.settings, self.log)
        self._lander.take_event(event)
        return self._advance(context, folder, started_at or time.time(), paused_until=paused_until, rounds=rounds)

    def on_kill(self) -> None:
        """Stop submitting and landing; cancel the generations in flight the style can still cancel (worker mode).

        A create under way is let finish so that its id is kept for the next try. A deferred batch
        is cancelled by its trigger's ``on_kill`` (Airflow 3.3+).
        """
        self._killed = True
        if self._landing is not None:
            self._landing.cancel()
        if self.cancel_on_kill:
            for video_task_id in list(self._in_flight_ids):
                cancel_if_queued(self.hook, self.log, video_task_id, reason="the task was killed")

    # ---- a run ----

    def _begin(self, context: Context) -> str:
        """Check the rendered fields; open the record. Return the destination folder, ending in ``/``."""
        items = check_requests(self.requests)
        folder = batch_folder(self.destination)
        self._run = BatchRun.open(context, items, self.state_store_key, self._memory_pages)
        self._landing = BatchLanding(
            self._run,
            self.hook,
            self.log,
            dest_conn_id=self.dest_conn_id,
            overwrite=self.overwrite,
            chunk_size=self.chunk_size,
            retry_policy=self.http_retry_policy,
            threads=self.landing_threads,
            cancel_on_kill=self.cancel_on_kill,
        )
        self._submission = BatchSubmitter(self._run, self.hook, self.create_hook, self.log, lambda: self._killed)
        return folder

    @property
    def _batch(self) -> BatchRun:
        assert self._run is not None, "a run begins with _begin"
        return self._run

    @property
    def _lander(self) -> BatchLanding:
        assert self._landing is not None, "a run begins with _begin"
        return self._landing

    @property
    def _submitter(self) -> BatchSubmitter:
        assert self._submission is not None, "a run begins with _begin"
        return self._submission

    def _advance(
        self, context: Context, folder: str, started_at: float, *, paused_until: float | None, rounds: int
    ) -> Any:
        """Submit what the window allows, land what finished, then wait (deferred or here) until all ended.

        Submitting first lets the new generations render while the finished ones land (the finished ones
        no longer count in the window), rather than after.
        """
        run, style = self._batch, self.hook.settings.style
        window = BatchWindow.for_style(
            style, self.max_in_flight, self.max_creates_per_minute, self.rate_window, paused_until
        )
        end_time = started_at + self.timeout if self.timeout is not None else None
        while True:
            rounds += 1
            self._stop_if_killed()
            self._submitter.submit_round(window, end_time)
            self._lander.land_ready(folder)
            self._stop_if_killed()
            log_round(self.log, run.entries(), rounds, started_at)
            in_flight, pending = run.in_flight_ids(), run.has_unsubmitted()
            if not in_flight and not pending:
                return finish_batch(self, context, self._batch, folder, self.dest_conn_id, self.min_success)
            wake_at = None if not pending else window.next_create_at(run.entries(), len(in_flight))
            if not in_flight and window.slept_until_next_create(wake_at):
                continue
            self._wait(window, in_flight, pending, started_at, end_time, wake_at, rounds)

    def _stop_if_killed(self) -> None:
        if self._killed:
            raise VideoGenError("The task was killed: the batch stopped. A retry reconnects to what it submitted.")

    def _wait(
        self,
        window: BatchWindow,
        in_flight: list[str],
        pending: bool,
        started_at: float,
        end_time: float | None,
        wake_at: float | None,
        rounds: int,
    ) -> None:
        """Wait for the generations in flight, in the triggerer (deferred) or here; take what the wait saw."""
        if end_time is not None and wake_at is not None:
            wake_at = min(wake_at, end_time)
        trigger = VideoBatchTrigger(
            video_task_ids=in_flight,
            videogen_conn_id=self.videogen_conn_id,
            poll_interval=self.poll_interval,
            end_time=end_time,
            resume_after=window.resume_after(len(in_flight), pending),
            wake_at=wake_at,
            cancel_on_kill=self.cancel_on_kill,
        )
        if self.deferrable:
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                kwargs={"started_at": started_at, "paused_until": window.paused_until, "rounds": rounds},
                timeout=deferral_timeout(end_time, self.hook.settings.timeout),
            )
        # Not deferrable: wait as the trigger would, in this worker; a kill meanwhile cancels what is in flight.
        self._in_flight_ids = in_flight
        try:
            event = wait_as_the_trigger(trigger, VideoGenHook(self.videogen_conn_id, retry_policy=_ONE_ATTEMPT))
        finally:
            self._in_flight_ids = []
        self._lander.take_event(event)
