"""The simulator's state: tasks and their time-based lifecycle, queued faults, the request log."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import hmac
import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from airflow_provider_videogen.testing._media import clip_video
from airflow_provider_videogen.testing.simulator import routes
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

_RESOLUTIONS = {"480p": (864, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


@dataclass(eq=False)
class Task:
    """One generation task; its status follows from the clock unless pinned or cancelled."""

    id: str
    style: str
    model: str
    created: float
    queued_seconds: float
    running_seconds: float
    final_status: str
    error_code: str | None
    error_message: str | None
    return_last_frame: bool
    video_size: int
    url_ttl: float
    shape: str | None
    created_body: Any
    params: dict[str, Any]
    upstream_id: str
    pinned: str | None = None
    pinned_at: float = 0.0
    cancelled_at: float | None = None
    clip: bool = False
    """Its video and last frame are the sample clip's (the simulator's ``clip`` setting)."""

    def timeline(self, now: float) -> tuple[str, float | None, float | None, float]:
        """Return ``(status, started_at, finished_at, updated_at)`` at time ``now``."""
        expected_start = self.created + self.queued_seconds
        expected_finish = expected_start + self.running_seconds
        if self.pinned is not None:
            status = self.pinned
            if status == "queued":
                return status, None, None, self.pinned_at
            started = min(expected_start, self.pinned_at)
            if status in FINAL_STATUSES:
                return status, started, self.pinned_at, self.pinned_at
            return status, started, None, self.pinned_at
        if self.cancelled_at is not None:
            return "cancelled", None, self.cancelled_at, self.cancelled_at
        if now < expected_start:
            return "queued", None, None, self.created
        if now < expected_finish:
            return "running", expected_start, None, expected_start
        return self.final_status, expected_start, expected_finish, expected_finish

    def status(self, now: float) -> str:
        """Return the status at time ``now``."""
        return self.timeline(now)[0]

    def expires_at(self, now: float) -> float:
        """Return when the task's files expire (``url_ttl`` after it finished, or will finish)."""
        finished = self.timeline(now)[2]
        if finished is None:
            finished = self.created + self.queued_seconds + self.running_seconds
        return finished + self.url_ttl

    def error(self, status: str) -> tuple[str, str] | None:
        """Return ``(code, message)`` of the task's failure in ``status``, if it failed."""
        if self.error_code is not None and status in ("failed", "expired"):
            return self.error_code, self.error_message or self.error_code
        if status == "failed":
            return "OutputVideoSensitiveContentDetected", self.error_message or MSG_OUTPUT_MODERATION
        return None


@dataclass(eq=False)
class Fault:
    """A queued fault: what goes wrong, for which requests, how often."""

    id: int
    kind: str
    target: str
    times: int
    task_id: str | None
    status: int | None
    retry_after: str | None
    body: Any
    content_type: str | None
    delay: float
    truncate_at: int | None
    rate: float | None = None
    escape: str = "raw"
    size: int | None = None
    then_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Describe the fault for the control API."""
        return dataclasses.asdict(self)


class LogEntry:
    """A recorded request; the raw parts are decoded only when the log is read."""

    __slots__ = (
        "body", "fault", "headers", "method", "path", "query_string", "status", "target", "task_id", "task_status",
        "time",
    )  # fmt: skip

    def __init__(
        self, request: web.BaseRequest, target: str, task_id: str | None, body: bytes, task_status: str | None = None
    ) -> None:
        self.method = request.method
        self.path = request.path
        self.query_string = request.query_string
        self.headers = request.headers
        self.body = body
        self.target = target
        self.task_id = task_id
        # The named task's status when the request arrived: whether a cancel reached a finished task.
        self.task_status = task_status
        self.time = time.time()
        self.status: int | None = None
        self.fault: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Describe the request for the control API (query and JSON body decoded)."""
        query: dict[str, Any] = {}
        for key, value in parse_qsl(self.query_string, keep_blank_values=True):
            if key not in query:
                query[key] = value
            elif isinstance(query[key], list):
                query[key].append(value)
            else:
                query[key] = [query[key], value]
        body: Any = None
        if self.body:
            try:
                body = json.loads(self.body)
            except ValueError:
                body = self.body.decode("utf-8", "replace")
        return {
            "method": self.method,
            "path": self.path,
            "query": query,
            "query_string": self.query_string,
            "headers": dict(self.headers.items()),
            "body": body,
            "target": self.target,
            "task_id": self.task_id,
            "task_status": self.task_status,
            "time": self.time,
            "status": self.status,
            "fault": self.fault,
        }


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
    """Tasks, faults and request log of one simulator (used from its event loop only)."""

    def __init__(self, config: SimulatorConfig) -> None:
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
        style_routes = routes.style_routes(style)
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
