"""The simulator's control API under ``/_simulator/`` (no authentication, never in the request log).

``GET health``; ``GET``/``PATCH config``; ``POST reset``; ``GET``/``POST tasks``; ``GET``/``DELETE
tasks/{id}``; ``POST tasks/{id}/status``; ``GET``/``POST``/``DELETE faults``; ``GET``/``DELETE requests``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from airflow_provider_videogen.testing._media import clip_sha256, video_sha256
from airflow_provider_videogen.testing.simulator.routes.base import json_response
from airflow_provider_videogen.testing.simulator.state import SimulatorState


async def control(state: SimulatorState, request: web.Request) -> web.StreamResponse:
    """Answer a ``/_simulator/`` request (bad input: 400, unknown task: 404)."""
    try:
        return await _control(state, request)
    except KeyError as exc:
        return json_response(404, {"error": f"not found: {exc.args[0] if exc.args else ''}"})
    except (ValueError, TypeError) as exc:
        return json_response(400, {"error": str(exc)})


async def _control(state: SimulatorState, request: web.Request) -> web.StreamResponse:
    method = request.method
    # Split before decoding: a task id may hold "/" (a Bedrock invocation ARN), sent as %2F.
    parts = [unquote(part) for part in request.raw_path.partition("?")[0].strip("/").split("/")[1:]]
    base = f"{request.scheme}://{request.host}"
    payload: Any = {}
    if request.body_exists:
        raw = await request.read()
        if raw:
            payload = json.loads(raw)
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    if parts == ["health"] and method == "GET":
        return json_response(200, {"status": "ok"})
    if parts == ["config"]:
        if method == "GET":
            return json_response(200, state.config.to_dict())
        if method in ("POST", "PATCH"):
            return json_response(200, state.configure(payload).to_dict())
    if parts == ["reset"] and method == "POST":
        state.reset()
        return json_response(200, {})
    if parts == ["tasks"]:
        if method == "GET":
            return json_response(200, [state.task_dict(t, base) for t in state.tasks.values()])
        if method == "POST":
            task = state.add_task(**payload)
            return json_response(200, state.task_dict(task, base))
    if len(parts) == 2 and parts[0] == "tasks":
        task = state.tasks[parts[1]]
        if method == "GET":
            info = state.task_dict(task, base)
            if task.clip:
                info["video_sha256"] = clip_sha256()
            elif task.video_size > 8 * 1024 * 1024:
                loop = asyncio.get_running_loop()
                info["video_sha256"] = await loop.run_in_executor(None, video_sha256, task.id, task.video_size)
            else:
                info["video_sha256"] = video_sha256(task.id, task.video_size)
            return json_response(200, info)
        if method == "DELETE":
            del state.tasks[task.id]
            return json_response(200, {})
    if len(parts) == 3 and parts[0] == "tasks" and parts[2] == "status" and method == "POST":
        task = state.set_status(parts[1], payload.get("status", ""))
        return json_response(200, state.task_dict(task, base))
    if parts == ["faults"]:
        if method == "GET":
            return json_response(200, [f.to_dict() for f in state.faults])
        if method == "POST":
            return json_response(200, state.add_fault(**payload).to_dict())
        if method == "DELETE":
            state.faults.clear()
            return json_response(200, {})
    if parts == ["requests"]:
        if method == "GET":
            query = request.query
            entries = state.requests(query.get("target"), query.get("method"), query.get("task_id"))
            return json_response(200, entries)
        if method == "DELETE":
            state.log.clear()
            return json_response(200, {})
    return json_response(404, {"error": f"unknown control route {method} {request.path}"})
