"""The simulator's state: tasks and their time-based lifecycle, queued faults, the request log.

The records it keeps (:class:`Task`, :class:`Fault`, :class:`LogEntry`) are defined beneath it, in
:mod:`~airflow_provider_videogen.testing.simulator.records`; their names stay importable from here.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import hmac
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from airflow_provider_videogen.testing._media import clip_video
from airflow_provider_videogen.testing.simulator.config import (
    DEFAULT_MODEL,
    ECHO_ESCAPES,
    FAULT_KINDS,
    FAULT_TARGETS,
    FINAL_STATUSES,
    MSG_OUTPUT_MODERATION,
    SHAPES,
    SimulatorConfig,
)
from airflow_provider_videogen.testing.simulator.records import Fault, LogEntry, Task, TaskStyle

__all__ = ["Fault", "LogEntry", "SimulatorState", "Task"]

_RESOLUTIONS = {"480p": (864, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


# -- helpers ---------------------------------------------------------------------------------


def _seed_for(task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big") % 2_147_483_647


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


def _task_params(fields: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """Derive the generation parameters reported back for a task from its create body's fields."""
    pick = fields.get

    resolution = pick("resolution")
    resolution = resolution if isinstance(resolution, str) and resolution else "720p"
    width, height = _RESOLUTIONS.get(resolution, (1280, 720))
    ratio = pick("ratio")
    seed = _as_int(pick("seed"), -1)
    generate_audio = pick("generate_audio")
    frames = pick("frames")
    return {
        "resolution": resolution,
        "ratio": ratio if isinstance(ratio, str) and ratio else "16:9",
        "duration": _as_int(pick("duration"), 5),
        "frames": frames if isinstance(frames, int) and not isinstance(frames, bool) else None,
        "framespersecond": _as_int(pick("framespersecond"), 24),
        "width": _as_int(pick("width"), width),
        "height": _as_int(pick("height"), height),
        "seed": seed if seed >= 0 else _seed_for(task_id),
        "generate_audio": bool(generate_audio) if generate_audio is not None else False,
        "service_tier": pick("service_tier") or "default",
        "execution_expires_after": _as_int(pick("execution_expires_after"), 172_800),
    }


