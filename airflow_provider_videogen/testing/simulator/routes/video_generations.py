"""The simulator's video-generations routes (the new-api gateway shape).

::

    POST   {prefix}/video/generations                   create
    GET    {prefix}/video/generations/{id}              query

Queries answer as the gateway really does (``shape="gateway"``: the wrapped answer with the upstream
task inside) or as documented (``shape="documented"``: a flat answer); see ``video_generations_shape``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from airflow_provider_videogen.testing.simulator.config import FINAL_STATUSES, MSG_INPUT_MODERATION
from airflow_provider_videogen.testing.simulator.routes import contents_generations
from airflow_provider_videogen.testing.simulator.routes.base import (
    Call,
    StyleRoutes,
    json_body,
    json_response,
    markers,
    random_id,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.contract import Simulator
    from airflow_provider_videogen.testing.simulator.state import LogEntry, SimulatorState, Task

NAME = "video_generations"
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class VideoGenerationsRoutes(StyleRoutes):
    """``/video/generations``: create and query; no cancel."""

    name: ClassVar[str] = NAME
    aliases: ClassVar[tuple[str, ...]] = ("video",)

    route = re.compile(r"/video/generations(?:/([^/]+))?/?$")
    targets: ClassVar[Mapping[tuple[str, str], str]] = {("collection", "POST"): "create", ("task", "GET"): "query"}

    def new_task_id(self, now: float) -> str:
        return random_id("task_", _ID_ALPHABET)

    def generation_fields(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        # The gateway takes generation fields at the top level or under metadata (which wins), and fps.
        meta = body.get("metadata")
        fields = {**body, **(meta if isinstance(meta, Mapping) else {})}
        fields["framespersecond"] = fields.get("fps")
        fields["width"], fields["height"] = body.get("width"), body.get("height")
        return fields

    def unauthorised(self) -> web.Response:
        return json_response(
            401, {"error": {"message": "invalid token", "type": "new_api_error", "code": "invalid_token"}}
        )

    def not_allowed(self, request: web.Request) -> web.Response:
        return invalid_url(request)

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        code = {401: "invalid_token", 404: "task_not_exist", 429: "rate_limit_exceeded"}.get(status, "upstream_error")
        message = {429: "rate limit exceeded, please try again later"}.get(status, f"simulated error {status}")
        return json_response(status, {"error": {"message": message, "type": "new_api_error", "code": code}}, headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        return _answer(sim.state, call)


def invalid_url(request: web.Request) -> web.Response:
    """Return the gateway's answer to a route it does not serve."""
    return _video_error(404, f"Invalid URL ({request.method} {request.path})", "invalid_request_error", "")


def _answer(state: SimulatorState, call: Call) -> web.Response:
    if call.target == "create":
        return _create(state, call.body, call.entry)
    assert call.task_id is not None
    task = state.tasks.get(call.task_id)
    shape = state.config.video_generations_shape
    if task is None or task.style != NAME:
        if shape == "gateway":
            return _gateway_error(400, "task_not_exist", "task_not_exist")
        return _video_error(404, "task not found", "invalid_request_error", "task_not_exist")
    return json_response(200, _task_json(state, task, call.base))


def _create(state: SimulatorState, raw: bytes, entry: LogEntry) -> web.Response:
    shape = state.config.video_generations_shape

    def bad(message: str, param: str | None, code: str = "invalid_request") -> web.Response:
        if shape == "gateway":
            return _gateway_error(400, code, message)
        return _video_error(400, message, "invalid_request_error", code, param)

    body = json_body(raw)
    if body is None:
        return bad("invalid request body: expected a JSON object", None)
    if not isinstance(body.get("model"), str) or not body["model"]:
        return bad("model is required", "model")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return bad("prompt is required", "prompt")
    found = markers(prompt)
    if "input-moderation" in found:
        return bad(MSG_INPUT_MODERATION, "prompt", "InputTextSensitiveContentDetected")
    meta = body.get("metadata")
    last_frame = bool(body.get("return_last_frame")) or (isinstance(meta, dict) and bool(meta.get("return_last_frame")))
    task = state.create_task(NAME, body, last_frame, found)
    entry.task_id = task.id
    if shape == "gateway":
        return json_response(
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
    return json_response(200, {"task_id": task.id, "status": "queued"})


def _task_json(state: SimulatorState, task: Task, base: str) -> dict[str, Any]:
    now = time.time()
    status, started, finished, _updated = task.timeline(now)
    shape = task.shape or state.config.video_generations_shape
    public = _public_status(status, shape)
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
            answer["url"] = state.file_url(task, "videos", base, now)
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
        data["result_url"] = state.file_url(task, "videos", base, now)
    data["data"] = contents_generations.task_json(state, task, now, base, task.upstream_id)
    return {"code": "success", "message": "", "data": data}


def _public_status(status: str, shape: str) -> str:
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


def _video_error(status: int, message: str, type_: str, code: Any, param: Any = None) -> web.Response:
    return json_response(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


def _gateway_error(status: int, code: str, message: str) -> web.Response:
    return json_response(status, {"code": code, "message": message, "data": None})
