"""The normalized video task: one model for every answer shape of both API styles."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

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
    def from_api(cls, raw_status: Any) -> VideoTaskStatus:
        """Map any status spelling of either API style to a status.

        An unrecognised spelling maps to ``UNKNOWN``, which is not final, so a waiting task keeps
        waiting rather than mistaking a new spelling for an ending; it is logged once per spelling.
        """
        if raw_status is None:
            return cls.UNKNOWN
        key = str(raw_status).strip().lower()
        status = _SPELLINGS.get(key)
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

# Every spelling seen in the contents-generations API, the documented video-generations API, older
# gateway docs and the gateway's real (upper-case) answers.
_SPELLINGS: dict[str, VideoTaskStatus] = {
    "queued": VideoTaskStatus.QUEUED,
    "not_start": VideoTaskStatus.QUEUED,
    "submitted": VideoTaskStatus.QUEUED,
    "pending": VideoTaskStatus.QUEUED,
    "running": VideoTaskStatus.RUNNING,
    "in_progress": VideoTaskStatus.RUNNING,
    "processing": VideoTaskStatus.RUNNING,
    "succeeded": VideoTaskStatus.SUCCEEDED,
    "success": VideoTaskStatus.SUCCEEDED,
    "completed": VideoTaskStatus.SUCCEEDED,
    "failed": VideoTaskStatus.FAILED,
    "failure": VideoTaskStatus.FAILED,
    "cancelled": VideoTaskStatus.CANCELLED,
    "canceled": VideoTaskStatus.CANCELLED,
    "expired": VideoTaskStatus.EXPIRED,
    "unknown": VideoTaskStatus.UNKNOWN,
}
_UNKNOWN_SPELLINGS_SEEN: set[str] = set()


@dataclass(frozen=True)
class VideoTask:
    """A video generation task as one normalized, immutable record.

    Built by :func:`parse_video_task` from any answer of either API style. Optional fields the API
    did not send are ``None``.

    :param id: the video task id (``cgt-...`` or ``task_...``).
    :param status: the normalized status.
    :param raw_status: the status exactly as the API spelled it.
    :param video_url: download URL of the MP4 (pre-signed, valid about 24 hours).
    :param last_frame_url: download URL of the last frame PNG, when it was requested.
    :param model: the model that ran the task.
    :param error_code: the API's error code of a failed task (always a string).
    :param error_message: the API's error message of a failed task.
    :param created_at: creation time, unix seconds.
    :param updated_at: last update (or finish) time, unix seconds.
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
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """True once the task can no longer change."""
        return self.status.is_terminal

    def to_dict(self, *, include_raw: bool = True) -> dict[str, Any]:
        """Return plain JSON-safe data (for XCom); :meth:`from_dict` reverses it.

        :param include_raw: keep the whole answer under ``raw``. It is kept only while it is small
            (at most :data:`RAW_LIMIT_BYTES` as JSON), so a bloated answer never bloats XCom.
        """
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw" or include_raw}
        data["status"] = self.status.value
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


def parse_video_task(payload: Any, *, video_task_id: str | None = None) -> VideoTask:
    """Turn any query answer of either API style into a :class:`VideoTask`.

    Accepted shapes: the contents-generations task; the documented video-generations answer
    (``task_id``, ``url``, ``metadata``); and the gateway's real wrapped answer
    (``{"code", "message", "data": {...}}`` with upper-case statuses, ``result_url``,
    ``fail_reason`` and the upstream task nested in ``data.data``).

    :param payload: the decoded JSON answer.
    :param video_task_id: the id that was asked for, used when the answer does not repeat it.
    :raises ValueError: when the payload is not a JSON object describing a task.
    """
    if not isinstance(payload, Mapping):
        raise ValueError(f"expected a JSON object describing a video task, got {type(payload).__name__}")
    wrapped = payload.get("data")
    if "code" in payload and isinstance(wrapped, Mapping):
        return _parse_gateway(payload, wrapped, video_task_id)
    if "task_id" in payload or "url" in payload or isinstance(payload.get("metadata"), Mapping):
        return _parse_documented_video_generation(payload, video_task_id)
    return _parse_contents_generation(payload, video_task_id)


