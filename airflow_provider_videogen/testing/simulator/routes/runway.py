"""The simulator's Runway routes.

::

POST   {prefix}/image_to_video, {prefix}/text_to_video    create -> {"id": "<uuid>"}
GET    {prefix}/tasks/{id}                                query
DELETE {prefix}/tasks/{id}                                cancel (pending, running) or delete (final): 204

Every call needs ``X-Runway-Version`` (a date such as ``2024-11-06``): without it the answer is 400.
DashScope's task routes (``/api/v1/tasks/...``) are matched before these. Errors are
``{"error": "<message>"}``; a prompt refused by moderation is a task that fails with
``SAFETY.INPUT.TEXT``, as Runway reports it. Videos are served by the file host at signed URLs.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
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

NAME = "runway"
_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STATUS = {
    "queued": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
}
_NOT_FINAL = ("queued", "running", "throttled")
_OUTPUT_FAILURE = ("INTERNAL.BAD_OUTPUT.CODE01", "An unexpected error occurred while generating the video.")
_MESSAGES = {401: "Invalid API key.", 404: "Not found.", 429: "You have exceeded the rate limit."}


class RunwayRoutes(StyleRoutes):
    """``/image_to_video``, ``/text_to_video`` and ``/tasks/{id}`` (get, delete), all behind the version header."""

    name: ClassVar[str] = NAME

    # The two create calls are the collection.
    route = re.compile(r"(?:/image_to_video|/text_to_video|/tasks/([^/]+))/?$")
    targets: ClassVar[Mapping[tuple[str, str], str]] = {
        ("collection", "POST"): "create",
        ("task", "GET"): "query",
        ("task", "DELETE"): "cancel",
    }

    def new_task_id(self, now: float) -> str:
        return str(uuid.uuid4())

    def generation_fields(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        fields = dict(body)
        ratio = body.get("ratio")
        if isinstance(ratio, str) and re.fullmatch(r"\d+:\d+", ratio):
            fields["width"], fields["height"] = (int(n) for n in ratio.split(":"))
        return fields

    def unauthorised(self) -> web.Response:
        return error(401, _MESSAGES[401])

    def not_allowed(self, request: web.Request) -> web.Response:
        return error(405, f"Method {request.method} is not allowed here.")

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        return error(status, _MESSAGES.get(status, f"Simulated error {status}."), headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        if not _VERSION_RE.fullmatch(call.request.headers.get("X-Runway-Version", "")):
            return error(400, "You must provide a valid API version in the X-Runway-Version header, e.g. 2024-11-06.")
        state = sim.state
        if call.target == "create":
            return _create(state, call)
        task = state.tasks.get(call.task_id or "")
        if task is None or task.style != NAME or task.status(time.time()) == "expired":
            return error(404, "Task not found.")
        if call.target == "cancel":
            return _cancel(state, task)
        return json_response(200, task_json(state, task, call.base))


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return an error the way Runway answers it."""
    return json_response(status, {"error": message}, headers)


def _create(state: SimulatorState, call: Call) -> web.Response:
    body = json_body(call.body)
    if body is None:
        return error(400, "Validation of body failed: expected a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return error(400, "Validation of body failed: model is required.")
    prompt = body.get("promptText")
    if call.request.path.rstrip("/").endswith("image_to_video"):
        if not isinstance(body.get("promptImage"), (str, list)) or not body["promptImage"]:
            return error(400, "Validation of body failed: promptImage is required.")
    elif not isinstance(prompt, str) or not prompt:
        return error(400, "Validation of body failed: promptText is required.")
    if isinstance(prompt, str) and len(prompt) > 1000:
        return error(400, "Validation of body failed: promptText must be at most 1000 characters.")
    found = markers(prompt if isinstance(prompt, str) else "")
    if "invalid-request" in found:
        return error(400, "Validation of body failed: promptText was refused by the simulator.")
    task = state.create_task(NAME, body, False, found)
    if "input-moderation" in found:
        task.final_status, task.error_code = "failed", "SAFETY.INPUT.TEXT"
        task.error_message = "The prompt did not pass moderation."
    call.entry.task_id = task.id
    return json_response(200, {"id": task.id})


def task_json(state: SimulatorState, task: Task, base: str) -> dict[str, Any]:
    """Return the task as ``GET /tasks/{id}`` answers it."""
    now = time.time()
    status, started, _finished, _updated = task.timeline(now)
    answer: dict[str, Any] = {
        "id": task.id,
        "status": _STATUS.get(status, status.upper()),
        "createdAt": datetime.fromtimestamp(task.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
    }
    if status == "running":
        answer["progress"] = round(min(0.99, (now - (started or now)) / (task.running_seconds or 1.0)), 2)
    elif status == "succeeded":
        answer["output"] = [state.file_url(task, "videos", base, now)]
    elif status == "failed":
        failure = task.error(status) if task.error_code is not None else None
        answer["failureCode"], answer["failure"] = failure or _OUTPUT_FAILURE
    return answer


def _cancel(state: SimulatorState, task: Task) -> web.Response:
    if task.status(time.time()) in _NOT_FINAL:
        task.pinned = None
        task.cancelled_at = time.time()
    else:
        del state.tasks[task.id]  # Runway's DELETE removes a finished task for good
    return web.Response(status=204)
