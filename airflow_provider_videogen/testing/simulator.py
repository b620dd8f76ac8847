"""An HTTP simulator of the two video-generation APIs the provider speaks.

Style 1, "contents generations" (RongCloud / Volcengine Ark shape)::

    POST   {prefix}/contents/generations/tasks          create  -> {"id": "cgt-..."}
    GET    {prefix}/contents/generations/tasks/{id}     query
    DELETE {prefix}/contents/generations/tasks/{id}     cancel (queued) or delete (final)
    GET    {prefix}/contents/generations/tasks          list

Style 2, "video generations" (new-api gateway shape, documented or as the gateway really answers)::

    POST   {prefix}/video/generations                   create
    GET    {prefix}/video/generations/{id}              query

Any path prefix is accepted (``/llm/v1``, ``/api/v3``, ``/v1``...): routes match on their suffix.
Videos and last frames are served without authentication under ``/_files/`` with expiring signed
URLs, and a control API under ``/_simulator/`` (no authentication, never recorded in the request
log) lets tests add tasks, pin statuses, inject faults and read the request log.

Run it as a process with ``python -m airflow_provider_videogen.testing.simulator --port 0``; it prints
one line ``VideoGen simulator listening on http://HOST:PORT`` and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import hmac
import json
import math
import os
import random
import re
import signal
import socket
import string
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from airflow_provider_videogen.testing import openai_videos
from airflow_provider_videogen.testing._media import frame_png, iter_video, video_sha256

__all__ = [
    "FAULT_KINDS",
    "FAULT_TARGETS",
    "STYLES",
    "SimulatorConfig",
    "create_app",
    "main",
    "start_server",
]

CONTENTS = "contents_generations"
VIDEO = "video_generations"
OPENAI = "openai_videos"
STYLES = (CONTENTS, VIDEO, OPENAI)
SHAPES = ("gateway", "documented")
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "expired")
FAULT_KINDS = (
    "http_error", "reset", "slow", "empty_body", "malformed_body", "truncate", "expired", "trickle", "throttle",
)  # fmt: skip
FAULT_TARGETS = ("query", "create", "cancel", "list", "download", "any")

DEFAULT_MODEL = "doubao-seedance-1-0-pro-250528"
MAX_PAGE_SIZE = 500
LISTEN_BACKLOG = 4096
_STYLE_ALIASES = {
    "contents_generations": CONTENTS,
    "contents": CONTENTS,
    "video_generations": VIDEO,
    "video": VIDEO,
    "openai_videos": OPENAI,
    "openai": OPENAI,
}
_RESOLUTIONS = {"480p": (864, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
_STREAM_THRESHOLD = 256 * 1024

_API_RE = re.compile(r"/(?:(contents/generations/tasks)|(video/generations))(?:/([^/]+))?/?$")
_FILE_RE = re.compile(r"^/_files/(videos|frames)/([^/]+)\.(mp4|png)$")
_MARKER_RE = re.compile(r"\[sim:([a-z-]+)(?:=([^\]]*))?\]")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")

_MSG_OUTPUT_MODERATION = "The request failed because the output video may contain sensitive information."
_MSG_INPUT_MODERATION = "The request failed because the input text may contain sensitive information."
_MSG_AUTH = "The API key in the request is missing or invalid."
_MALFORMED_BODY = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)


# --------------------------------------------------------------------------------------------------
# Configuration and records
# --------------------------------------------------------------------------------------------------


@dataclass
class SimulatorConfig:
    """Settings of a simulator instance.

    :param api_key: the only API key accepted (``Authorization: Bearer <api_key>``).
    :param queued_seconds: default time a task stays ``queued`` after creation.
    :param running_seconds: default time a task then stays ``running`` before its final status.
    :param video_size: default size in bytes of the videos served.
    :param video_generations_shape: how style-2 queries answer: ``"gateway"`` (the wrapped answer the
        new-api gateway really returns) or ``"documented"`` (the flat documented answer).
    :param url_ttl: seconds a file URL stays valid after the task finished.
    :param openai_poll_after_ms: the ``openai-poll-after-ms`` header of ``/videos`` answers (``None``: none).
    :param openai_direct_url: ``/videos`` objects carry ``metadata.url``, a direct file URL, as new-api's do.
    :param request_log: record requests (disable for benchmarks).
    :param request_log_size: the request log keeps only the most recent entries.
    """

    api_key: str = "sim-key"
    queued_seconds: float = 1.0
    running_seconds: float = 2.0
    video_size: int = 1_048_576
    video_generations_shape: str = "gateway"
    url_ttl: float = 86_400.0
    openai_poll_after_ms: int | None = None
    openai_direct_url: bool = False
    request_log: bool = True
    request_log_size: int = 50_000

    def __post_init__(self) -> None:
        if self.video_generations_shape not in SHAPES:
            raise ValueError(f"video_generations_shape must be one of {SHAPES}")
        if self.queued_seconds < 0 or self.running_seconds < 0:
            raise ValueError("queued_seconds and running_seconds must be >= 0")
        if self.video_size < 0:
            raise ValueError("video_size must be >= 0")
        if self.request_log_size < 1:
            raise ValueError("request_log_size must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@dataclass(eq=False)
class _Task:
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
        return self.timeline(now)[0]

    def expires_at(self, now: float) -> float:
        finished = self.timeline(now)[2]
        if finished is None:
            finished = self.created + self.queued_seconds + self.running_seconds
        return finished + self.url_ttl

    def error(self, status: str) -> tuple[str, str] | None:
        if self.error_code is not None and status in ("failed", "expired"):
            return self.error_code, self.error_message or self.error_code
        if status == "failed":
            return "OutputVideoSensitiveContentDetected", self.error_message or _MSG_OUTPUT_MODERATION
        return None


@dataclass(eq=False)
class _Fault:
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _LogEntry:
    """A recorded request; the raw parts are decoded only when the log is read."""

    __slots__ = ("body", "fault", "headers", "method", "path", "query_string", "status", "target", "task_id", "time")

    def __init__(self, request: web.BaseRequest, target: str, task_id: str | None, body: bytes) -> None:
        self.method = request.method
        self.path = request.path
        self.query_string = request.query_string
        self.headers = request.headers
        self.body = body
        self.target = target
        self.task_id = task_id
        self.time = time.time()
        self.status: int | None = None
        self.fault: str | None = None

    def to_dict(self) -> dict[str, Any]:
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
            "time": self.time,
            "status": self.status,
            "fault": self.fault,
        }


# --------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------


def _new_contents_id(now: float) -> str:
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    return f"cgt-{stamp}-{suffix}"


def _new_video_id() -> str:
    return "task_" + "".join(random.choices(string.ascii_letters + string.digits, k=32))


def _new_openai_id() -> str:
    return "video_" + "".join(random.choices(string.hexdigits.lower()[:16], k=32))


def _normalise_style(style: str) -> str:
    try:
        return _STYLE_ALIASES[style]
    except KeyError:
        raise ValueError(f"style must be one of {STYLES}") from None


def _seed_for(task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big") % 2_147_483_647


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    return int(value)


def _task_params(style: str, body: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    """Derive the generation parameters reported back for a task from its create body."""
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}

    def pick(key: str) -> Any:
        if style == VIDEO and key in meta:
            return meta[key]
        return body.get(key)

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
        "framespersecond": _as_int(pick("fps") if style == VIDEO else pick("framespersecond"), 24),
        "width": _as_int(body.get("width"), width) if style == VIDEO else width,
        "height": _as_int(body.get("height"), height) if style == VIDEO else height,
        "seed": seed if seed >= 0 else _seed_for(task_id),
        "generate_audio": bool(generate_audio) if generate_audio is not None else False,
        "service_tier": pick("service_tier") or "default",
        "execution_expires_after": _as_int(pick("execution_expires_after"), 172_800),
    }


def _markers(text: str) -> dict[str, str]:
    if "[sim:" not in text:
        return {}
    return {name: value or "" for name, value in _MARKER_RE.findall(text)}


class SimulatorState:
    """Tasks, faults and request log of one simulator (used from its event loop only)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.initial_config = dataclasses.replace(config)
        self.config = dataclasses.replace(config)
        self.tasks: dict[str, _Task] = {}
        self.faults: collections.deque[_Fault] = collections.deque()
        self.log: collections.deque[_LogEntry] = collections.deque(maxlen=config.request_log_size)
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
        style: str = CONTENTS,
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
    ) -> _Task:
        """Create a task directly (as if a client had created it)."""
        style = _normalise_style(style)
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
                task_id = (
                    _new_contents_id(now)
                    if style == CONTENTS
                    else _new_openai_id()
                    if style == OPENAI
                    else _new_video_id()
                )
                if task_id not in self.tasks:
                    break
        queued = config.queued_seconds if queued_seconds is None else float(queued_seconds)
        running = config.running_seconds if running_seconds is None else float(running_seconds)
        size = config.video_size if video_size is None else int(video_size)
        if queued < 0 or running < 0 or size < 0:
            raise ValueError("queued_seconds, running_seconds and video_size must be >= 0")
        body = created_body if isinstance(created_body, Mapping) else {}
        task = _Task(
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
            params=_task_params(style, body, task_id),
            upstream_id=task_id if style == CONTENTS else _new_contents_id(now),
        )
        self.tasks[task_id] = task
        return task

    def set_status(self, task_id: str, status: str) -> _Task:
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

    def task_dict(self, task: _Task, base: str) -> dict[str, Any]:
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
            "shape": task.shape if task.style == VIDEO else None,
            "upstream_id": task.upstream_id,
            "created_body": task.created_body,
            "params": task.params,
        }

    # -- file URLs -----------------------------------------------------------------------------

    def signature(self, kind: str, task_id: str, expires: str) -> str:
        message = f"{kind}/{task_id}:{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    def file_url(self, task: _Task, kind: str, base: str, now: float) -> str:
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
    ) -> _Fault:
        """Queue a fault; ``times <= 0`` makes it permanent until cleared."""
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
        self._fault_ids += 1
        fault = _Fault(
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
        )
        self.faults.append(fault)
        return fault

    def take_fault(self, target: str, task_id: str | None) -> _Fault | None:
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

    def record(self, request: web.BaseRequest, target: str, task_id: str | None, body: bytes) -> _LogEntry:
        entry = _LogEntry(request, target, task_id, body)
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


