"""``GenerateVideosOperator``: many generations in one task, in a window the service takes, each paid for once."""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_videogen import _arguments
from airflow_provider_videogen._compat import conf
from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.batch_record import (
    CANCELLED,
    ENDED,
    FAILED,
    IN_FLIGHT,
    INTENT,
    LAND_FAILED,
    LANDED,
    PENDING,
    READY,
    TIMEOUT,
    UNKNOWN,
    BatchItemRecord,
    BatchRecord,
    Pages,
    batch_pages,
    short_error,
)
from airflow_provider_videogen.cost import CostUnknown
from airflow_provider_videogen.download import Landing
from airflow_provider_videogen.download.destination import storage_uri
from airflow_provider_videogen.exceptions import (
    VideoGenerationNotSavedError,
    VideoGenerationOverBudgetError,
    VideoGenError,
    VideoGenNotSupportedError,
    VideoGenTransientError,
    VideoTaskIdMissingError,
    VideoTaskMayExistError,
)
from airflow_provider_videogen.generation_record import request_fingerprint
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.generate import request_identity
from airflow_provider_videogen.operators.generation_arguments import checked_generation_params, read_max_cost
from airflow_provider_videogen.operators.landing_step import emit_asset_events, refuse_an_unusable_destination
from airflow_provider_videogen.retry import POLL_SCHEDULE
from airflow_provider_videogen.triggers.batch import VideoBatchTrigger
from airflow_provider_videogen.triggers.videogen import deferral_timeout
from airflow_provider_videogen.video_task import VideoTaskStatus

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_videogen.video_task import VideoTask

#: The fields an item of ``requests`` may have.
ITEM_FIELDS = ("model", "prompt", "image_urls", "generation_params", "key")
#: An item's key names its file (``<key>.mp4``): letters, digits, ``.``, ``_`` and ``-``, not leading with ``.``.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
#: Defaults where the connection's style publishes no limit.
DEFAULT_MAX_IN_FLIGHT = 10
DEFAULT_MAX_CREATES_PER_MINUTE = 60
#: Bytes read and written per step of each copy: a landing sets aside a few buffers of this size
#: whatever the file, and a batch lands thousands of videos of a few MiB (FetchVideoOperator's 8 MiB
#: suits one large file).
BATCH_CHUNK_SIZE = 1024 * 1024
#: The manifest's name, beside the videos.
MANIFEST_NAME = "manifest.jsonl"
# One attempt per create call: a 429 backs the whole batch off here, rather than one create inside the hook.
_ONE_ATTEMPT = RetryPolicy(max_attempts=1)
# A wait for the next create shorter than this is slept on the worker: deferring costs more.
_SLEEP_RATHER_THAN_DEFER = 5.0
# Seconds a listed generation may seem to predate the intent that asked for it (two clocks).
_CLOCK_SKEW = 60.0
# An item's status as the manifest and the return value say it.
_OUTCOMES = {
    LANDED: "landed",
    LAND_FAILED: "failed",
    FAILED: "failed",
    UNKNOWN: "failed",
    CANCELLED: "cancelled",
    TIMEOUT: "timeout",
}


@dataclass(frozen=True)
class BatchItem:
    """One checked item of ``requests``.

    :param index: its place in ``requests``.
    :param key: names it in the manifest and its file (``<key>.mp4``); by default its index.
    """

    index: int
    key: str
    model: str
    prompt: str | None
    image_urls: tuple[Any, ...]
    generation_params: Mapping[str, Any]


