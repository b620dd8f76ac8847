"""The simulator's fal.ai queue routes (served without a path prefix, as ``queue.fal.run`` serves them).

::

POST {model}                                create -> {"request_id", "response_url", "status_url", "cancel_url"}
GET  {owner}/{app}/requests/{id}/status     query: 202 IN_QUEUE (queue_position) / IN_PROGRESS, 200 COMPLETED
GET  {owner}/{app}/requests/{id}            result: the model's output, or the model's error (fault target "result")
PUT  {owner}/{app}/requests/{id}/cancel     cancel: 202 CANCELLATION_REQUESTED, 400 ALREADY_COMPLETED, 404 NOT_FOUND

The key is ``Authorization: Key <key>``. Every ending reads ``COMPLETED``: a success's result is
``{"video": {"url", "content_type", "file_size"}, "seed"}`` (``[sim:videos-list]`` in the prompt:
``{"videos": [...]}``); a moderated one's a 422 whose ``detail`` is a validation error list; one
added with an ``error_code`` a 500 with that type in ``X-Fal-Error-Type`` and ``error_type``; a
cancelled one's a 400. A request created with ``X-Fal-Store-IO: 0`` loses its result an hour after
completion (``[sim:result-ttl=<seconds>]`` sooner), an ``expired`` one at once: the result then
answers 404. The status and result routes take only ``{owner}/{app}`` of the model; another app's
path is a 404. A cancel in progress is accepted and ignored, as a model may ignore fal's signal.
Other styles' routes are matched first: a ``POST`` none of them claims, of two segments or more, is
a fal create.
"""

from __future__ import annotations

import contextlib
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

NAME = "fal"
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_APP = rf"(?:(?:workflows|comfy)/)?{_SEGMENT}/{_SEGMENT}"
_REQUEST_RE = re.compile(rf"^/({_APP})/requests/({_SEGMENT})(/status|/cancel)?/?$")
_MODEL_RE = re.compile(rf"^/({_SEGMENT}(?:/{_SEGMENT})+)/?$")
_TARGETS = {("", "GET"): "result", ("/status", "GET"): "query", ("/cancel", "PUT"): "cancel"}
_KEPT_WITHOUT_STORAGE = 3600.0  # seconds a result is kept after completion under X-Fal-Store-IO: 0
_MODERATION_CODE = "OutputVideoSensitiveContentDetected"
_MESSAGES = {401: "Unauthorized", 404: "Not Found", 429: "Too many requests", 503: "Service Unavailable"}