_TRICKLE_BYTES = 4


def _retry_after_text(value: str | float) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value)


# --------------------------------------------------------------------------------------------------
# Response helpers
# --------------------------------------------------------------------------------------------------


def _json(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload, separators=(",", ":")).encode(),
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _xml_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return web.Response(status=status, text=body, content_type="application/xml", headers=headers)


def _ark_error(status: int, code: str, message: str, type_: str, param: str | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if param is not None:
        error["param"] = param
    error["type"] = type_
    return _json(status, {"error": error})


def _video_error(status: int, message: str, type_: str, code: Any, param: Any = None) -> web.Response:
    return _json(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


def _gateway_error(status: int, code: str, message: str) -> web.Response:
    return _json(status, {"code": code, "message": message, "data": None})


_ARK_CODES = {
    400: ("InvalidParameter", "BadRequest", "The request is invalid."),
    401: ("AuthenticationError", "Unauthorized", _MSG_AUTH),
    403: ("AccessDenied", "Forbidden", "You do not have access to the requested resource."),
    404: ("ResourceNotFound", "NotFound", "The specified resource is not found."),
    429: (
        "RateLimitExceeded.EndpointRPMExceeded",
        "TooManyRequests",
        "Your account has exceeded the requests per minute (RPM) rate limit. Please try again later.",
    ),
    500: ("InternalServiceError", "InternalServerError", "The service encountered an unexpected internal error."),
    502: ("BadGateway", "BadGateway", "The upstream service answered badly."),
    503: ("ServerOverloaded", "ServiceUnavailable", "The service is currently overloaded. Please try again later."),
}
_XML_CODES = {
    400: ("BadRequest", "Bad Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    429: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


def _default_error(style: str | None, status: int, headers: Mapping[str, str]) -> web.Response:
    if style == OPENAI:
        code = {401: "invalid_api_key", 404: "video_not_found", 429: "rate_limit_exceeded"}.get(status, "server_error")
        return _json(
            status, {"error": {"message": f"simulated error {status}", "type": "api_error", "code": code}}, headers
        )
    if style == CONTENTS:
        code, type_, message = _ARK_CODES.get(status, ("SimulatedError", "Error", "Simulated error."))
        error = {"code": code, "message": message, "type": type_}
        return _json(status, {"error": error}, headers)
    if style == VIDEO:
        code = {401: "invalid_token", 404: "task_not_exist", 429: "rate_limit_exceeded"}.get(status, "upstream_error")
        message = {429: "rate limit exceeded, please try again later"}.get(status, f"simulated error {status}")
        return _json(status, {"error": {"message": message, "type": "new_api_error", "code": code}}, headers)
    xml_code, xml_message = _XML_CODES.get(status, ("SimulatedError", "Simulated error."))
    return _xml_error(status, xml_code, xml_message, headers)


def _fault_response(fault: _Fault, style: str | None) -> web.Response:
    """Build the answer of an ``http_error``, ``empty_body``, ``malformed_body`` or ``expired`` fault."""
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    if fault.kind == "empty_body":
        return web.Response(status=fault.status or 200, body=b"", headers={"Content-Type": "application/json"})
    if fault.kind == "malformed_body" and fault.body is None:
        return web.Response(status=fault.status or 200, text=_MALFORMED_BODY, content_type="text/html")
    if fault.kind == "expired" and fault.body is None:
        return _xml_error(fault.status or 403, "AccessDenied", "Request has expired", headers)
    status = fault.status or (200 if fault.kind == "malformed_body" else 403 if fault.kind == "expired" else 500)
    if fault.body is None:
        return _default_error(style, status, headers)
    if isinstance(fault.body, str):
        if fault.content_type:
            headers["Content-Type"] = fault.content_type
            return web.Response(status=status, body=fault.body.encode(), headers=headers)
        return web.Response(status=status, text=fault.body, headers=headers)
    body = json.dumps(fault.body).encode()
    headers["Content-Type"] = fault.content_type or "application/json"
    return web.Response(status=status, body=body, headers=headers)


def _drop_connection(request: web.BaseRequest) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.abort()
    # Writing the answer fails on the closed transport; aiohttp then drops it silently.
    return web.Response(status=500)


def _dropped(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _send_truncated(
    request: web.BaseRequest, response: web.StreamResponse, chunks: Any, total: int, limit: int
) -> web.StreamResponse:
    """Announce ``total`` bytes, send only ``limit`` of them, then close the connection."""
    response.content_length = total
    await response.prepare(request)
    sent = 0
    for chunk in chunks:
        if sent >= limit:
            break
        piece = chunk[: limit - sent]
        await response.write(piece)
        sent += len(piece)
    transport = request.transport
    if transport is not None:
        transport.close()
    return response


def _public_status_video(status: str, shape: str) -> str:
    if shape == "gateway":
        return {
            "queued": "QUEUED",
            "running": "IN_PROGRESS",
            "succeeded": "SUCCESS",
            "failed": "FAILURE",
            "cancelled": "FAILURE",
            "expired": "FAILURE",
        }.get(status, status)
    return {
        "queued": "queued",
        "running": "in_progress",
        "succeeded": "completed",
        "failed": "failed",
        "cancelled": "failed",
        "expired": "failed",
    }.get(status, status)


# --------------------------------------------------------------------------------------------------
# The application
# --------------------------------------------------------------------------------------------------

STATE_KEY = web.AppKey("videogen_simulator_state", SimulatorState)
CLOSING_KEY = web.AppKey("videogen_simulator_closing", asyncio.Event)


class _Simulator:
    """Request handlers bound to one :class:`SimulatorState`."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.closing = asyncio.Event()

    # -- dispatch ------------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/_simulator/"):
            return await self.control(request)
        if path.startswith("/_files/"):
            return await self.download(request)
        return await self.api(request)

    async def _pause(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; return False when the server shuts down meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closing.wait(), delay)
        return not self.closing.is_set()

    # -- public API ----------------------------------------------------------------------------

    async def api(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        method = request.method
        match = _API_RE.search(request.path)
        body = await request.read() if request.body_exists else b""
        openai_match = openai_videos.ROUTE_RE.search(request.path) if match is None else None
        if openai_match is not None:
            task_id = openai_match.group(1)
            target = openai_videos.target_of(method, task_id, bool(openai_match.group(2)))
            entry = state.record(request, target or "other", task_id, body)
            response = await self._api_answer(request, OPENAI, target, task_id, body, entry)
            entry.status = None if _dropped(request) and entry.fault in ("reset", "slow") else response.status
            return response
        if match is None:
            entry = state.record(request, "other", None, body)
            entry.status = 404
            return _video_error(404, f"Invalid URL ({method} {request.path})", "invalid_request_error", "", None)
        style = CONTENTS if match.group(1) else VIDEO
        task_id = match.group(3)
        target = self._target(style, method, task_id)
        entry = state.record(request, target or "other", task_id, body)
        response = await self._api_answer(request, style, target, task_id, body, entry)
        entry.status = None if _dropped(request) and entry.fault in ("reset", "slow") else response.status
        return response

    @staticmethod
    def _target(style: str, method: str, task_id: str | None) -> str | None:
        if task_id is None:
            if method == "POST":
                return "create"
            if method == "GET" and style == CONTENTS:
                return "list"
            return None
        if method == "GET":
            return "query"
        if method == "DELETE" and style == CONTENTS:
            return "cancel"
        return None

    async def _api_answer(
        self,
        request: web.Request,
        style: str,
        target: str | None,
        task_id: str | None,
        body: bytes,
        entry: _LogEntry,
    ) -> web.StreamResponse:
        state = self.state
        if target is None:
            if style == CONTENTS:
                return _ark_error(405, "MethodNotAllowed", "The method is not allowed for this resource.", "BadRequest")
            if style == OPENAI:
                return openai_videos.error(405, f"Method {request.method} is not allowed here.", "method_not_allowed")
            return _video_error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error", "")
        fault = state.take_fault(target, task_id)
        if fault is not None:
            entry.fault = fault.kind
            if fault.kind == "reset":
                return _drop_connection(request)
            if fault.kind == "slow":
                if not await self._pause(fault.delay):
                    return _drop_connection(request)
            elif fault.kind not in ("truncate", "trickle"):
                return _fault_response(fault, style)
        if not self._authorised(request):
            if style == CONTENTS:
                return _ark_error(401, "AuthenticationError", _MSG_AUTH, "Unauthorized")
            if style == OPENAI:
                return openai_videos.error(
                    401, "Incorrect API key provided.", "invalid_api_key", "authentication_error"
                )
            return _json(401, {"error": {"message": "invalid token", "type": "new_api_error", "code": "invalid_token"}})
        base = f"{request.scheme}://{request.host}"
        if style == OPENAI:
            truncate = None
            if fault is not None and fault.kind == "truncate":
                truncate = -1 if fault.truncate_at is None else fault.truncate_at
            return await openai_videos.answer(self, request, target, task_id, body, entry, truncate)
        if style == CONTENTS:
            response = self._contents(request, target, task_id, body, base, entry)
        else:
            response = self._video(target, task_id, body, base, entry)
        if fault is not None and fault.kind == "truncate":
            assert isinstance(response, web.Response)
            payload = response.body if isinstance(response.body, bytes) else b""
            limit = len(payload) // 2 if fault.truncate_at is None else fault.truncate_at
            stream = web.StreamResponse(status=response.status, headers={"Content-Type": response.content_type})
            return await _send_truncated(request, stream, [payload], len(payload), limit)
        if fault is not None and fault.kind == "trickle":
            assert isinstance(response, web.Response)
            payload = response.body if isinstance(response.body, bytes) else b""
            stream = web.StreamResponse(status=response.status, headers={"Content-Type": response.content_type})
            return await self._send_trickled(request, stream, payload, fault.delay)
        return response

    async def _send_trickled(
        self, request: web.BaseRequest, response: web.StreamResponse, payload: bytes, delay: float
    ) -> web.StreamResponse:
        """Send the whole answer a few bytes at a time, ``delay`` seconds apart (a slow, live connection)."""
        response.content_length = len(payload)
        await response.prepare(request)
        for start in range(0, len(payload), _TRICKLE_BYTES):
            if start and not await self._pause(delay):
                break
            if _dropped(request):
                break
            await response.write(payload[start : start + _TRICKLE_BYTES])
        return response

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.state.config.api_key

    # -- style 1 -------------------------------------------------------------------------------

    def _contents(
        self, request: web.Request, target: str, task_id: str | None, body: bytes, base: str, entry: _LogEntry
    ) -> web.Response:
        if target == "create":
            return self._contents_create(body, base, entry)
        if target == "list":
            return self._contents_list(request, base)
        assert task_id is not None
        task = self.state.tasks.get(task_id)
        if task is None or task.style != CONTENTS:
            return _ark_error(404, "ResourceNotFound", "The specified task is not found.", "NotFound")
        if target == "query":
            return _json(200, self._contents_json(task, time.time(), base))
        return self._contents_cancel(task)

    def _contents_create(self, raw: bytes, base: str, entry: _LogEntry) -> web.Response:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _ark_error(400, "InvalidParameter", "The request body must be a JSON object.", "BadRequest", "body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _ark_error(
                400,
                "MissingParameter",
                "The request failed because it is missing one or multiple required "
                "parameters. Request parameter: model.",
                "BadRequest",
                "model",
            )
        content = body.get("content")
        if not isinstance(content, list) or not content:
            return _ark_error(
                400,
                "MissingParameter",
                "The request failed because it is missing one or multiple required "
                "parameters. Request parameter: content.",
                "BadRequest",
                "content",
            )
        texts: list[str] = []
        for item in content:
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                return _ark_error(
                    400,
                    "InvalidParameter",
                    "Each content item must be an object with a type.",
                    "BadRequest",
                    "content",
                )
            if item["type"] == "text" and isinstance(item.get("text"), str):
                texts.append(item["text"])
        markers = _markers("\n".join(texts))
        if "input-moderation" in markers:
            return _ark_error(400, "InputTextSensitiveContentDetected", _MSG_INPUT_MODERATION, "BadRequest")
        task = self._create_task(CONTENTS, body, bool(body.get("return_last_frame")), markers)
        entry.task_id = task.id
        return _json(200, {"id": task.id})

    def _create_task(self, style: str, body: dict[str, Any], last_frame: bool, markers: dict[str, str]) -> _Task:
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
        return self.state.add_task(
            style,
            final_status=final_status,
            error_code=error_code,
            error_message=_MSG_OUTPUT_MODERATION if error_code else None,
            return_last_frame=last_frame,
            model=body["model"],
            created_body=body,
            **kwargs,
        )

    def _contents_json(self, task: _Task, now: float, base: str, task_id: str | None = None) -> dict[str, Any]:
        status, _started, _finished, updated = task.timeline(now)
        answer: dict[str, Any] = {
            "id": task_id or task.id,
            "model": task.model,
            "status": status,
            "created_at": int(task.created),
            "updated_at": int(updated),
        }
        params = task.params
        if status == "succeeded":
            content = {"video_url": self.state.file_url(task, "videos", base, now)}
            if task.return_last_frame:
                content["last_frame_url"] = self.state.file_url(task, "frames", base, now)
            answer["content"] = content
            duration = params["duration"]
            frames = params["frames"] or duration * params["framespersecond"]
            tokens = params["width"] * params["height"] * frames // 1024
            answer["usage"] = {"completion_tokens": tokens, "total_tokens": tokens}
            answer["seed"] = params["seed"]
            answer["resolution"] = params["resolution"]
            answer["ratio"] = params["ratio"]
            if params["frames"] is None:
                answer["duration"] = duration
            else:
                answer["frames"] = params["frames"]
            answer["framespersecond"] = params["framespersecond"]
            answer["generate_audio"] = params["generate_audio"]
            answer["service_tier"] = params["service_tier"]
            answer["execution_expires_after"] = params["execution_expires_after"]
        error = task.error(status)
        if error is not None:
            answer["error"] = {"code": error[0], "message": error[1]}
        return answer

    def _contents_list(self, request: web.Request, base: str) -> web.Response:
        query = request.query
        numbers: dict[str, int] = {}
        for name, default in (("page_num", 1), ("page_size", 10)):
            raw = query.get(name, "")
            try:
                numbers[name] = int(raw) if raw else default
            except ValueError:
                numbers[name] = 0
            if numbers[name] < 1 or (name == "page_size" and numbers[name] > MAX_PAGE_SIZE):
                return _ark_error(
                    400,
                    "InvalidParameter",
                    f"The parameter {name} specified in the request is not valid.",
                    "BadRequest",
                    name,
                )
        wanted_status = query.get("filter.status") or None
        wanted_model = query.get("filter.model") or None
        ids = {part for value in query.getall("filter.task_ids", []) for part in value.split(",") if part}
        now = time.time()
        items = []
        for task in sorted(self.state.tasks.values(), key=lambda t: t.created, reverse=True):
            if task.style != CONTENTS:
                continue
            if ids and task.id not in ids:
                continue
            if wanted_model is not None and task.model != wanted_model:
                continue
            if wanted_status is not None and task.status(now) != wanted_status:
                continue
            items.append(task)
        start = (numbers["page_num"] - 1) * numbers["page_size"]
        page = items[start : start + numbers["page_size"]]
        return _json(200, {"total": len(items), "items": [self._contents_json(t, now, base) for t in page]})

    def _contents_cancel(self, task: _Task) -> web.Response:
        now = time.time()
        status = task.status(now)
        if status == "queued":
            task.pinned = None
            task.cancelled_at = now
            return _json(200, {})
        if status in ("succeeded", "failed", "expired"):
            del self.state.tasks[task.id]
            return _json(200, {})
        return _ark_error(
            400,
            "InvalidAction.TaskStatus",
            f"The operation is not allowed because the task is {status}: only a queued task can be cancelled "
            "and only a finished task can be deleted.",
            "BadRequest",
        )

    # -- style 2 -------------------------------------------------------------------------------

    def _video(self, target: str, task_id: str | None, body: bytes, base: str, entry: _LogEntry) -> web.Response:
        if target == "create":
            return self._video_create(body, entry)
        assert task_id is not None
        task = self.state.tasks.get(task_id)
        shape = self.state.config.video_generations_shape
        if task is None or task.style != VIDEO:
            if shape == "gateway":
                return _gateway_error(400, "task_not_exist", "task_not_exist")
            return _video_error(404, "task not found", "invalid_request_error", "task_not_exist")
        return _json(200, self._video_json(task, base))

    def _video_create(self, raw: bytes, entry: _LogEntry) -> web.Response:
        shape = self.state.config.video_generations_shape

        def bad(message: str, param: str | None, code: str = "invalid_request") -> web.Response:
            if shape == "gateway":
                return _gateway_error(400, code, message)
            return _video_error(400, message, "invalid_request_error", code, param)

        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return bad("invalid request body: expected a JSON object", None)
        if not isinstance(body.get("model"), str) or not body["model"]:
            return bad("model is required", "model")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return bad("prompt is required", "prompt")
        markers = _markers(prompt)
        if "input-moderation" in markers:
            return bad(_MSG_INPUT_MODERATION, "prompt", "InputTextSensitiveContentDetected")
        meta = body.get("metadata")
        last_frame = bool(body.get("return_last_frame")) or (
            isinstance(meta, dict) and bool(meta.get("return_last_frame"))
        )
        task = self._create_task(VIDEO, body, last_frame, markers)
        entry.task_id = task.id
        if shape == "gateway":
            return _json(
                200,
                {
                    "id": task.id,
                    "task_id": task.id,
                    "object": "video",
                    "model": task.model,
                    "status": "queued",
                    "progress": 0,
                    "created_at": int(task.created),
                },
            )
        return _json(200, {"task_id": task.id, "status": "queued"})

    def _video_json(self, task: _Task, base: str) -> dict[str, Any]:
        now = time.time()
        status, started, finished, _updated = task.timeline(now)
        shape = task.shape or self.state.config.video_generations_shape
        public = _public_status_video(status, shape)
        failed = status in ("failed", "cancelled", "expired")
        error = task.error(status)
        if error is None and failed:
            error = (
                ("TaskCancelled", "the task was cancelled")
                if status == "cancelled"
                else ("TaskExpired", "the task expired before it could run")
            )
        params = task.params
        if shape == "documented":
            answer: dict[str, Any] = {"task_id": task.id, "status": public}
            if status == "succeeded":
                answer["url"] = self.state.file_url(task, "videos", base, now)
            answer["format"] = "mp4"
            answer["metadata"] = {
                "duration": params["duration"],
                "fps": params["framespersecond"],
                "width": params["width"],
                "height": params["height"],
                "seed": params["seed"],
            }
            if error is not None:
                code = {"cancelled": 499, "expired": 408}.get(status, 400)
                answer["error"] = {"code": code, "message": f"{error[0]}: {error[1]}"}
            return answer
        if status == "queued":
            progress = 0
        elif status == "running":
            span = task.running_seconds or 1.0
            progress = 10 + int(89 * min(1.0, (now - (started or now)) / span))
        elif status in FINAL_STATUSES:
            progress = 100
        else:
            progress = 0
        data: dict[str, Any] = {
            "task_id": task.id,
            "action": "generate",
            "status": public,
            "progress": f"{progress}%",
            "submit_time": int(task.created),
            "start_time": int(started) if started else 0,
            "finish_time": int(finished) if finished else 0,
            "fail_reason": f"{error[0]}: {error[1]}" if error is not None and failed else "",
        }
        if status == "succeeded":
            data["result_url"] = self.state.file_url(task, "videos", base, now)
        data["data"] = self._contents_json(task, now, base, task.upstream_id)
        return {"code": "success", "message": "", "data": data}

    # -- file host -----------------------------------------------------------------------------

    async def download(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        match = _FILE_RE.match(request.path)
        task_id = match.group(2) if match else None
        entry = state.record(request, "download", task_id, b"")
        response = await self._download_answer(request, match, entry)
        entry.status = None if _dropped(request) and entry.fault in ("reset", "slow", "throttle") else response.status
        return response

    async def _download_answer(
        self, request: web.Request, match: re.Match[str] | None, entry: _LogEntry
    ) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return _xml_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        if match is None or (match.group(1) == "videos") != (match.group(3) == "mp4"):
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        kind, task_id = match.group(1), match.group(2)
        fault = self.state.take_fault("download", task_id)
        if fault is not None:
            entry.fault = fault.kind
            if fault.kind == "reset":
                return _drop_connection(request)
            if fault.kind == "slow":
                if not await self._pause(fault.delay):
                    return _drop_connection(request)
            elif fault.kind not in ("truncate", "throttle"):
                return _fault_response(fault, None)
        now = time.time()
        task = self.state.tasks.get(task_id)
        if task is None or task.status(now) != "succeeded" or (kind == "frames" and not task.return_last_frame):
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        query = request.query
        expires = query.get("X-Expires")
        signature = query.get("X-Signature")
        if expires is not None or signature is not None:
            expected = self.state.signature(kind, task_id, expires or "")
            if not signature or not hmac.compare_digest(signature, expected):
                return _xml_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                )
            try:
                url_expired = now >= float(expires or "0")
            except ValueError:
                url_expired = True
            if url_expired:
                return _xml_error(403, "AccessDenied", "Request has expired")
        if now >= task.expires_at(now):
            return _xml_error(403, "AccessDenied", "Request has expired")
        truncate = None
        if fault is not None and fault.kind == "truncate":
            truncate = fault.truncate_at
            if truncate is None:
                truncate = -1
        rate = fault.rate if fault is not None and fault.kind == "throttle" else None
        if kind == "frames":
            png = frame_png(task_id)
            return await self._serve(request, task, len(png), "image/png", truncate, png, rate)
        return await self._serve(request, task, task.video_size, "video/mp4", truncate, None, rate)

    async def _serve(
        self,
        request: web.Request,
        task: _Task,
        size: int,
        content_type: str,
        truncate: int | None,
        payload: bytes | None,
        rate: float | None = None,
    ) -> web.StreamResponse:
        etag = '"' + hashlib.md5(f"{task.id}:{size}:{content_type}".encode(), usedforsecurity=False).hexdigest() + '"'
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Last-Modified": formatdate(task.expires_at(time.time()) - task.url_ttl, usegmt=True),
            "Content-Type": content_type,
        }
        start, stop, status = 0, size, 200
        range_header = request.headers.get("Range")
        if range_header:
            parsed = _parse_range(range_header, size)
            if parsed == "unsatisfiable":
                headers["Content-Range"] = f"bytes */{size}"
                del headers["Content-Type"]
                return _xml_error(416, "InvalidRange", "The requested range is not satisfiable", headers)
            if isinstance(parsed, tuple):
                start, stop = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        length = stop - start

        def chunks() -> Any:
            if payload is not None:
                return iter([memoryview(payload)[start:stop]])
            return iter_video(task.id, size, start, stop)

        response = web.StreamResponse(status=status, headers=headers)
        if truncate is not None and request.method == "GET":
            limit = length // 2 if truncate < 0 else truncate
            return await _send_truncated(request, response, chunks(), length, limit)
        if request.method == "GET" and length <= _STREAM_THRESHOLD and rate is None:
            return web.Response(status=status, body=b"".join(chunks()), headers=headers)
        response.content_length = length
        await response.prepare(request)
        if request.method == "HEAD":
            await response.write_eof()
            return response
        for chunk in chunks():
            if self.closing.is_set():
                transport = request.transport
                if transport is not None:
                    transport.abort()
                return response
            # A throttled body: each chunk (at most 1 MiB) is sent after its share of a second at ``rate``.
            if rate is not None and not await self._pause(len(chunk) / rate):
                return response
            try:
                await response.write(chunk)
            except ConnectionResetError:  # the client went away
                return response
        await response.write_eof()
        return response

    # -- control API ---------------------------------------------------------------------------

    async def control(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._control(request)
        except KeyError as exc:
            return _json(404, {"error": f"not found: {exc.args[0] if exc.args else ''}"})
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": str(exc)})

    async def _control(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        method = request.method
        parts = request.path.strip("/").split("/")[1:]
        base = f"{request.scheme}://{request.host}"
        payload: Any = {}
        if request.body_exists:
            raw = await request.read()
            if raw:
                payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        if parts == ["health"] and method == "GET":
            return _json(200, {"status": "ok"})
        if parts == ["config"]:
            if method == "GET":
                return _json(200, state.config.to_dict())
            if method in ("POST", "PATCH"):
                return _json(200, state.configure(payload).to_dict())
        if parts == ["reset"] and method == "POST":
            state.reset()
            return _json(200, {})
        if parts == ["tasks"]:
            if method == "GET":
                return _json(200, [state.task_dict(t, base) for t in state.tasks.values()])
            if method == "POST":
                task = state.add_task(**payload)
                return _json(200, state.task_dict(task, base))
        if len(parts) == 2 and parts[0] == "tasks":
            task = state.tasks[parts[1]]
            if method == "GET":
                info = state.task_dict(task, base)
                if task.video_size > 8 * 1024 * 1024:
                    loop = asyncio.get_running_loop()
                    info["video_sha256"] = await loop.run_in_executor(None, video_sha256, task.id, task.video_size)
                else:
                    info["video_sha256"] = video_sha256(task.id, task.video_size)
                return _json(200, info)
            if method == "DELETE":
                del state.tasks[task.id]
                return _json(200, {})
        if len(parts) == 3 and parts[0] == "tasks" and parts[2] == "status" and method == "POST":
            task = state.set_status(parts[1], payload.get("status", ""))
            return _json(200, state.task_dict(task, base))
        if parts == ["faults"]:
            if method == "GET":
                return _json(200, [f.to_dict() for f in state.faults])
            if method == "POST":
                return _json(200, state.add_fault(**payload).to_dict())
            if method == "DELETE":
                state.faults.clear()
                return _json(200, {})
        if parts == ["requests"]:
            if method == "GET":
                query = request.query
                entries = state.requests(query.get("target"), query.get("method"), query.get("task_id"))
                return _json(200, entries)
            if method == "DELETE":
                state.log.clear()
                return _json(200, {})
        return _json(404, {"error": f"unknown control route {method} {request.path}"})


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """Parse a single ``bytes=`` range; None means "ignore the header and send everything"."""
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    if last:
        end = int(last)
        if end < start:
            return None
        return start, min(end + 1, size)
    return start, size


def create_app(config: SimulatorConfig | None = None) -> web.Application:
    """Build the simulator's aiohttp application.

    The state is available as ``app[STATE_KEY]``; all routes are served by one catch-all handler so
    that the public API matches under any path prefix.
    """
    state = SimulatorState(config or SimulatorConfig())
    app = web.Application(client_max_size=16 * 1024 * 1024)
    simulator = _Simulator(state)
    app[STATE_KEY] = state
    app[CLOSING_KEY] = simulator.closing

    async def on_shutdown(_app: web.Application) -> None:
        simulator.closing.set()

    app.on_shutdown.append(on_shutdown)
    app.router.add_route("*", "/{tail:.*}", simulator.dispatch)
    return app


# --------------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _name, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def format_base_url(host: str, port: int) -> str:
    """Return ``http://host:port`` (IPv6 hosts in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


async def start_server(
    config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start a simulator on the running event loop; return its runner and base URL.

    Stop it with ``await runner.cleanup()``.
    """
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    sock = _bind(host, port)
    try:
        site = web.SockSite(runner, sock, backlog=LISTEN_BACKLOG)
        await site.start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner, format_base_url(host, sock.getsockname()[1])


def _raise_open_files_limit() -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def _serve_forever(config: SimulatorConfig, host: str, port: int) -> None:
    runner, url = await start_server(config, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    print(f"VideoGen simulator listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of ``python -m airflow_provider_videogen.testing.simulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_videogen.testing.simulator",
        description="Serve a simulator of the contents-generations and video-generations APIs.",
    )
    defaults = SimulatorConfig()
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument("--api-key", default=defaults.api_key, help="the accepted API key")
    parser.add_argument("--queued-seconds", type=float, default=defaults.queued_seconds)
    parser.add_argument("--running-seconds", type=float, default=defaults.running_seconds)
    parser.add_argument("--video-size", type=int, default=defaults.video_size, help="video size in bytes")
    parser.add_argument("--video-generations-shape", choices=SHAPES, default=defaults.video_generations_shape)
    parser.add_argument("--url-ttl", type=float, default=defaults.url_ttl, help="file URL validity in seconds")
    parser.add_argument("--no-request-log", action="store_true", help="do not record requests")
    parser.add_argument("--request-log-size", type=int, default=defaults.request_log_size)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGINT or SIGTERM; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        config = SimulatorConfig(
            api_key=args.api_key,
            queued_seconds=args.queued_seconds,
            running_seconds=args.running_seconds,
            video_size=args.video_size,
            video_generations_shape=args.video_generations_shape,
            url_ttl=args.url_ttl,
            request_log=not args.no_request_log,
            request_log_size=args.request_log_size,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _raise_open_files_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(config, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
