"""The records the simulator keeps: its tasks, its queued faults, its logged requests.

They sit beneath the state that holds them and the routes that answer with them, so that neither
imports the other for their types.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from aiohttp import web

from airflow_provider_videogen.testing.simulator.config import FINAL_STATUSES, MSG_OUTPUT_MODERATION

__all__ = ["Fault", "LogEntry", "Task", "TaskStyle"]


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


class TaskStyle(Protocol):
    """What the state asks of a style's routes to make a task of that style (the routes sit above the state)."""

    @property
    def name(self) -> str:
        """The style's name (an alias given is read as this)."""
        ...

    def new_task_id(self, now: float) -> str:
        """Return a new task id in the style's own format."""
        ...

    def upstream_id(self, task_id: str, now: float) -> str:
        """Return the id of the task at the service behind a gateway style."""
        ...

    def generation_fields(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """Return the generation's fields (resolution, duration...) from a create call's body."""
        ...