def _parse_contents_generation(task: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
    content = _mapping(task.get("content"))
    error = _mapping(task.get("error"))
    video_url = _str(content.get("video_url"))
    raw_status = _str(task.get("status"))
    return VideoTask(
        id=_str(task.get("id")) or video_task_id or "",
        status=VideoTaskStatus.from_api(raw_status),
        raw_status=raw_status,
        video_url=video_url,
        last_frame_url=_str(content.get("last_frame_url")),
        model=_str(task.get("model")),
        error_code=_str(error.get("code")),
        error_message=_str(error.get("message")),
        created_at=_int(task.get("created_at")),
        updated_at=_int(task.get("updated_at")),
        duration=_float(task.get("duration")),
        fps=_float(task.get("framespersecond", task.get("fps"))),
        width=_int(task.get("width")),
        height=_int(task.get("height")),
        resolution=_str(task.get("resolution")),
        ratio=_str(task.get("ratio")),
        seed=_int(task.get("seed")),
        # The contents-generations API documents its video URL as an MP4 file.
        format=_str(task.get("format")) or ("mp4" if video_url else None),
        generate_audio=_bool(task.get("generate_audio")),
        progress=_progress(task.get("progress")),
        usage=dict(_mapping(task.get("usage"))),
        raw=dict(task),
    )


def _parse_documented_video_generation(task: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
    metadata = _mapping(task.get("metadata"))
    error = _mapping(task.get("error"))
    raw_status = _str(task.get("status"))
    return VideoTask(
        id=_str(task.get("task_id")) or _str(task.get("id")) or video_task_id or "",
        status=VideoTaskStatus.from_api(raw_status),
        raw_status=raw_status,
        video_url=_str(task.get("url")) or _str(task.get("video_url")),
        model=_str(task.get("model")),
        error_code=_str(error.get("code")),
        error_message=_str(error.get("message")),
        created_at=_int(task.get("created_at")),
        updated_at=_int(task.get("updated_at")),
        duration=_float(metadata.get("duration")),
        fps=_float(metadata.get("fps")),
        width=_int(metadata.get("width")),
        height=_int(metadata.get("height")),
        seed=_int(metadata.get("seed")),
        format=_str(task.get("format")),
        progress=_progress(task.get("progress")),
        raw=dict(task),
    )


def _parse_gateway(envelope: Mapping[str, Any], data: Mapping[str, Any], video_task_id: str | None) -> VideoTask:
    upstream_raw = data.get("data")
    upstream = _parse_contents_generation(upstream_raw, video_task_id) if isinstance(upstream_raw, Mapping) else None
    raw_status = _str(data.get("status"))
    status = VideoTaskStatus.from_api(raw_status)
    if status is VideoTaskStatus.UNKNOWN and upstream is not None:
        status = upstream.status
    error_code, error_message = _fail_reason(data.get("fail_reason"))
    if upstream is not None:
        error_code = upstream.error_code or error_code
        error_message = error_message or upstream.error_message
    if status.is_failure and not error_message and upstream is not None:
        error_message = upstream.error_message
    return VideoTask(
        id=_str(data.get("task_id")) or _str(data.get("id")) or video_task_id or "",
        status=status,
        raw_status=raw_status,
        video_url=_str(data.get("result_url")) or _str(data.get("url")) or _attr(upstream, "video_url"),
        last_frame_url=_attr(upstream, "last_frame_url"),
        model=_str(data.get("model")) or _attr(upstream, "model"),
        error_code=error_code,
        error_message=error_message,
        created_at=_int(data.get("submit_time")) or _int(data.get("created_at")) or _attr(upstream, "created_at"),
        updated_at=_int(data.get("finish_time"))
        or _int(data.get("updated_at"))
        or _int(data.get("start_time"))
        or _attr(upstream, "updated_at"),
        duration=_attr(upstream, "duration"),
        fps=_attr(upstream, "fps"),
        width=_attr(upstream, "width"),
        height=_attr(upstream, "height"),
        resolution=_attr(upstream, "resolution"),
        ratio=_attr(upstream, "ratio"),
        seed=_attr(upstream, "seed"),
        format=_str(data.get("format")) or _attr(upstream, "format"),
        generate_audio=_attr(upstream, "generate_audio"),
        progress=_progress(data.get("progress")),
        usage=dict(upstream.usage) if upstream is not None else {},
        raw=dict(envelope),
    )


def _fail_reason(reason: Any) -> tuple[str | None, str | None]:
    """Read the gateway's ``fail_reason``, which is sometimes an upstream error as a JSON string."""
    text = _str(reason)
    if not text:
        return None, None
    try:
        decoded = json.loads(text)
    except ValueError:
        return None, text
    error = _mapping(_mapping(decoded).get("error")) or _mapping(decoded)
    code, message = _str(error.get("code")), _str(error.get("message"))
    return code, message or text


def _attr(task: VideoTask | None, name: str) -> Any:
    return getattr(task, name) if task is not None else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value)
    return text if text != "" else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _progress(value: Any) -> int | None:
    if isinstance(value, str):
        value = value.strip().rstrip("%")
    return _int(value)


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
