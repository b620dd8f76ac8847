"""The simulator's ``/v1/videos`` routes: the OpenAI Videos API shape, as gateways serve it.

``POST {prefix}/videos`` creates, ``GET .../videos/{id}`` reads the video object (with an
``openai-poll-after-ms`` header when the simulator is configured with one), ``GET
.../videos/{id}/content`` serves the MP4 (``?variant=thumbnail``: the PNG) to the API key only,
with ``Range`` and ``ETag`` like the file host, and ``DELETE .../videos/{id}`` deletes the video.
``GET {prefix}/videos`` lists the videos, newest first (``limit``, ``after``, ``order``), as the OpenAI
shape does: ``{"object": "list", "data": [...], "first_id", "last_id", "has_more"}``; a video object
carries its ``prompt``, as OpenAI's does.
There is no cancel. Faults target ``create``, ``query``, ``list``, ``cancel`` (the DELETE) and ``download``.
"""

from __future__ import annotations

import email.policy
import hashlib
import json
import re
import time
from collections.abc import Mapping
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from airflow_provider_videogen.testing.simulator import files
from airflow_provider_videogen.testing.simulator.config import MSG_INPUT_MODERATION
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
    from airflow_provider_videogen.testing.simulator.records import Task

NAME = "openai_videos"

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

    route = re.compile(r"/videos(?:/([^/]+)(/content)?)?/?$")
    targets: ClassVar[Mapping[tuple[str, str], str]] = {
        ("collection", "POST"): "create",
        ("collection", "GET"): "list",
        ("task", "GET"): "query",
        ("task", "DELETE"): "cancel",
        ("content", "GET"): "download",
        ("content", "HEAD"): "download",
    }

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

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        state = sim.state
        if call.target == "create":
            return _create(sim, call)
        if call.target == "list":
            return _list(sim, call)
        task = state.tasks.get(call.task_id or "")
        if task is None or task.style != NAME:
            return error(404, f"Video with id '{call.task_id}' not found.", "video_not_found")
        if call.target == "cancel":
            del state.tasks[task.id]
            return _ok({"id": task.id, "object": "video.deleted", "deleted": True})
        if call.target == "download":
            return await _content(sim, call.request, task, call.truncate)
        headers = {}
        if state.config.openai_poll_after_ms is not None:
            headers["openai-poll-after-ms"] = str(state.config.openai_poll_after_ms)
        return _ok(video_object(sim, task, call.base), headers)


def error(status: int, message: str, code: str, type_: str = "invalid_request_error") -> web.Response:
    """Return an error the way the OpenAI shape answers it."""
    body = {"error": {"message": message, "type": type_, "code": code, "param": None}}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _create(sim: Simulator, call: Call) -> web.Response:
    body: dict[str, Any] | None = None
    if call.request.content_type == "multipart/form-data":
        form = _form(call.request.headers["Content-Type"], call.body)
        if isinstance(form, web.Response):
            return form
        body = form
    else:
        body = json_body(call.body)
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
    call.entry.task_id = task.id
    return _ok(video_object(sim, task, call.base))


def _list(sim: Simulator, call: Call) -> web.Response:
    """List this style's videos: ``limit`` (1-100, 20 by default), ``order`` (``desc`` by default), ``after`` an id."""
    query = call.request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return error(400, "Invalid 'limit': expected an integer between 1 and 100.", "invalid_value")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        return error(400, "Invalid 'order': expected 'asc' or 'desc'.", "invalid_value")
    tasks = sorted(
        (task for task in sim.state.tasks.values() if task.style == NAME),
        key=lambda task: task.created,
        reverse=order == "desc",
    )
    after = query.get("after")
    if after:
        ids = [task.id for task in tasks]
        if after not in ids:
            return error(404, f"Video with id '{after}' not found.", "video_not_found")
        tasks = tasks[ids.index(after) + 1 :]
    page = tasks[:limit]
    data = [video_object(sim, task, call.base) for task in page]
    return _ok(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(tasks) > limit,
        }
    )


def _form(content_type: str, raw: bytes) -> dict[str, Any] | web.Response:
    """Read a multipart create: its text fields, and ``input_reference`` described by size and sha256."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        return error(400, "Invalid multipart body.", "invalid_request")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            return error(400, "Invalid multipart body: each part needs a name.", "invalid_request")
        if part.get_filename() is None:
            fields[name] = payload.decode()
            continue
        if name != "input_reference":
            return error(400, f"Unexpected file field {name!r}.", "invalid_request")
        if part.get_content_type() not in ("image/png", "image/jpeg", "image/webp"):
            return error(400, f"Unsupported input_reference type {part.get_content_type()!r}.", "invalid_value")
        fields[name] = {
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "size": len(payload),
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
    return fields


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
    body = task.created_body
    failure = task.error(status)
    if failure is None and status in ("cancelled", "expired"):
        failure = ("video_expired" if status == "expired" else "video_cancelled", f"The video was {status}.")
    answer: dict[str, Any] = {
        "id": task.id,
        "object": "video",
        "model": task.model,
        "prompt": body.get("prompt") if isinstance(body, Mapping) else None,
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
        png = files.last_frame(task)
        return await files.serve(sim, request, task, len(png), "image/png", truncate, png)
    if variant != "video":
        return error(400, f"Unsupported variant {variant!r}.", "invalid_value")
    return await files.serve(sim, request, task, task.video_size, "video/mp4", truncate, None)


def _ok(payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(200, payload, headers)