class SimulatorState:
    """Tasks, faults and request log of one simulator (used from its event loop only).

    :param config: the simulator's settings.
    :param style_routes: returns the routes of a style by its name or alias; raises ``ValueError`` for another value.
    """

    def __init__(self, config: SimulatorConfig, style_routes: Callable[[str], TaskStyle]) -> None:
        # The routes of a style by its name or alias (``routes.style_routes``): given, since the routes
        # sit above the state and import its types.
        self.style_routes = style_routes
        self.initial_config = dataclasses.replace(config)
        self.config = dataclasses.replace(config)
        self.tasks: dict[str, Task] = {}
        self.faults: collections.deque[Fault] = collections.deque()
        self.log: collections.deque[LogEntry] = collections.deque(maxlen=config.request_log_size)
        self.secret = os.urandom(16)
        self._fault_ids = 0

    # -- configuration -------------------------------------------------------------------------

    def configure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Change settings at run time (validated); returns the new settings."""
        fields = {f.name for f in dataclasses.fields(SimulatorConfig)}
        unknown = set(changes) - fields
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        config = dataclasses.replace(self.config, **changes)
        if config.max_request_line != self.config.max_request_line:
            raise ValueError("max_request_line is fixed when the simulator starts")
        if config.request_log_size != self.config.request_log_size:
            self.log = collections.deque(self.log, maxlen=config.request_log_size)
        self.config = config
        return config

    def reset(self) -> None:
        """Forget tasks, faults and the request log; restore the initial settings."""
        self.tasks.clear()
        self.faults.clear()
        self.config = dataclasses.replace(self.initial_config)
        self.log = collections.deque(maxlen=self.config.request_log_size)

    # -- tasks ---------------------------------------------------------------------------------

    def add_task(
        self,
        style: str = "contents_generations",
        final_status: str = "succeeded",
        queued_seconds: float | None = None,
        running_seconds: float | None = None,
        video_size: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        return_last_frame: bool = False,
        model: str | None = None,
        task_id: str | None = None,
        shape: str | None = None,
        url_ttl: float | None = None,
        created_body: Any = None,
    ) -> Task:
        """Create a task directly (as if a client had created it)."""
        style_routes = self.style_routes(style)
        style = style_routes.name
        if final_status not in FINAL_STATUSES:
            raise ValueError(f"final_status must be one of {FINAL_STATUSES}")
        if shape is not None and shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}")
        if task_id is not None and task_id in self.tasks:
            raise ValueError(f"task {task_id!r} already exists")
        if task_id is not None and (not task_id or "/" in task_id):
            raise ValueError("task_id must be a non-empty string without '/'")
        config = self.config
        now = time.time()
        if task_id is None:
            while True:
                task_id = style_routes.new_task_id(now)
                if task_id not in self.tasks:
                    break
        queued = config.queued_seconds if queued_seconds is None else float(queued_seconds)
        running = config.running_seconds if running_seconds is None else float(running_seconds)
        clip = config.clip and video_size is None
        size = config.video_size if video_size is None else int(video_size)
        if clip:
            size = len(clip_video())
        if queued < 0 or running < 0 or size < 0:
            raise ValueError("queued_seconds, running_seconds and video_size must be >= 0")
        body = created_body if isinstance(created_body, Mapping) else {}
        task = Task(
            id=task_id,
            style=style,
            model=model or (body.get("model") if isinstance(body.get("model"), str) else None) or DEFAULT_MODEL,
            created=now,
            queued_seconds=queued,
            running_seconds=running,
            final_status=final_status,
            error_code=error_code,
            error_message=error_message,
            return_last_frame=bool(return_last_frame),
            video_size=size,
            url_ttl=config.url_ttl if url_ttl is None else float(url_ttl),
            shape=shape,
            created_body=created_body,
            params=_task_params(style_routes.generation_fields(body), task_id),
            upstream_id=style_routes.upstream_id(task_id, now),
            clip=clip,
        )
        self.tasks[task_id] = task
        return task

    def create_task(self, style: str, body: dict[str, Any], last_frame: bool, markers: dict[str, str]) -> Task:
        """Create a task for a create call: its prompt's markers choose the outcome, timings and size."""
        final_status = "succeeded"
        if "fail" in markers:
            final_status = "failed"
        elif "expire" in markers:
            final_status = "expired"
        kwargs: dict[str, Any] = {}
        for name in ("queued", "running"):
            with contextlib.suppress(KeyError, ValueError):
                kwargs[f"{name}_seconds"] = max(0.0, float(markers[name]))
        with contextlib.suppress(KeyError, ValueError):
            kwargs["video_size"] = max(0, int(markers["size"]))
        error_code = "OutputVideoSensitiveContentDetected" if final_status == "failed" else None
        if final_status == "expired":
            error_code = None
        return self.add_task(
            style,
            final_status=final_status,
            error_code=error_code,
            error_message=MSG_OUTPUT_MODERATION if error_code else None,
            return_last_frame=last_frame,
            model=body["model"],
            created_body=body,
            **kwargs,
        )

    def set_status(self, task_id: str, status: str) -> Task:
        """Pin the status of a task (any string; ``"auto"`` returns to the time-based lifecycle)."""
        task = self.tasks[task_id]
        if not isinstance(status, str) or not status:
            raise ValueError("status must be a non-empty string")
        if status == "auto":
            task.pinned = None
        else:
            task.pinned = status
            task.pinned_at = time.time()
        return task

    def task_dict(self, task: Task, base: str) -> dict[str, Any]:
        """Describe a task for the control API."""
        now = time.time()
        status, started, finished, updated = task.timeline(now)
        return {
            "id": task.id,
            "style": task.style,
            "model": task.model,
            "status": status,
            "pinned_status": task.pinned,
            "final_status": task.final_status,
            "created_at": task.created,
            "started_at": started,
            "finished_at": finished,
            "updated_at": updated,
            "queued_seconds": task.queued_seconds,
            "running_seconds": task.running_seconds,
            "error_code": task.error_code,
            "error_message": task.error_message,
            "return_last_frame": task.return_last_frame,
            "video_size": task.video_size,
            "video_url": self.file_url(task, "videos", base, now),
            "last_frame_url": self.file_url(task, "frames", base, now) if task.return_last_frame else None,
            "url_expires_at": task.expires_at(now),
            "shape": task.shape,
            "upstream_id": task.upstream_id,
            "created_body": task.created_body,
            "params": task.params,
        }

    # -- file URLs -----------------------------------------------------------------------------

    def signature(self, kind: str, task_id: str, expires: str) -> str:
        """Return the signature of a file URL (``kind``: ``videos`` or ``frames``)."""
        message = f"{kind}/{task_id}:{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    def file_url(self, task: Task, kind: str, base: str, now: float) -> str:
        """Return the signed URL of a task's file on the file host at ``base``, valid until it expires."""
        expires = str(math.ceil(task.expires_at(now)))
        ext = "mp4" if kind == "videos" else "png"
        sig = self.signature(kind, task.id, expires)
        return f"{base}/_files/{kind}/{task.id}.{ext}?X-Expires={expires}&X-Signature={sig}"

    # -- faults --------------------------------------------------------------------------------

    def add_fault(
        self,
        kind: str,
        target: str = "any",
        status: int | None = None,
        retry_after: str | float | None = None,
        body: Any = None,
        content_type: str | None = None,
        times: int = 1,
        task_id: str | None = None,
        delay: float = 1.0,
        truncate_at: int | None = None,
        rate: float | None = None,
        escape: str = "raw",
        size: int | None = None,
        then_status: str | None = None,
    ) -> Fault:
        """Queue a fault; ``times <= 0`` makes it permanent until cleared.

        ``then_status`` pins the fault's task (``task_id``) to that status once the fault has fired: the
        task moves on between this answer and the client's next request (a retry, a cancel after a kill).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if target not in FAULT_TARGETS:
            raise ValueError(f"target must be one of {FAULT_TARGETS}")
        if status is not None and not 100 <= int(status) <= 599:
            raise ValueError("status must be an HTTP status code")
        if truncate_at is not None and int(truncate_at) < 0:
            raise ValueError("truncate_at must be >= 0")
        if float(delay) < 0:
            raise ValueError("delay must be >= 0")
        if kind == "throttle" and (target != "download" or rate is None or not float(rate) > 0):
            raise ValueError("a throttle fault needs target 'download' and a rate > 0 (bytes per second)")
        if escape not in ECHO_ESCAPES:
            raise ValueError(f"escape must be one of {ECHO_ESCAPES}")
        if size is not None and int(size) < 0:
            raise ValueError("size must be >= 0")
        if then_status is not None and (task_id is None or not isinstance(then_status, str) or not then_status):
            raise ValueError("then_status needs a task_id and a non-empty status")
        self._fault_ids += 1
        fault = Fault(
            id=self._fault_ids,
            kind=kind,
            target=target,
            times=int(times),
            task_id=task_id,
            status=None if status is None else int(status),
            retry_after=None if retry_after is None else _retry_after_text(retry_after),
            body=body,
            content_type=content_type,
            delay=float(delay),
            truncate_at=None if truncate_at is None else int(truncate_at),
            rate=None if rate is None else float(rate),
            escape=escape,
            size=None if size is None else int(size),
            then_status=then_status,
        )
        self.faults.append(fault)
        return fault

    def take_fault(self, target: str, task_id: str | None) -> Fault | None:
        """Consume the first queued fault matching a request, if any."""
        if not self.faults:
            return None
        for fault in self.faults:
            if fault.target not in (target, "any"):
                continue
            if fault.task_id is not None and fault.task_id != task_id:
                continue
            if fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
            return fault
        return None

    # -- request log ---------------------------------------------------------------------------

    def record(self, request: web.BaseRequest, target: str, task_id: str | None, body: bytes) -> LogEntry:
        """Log a request (when the log is on) and return its entry, for the answer's status."""
        task = self.tasks.get(task_id) if task_id is not None else None
        entry = LogEntry(request, target, task_id, body, task.status(time.time()) if task is not None else None)
        if self.config.request_log:
            self.log.append(entry)
        return entry

    def requests(
        self, target: str | None = None, method: str | None = None, task_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the recorded requests (oldest first), optionally filtered."""
        method = method.upper() if method else None
        return [
            entry.to_dict()
            for entry in self.log
            if (target is None or entry.target == target)
            and (method is None or entry.method == method)
            and (task_id is None or entry.task_id == task_id)
        ]


def _retry_after_text(value: str | float) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value)