class FalRoutes(StyleRoutes):
    """A model's create, and a request's status, result and cancel; the key is ``Key``, not ``Bearer``."""

    name: ClassVar[str] = NAME
    targets: ClassVar[Mapping[tuple[str, str], str]] = {}

    def match(self, method: str, path: str) -> tuple[str | None, str | None] | None:
        """Match a request's routes by their ``/requests/{id}`` shape, else any ``POST`` of two segments or more."""
        if found := _REQUEST_RE.match(path):
            return _TARGETS.get((found.group(3) or "", method)), found.group(2)
        if method == "POST" and _MODEL_RE.match(path):
            return "create", None
        return None

    def new_task_id(self, now: float) -> str:
        return str(uuid.uuid4())

    def authorised(self, request: web.Request, api_key: str) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Key" and token.strip() == api_key

    def unauthorised(self) -> web.Response:
        return detail(401, "Unauthorized: the key is missing or invalid (Authorization: Key <key>).")

    def not_allowed(self, request: web.Request) -> web.Response:
        return detail(405, "Method Not Allowed")

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        return detail(status, _MESSAGES.get(status, f"Simulated error {status}."), headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        state = sim.state
        if call.target == "create":
            return _create(state, call)
        app = _REQUEST_RE.match(call.request.path).group(1)  # type: ignore[union-attr]
        task = state.tasks.get(call.task_id or "")
        if task is None or task.style != NAME or _app_of(task.model) != app:
            if call.target == "cancel":
                return json_response(404, {"status": "NOT_FOUND"})
            return detail(404, f"Request {call.task_id} not found.")
        status = task.status(time.time())
        if call.target == "cancel":
            return _cancel(task, status)
        if call.target == "query":
            return _status(task, status, call.base, app)
        return _result(state, task, status, call.base)


def detail(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return an error the way fal answers it: ``{"detail": "<message>"}``."""
    return json_response(status, {"detail": message}, headers)


def _app_of(model: str) -> str:
    parts = model.split("/")
    return "/".join(parts[:3] if parts[0] in ("workflows", "comfy") else parts[:2])


def _urls(base: str, app: str, request_id: str) -> dict[str, str]:
    response_url = f"{base}/{app}/requests/{request_id}"
    return {
        "response_url": response_url,
        "status_url": f"{response_url}/status",
        "cancel_url": f"{response_url}/cancel",
    }


def _create(state: SimulatorState, call: Call) -> web.Response:
    model = call.request.path.strip("/")
    body = json_body(call.body)
    if body is None:
        return detail(422, "The request body must be a JSON object.")
    prompt = body.get("prompt")
    found = markers(prompt if isinstance(prompt, str) else "")
    if "invalid-request" in found or "input-moderation" in found:
        error = {"loc": ["body", "prompt"], "msg": "The prompt was refused by the simulator.", "type": "value_error"}
        return json_response(422, {"detail": [error]})
    task = state.create_task(NAME, {**body, "model": model}, False, found)
    if call.request.headers.get("X-Fal-Store-IO") == "0":
        task.params["fal_store_io"] = "0"
    call.entry.task_id = task.id
    return json_response(200, {"request_id": task.id, **_urls(call.base, _app_of(model), task.id), "queue_position": 0})


def _status(task: Task, status: str, base: str, app: str) -> web.Response:
    answer: dict[str, Any] = {"request_id": task.id, **_urls(base, app, task.id)}
    if status == "queued":
        return json_response(202, {"status": "IN_QUEUE", "queue_position": 0, **answer})
    if status == "running":
        return json_response(202, {"status": "IN_PROGRESS", "logs": None, **answer})
    # Every ending, success or not, is COMPLETED: only the result tells them apart.
    metrics = {"inference_time": task.running_seconds}
    return json_response(200, {"status": "COMPLETED", "logs": None, "metrics": metrics, **answer})


def _prompt_markers(task: Task) -> dict[str, str]:
    body = task.created_body if isinstance(task.created_body, Mapping) else {}
    prompt = body.get("prompt")
    return markers(prompt if isinstance(prompt, str) else "")


def _result(state: SimulatorState, task: Task, status: str, base: str) -> web.Response:
    now = time.time()
    if status in ("queued", "running"):
        return detail(400, "Request is still in progress")
    found = _prompt_markers(task)
    finished = task.timeline(now)[2] or now
    kept = _KEPT_WITHOUT_STORAGE
    if "result-ttl" in found:
        with contextlib.suppress(ValueError):
            kept = float(found["result-ttl"])
    if status == "expired" or (task.params.get("fal_store_io") == "0" and now > finished + kept):
        return detail(404, f"Request {task.id} not found: its result is no longer stored.")
    if status == "cancelled":
        return json_response(400, {"detail": "Request was cancelled.", "error_type": "request_cancelled"})
    if status == "failed":
        code, message = task.error(status) or ("", "")
        if code == _MODERATION_CODE:  # the model's own refusal: a validation error list
            error = {"loc": ["body", "prompt"], "msg": message, "type": "content_policy_violation"}
            return json_response(422, {"detail": [error]})
        return json_response(500, {"detail": message, "error_type": code}, {"X-Fal-Error-Type": code})
    video = {
        "url": state.file_url(task, "videos", base, now),
        "content_type": "video/mp4",
        "file_name": "output.mp4",
        "file_size": task.video_size,
    }
    output: dict[str, Any] = {"videos": [video]} if "videos-list" in found else {"video": video}
    return json_response(200, {**output, "seed": task.params.get("seed")})


def _cancel(task: Task, status: str) -> web.Response:
    if status == "queued":
        task.pinned = None
        task.cancelled_at = time.time()
    elif status != "running":  # in progress: a signal the model may ignore (and bill)
        return json_response(400, {"status": "ALREADY_COMPLETED"})
    return json_response(202, {"status": "CANCELLATION_REQUESTED"})
