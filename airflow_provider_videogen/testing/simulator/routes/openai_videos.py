"""The simulator's ``/v1/videos`` routes: the OpenAI Videos API shape, as gateways serve it.

``POST {prefix}/videos`` creates, ``GET .../videos/{id}`` reads the video object (with an
``openai-poll-after-ms`` header when the simulator is configured with one), ``GET
.../videos/{id}/content`` serves the MP4 (``?variant=thumbnail``: the PNG) to the API key only,
with ``Range`` and ``ETag`` like the file host, and ``DELETE .../videos/{id}`` deletes the video.
There is no cancel. Faults target ``create``, ``query``, ``cancel`` (the DELETE) and ``download``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from airflow_provider_videogen.testing._media import frame_png
from airflow_provider_videogen.testing.simulator import files
from airflow_provider_videogen.testing.simulator.config import MSG_INPUT_MODERATION
from airflow_provider_videogen.testing.simulator.routes.base import (
    StyleRoutes,
    json_body,
    json_response,
    markers,
    random_id,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.server import Simulator
    from airflow_provider_videogen.testing.simulator.state import LogEntry, Task

NAME = "openai_videos"
_ROUTE_RE = re.compile(r"/videos(?:/([^/]+)(/content)?)?/?$")

_PUBLIC_STATUS = {
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "failed",
    "expired": "failed",
}


class OpenAIVideosRoutes(StyleRoutes):
    """``/videos``: create, retrieve, the content (with the key), delete; no cancel."""

    name: ClassVar[str] = NAME
    aliases: ClassVar[tuple[str, ...]] = ("openai",)

    def match(self, method: str, path: str) -> tuple[str | None, str | None] | None:
        found = _ROUTE_RE.search(path)
        if found is None:
            return None
        task_id = found.group(1)
        if task_id is None:
            return ("create" if method == "POST" else None), None
        if found.group(2):
            return ("download" if method in ("GET", "HEAD") else None), task_id
        return {"GET": "query", "DELETE": "cancel"}.get(method), task_id

    def new_task_id(self, now: float) -> str:
        return random_id("video_", "0123456789abcdef")

    def unauthorised(self) -> web.Response:
        return error(401, "Incorrect API key provided.", "invalid_api_key", "authentication_error")

    def not_allowed(self, request: web.Request) -> web.Response:
        return error(405, f"Method {request.method} is not allowed here.", "method_not_allowed")

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        code = {401: "invalid_api_key", 404: "video_not_found", 429: "rate_limit_exceeded"}.get(status, "server_error")
        return json_response(
            status, {"error": {"message": f"simulated error {status}", "type": "api_error", "code": code}}, headers
        )

    async def answer(
        self,
        sim: Simulator,
        request: web.Request,
        target: str,
        task_id: str | None,
        body: bytes,
        entry: LogEntry,
        truncate: int | None,
    ) -> web.StreamResponse:
        return await _answer(sim, request, target, task_id, body, entry, truncate)


def error(status: int, message: str, code: str, type_: str = "invalid_request_error") -> web.Response:
    """Return an error the way the OpenAI shape answers it."""
    body = {"error": {"message": message, "type": type_, "code": code, "param": None}}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


async def _answer(
    sim: Simulator,
    request: web.Request,
    target: str,
    task_id: str | None,
    body: bytes,
    entry: LogEntry,
    truncate: int | None,
) -> web.StreamResponse:
    state = sim.state
    base = f"{request.scheme}://{request.host}"
    if target == "create":
        return _create(sim, body, entry, base)
    assert task_id is not None
    task = state.tasks.get(task_id)
    if task is None or task.style != NAME:
        return error(404, f"Video with id '{task_id}' not found.", "video_not_found")
    if target == "cancel":
        del state.tasks[task_id]
        return _ok({"id": task_id, "object": "video.deleted", "deleted": True})
    if target == "download":
        return await _content(sim, request, task, truncate)
    headers = {}
    if state.config.openai_poll_after_ms is not None:
        headers["openai-poll-after-ms"] = str(state.config.openai_poll_after_ms)
    return _ok(video_object(sim, task, base), headers)


def _create(sim: Simulator, raw: bytes, entry: LogEntry, base: str) -> web.Response:
    body = json_body(raw)
    if body is None:
        return error(400, "Invalid request body: expected a JSON object.", "invalid_request")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return error(400, "Missing required parameter: 'model'.", "missing_required_parameter")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return error(400, "Missing required parameter: 'prompt'.", "missing_required_parameter")
    seconds = body.get("seconds")
    if seconds is not None and (not isinstance(seconds, str) or not seconds.isdigit()):
        return error(400, "Invalid 'seconds': expected a string such as '4', '8' or '12'.", "invalid_value")
    found = markers(prompt)
    if "input-moderation" in found:
        return error(400, MSG_INPUT_MODERATION, "moderation_blocked")
    created_body = dict(body)
    if seconds is not None:
        created_body["duration"] = int(seconds)
    size = body.get("size")
    if isinstance(size, str) and re.fullmatch(r"\d+x\d+", size):
        created_body["width"], created_body["height"] = (int(n) for n in size.split("x"))
    task = sim.state.create_task(NAME, created_body, True, found)
    entry.task_id = task.id
    return _ok(video_object(sim, task, base))


def video_object(sim: Simulator, task: Task, base: str) -> dict[str, Any]:
    """Return the video object of a task, as ``GET /videos/{id}`` answers it."""
    now = time.time()
    status, started, finished, _updated = task.timeline(now)
    params = task.params
    progress = 0
    if status == "running":
        progress = min(99, int(100 * (now - (started or now)) / (task.running_seconds or 1.0)))
    elif status == "succeeded":
        progress = 100
    failure = task.error(status)
    if failure is None and status in ("cancelled", "expired"):
        failure = ("video_expired" if status == "expired" else "video_cancelled", f"The video was {status}.")
    answer: dict[str, Any] = {
        "id": task.id,
        "object": "video",
        "model": task.model,
        "status": _PUBLIC_STATUS[status],
        "progress": progress,
        "created_at": int(task.created),
        "completed_at": int(finished) if finished is not None and status == "succeeded" else None,
        "expires_at": int(task.expires_at(now)) if status == "succeeded" else None,
        "seconds": str(params["duration"]),
        "size": f"{params['width']}x{params['height']}",
        "error": {"code": failure[0], "message": failure[1]} if failure is not None else None,
    }
    if status == "succeeded" and sim.state.config.openai_direct_url:
        # new-api adds a direct file URL; the content route works all the same.
        answer["metadata"] = {"url": sim.state.file_url(task, "videos", base, now)}
    return answer


async def _content(sim: Simulator, request: web.Request, task: Task, truncate: int | None) -> web.StreamResponse:
    now = time.time()
    if task.status(now) != "succeeded":
        return error(400, f"Video '{task.id}' is not completed.", "video_not_ready")
    if now >= task.expires_at(now):
        return error(404, f"The content of video '{task.id}' has expired.", "video_expired")
    variant = request.query.get("variant", "video")
    if variant == "thumbnail":
        png = frame_png(task.id)
        return await files.serve(sim, request, task, len(png), "image/png", truncate, png)
    if variant != "video":
        return error(400, f"Unsupported variant {variant!r}.", "invalid_value")
    return await files.serve(sim, request, task, task.video_size, "video/mp4", truncate, None)


def _ok(payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(200, payload, headers)