def check_requests(requests: Any) -> list[BatchItem]:
    """Check the rendered ``requests`` and return its items; raise naming the item and field at fault.

    ``requests`` is a list of mappings (or its JSON text, as a template renders it), each with
    ``model``, ``prompt`` and/or ``image_urls``, optional ``generation_params`` and ``key``.
    """
    if isinstance(requests, str):
        try:
            requests = json.loads(requests)
        except ValueError:
            raise refused(
                f"requests must be a list of generation requests (or its JSON text); got text that is not JSON: "
                f"{requests[:80]!r}."
            ) from None
    if not isinstance(requests, Sequence) or isinstance(requests, (str, bytes)) or not requests:
        raise refused(
            "requests must be a non-empty list of generation requests, each a mapping with model, prompt, "
            f"image_urls, generation_params and an optional key; got {type(requests).__name__} {str(requests)[:80]!r}."
        )
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(requests):
        where = f"requests[{index}]"
        if not isinstance(item, Mapping):
            raise refused(f"{where} must be a mapping with model, prompt, ...; got {type(item).__name__}.")
        unknown = sorted(str(name) for name in item if name not in ITEM_FIELDS)
        if unknown:
            raise refused(
                f"{where} has unknown field(s) {', '.join(unknown)}: an item takes {', '.join(ITEM_FIELDS)} "
                "(other request fields go in its generation_params)."
            )
        model = item.get("model")
        if not isinstance(model, str) or not model.strip():
            raise refused(f"{where}.model must name the model to run, e.g. 'doubao-seedance-1-0-pro-250528'.")
        prompt = item.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise refused(f"{where}.prompt must be text; got {type(prompt).__name__}.")
        image_urls = item.get("image_urls") or ()
        if isinstance(image_urls, str) or not isinstance(image_urls, Sequence):
            raise refused(f"{where}.image_urls must be a list of URLs or {{'url', 'role'}} mappings.")
        if not (prompt or "").strip() and not image_urls:
            raise refused(f"{where} has neither a prompt nor image_urls: give it one or both.")
        params = item.get("generation_params") or {}
        if not isinstance(params, Mapping):
            raise refused(f"{where}.generation_params must be a mapping; got {type(params).__name__}.")
        try:
            params = checked_generation_params(params)
        except VideoGenError as error:
            raise refused(f"{where}.{error}") from None
        key = item.get("key", str(index))
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            raise refused(
                f"{where}.key must be 1 to 128 letters, digits, '.', '_' or '-' (not starting with '.'): it names "
                f"the item's file; got {key!r}."
            )
        if key in seen:
            raise refused(f"{where}.key {key!r} is also the key of requests[{seen[key]}]: keys name files, so differ.")
        seen[key] = index
        items.append(BatchItem(index, key, model, prompt, tuple(image_urls), params))
    return items


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
        self.poll_interval = None if poll_interval is None else _arguments.seconds("poll_interval", poll_interval)
        self.timeout = None if timeout is None else _arguments.seconds("timeout", timeout)
        self.max_cost = None if max_cost is None else read_max_cost(max_cost)
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
        self._items: list[BatchItem] = []
        self._record: BatchRecord | None = None
        # The record's pages where Airflow offers no store (execute called outside Airflow): this object's.
        self._memory_pages = Pages()
        self._identity: str | None = None
        self._killed = False
        self._submitting = False
        self._landings: set[Landing] = set()
        self._landings_lock = threading.Lock()
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
        items = self._record_items()
        self._start_try(items)
        self._check_budget()
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
        self._record_items()
        self._take_event(event)
        return self._advance(context, folder, started_at or time.time(), paused_until=paused_until, rounds=rounds)

    def on_kill(self) -> None:
        """Stop submitting and landing; cancel the generations in flight the style can still cancel (worker mode).

        A create under way is let finish so that its id is kept for the next try. A deferred batch
        is cancelled by its trigger's ``on_kill`` (Airflow 3.3+).
        """
        self._killed = True
        with self._landings_lock:
            for landing in list(self._landings):
                landing.cancel()
        if self.cancel_on_kill:
            for video_task_id in list(self._in_flight_ids):
                self._cancel_if_queued(video_task_id, reason="the task was killed")

    # ---- a run ----

    def _begin(self, context: Context) -> str:
        """Check the rendered fields; open the record. Return the destination folder, ending in ``/``."""
        self._items = check_requests(self.requests)
        folder = _folder(self.destination)
        self._identity = request_identity(context)
        pages = batch_pages(context, self.state_store_key)
        self._record = BatchRecord(self._memory_pages if type(pages) is Pages else pages, [i.key for i in self._items])
        return folder

    def _record_items(self) -> list[BatchItemRecord]:
        """Read the record; give every item its entry (a new one where the request changed or none was kept)."""
        assert self._record is not None
        kept = self._record.load()
        items: list[BatchItemRecord] = []
        for item, entry in zip(self._items, kept, strict=True):
            fingerprint = self._fingerprint(item)
            if entry is None or entry.fingerprint != fingerprint:
                if entry is not None and entry.video_task_id is not None:
                    self.log.warning(
                        "Item %s: video task %s, submitted by an earlier try, answered a different request (it "
                        "changed since), left as it is; this request is submitted anew.",
                        item.key,
                        entry.video_task_id,
                    )
                entry = BatchItemRecord(fingerprint)
                self._record.put(item.index, entry)
            items.append(entry)
        return items

    def _start_try(self, entries: list[BatchItemRecord]) -> None:
        """At a try's start: items whose generation failed go again; an intent without an id follows the kill rules."""
        assert self._record is not None
        again = 0
        for item, entry in zip(self._items, entries, strict=True):
            if entry.status in (FAILED, CANCELLED) or (entry.status == TIMEOUT and entry.video_task_id is None):
                # A failed generation produced no video (and the single operator submits again after one too).
                self._record.put(item.index, BatchItemRecord(entry.fingerprint))
                again += 1
            elif entry.status == TIMEOUT:
                # It may still finish: reconnect to it.
                entry.status, entry.outcome = IN_FLIGHT, {}
                self._record.put(item.index, entry)
            elif entry.status == LAND_FAILED:
                # Paid for and succeeded: read again and landed, never submitted again.
                entry.status, entry.outcome = READY, {}
                self._record.put(item.index, entry)
        if again:
            self.log.info("%d items that failed, were cancelled or never submitted in an earlier try go again.", again)
        reconnected = sum(1 for e in self._entries() if e.status == IN_FLIGHT)
        if reconnected:
            self.log.info(
                "Reconnecting to %d generations an earlier try submitted: not submitting them again.", reconnected
            )
        self._settle_intents(new_try=True)
        self._flush()

    def _advance(
        self, context: Context, folder: str, started_at: float, *, paused_until: float | None, rounds: int
    ) -> Any:
        """Land what finished, submit what the window allows, then wait (deferred or here) until all ended."""
        end_time = started_at + self.timeout if self.timeout is not None else None
        backoffs = 0
        while True:
            rounds += 1
            self._land_ready(folder)
            if self._killed:
                raise VideoGenError("The task was killed: the batch stopped. A retry reconnects to what it submitted.")
            self._settle_intents(new_try=False)
            if end_time is not None and time.time() >= end_time:
                self._time_out_unsubmitted()
            else:
                paused_until, backoffs = self._submit(paused_until, backoffs)
            self._flush()
            self._log_round(rounds, started_at)
            in_flight = [e.video_task_id for e in self._entries() if e.status == IN_FLIGHT and e.video_task_id]
            pending = [e for e in self._entries() if e.status in (PENDING, INTENT)]
            if not in_flight and not pending:
                return self._finish(context, folder)
            wake_at = None if not pending else self._next_create_at(paused_until, len(in_flight))
            if not in_flight and wake_at is not None and wake_at - time.time() <= _SLEEP_RATHER_THAN_DEFER:
                time.sleep(max(wake_at - time.time(), 0.0))
                continue
            if end_time is not None and wake_at is not None:
                wake_at = min(wake_at, end_time)
            trigger = VideoBatchTrigger(
                video_task_ids=in_flight,
                videogen_conn_id=self.videogen_conn_id,
                poll_interval=self.poll_interval,
                end_time=end_time,
                resume_after=self._resume_after(len(in_flight), bool(pending)),
                wake_at=wake_at,
                cancel_on_kill=self.cancel_on_kill,
            )
            if self.deferrable:
                self.defer(
                    trigger=trigger,
                    method_name="execute_complete",
                    kwargs={"started_at": started_at, "paused_until": paused_until, "rounds": rounds},
                    timeout=deferral_timeout(end_time, self.hook.settings.timeout),
                )
            self._take_event(self._wait_here(trigger, in_flight))

    def _wait_here(self, trigger: VideoBatchTrigger, in_flight: list[str]) -> dict[str, Any]:
        """Wait as the trigger would, in this worker (``deferrable=False``), with the connection already read."""
        hook = VideoGenHook(self.videogen_conn_id, retry_policy=_ONE_ATTEMPT)
        hook.settings  # read synchronously here: the async wait then finds it and looks nothing up  # noqa: B018
        self._in_flight_ids = in_flight

        async def wait() -> dict[str, Any]:
            try:
                return await trigger.wait(hook)
            finally:
                await hook.aclose()

        try:
            return asyncio.run(wait())
        finally:
            self._in_flight_ids = []

    # ---- submitting ----

    def _submit(self, paused_until: float | None, backoffs: int) -> tuple[float | None, int]:
        """Submit pending items while the window and the create rate allow; return the pause after a 429, if any."""
        assert self._record is not None
        limit, per_window = self._limits()
        # Counted once, then kept up to date here: counting every item before each create would make a
        # batch of thousands cost the square of its size.
        in_flight = self._in_flight_count()
        recent = deque(sorted(self._create_times(time.time() - self.rate_window)))
        for item in self._items:
            entry = self._entry(item)
            if entry.status != PENDING:
                continue
            if self._killed:
                break
            now = time.time()
            if paused_until is not None and now < paused_until:
                break
            while recent and recent[0] <= now - self.rate_window:
                recent.popleft()
            if in_flight >= limit or len(recent) >= per_window:
                break
            in_flight += 1
            recent.append(now)
            request = self._request(item)
            entry.status, entry.intent_at = INTENT, now
            self._record.put(item.index, entry)
            # The intent goes out with the previous item's id, in one write, before this create is sent.
            self._flush()
            self._submitting = True
            try:
                video_task_id = self.create_hook.create_task(request)
            except (VideoTaskMayExistError, VideoTaskIdMissingError) as error:
                self._create_outcome_unknown(item, entry, error)
                in_flight -= entry.status == UNKNOWN  # an intent still being settled holds its place
                continue
            except VideoGenTransientError as error:
                # Surely not taken (429, the request never reached the service): the item waits its turn again.
                entry.status, entry.intent_at = PENDING, None
                self._record.put(item.index, entry)
                in_flight -= 1
                recent.pop()
                backoffs += 1
                wait = POLL_SCHEDULE.next_wait(backoffs, retry_after=error.retry_after, interval=1.0, jitter=0.1)
                paused_until = time.time() + wait
                self.log.warning(
                    "The service refused a create for now (%s): the whole batch waits %.1f s before the next one; "
                    "item %s keeps its turn.",
                    error,
                    wait,
                    item.key,
                )
                break
            except VideoGenError as error:
                # Refused for good (invalid parameter, input moderation...): this item failed, nothing was paid.
                entry.status, entry.intent_at = FAILED, None
                entry.outcome = {
                    "error": short_error(error.api_code or type(error).__name__, error.api_message or error)
                }
                self._record.put(item.index, entry)
                self.log.warning("Item %s was refused: %s", item.key, error)
                in_flight -= 1
                continue
            finally:
                self._submitting = False
            backoffs = 0
            entry.status, entry.video_task_id, entry.intent_at, entry.created_at = (
                IN_FLIGHT,
                video_task_id,
                None,
                time.time(),
            )
            self._record.put(item.index, entry)
        return paused_until, backoffs

    def _create_outcome_unknown(self, item: BatchItem, entry: BatchItemRecord, error: VideoGenError) -> None:
        """Settle a create the service may have taken: never sent blindly again (see the class's description)."""
        assert self._record is not None
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
        self._record.put(item.index, entry)
        self.log.warning("Item %s: %s Not submitted again, so that nothing is paid twice.", item.key, error)

    def _settle_intents(self, *, new_try: bool) -> None:
        """Decide each item whose create was under way without an answer kept: as ``GenerateVideoOperator`` decides."""
        assert self._record is not None
        style = self.hook.settings.style
        owned = {e.video_task_id for e in self._entries() if e.video_task_id}
        for item in self._items:
            entry = self._entry(item)
            if entry.status != INTENT or entry.intent_at is None:
                continue
            if style.idempotent_create:
                # Sent again, the create carries the same idempotency token: it answers the lost generation.
                entry.status, entry.intent_at = PENDING, None
            elif style.can_reconcile:
                found = self.hook.find_generations(self._request(item), entry.intent_at - _CLOCK_SKEW)
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
            self._record.put(item.index, entry)

    def _time_out_unsubmitted(self) -> None:
        assert self._record is not None
        for item in self._items:
            entry = self._entry(item)
            if entry.status in (PENDING, INTENT):
                entry.status, entry.intent_at = TIMEOUT, None
                entry.outcome = {"error": short_error("timeout", "Not submitted before the deadline.")}
                self._record.put(item.index, entry)

    # ---- after a wait ----

    def _take_event(self, event: Mapping[str, Any] | None) -> None:
        """Read the generations the wait says finished: succeeded ones are landed next, the others end here."""
        assert self._record is not None
        if not isinstance(event, Mapping) or not isinstance(event.get("finished"), Mapping):
            raise VideoGenError(f"The batch's trigger sent an event this operator cannot read: {str(event)[:200]!r}.")
        if event.get("status") == "error":
            raise VideoGenError(f"The batch's wait failed: {event.get('message')}")
        finished: Mapping[str, str] = event["finished"]
        by_id = {e.video_task_id: (item, e) for item, e in zip(self._items, self._entries(), strict=True)}
        timed_out = []
        for video_task_id, how in finished.items():
            found = by_id.get(video_task_id)
            if found is None or found[1].status != IN_FLIGHT:
                continue
            item, entry = found
            if how == "timeout":
                entry.status = TIMEOUT
                entry.outcome = {"error": short_error("timeout", "Still not finished at the deadline.")}
                self._record.put(item.index, entry)
                timed_out.append(video_task_id)
            else:
                entry.status = READY  # read again and landed (or ended) by _land_ready
                self._record.put(item.index, entry)
        if timed_out and self.cancel_on_kill:
            for video_task_id in timed_out:
                self._cancel_if_queued(video_task_id, reason="the deadline passed")
        self._flush()

    def _land_ready(self, folder: str) -> None:
        """Read the finished generations again and land the succeeded ones, ``landing_threads`` at a time."""
        assert self._record is not None
        ready = [(item, e) for item, e in zip(self._items, self._entries(), strict=True) if e.status == READY]
        if not ready:
            return
        with ThreadPoolExecutor(self.landing_threads, thread_name_prefix="videogen-land") as pool:
            outcomes = list(pool.map(lambda pair: self._land_one(pair[0], pair[1], folder), ready))
        for (item, entry), (status, outcome) in zip(ready, outcomes, strict=True):
            entry.status, entry.outcome = status, outcome
            self._record.put(item.index, entry)
        self._flush()

    def _land_one(self, item: BatchItem, entry: BatchItemRecord, folder: str) -> tuple[str, dict[str, Any]]:
        """Read one finished generation and land it at ``<folder><key>.mp4``; return its status and outcome."""
        assert entry.video_task_id is not None
        try:
            task = self.hook.get_task(entry.video_task_id)
        except VideoGenError as error:
            # Not read now: kept with its id, so that a retry reads it again rather than paying again.
            return LAND_FAILED, {"error": short_error(error.api_code or type(error).__name__, str(error))}
        if task.status is not VideoTaskStatus.SUCCEEDED:
            if not task.is_terminal:
                return TIMEOUT, {"error": short_error("timeout", f"Still {task.status.value} when its wait ended.")}
            status = CANCELLED if task.status is VideoTaskStatus.CANCELLED else FAILED
            return status, {"error": short_error(task.error_code or task.status.value, task.error_message)}
        landing = Landing(
            f"{folder}{item.key}.mp4",
            dest_conn_id=self.dest_conn_id,
            overwrite=self.overwrite,
            chunk_size=self.chunk_size,
            retry_policy=self.http_retry_policy,
        )
        with self._landings_lock:
            self._landings.add(landing)
        try:
            landed = landing.land(task, self.hook.settings).to_xcom()
        except VideoGenError as error:
            # Kept with its id: a retry reads it again and lands it without paying again.
            self.log.warning("Item %s: landing video task %s failed: %s", item.key, task.id, error)
            return LAND_FAILED, {"error": short_error(type(error).__name__, str(error))}
        finally:
            with self._landings_lock:
                self._landings.discard(landing)
        return LANDED, {
            "path": landed["video_path"],
            "size_bytes": landed["size_bytes"],
            "sha256": landed["sha256"],
            "cost": self._cost(task, item),
        }

    def _cost(self, task: VideoTask, item: BatchItem) -> dict[str, str] | None:
        prices = self.hook.settings.prices
        if task.cost is not None:
            return task.cost.to_dict()
        if not prices.prices:
            return None
        cost = prices.cost_of(task, model=item.model, seconds=self._request(item).duration)
        return cost.to_dict() if cost is not None else None

    # ---- the end ----

    def _finish(self, context: Context, folder: str) -> dict[str, Any]:
        """Write the manifest, emit the asset events, return the summary; fail below ``min_success``."""
        lines, counts, total, currency = (
            [],
            dict.fromkeys(("landed", "failed", "cancelled", "timeout"), 0),
            Decimal(0),
            None,
        )
        for item, entry in zip(self._items, self._entries(), strict=True):
            status = _OUTCOMES.get(entry.status, "failed")
            counts[status] += 1
            cost = entry.outcome.get("cost")
            if cost is not None:
                total += Decimal(cost["amount"])
                currency = cost.get("currency")
            lines.append(
                {
                    "key": item.key,
                    "fingerprint": entry.fingerprint,
                    "video_task_id": entry.video_task_id,
                    "status": status,
                    "path": entry.outcome.get("path"),
                    "size_bytes": entry.outcome.get("size_bytes"),
                    "sha256": entry.outcome.get("sha256"),
                    "cost": cost,
                    "error": entry.outcome.get("error"),
                }
            )
            if status == "landed":
                emit_asset_events(self, context, _landed(item, entry))
        manifest = self._write_manifest(folder, lines)
        summary: dict[str, Any] = {
            "items": len(self._items),
            **counts,
            "manifest": manifest,
            "cost": {"amount": str(total), "currency": currency} if currency is not None else None,
        }
        needed = len(self._items) if self.min_success is None else self.min_success
        self.log.info(
            "Batch done: %d landed, %d failed, %d cancelled, %d timed out of %d; manifest %s.",
            counts["landed"],
            counts["failed"],
            counts["cancelled"],
            counts["timeout"],
            len(self._items),
            manifest,
        )
        if counts["landed"] < needed:
            raise VideoGenError(
                f"Only {counts['landed']} of {len(self._items)} items landed, fewer than min_success={needed}; every "
                f"success has landed and is listed with each failure's error in {manifest}. A retry submits the "
                "failed items again and reconnects to the rest."
            )
        if self._record is not None and type(self._record.pages) is not Pages:
            self._record.forget()
        return summary

    def _write_manifest(self, folder: str, lines: list[dict[str, Any]]) -> str:
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(folder + MANIFEST_NAME, conn_id=self.dest_conn_id)
        text = "".join(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n" for line in lines)
        path.write_text(text)
        return folder + MANIFEST_NAME

    # ---- helpers ----

    def _entries(self) -> list[BatchItemRecord]:
        assert self._record is not None
        return [entry for entry in self._record.items if entry is not None]

    def _entry(self, item: BatchItem) -> BatchItemRecord:
        assert self._record is not None
        entry = self._record.items[item.index]
        assert entry is not None
        return entry

    def _flush(self) -> None:
        """Write the record's changed pages; if that keeps failing, end the task for good rather than pay twice."""
        assert self._record is not None
        for attempt in (1, 2, 3):
            try:
                self._record.flush()
                return
            except Exception as error:
                if attempt == 3:
                    cause = self._record.why_not_saved()
                    raise VideoGenerationNotSavedError(
                        f"The batch's record could not be saved in {self._record.where} ({type(error).__name__}: "
                        f"{error}), so a retry would pay again for what this try submitted: the task fails without "
                        "retries instead." + (f" Why the write fails: {cause}" if cause else "")
                    ) from error
                time.sleep(0.5 * attempt)

    def _request(self, item: BatchItem) -> VideoGenerationRequest:
        identity = None if self._identity is None else f"{self._identity}/{item.key}"
        return VideoGenerationRequest.from_fields(
            model=item.model,
            prompt=item.prompt,
            image_urls=item.image_urls,
            request_identity=identity,
            **item.generation_params,
        )

    def _fingerprint(self, item: BatchItem) -> str:
        settings = self.hook.settings
        request = self._request(item)
        return request_fingerprint(
            style=settings.style.name,
            base_url=settings.base_url,
            model=request.model,
            body=settings.style.create_body(request),
            uploads=settings.style.create_uploads(request),
        )

    def _check_budget(self) -> None:
        """With ``max_cost``, refuse the batch before its first create when the sum of its estimates is above it."""
        if self.max_cost is None:
            return
        prices = self.hook.settings.prices
        cap = f"max_cost={self.max_cost} {prices.currency or ''}".rstrip()
        total = Decimal(0)
        for item in self._items:
            try:
                total += prices.estimate(self._request(item)).amount
            except CostUnknown as error:
                raise VideoGenerationOverBudgetError(
                    f"Not submitting the batch: {cap} is set, but the cost of requests[{item.index}] (key "
                    f"{item.key!r}) cannot be estimated: {error}. Set the price in the prices extra of connection "
                    f"{self.videogen_conn_id!r}, or drop max_cost."
                ) from None
        if total > self.max_cost:
            raise VideoGenerationOverBudgetError(
                f"Not submitting the batch: the estimated cost of its {len(self._items)} items, {total} "
                f"{prices.currency or ''}, is above {cap}. Ask for fewer or shorter videos, or raise max_cost."
            )
        self.log.info("Estimated cost of the batch %s %s, within %s.", total, prices.currency or "", cap)

    def _limits(self) -> tuple[int, int]:
        style = self.hook.settings.style
        in_flight = self.max_in_flight or style.max_in_flight or DEFAULT_MAX_IN_FLIGHT
        per_minute = self.max_creates_per_minute or style.max_creates_per_minute or DEFAULT_MAX_CREATES_PER_MINUTE
        return in_flight, per_minute

    def _in_flight_count(self) -> int:
        return sum(1 for e in self._entries() if e.status in (IN_FLIGHT, INTENT))

    def _create_times(self, since: float) -> list[float]:
        """Return when the creates sent after ``since`` went out (an answered one: when it answered)."""
        return [t for e in self._entries() if (t := e.created_at or e.intent_at or 0.0) > since]

    def _next_create_at(self, paused_until: float | None, in_flight: int) -> float | None:
        """Return when the next create may go out; ``None`` when only a finished generation frees the window."""
        limit, per_window = self._limits()
        if in_flight >= limit:
            return None
        now = time.time()
        times = sorted(self._create_times(now - self.rate_window))
        at = now if len(times) < per_window else times[len(times) - per_window] + self.rate_window
        return max(at, paused_until or 0.0)

    def _resume_after(self, in_flight: int, pending: bool) -> int:
        """How many finished generations are worth a resume: a quarter of the window while items wait, else all."""
        if not pending:
            return max(in_flight, 1)
        return max(1, min(in_flight, math.ceil(self._limits()[0] / 4)))

    def _log_round(self, rounds: int, started_at: float) -> None:
        entries = self._entries()
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry.status] = counts.get(entry.status, 0) + 1
        done = sum(counts.get(status, 0) for status in ENDED)
        submitted = sum(1 for e in entries if e.video_task_id is not None)
        elapsed = time.time() - started_at
        left = len(entries) - done
        eta = (
            f"about {_duration(elapsed / done * left)} left"
            if done and left
            else "time left unknown"
            if left
            else "done"
        )
        self.log.info(
            "Batch round %d: %d submitted, %d in flight, %d done (%d landed, %d failed), %d to submit; %s elapsed, %s.",
            rounds,
            submitted,
            counts.get(IN_FLIGHT, 0) + counts.get(INTENT, 0),
            done,
            counts.get(LANDED, 0),
            done - counts.get(LANDED, 0),
            counts.get(PENDING, 0),
            _duration(elapsed),
            eta,
        )

    def _cancel_if_queued(self, video_task_id: str, *, reason: str) -> None:
        try:
            if self.hook.cancel_task(video_task_id):
                self.log.warning("Cancelled video task %s because %s.", video_task_id, reason)
        except VideoGenNotSupportedError as error:
            self.log.info("Not cancelling video task %s: %s", video_task_id, error)
        except VideoGenError as error:
            self.log.warning("Could not cancel video task %s: %s", video_task_id, error)


def _folder(destination: Any) -> str:
    """Return the destination as a folder URL ending in ``/``; refuse anything else before anything is paid for."""
    from airflow.sdk import ObjectStoragePath

    text = (
        storage_uri(destination) + "/" if isinstance(destination, ObjectStoragePath) else str(destination or "").strip()
    )
    refuse_an_unusable_destination(text)  # an empty, relative or malformed one, before anything is paid for
    if not text.endswith("/"):
        raise refused(
            f"destination must be a folder, ending in '/': each item lands as <destination><key>.mp4 beside "
            f"{MANIFEST_NAME}; got {text!r}."
        )
    return text


def _landed(item: BatchItem, entry: BatchItemRecord) -> dict[str, Any]:
    """Return the landed-video mapping an asset event's extra is made from (no URL: nothing signed)."""
    return {
        "id": entry.video_task_id,
        "model": item.model,
        "video_path": entry.outcome.get("path"),
        "sha256": entry.outcome.get("sha256"),
        "size_bytes": entry.outcome.get("size_bytes"),
        "cost": entry.outcome.get("cost"),
        "key": item.key,
    }


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
