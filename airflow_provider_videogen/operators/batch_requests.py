"""The items of a ``GenerateVideosOperator``: its ``requests`` checked, and each item's entry in the batch's record."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen._errors import refused
from airflow_provider_videogen.batch_record import (
    IN_FLIGHT,
    INTENT,
    PENDING,
    BatchItemRecord,
    BatchRecord,
    Pages,
    batch_pages,
)
from airflow_provider_videogen.cost import CostUnknown
from airflow_provider_videogen.exceptions import (
    VideoGenerationNotSavedError,
    VideoGenerationOverBudgetError,
    VideoGenError,
)
from airflow_provider_videogen.generation_record import request_fingerprint
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.operators.generation_arguments import checked_generation_params
from airflow_provider_videogen.operators.submit_once import request_identity

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_videogen.cost import Prices
    from airflow_provider_videogen.settings import VideoGenConnectionSettings

#: The fields an item of ``requests`` may have.
ITEM_FIELDS = ("model", "prompt", "image_urls", "generation_params", "key")
#: An item's key names its file (``<key>.mp4``): letters, digits, ``.``, ``_`` and ``-``, not leading with ``.``.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


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
        checked = _check_item(index, item)
        if checked.key in seen:
            raise refused(
                f"requests[{index}].key {checked.key!r} is also the key of requests[{seen[checked.key]}]: keys name "
                "files, so differ."
            )
        seen[checked.key] = index
        items.append(checked)
    return items


def _check_item(index: int, item: Any) -> BatchItem:
    """Check one item of ``requests``; raise naming it and its field at fault."""
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
    return BatchItem(index, key, model, prompt, tuple(image_urls), params)


@dataclass
class BatchRun:
    """What one run of the batch (an ``execute`` or a resume) works with: its items and their record.

    :param items: the checked items of ``requests``, in order.
    :param record: the batch's record, one entry per item once read.
    :param identity: the task instance's identity; an item's request identity is ``<identity>/<key>``.
    """

    items: list[BatchItem]
    record: BatchRecord
    identity: str | None

    @classmethod
    def open(cls, context: Context, items: list[BatchItem], state_store_key: str, memory_pages: Pages) -> BatchRun:
        """Open the run of ``items`` with its record where the task instance keeps it (see :func:`batch_pages`).

        :param state_store_key: the record's key.
        :param memory_pages: the operator's own pages, where Airflow offers no store (``execute`` called
            outside Airflow).
        """
        pages = batch_pages(context, state_store_key)
        record = BatchRecord(memory_pages if type(pages) is Pages else pages, [i.key for i in items])
        return cls(items, record, request_identity(context))

    def read_record(self, settings: VideoGenConnectionSettings, log: Any) -> list[BatchItemRecord]:
        """Read the record; give every item its entry (a new one where the request changed or none was kept)."""
        kept = self.record.load()
        entries: list[BatchItemRecord] = []
        for item, entry in zip(self.items, kept, strict=True):
            fingerprint = self.fingerprint(item, settings)
            if entry is None or entry.fingerprint != fingerprint:
                if entry is not None and entry.video_task_id is not None:
                    log.warning(
                        "Item %s: video task %s, submitted by an earlier try, answered a different request (it "
                        "changed since), left as it is; this request is submitted anew.",
                        item.key,
                        entry.video_task_id,
                    )
                entry = BatchItemRecord(fingerprint)
                self.record.put(item.index, entry)
            entries.append(entry)
        return entries

    def entries(self) -> list[BatchItemRecord]:
        """Return every item's entry, in the items' order."""
        return [entry for entry in self.record.items if entry is not None]

    def in_flight_ids(self) -> list[str]:
        """Return the ids of the generations in flight (queued or running), in the items' order."""
        return [e.video_task_id for e in self.entries() if e.status == IN_FLIGHT and e.video_task_id]

    def has_unsubmitted(self) -> bool:
        """Whether an item is still to be submitted (or its create's answer is still to be settled)."""
        return any(e.status in (PENDING, INTENT) for e in self.entries())

    def entry(self, item: BatchItem) -> BatchItemRecord:
        """Return the entry of ``item``."""
        entry = self.record.items[item.index]
        assert entry is not None
        return entry

    def flush(self) -> None:
        """Write the record's changed pages; if that keeps failing, end the task for good rather than pay twice."""
        for attempt in (1, 2, 3):
            try:
                self.record.flush()
                return
            except Exception as error:
                if attempt == 3:
                    cause = self.record.why_not_saved()
                    raise VideoGenerationNotSavedError(
                        f"The batch's record could not be saved in {self.record.where} ({type(error).__name__}: "
                        f"{error}), so a retry would pay again for what this try submitted: the task fails without "
                        "retries instead." + (f" Why the write fails: {cause}" if cause else "")
                    ) from error
                time.sleep(0.5 * attempt)

    def request(self, item: BatchItem) -> VideoGenerationRequest:
        """Return the generation request of ``item``, with its own request identity."""
        identity = None if self.identity is None else f"{self.identity}/{item.key}"
        return VideoGenerationRequest.from_fields(
            model=item.model,
            prompt=item.prompt,
            image_urls=item.image_urls,
            request_identity=identity,
            **item.generation_params,
        )

    def fingerprint(self, item: BatchItem, settings: VideoGenConnectionSettings) -> str:
        """Return the fingerprint of ``item``'s create as ``settings``' style would send it."""
        request = self.request(item)
        return request_fingerprint(
            style=settings.style.name,
            base_url=settings.base_url,
            model=request.model,
            body=settings.style.create_body(request),
            uploads=settings.style.create_uploads(request),
        )


def check_budget(run: BatchRun, prices: Prices, max_cost: Decimal | None, videogen_conn_id: str, log: Any) -> None:
    """With ``max_cost``, refuse the batch before its first create when the sum of its estimates is above it."""
    if max_cost is None:
        return
    cap = f"max_cost={max_cost} {prices.currency or ''}".rstrip()
    total = Decimal(0)
    for item in run.items:
        try:
            total += prices.estimate(run.request(item)).amount
        except CostUnknown as error:
            raise VideoGenerationOverBudgetError(
                f"Not submitting the batch: {cap} is set, but the cost of requests[{item.index}] (key "
                f"{item.key!r}) cannot be estimated: {error}. Set the price in the prices extra of connection "
                f"{videogen_conn_id!r}, or drop max_cost."
            ) from None
    if total > max_cost:
        raise VideoGenerationOverBudgetError(
            f"Not submitting the batch: the estimated cost of its {len(run.items)} items, {total} "
            f"{prices.currency or ''}, is above {cap}. Ask for fewer or shorter videos, or raise max_cost."
        )
    log.info("Estimated cost of the batch %s %s, within %s.", total, prices.currency or "", cap)
