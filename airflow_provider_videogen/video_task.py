"""The normalized video task: one model for every answer shape of every API style."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any

from airflow_provider_videogen.cost import Cost, Prices

log = logging.getLogger(__name__)

RAW_LIMIT_BYTES = 64 * 1024
"""Largest answer (as JSON) that :meth:`VideoTask.to_dict` keeps under ``raw``."""


class VideoTaskStatus(str, Enum):
    """Where a video task is in its life, whatever spelling the API used."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True once the task can no longer change: succeeded, failed, cancelled or expired."""
        return self in _TERMINAL

    @property
    def is_failure(self) -> bool:
        """True for the final states that produced no video: failed, cancelled or expired."""
        return self in _FAILURES

    @classmethod
    def from_api(cls, raw_status: Any, spellings: Mapping[str, VideoTaskStatus]) -> VideoTaskStatus:
        """Map a status spelling to a status.

        :param raw_status: the status as the API spelled it (compared in lower case).
        :param spellings: the spellings of the API style that answered (its ``statuses``, in lower case).

        An unrecognised spelling maps to ``UNKNOWN``, which is not final, so a waiting task keeps
        waiting rather than mistaking a new spelling for an ending; it is logged once per spelling.
        """
        if raw_status is None:
            return cls.UNKNOWN
        key = str(raw_status).strip().lower()
        status = spellings.get(key)
        if status is None:
            if key not in _UNKNOWN_SPELLINGS_SEEN:
                _UNKNOWN_SPELLINGS_SEEN.add(key)
                log.warning("Unrecognised video task status %r; treating it as not final.", raw_status)
            return cls.UNKNOWN
        return status


_TERMINAL = frozenset(
    {VideoTaskStatus.SUCCEEDED, VideoTaskStatus.FAILED, VideoTaskStatus.CANCELLED, VideoTaskStatus.EXPIRED}
)
_FAILURES = _TERMINAL - {VideoTaskStatus.SUCCEEDED}

_UNKNOWN_SPELLINGS_SEEN: set[str] = set()


@dataclass(frozen=True)
class VideoTask:
    """A video generation task as one normalized, immutable record.

    Built by the connection's API style (:meth:`ApiStyle.parse_task
    <airflow_provider_videogen.styles.base.ApiStyle.parse_task>`) from any of its answers. Optional
    fields the API did not send are ``None``.

    :param id: the video task id (``cgt-...`` or ``task_...``).
    :param status: the normalized status.
    :param raw_status: the status exactly as the API spelled it.
    :param video_url: download URL of the MP4 (pre-signed, valid for the style's ``url_lifetime_hours``).
    :param last_frame_url: download URL of the last frame PNG, when it was requested.
    :param model: the model that ran the task.
    :param error_code: the API's error code of a failed task (always a string).
    :param error_message: the API's error message of a failed task.
    :param created_at: creation time, unix seconds.
    :param updated_at: last update (or finish) time, unix seconds.
    :param expires_at: when the service drops the task's file, unix seconds, where it says.
    :param duration: video length in seconds.
    :param fps: frames per second.
    :param width: width in pixels.
    :param height: height in pixels.
    :param resolution: resolution label such as ``720p``.
    :param ratio: aspect ratio such as ``16:9``.
    :param seed: the seed used.
    :param format: container format such as ``mp4``.
    :param generate_audio: whether the video has a sound track.
    :param progress: percentage done, when the API reports it.
    :param usage: token usage as the API reported it.
    :param cost: what the generation cost, where it is known (see :mod:`airflow_provider_videogen.cost`):
        set on a succeeded task read through a connection with a ``prices`` extra.
    :param raw: the whole answer, for anything the model does not name.
    """

    id: str
    status: VideoTaskStatus
    raw_status: str | None = None
    video_url: str | None = None
    last_frame_url: str | None = None
    model: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    expires_at: int | None = None
    duration: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    resolution: str | None = None
    ratio: str | None = None
    seed: int | None = None
    format: str | None = None
    generate_audio: bool | None = None
    progress: int | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    cost: Cost | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """True once the task can no longer change."""
        return self.status.is_terminal

    def with_cost(self, prices: Prices) -> VideoTask:
        """Return the task with its ``cost`` where it succeeded and ``prices`` can price it, else the task as it is."""
        if not prices.prices or self.cost is not None or self.status is not VideoTaskStatus.SUCCEEDED:
            return self
        cost = prices.cost_of(self)
        return self if cost is None else replace(self, cost=cost)

    def to_dict(self, *, include_raw: bool = True) -> dict[str, Any]:
        """Return plain JSON-safe data (for XCom); :meth:`from_dict` reverses it.

        :param include_raw: keep the whole answer under ``raw``. It is kept only while it is small
            (at most :data:`RAW_LIMIT_BYTES` as JSON), so a bloated answer never bloats XCom.
        """
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw" or include_raw}
        data["status"] = self.status.value
        data["cost"] = self.cost.to_dict() if self.cost is not None else None
        data["is_terminal"] = self.is_terminal
        safe: dict[str, Any] = _json_safe(data)
        if not include_raw:
            safe["raw"] = {}
        elif len(json.dumps(safe["raw"])) > RAW_LIMIT_BYTES:
            log.warning(
                "The answer for video task %s is larger than %d bytes as JSON: leaving it out of the task's data.",
                self.id,
                RAW_LIMIT_BYTES,
            )
            safe["raw"] = {}
        return safe

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoTask:
        """Rebuild a task from :meth:`to_dict` output (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["status"] = VideoTaskStatus(kwargs.get("status") or VideoTaskStatus.UNKNOWN.value)
        kwargs["usage"] = dict(kwargs.get("usage") or {})
        cost = kwargs.get("cost")
        kwargs["cost"] = Cost.from_dict(cost) if isinstance(cost, Mapping) else None
        kwargs["raw"] = dict(kwargs.get("raw") or {})
        return cls(**kwargs)

    def describe_failure(self) -> str:
        """One line naming the final state and the API's error code and message."""
        parts = [f"video task {self.id} ended {self.status.value}"]
        if self.raw_status and self.raw_status.lower() != self.status.value:
            parts[0] += f" (API status {self.raw_status!r})"
        if self.error_code:
            parts.append(f"error code {self.error_code}")
        if self.error_message:
            parts.append(f"message: {self.error_message}")
        return "; ".join(parts)


def _json_safe(value: Any) -> Any:
    """Reduce a value to JSON types, so XCom and trigger events can always carry it."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
