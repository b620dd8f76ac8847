"""Landing a batch's finished generations, and its outcomes: the manifest, the summary, the progress lines."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any

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
    Pages,
    short_error,
)
from airflow_provider_videogen.download import Landing, remove_abandoned_temporaries_in
from airflow_provider_videogen.download.destination import storage_path, storage_uri
from airflow_provider_videogen.exceptions import VideoGenError
from airflow_provider_videogen.operators.cancel import cancel_if_queued
from airflow_provider_videogen.operators.landing_step import emit_asset_events, refuse_an_unusable_destination
from airflow_provider_videogen.video_task import VideoTaskStatus

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

    from airflow_provider_videogen.batch_record import BatchItemRecord
    from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
    from airflow_provider_videogen.operators.batch_requests import BatchItem, BatchRun
    from airflow_provider_videogen.video_task import VideoTask

#: The manifest's name, beside the videos.
MANIFEST_NAME = "manifest.jsonl"
# An item's status as the manifest and the return value say it.
_OUTCOMES = {
    LANDED: "landed",
    LAND_FAILED: "failed",
    FAILED: "failed",
    UNKNOWN: "failed",
    CANCELLED: "cancelled",
    TIMEOUT: "timeout",
}


class BatchLanding:
    """Reads the generations a wait says finished, and lands the succeeded ones, several at a time.

    :param run: the run's items and record.
    :param hook: the sync hook: reads, cancels, landings.
    :param log: the task's log.
    :param dest_conn_id: the storage connection of the destination.
    :param overwrite: replace a destination file that holds a different video.
    :param chunk_size: bytes read and written per step of a copy.
    :param retry_policy: retries of broken downloads.
    :param threads: videos landed at once.
    :param cancel_on_kill: cancel the generations still queued at the deadline.
    """

    def __init__(
        self,
        run: BatchRun,
        hook: VideoGenHook,
        log: Any,
        *,
        dest_conn_id: str | None,
        overwrite: bool,
        chunk_size: int,
        retry_policy: RetryPolicy | None,
        threads: int,
        cancel_on_kill: bool,
    ) -> None:
        self.run = run
        self.hook = hook
        self.log = log
        self.dest_conn_id = dest_conn_id
        self.overwrite = overwrite
        self.chunk_size = chunk_size
        self.retry_policy = retry_policy
        self.threads = threads
        self.cancel_on_kill = cancel_on_kill
        # The landings under way, so that a kill (from another thread) can stop them.
        self._landings: set[Landing] = set()
        self._landings_lock = threading.Lock()

    def cancel(self) -> None:
        """Stop every landing under way."""
        with self._landings_lock:
            for landing in list(self._landings):
                landing.cancel()

    def take_event(self, event: Mapping[str, Any] | None) -> None:
        """Read the generations the wait says finished: succeeded ones are landed next, the others end here."""
        run = self.run
        if not isinstance(event, Mapping) or not isinstance(event.get("finished"), Mapping):
            raise VideoGenError(f"The batch's trigger sent an event this operator cannot read: {str(event)[:200]!r}.")
        if event.get("status") == "error":
            raise VideoGenError(f"The batch's wait failed: {event.get('message')}")
        finished: Mapping[str, str] = event["finished"]
        by_id = {e.video_task_id: (item, e) for item, e in zip(run.items, run.entries(), strict=True)}
        timed_out = []
        for video_task_id, how in finished.items():
            found = by_id.get(video_task_id)
            if found is None or found[1].status != IN_FLIGHT:
                continue
            item, entry = found
            if how == "timeout":
                entry.status = TIMEOUT
                entry.outcome = {"error": short_error("timeout", "Still not finished at the deadline.")}
                run.record.put(item.index, entry)
                timed_out.append(video_task_id)
            else:
                entry.status = READY  # read again and landed (or ended) by land_ready
                run.record.put(item.index, entry)
        if timed_out and self.cancel_on_kill:
            for video_task_id in timed_out:
                cancel_if_queued(self.hook, self.log, video_task_id, reason="the deadline passed")
        run.flush()

    def land_ready(self, folder: str) -> None:
        """Read the finished generations again and land the succeeded ones, ``threads`` at a time."""
        run = self.run
        ready = [(item, e) for item, e in zip(run.items, run.entries(), strict=True) if e.status == READY]
        if not ready:
            return
        # One listing of the folder for every file of the round, not one per file (a batch's folder holds
        # thousands): the temporary files a killed earlier try left for these names, and only these.
        remove_abandoned_temporaries_in(
            storage_path(folder, self.dest_conn_id), {f"{item.key}.mp4" for item, _ in ready}
        )
        with ThreadPoolExecutor(self.threads, thread_name_prefix="videogen-land") as pool:
            outcomes = list(pool.map(lambda pair: self._land_one(pair[0], pair[1], folder), ready))
        for (item, entry), (status, outcome) in zip(ready, outcomes, strict=True):
            entry.status, entry.outcome = status, outcome
            run.record.put(item.index, entry)
        run.flush()

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
            retry_policy=self.retry_policy,
            sweep=False,  # swept for the whole round by land_ready
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
        cost = prices.cost_of(task, model=item.model, seconds=self.run.request(item).duration)
        return cost.to_dict() if cost is not None else None


def finish_batch(
    operator: BaseOperator,
    context: Context,
    run: BatchRun,
    folder: str,
    dest_conn_id: str | None,
    min_success: int | None,
) -> dict[str, Any]:
    """Write the manifest, emit the asset events, return the summary; fail below ``min_success`` (``None``: all)."""
    lines, counts, cost = manifest_lines(run)
    for item, entry in zip(run.items, run.entries(), strict=True):
        if entry.status == LANDED:
            emit_asset_events(operator, context, landed_video(item, entry))
    manifest = write_manifest(folder, dest_conn_id, lines)
    summary: dict[str, Any] = {"items": len(run.items), **counts, "manifest": manifest, "cost": cost}
    needed = len(run.items) if min_success is None else min_success
    operator.log.info(
        "Batch done: %d landed, %d failed, %d cancelled, %d timed out of %d; manifest %s.",
        counts["landed"],
        counts["failed"],
        counts["cancelled"],
        counts["timeout"],
        len(run.items),
        manifest,
    )
    if counts["landed"] < needed:
        raise VideoGenError(
            f"Only {counts['landed']} of {len(run.items)} items landed, fewer than min_success={needed}; every "
            f"success has landed and is listed with each failure's error in {manifest}. A retry submits the "
            "failed items again and reconnects to the rest."
        )
    if type(run.record.pages) is not Pages:
        run.record.forget()
    return summary


def manifest_lines(run: BatchRun) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, str] | None]:
    """Return the manifest's line per item, the count of each outcome, and the total cost (``None``: unknown)."""
    lines: list[dict[str, Any]] = []
    counts = dict.fromkeys(("landed", "failed", "cancelled", "timeout"), 0)
    total, currency = Decimal(0), None
    for item, entry in zip(run.items, run.entries(), strict=True):
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
    return lines, counts, {"amount": str(total), "currency": currency} if currency is not None else None


def write_manifest(folder: str, dest_conn_id: str | None, lines: list[dict[str, Any]]) -> str:
    """Write ``manifest.jsonl`` in ``folder``, a JSON line per item; return its path."""
    path = storage_path(folder + MANIFEST_NAME, dest_conn_id)
    text = "".join(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n" for line in lines)
    path.write_text(text)
    return folder + MANIFEST_NAME


def landed_video(item: BatchItem, entry: BatchItemRecord) -> dict[str, Any]:
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


def batch_folder(destination: Any) -> str:
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


def log_round(log: Any, entries: list[BatchItemRecord], rounds: int, started_at: float) -> None:
    """Say in one line how far the batch is: submitted, in flight, done, and the time left."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.status] = counts.get(entry.status, 0) + 1
    done = sum(counts.get(status, 0) for status in ENDED)
    submitted = sum(1 for e in entries if e.video_task_id is not None)
    elapsed = time.time() - started_at
    left = len(entries) - done
    eta = f"about {_duration(elapsed / done * left)} left" if done and left else "time left unknown" if left else "done"
    log.info(
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


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
