"""Where a try of ``GenerateVideosOperator`` keeps, item by item, what it submitted and how each item ended.

The batch's counterpart of :mod:`~airflow_provider_videogen.generation_record`, kept in the same
places (the ``task_state_store`` on Airflow 3.3+, Airflow Variables on 3.1 and 3.2) for the same
reason: a retry, or a worker lost mid-batch, must reconnect to every generation already paid for.

One record per batch, cut into pages of :data:`PAGE_SIZE` items (a page per key or Variable): a
batch of 5,000 items would make one value of about a megabyte, rewritten after every create call; a
page is rewritten only when one of its items changes. Each item is kept under its key with the
request's fingerprint, the video task id once it exists (before it, the time of the create's intent),
its status and, once it ended, what landed or why it failed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_videogen.generation_record import (
    RETENTION,
    fernet_incompatibility,
    record_key,
    variable_key,
)

log = logging.getLogger(__name__)

#: Items per page of the record.
PAGE_SIZE = 50
#: Longest error message kept per item (the API's own; a page must stay small).
MAX_ERROR_MESSAGE = 300

# An item's status in the record (the manifest's are fewer: see GenerateVideosOperator).
PENDING = "pending"  # never submitted (or surely not taken)
INTENT = "intent"  # its create call was about to be sent, or its answer was lost
UNKNOWN = "unknown"  # its create's outcome cannot be told, and the style cannot look: never submitted again
IN_FLIGHT = "in_flight"  # it has a video task id, not known to be finished
READY = "ready"  # its wait ended: it is read again, and landed if it succeeded
LAND_FAILED = "land_failed"  # it succeeded but did not land in this try: the next try lands it, paying nothing
LANDED = "landed"
FAILED = "failed"
CANCELLED = "cancelled"
TIMEOUT = "timeout"
#: Statuses an item ends in, in this try.
ENDED = frozenset({UNKNOWN, LANDED, LAND_FAILED, FAILED, CANCELLED, TIMEOUT})


@dataclass
class BatchItemRecord:
    """What the record keeps of one item.

    :param fingerprint: the request's fingerprint (see :func:`~.generation_record.request_fingerprint`).
    :param status: one of the statuses above.
    :param video_task_id: its generation, once the create call answered.
    :param intent_at: when its create call was about to be sent (unix seconds), while it has no id.
    :param created_at: when its create call answered (unix seconds): the create rate is counted from it.
    :param outcome: once it ended: ``size_bytes``, ``sha256``, ``cost`` and ``error`` (``code``, ``message``).
    """

    fingerprint: str
    status: str = PENDING
    video_task_id: str | None = None
    intent_at: float | None = None
    created_at: float | None = None
    outcome: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the kept value (short keys: a page holds :data:`PAGE_SIZE` of them)."""
        value: dict[str, Any] = {"f": self.fingerprint, "s": self.status}
        if self.video_task_id is not None:
            value["id"] = self.video_task_id
        if self.intent_at is not None:
            value["i"] = round(self.intent_at, 3)
        if self.created_at is not None:
            value["c"] = round(self.created_at, 3)
        if self.outcome:
            value["o"] = self.outcome
        return value

    @classmethod
    def from_json(cls, value: Any) -> BatchItemRecord | None:
        """Read a kept value; ``None`` for anything unreadable (the item is then submitted as new)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("f"), str) or not isinstance(value.get("s"), str):
            return None
        video_task_id = value.get("id") if isinstance(value.get("id"), str) and value.get("id") else None
        intent_at, created_at = _number(value.get("i")), _number(value.get("c"))
        kept = value.get("o")
        outcome = dict(kept) if isinstance(kept, Mapping) else {}
        status = value["s"]
        if status == INTENT and intent_at is None:
            return None
        if status in (IN_FLIGHT, READY, LANDED, LAND_FAILED) and video_task_id is None:
            return None
        return cls(value["f"], status, video_task_id, intent_at, created_at, outcome)


class BatchRecord:
    """The record of one batch: its items, in the order of the operator's ``requests``, kept page by page.

    :param pages: where the pages are kept (see :func:`batch_pages`).
    :param keys: the items' keys, in order.
    """

    def __init__(self, pages: Pages, keys: Sequence[str]) -> None:
        self.pages = pages
        self.keys = list(keys)
        self._dirty: set[int] = set()
        self.items: list[BatchItemRecord | None] = [None] * len(self.keys)

    @property
    def where(self) -> str:
        """Where the record is kept, for log lines and errors."""
        return self.pages.where

    def load(self) -> list[BatchItemRecord | None]:
        """Read every page; return what an earlier try kept of each item (``None``: nothing)."""
        position = {key: index for index, key in enumerate(self.keys)}
        for page in range(self._page_count()):
            value = self.pages.get(page)
            entries = value.get("items") if isinstance(value, Mapping) else None
            if not isinstance(entries, Mapping):
                continue
            for key, entry in entries.items():
                index = position.get(key)
                item = BatchItemRecord.from_json(entry)
                if index is None or item is None:
                    continue
                self.items[index] = item
                if index // PAGE_SIZE != page:  # the requests were reordered since: rewrite both pages
                    self._dirty.update({page, index // PAGE_SIZE})
        return list(self.items)

    def put(self, index: int, item: BatchItemRecord) -> None:
        """Change an item (kept at the next :meth:`flush`)."""
        self.items[index] = item
        self._dirty.add(index // PAGE_SIZE)

    def flush(self) -> None:
        """Write every page changed since the last flush (raise if one could not be written)."""
        for page in sorted(self._dirty):
            first = page * PAGE_SIZE
            entries = {
                self.keys[index]: item.to_json()
                for index, item in enumerate(self.items[first : first + PAGE_SIZE], start=first)
                if item is not None
            }
            self.pages.set(page, {"saved_at": round(time.time(), 3), "items": entries})
            self._dirty.discard(page)

    def forget(self) -> None:
        """Drop the record once the task ended for good, where the store is not expired by Airflow (never raises)."""
        self.pages.forget(self._page_count())

    def why_not_saved(self) -> str:
        """Return a known cause of failing writes on this installation and its remedy; ``""`` where none is known."""
        return self.pages.why_not_saved()

    def _page_count(self) -> int:
        return (len(self.keys) + PAGE_SIZE - 1) // PAGE_SIZE


class Pages:
    """Where a batch record's pages are kept: numbered JSON values."""

    where: str = "this try's memory"

    def __init__(self) -> None:
        self._values: dict[int, Any] = {}

    def get(self, page: int) -> Any:
        """Return the value of ``page``, or ``None``."""
        return self._values.get(page)

    def set(self, page: int, value: Mapping[str, Any]) -> None:
        """Keep ``value`` as ``page``."""
        self._values[page] = value

    def forget(self, count: int) -> None:
        """Drop ``count`` pages (never raises)."""
        self._values.clear()

    def why_not_saved(self) -> str:
        """Return a known cause of failing writes, and its remedy; ``""`` where none is known."""
        return ""


