"""The simulator's DashScope routes (Alibaba Cloud Model Studio, Wan video models).

::

POST {prefix}/services/aigc/video-generation/video-synthesis   create (needs X-DashScope-Async: enable)
GET  {prefix}/api/v1/tasks/{id}                                query (UNKNOWN, HTTP 200, for an unknown id)
POST {prefix}/api/v1/tasks/{id}/cancel                         cancel a PENDING task

The task routes end in ``/api/v1/tasks/...``: Runway's ``/v1/tasks/...`` are the ones without ``/api``.
Errors are ``{"request_id", "code", "message"}``; videos are served by the file host at signed URLs.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from airflow_provider_videogen.testing.simulator.routes.base import (
    Call,
    StyleRoutes,
    json_body,
    json_response,
    markers,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.contract import Simulator
    from airflow_provider_videogen.testing.simulator.state import SimulatorState, Task

NAME = "dashscope"
_STATUS = {
    "queued": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "CANCELED",
    "expired": "UNKNOWN",  # kept 24 hours, then the service no longer knows the task
}
_MODERATION = ("DataInspectionFailed", "Input or output data may contain inappropriate content.")
_CODES = {
    400: ("InvalidParameter", "The request is invalid."),
    401: ("InvalidApiKey", "Invalid API-key provided."),
    403: ("AccessDenied", "Access denied."),
    404: ("NotFound", "The requested resource is not found."),
    429: ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
    500: ("InternalError", "An internal error has occured, please try again later."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable, please try again later."),
}


class DashScopeRoutes(StyleRoutes):
    """The video-synthesis create call and the shared async-task routes (query, cancel)."""

    name: ClassVar[str] = NAME

    # The create call is the collection; ``/cancel`` is the task's sub-resource.
    route = re.compile(r"(?:/services/aigc/video-generation/video-synthesis|/api/v1/tasks/([^/]+)(/cancel)?)/?$")
    targets: ClassVar[Mapping[tuple[str, str], str]] = {
        ("collection", "POST"): "create",
        ("task", "GET"): "query",
        ("content", "POST"): "cancel",
    }

    def new_task_id(self, now: float) -> str:
        return str(uuid.uuid4())

    def generation_fields(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        parameters = body.get("parameters")
        fields = dict(parameters) if isinstance(parameters, Mapping) else {}
        if isinstance(fields.get("resolution"), str):
            fields["resolution"] = fields["resolution"].lower()
        size = fields.get("size")
        if isinstance(size, str) and re.fullmatch(r"\d+\*\d+", size):
            fields["width"], fields["height"] = (int(n) for n in size.split("*"))
        return fields

    def unauthorised(self) -> web.Response:
        return error(401, *_CODES[401])

    def not_allowed(self, request: web.Request) -> web.Response:
        return error(405, "MethodNotAllowed", f"Method {request.method} is not allowed here.")

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        code, message = _CODES.get(status, ("InternalError", f"Simulated error {status}."))
        return error(status, code, message, headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        state = sim.state
        if call.target == "create":
            return _create(state, call)
        task_id = call.task_id or ""
        task = state.tasks.get(task_id)
        if task is not None and task.style != NAME:
            task = None
        if call.target == "cancel":
            return _cancel(task)
        return json_response(200, {"request_id": _request_id(), **task_json(state, task, task_id, call.base)})


def error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return an error the way DashScope answers it."""
    return json_response(status, {"request_id": _request_id(), "code": code, "message": message}, headers)


def _create(state: SimulatorState, call: Call) -> web.Response:
    if call.request.headers.get("X-DashScope-Async", "").lower() != "enable":
        return error(403, "AccessDenied", "current user api does not support synchronous calls")
    body = json_body(call.body)
    if body is None:
        return error(400, "InvalidParameter", "The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return error(400, "InvalidParameter", "Model not exist.")
    inputs = body.get("input")
    if not isinstance(inputs, Mapping) or not (inputs.get("prompt") or inputs.get("img_url")):
        return error(400, "InvalidParameter", "Field required: input.prompt or input.img_url")
    found = markers(str(inputs.get("prompt") or ""))
    if "input-moderation" in found:
        return error(400, *_MODERATION)
    task = state.create_task(NAME, body, False, found)
    call.entry.task_id = task.id
    return json_response(
        200, {"request_id": _request_id(), "output": {"task_id": task.id, "task_status": _STATUS["queued"]}}
    )


def task_json(state: SimulatorState, task: Task | None, task_id: str, base: str) -> dict[str, Any]:
    """Return ``output`` and ``usage`` of the query answer (``UNKNOWN`` for a task the service does not know)."""
    if task is None:
        return {"output": {"task_id": task_id, "task_status": "UNKNOWN"}}
    now = time.time()
    status, started, finished, _updated = task.timeline(now)
    public = _STATUS.get(status, status.upper())
    output: dict[str, Any] = {"task_id": task.id, "task_status": public, "submit_time": _clock(task.created)}
    if public == "UNKNOWN":
        return {"output": {"task_id": task.id, "task_status": public}}
    if started is not None:
        output["scheduled_time"] = _clock(started)
    if finished is not None:
        output["end_time"] = _clock(finished)
    answer: dict[str, Any] = {"output": output}
    if status == "succeeded":
        output["video_url"] = state.file_url(task, "videos", base, now)
        output["orig_prompt"] = str(_inputs(task).get("prompt") or "")
        params = task.params
        answer["usage"] = {
            "video_duration": params["duration"],
            "video_ratio": f"{params['width']}*{params['height']}",
            "video_count": 1,
        }
    elif status == "failed":
        failure = task.error(status) if task.error_code is not None else None
        output["code"], output["message"] = failure or _MODERATION
    return answer


def _cancel(task: Task | None) -> web.Response:
    now = time.time()
    if task is None or task.status(now) != "queued":
        return error(
            400, "UnsupportedOperation", "Failed to cancel the task, please confirm if the task is in PENDING status."
        )
    task.pinned = None
    task.cancelled_at = now
    return json_response(200, {"request_id": _request_id()})


def _inputs(task: Task) -> Mapping[str, Any]:
    body = task.created_body
    inputs = body.get("input") if isinstance(body, Mapping) else None
    return inputs if isinstance(inputs, Mapping) else {}


def _clock(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


def _request_id() -> str:
    return str(uuid.uuid4())
