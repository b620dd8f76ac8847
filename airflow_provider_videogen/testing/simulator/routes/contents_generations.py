"""The simulator's contents-generations routes (RongCloud / Volcengine Ark shape).

::

POST   {prefix}/contents/generations/tasks          create  -> {"id": "cgt-..."}
GET    {prefix}/contents/generations/tasks/{id}     query
DELETE {prefix}/contents/generations/tasks/{id}     cancel (queued) or delete (final)
GET    {prefix}/contents/generations/tasks          list (page_num, page_size, filter.*)
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from airflow_provider_videogen.testing.simulator.config import MSG_INPUT_MODERATION
from airflow_provider_videogen.testing.simulator.routes.base import (
    Call,
    StyleRoutes,
    json_body,
    json_response,
    markers,
    new_contents_id,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.contract import Simulator
    from airflow_provider_videogen.testing.simulator.state import LogEntry, SimulatorState, Task

NAME = "contents_generations"
MAX_PAGE_SIZE = 500
_MSG_AUTH = "The API key in the request is missing or invalid."


class ContentsGenerationsRoutes(StyleRoutes):
    """``/contents/generations/tasks``: create, query, list, cancel a queued task, delete a final one."""

    name: ClassVar[str] = NAME
    aliases: ClassVar[tuple[str, ...]] = ("contents",)

    route = re.compile(r"/contents/generations/tasks(?:/([^/]+))?/?$")
    targets: ClassVar[Mapping[tuple[str, str], str]] = {
        ("collection", "POST"): "create",
        ("collection", "GET"): "list",
        ("task", "GET"): "query",
        ("task", "DELETE"): "cancel",
    }

    def new_task_id(self, now: float) -> str:
        return new_contents_id(now)

    def upstream_id(self, task_id: str, now: float) -> str:
        return task_id

    def unauthorised(self) -> web.Response:
        return _ark_error(401, "AuthenticationError", _MSG_AUTH, "Unauthorized")

    def not_allowed(self, request: web.Request) -> web.Response:
        return _ark_error(405, "MethodNotAllowed", "The method is not allowed for this resource.", "BadRequest")

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        code, type_, message = _ARK_CODES.get(status, ("SimulatedError", "Error", "Simulated error."))
        return json_response(status, {"error": {"code": code, "message": message, "type": type_}}, headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        return _answer(sim.state, call)


def _answer(state: SimulatorState, call: Call) -> web.Response:
    if call.target == "create":
        return _create(state, call.body, call.entry)
    if call.target == "list":
        return _list(state, call.request, call.base)
    assert call.task_id is not None
    task = state.tasks.get(call.task_id)
    if task is None or task.style != NAME:
        return _ark_error(404, "ResourceNotFound", "The specified task is not found.", "NotFound")
    if call.target == "query":
        return json_response(200, task_json(state, task, time.time(), call.base))
    return _cancel(state, task)


def _create(state: SimulatorState, raw: bytes, entry: LogEntry) -> web.Response:
    body = json_body(raw)
    if body is None:
        return _ark_error(400, "InvalidParameter", "The request body must be a JSON object.", "BadRequest", "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _ark_error(
            400,
            "MissingParameter",
            "The request failed because it is missing one or multiple required parameters. Request parameter: model.",
            "BadRequest",
            "model",
        )
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return _ark_error(
            400,
            "MissingParameter",
            "The request failed because it is missing one or multiple required parameters. Request parameter: content.",
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
    found = markers("\n".join(texts))
    if "input-moderation" in found:
        return _ark_error(400, "InputTextSensitiveContentDetected", MSG_INPUT_MODERATION, "BadRequest")
    task = state.create_task(NAME, body, bool(body.get("return_last_frame")), found)
    entry.task_id = task.id
    return json_response(200, {"id": task.id})


def task_json(state: SimulatorState, task: Task, now: float, base: str, task_id: str | None = None) -> dict[str, Any]:
    """Return a task as the query call answers it (``task_id``: under another id, as a gateway wraps it)."""
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
        content = {"video_url": state.file_url(task, "videos", base, now)}
        if task.return_last_frame:
            content["last_frame_url"] = state.file_url(task, "frames", base, now)
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
    if state.config.task_object_padding:
        answer["padding"] = "x" * state.config.task_object_padding
    return answer


def _list(state: SimulatorState, request: web.Request, base: str) -> web.Response:
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
    for task in sorted(state.tasks.values(), key=lambda t: t.created, reverse=True):
        if task.style != NAME:
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
    return json_response(200, {"total": len(items), "items": [task_json(state, t, now, base) for t in page]})


def _cancel(state: SimulatorState, task: Task) -> web.Response:
    now = time.time()
    status = task.status(now)
    if status == "queued":
        task.pinned = None
        task.cancelled_at = now
        return json_response(200, {})
    if status in ("succeeded", "failed", "expired"):
        del state.tasks[task.id]
        return json_response(200, {})
    return _ark_error(
        400,
        "InvalidAction.TaskStatus",
        f"The operation is not allowed because the task is {status}: only a queued task can be cancelled "
        "and only a finished task can be deleted.",
        "BadRequest",
    )


def _ark_error(status: int, code: str, message: str, type_: str, param: str | None = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if param is not None:
        error["param"] = param
    error["type"] = type_
    return json_response(status, {"error": error})


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