class StateStorePages(Pages):
    """Pages in Airflow 3.3's ``task_state_store`` (``<key>.<page>``), which Airflow expires after :data:`RETENTION`.

    Not dropped when the task ends: a batch cleared after it succeeded reconnects to its generations.
    """

    where = "the task_state_store"

    def __init__(self, store: Any, key: str) -> None:
        super().__init__()
        self.store = store
        self.key = key

    def get(self, page: int) -> Any:
        """Return the page's value, or ``None``."""
        return self.store.get(f"{self.key}.{page}")

    def set(self, page: int, value: Mapping[str, Any]) -> None:
        """Keep the page for :data:`RETENTION`."""
        self.store.set(f"{self.key}.{page}", dict(value), retention=RETENTION)

    def forget(self, count: int) -> None:
        """Keep the pages: Airflow expires them itself."""


class VariablePages(Pages):
    """Pages as Airflow Variables (Airflow 3.1 and 3.2), deleted when the task ends for good.

    :param name: builds the Variable key of a page (see :func:`~.generation_record.variable_key`).
    """

    def __init__(self, dag_id: str, run_id: str, task_id: str, map_index: int | None, key: str) -> None:
        super().__init__()
        self._ids = (dag_id, run_id, task_id, map_index)
        self.key = key
        self.where = f"the Airflow Variables of batch {key!r} of task {task_id!r}"

    def _variable(self, page: int) -> str:
        dag_id, run_id, task_id, map_index = self._ids
        return variable_key(dag_id, run_id, f"{task_id}.{self.key}.{page}", map_index)

    def get(self, page: int) -> Any:
        """Return the page's value within :data:`RETENTION`, or ``None``."""
        from airflow.sdk import Variable

        raw = Variable.get(self._variable(page), default=None)
        if raw is None:
            return None
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
            saved_at = float(value["saved_at"])
        except (ValueError, TypeError, KeyError):
            log.warning("Ignoring an unreadable page of %s.", self.where)
            return None
        return value if time.time() - saved_at <= RETENTION.total_seconds() else None

    def set(self, page: int, value: Mapping[str, Any]) -> None:
        """Write the page's Variable."""
        from airflow.sdk import Variable

        Variable.set(
            self._variable(page),
            json.dumps(value, separators=(",", ":")),
            description="The generations a GenerateVideosOperator task submitted, so that its retries reconnect "
            "to them; deleted when the task ends.",
        )

    def forget(self, count: int) -> None:
        """Delete the pages' Variables."""
        from airflow.sdk import Variable

        for page in range(count):
            try:
                Variable.delete(self._variable(page))
            except Exception as error:
                log.warning("Could not delete page %d of %s (%s); it is ignored after 7 days.", page, self.where, error)

    def why_not_saved(self) -> str:
        """Name Airflow 3.1 with cryptography 51+, which cannot encrypt any Variable, where that is installed."""
        return fernet_incompatibility()


def batch_pages(context: Mapping[str, Any], key: str) -> Pages:
    """Return where this task instance's batch record is kept: the ``task_state_store``, else Variables.

    Without a task instance (``execute`` called outside Airflow) the record lives in memory: a retry
    of such a call submits again.
    """
    store = context.get("task_state_store")  # Airflow 3.3+
    if store is not None:
        return StateStorePages(store, record_key(context, key))
    ti = context.get("ti")
    dag_id, run_id, task_id = (getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id"))
    if not (isinstance(dag_id, str) and isinstance(run_id, str) and isinstance(task_id, str)):
        return Pages()
    return VariablePages(dag_id, run_id, task_id, getattr(ti, "map_index", None), key)


def short_error(code: Any, message: Any) -> dict[str, Any]:
    """Return an item's error as kept: the API's code and message (the message cut to :data:`MAX_ERROR_MESSAGE`)."""
    text = None if message is None else str(message)
    if text is not None and len(text) > MAX_ERROR_MESSAGE:
        text = text[: MAX_ERROR_MESSAGE - 1] + "…"
    return {"code": None if code is None else str(code), "message": text}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
