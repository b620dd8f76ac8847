"""The simulator's Gemini API routes: Google's Veo models as long-running operations.

``POST {prefix}/models/{model}:predictLongRunning`` creates and answers ``{"name":
"models/{model}/operations/{id}"}``; ``GET {prefix}/models/{model}/operations/{id}`` reads the
operation (no ``done`` while it renders, then ``error`` or ``response.generateVideoResponse``);
``GET {prefix}/files/{id}:download?alt=media`` serves the video with ``Range``, to the key only. The
key is the ``x-goog-api-key`` header (a Bearer key is refused, as Google refuses an API key sent as
an OAuth token). Errors are ``google.rpc.Status`` objects (``code``, ``message``, ``status``). A task
that failed with the output-moderation code is a content-filtered result
(``raiMediaFilteredCount``/``raiMediaFilteredReasons``); another failure is the operation's
``error``. The prompt marker ``[sim:file-redirect=<base URL>]`` makes the file route answer ``302``
to the simulator's signed file URL at that base (another origin: the key must not follow). There is
no cancel. Faults target ``create``, ``query`` and ``download``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
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

NAME = "gemini_veo"
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_CREATE_RE = re.compile(rf"/models/({_SEGMENT}):predictLongRunning$")
_OPERATION_RE = re.compile(rf"/models/({_SEGMENT})/operations/({_SEGMENT})$")
_FILE_RE = re.compile(rf"/files/({_SEGMENT}):download$")
_MODERATION_CODE = "OutputVideoSensitiveContentDetected"
# google.rpc.Code of each simulated HTTP status.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ENDED = {"cancelled": (1, "The operation was cancelled."), "expired": (4, "The operation expired.")}


class GeminiVeoRoutes(StyleRoutes):
    """``:predictLongRunning``, the operations, the file download; no cancel."""

    name: ClassVar[str] = NAME
    aliases: ClassVar[tuple[str, ...]] = ("gemini", "veo")

    targets: ClassVar[Mapping[tuple[str, str], str]] = {
        ("collection", "POST"): "create",
        ("task", "GET"): "query",
        ("content", "GET"): "download",
        ("content", "HEAD"): "download",
    }

    def match(self, method: str, path: str) -> tuple[str | None, str | None] | None:
        """Three routes of their own shapes: the model's create, an operation (its id) and a file."""
        if _CREATE_RE.search(path):
            resource, task_id = "collection", None
        elif found := _OPERATION_RE.search(path):
            resource, task_id = "task", found.group(2)
        elif found := _FILE_RE.search(path):
            resource, task_id = "content", found.group(1)
        else:
            return None
        return self.targets.get((resource, method)), task_id

    def new_task_id(self, now: float) -> str:
        return random_id("", "abcdefghijklmnopqrstuvwxyz0123456789", 12)

    def generation_fields(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        raw = body.get("parameters")
        parameters: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        return {
            "resolution": parameters.get("resolution"),
            "ratio": parameters.get("aspectRatio"),
            "duration": parameters.get("durationSeconds"),
            "seed": parameters.get("seed"),
        }

    def authorised(self, request: web.Request, api_key: str) -> bool:
        """Whether ``x-goog-api-key`` carries the key (Google also takes ``?key=``, which the provider never sends)."""
        return request.headers.get("x-goog-api-key") == api_key

    def unauthorised(self) -> web.Response:
        return google_error(400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID")

    def not_allowed(self, request: web.Request) -> web.Response:
        return google_error(405, f"Method {request.method} is not allowed for {request.path}.")

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        delay = headers.get("Retry-After", "")
        if status == 429 and delay.isdigit():
            # Google says when to come back in the details (RetryInfo), not in a Retry-After header.
            retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}
            error = {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED", "details": [retry_info]}
            return json_response(429, {"error": error})
        return google_error(status, f"simulated error {status}", headers=headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        if call.target == "create":
            return _create(sim, call)
        task = sim.state.tasks.get(call.task_id or "")
        if call.target == "query":
            model = _part(_OPERATION_RE, call.request.path, 1)
            if task is None or task.style != NAME or task.model != model:
                return google_error(404, f"Operation models/{model}/operations/{call.task_id} not found.")
            return json_response(200, operation(task, _api_root(call.request)))
        if task is None or task.style != NAME:
            return google_error(404, f"File {call.task_id} not found.")
        return await _download(sim, call.request, task, call.truncate)


def google_error(
    status: int, message: str, *, reason: str | None = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Return an error as the Gemini API answers it: ``{"error": google.rpc.Status}``."""
    error: dict[str, Any] = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if reason is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}
        ]
    return json_response(status, {"error": error}, headers)


def operation_name(task: Task) -> str:
    """Return the task's operation name, ``models/{model}/operations/{id}``."""
    return f"models/{task.model}/operations/{task.id}"


def operation(task: Task, api_root: str) -> dict[str, Any]:
    """Return the operation of a task, as ``GET {prefix}/{name}`` answers it."""
    status = task.status(time.time())
    answer: dict[str, Any] = {"name": operation_name(task)}
    if status in ("queued", "running"):
        return answer  # proto3 JSON leaves out done=false
    answer["done"] = True
    failure = task.error(status)
    if status == "succeeded":
        sample = {"video": {"uri": f"{api_root}/files/{task.id}:download?alt=media"}}
        result: dict[str, Any] = {"generatedSamples": [sample]}
    elif failure is not None and failure[0] == _MODERATION_CODE:
        result = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [failure[1]]}
    else:
        code, message = _ENDED.get(status, (13, "Internal error."))
        if failure is not None:
            code, message = (int(failure[0]) if failure[0].isdigit() else 13), failure[1]
        answer["error"] = {"code": code, "message": message}
        return answer
    answer["response"] = {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
        "generateVideoResponse": result,
    }
    return answer


def _create(sim: Simulator, call: Call) -> web.Response:
    model = _part(_CREATE_RE, call.request.path, 1)
    body = json_body(call.body)
    if body is None:
        return google_error(400, "Invalid JSON payload: expected a JSON object.")
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances or not isinstance(instances[0], dict):
        return google_error(400, "Invalid JSON payload: 'instances' must hold one instance.")
    instance = instances[0]
    prompt = instance.get("prompt")
    if not isinstance(prompt, str) and "image" not in instance:
        return google_error(400, "An instance needs a prompt or an image.")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        return google_error(400, "Invalid JSON payload: 'parameters' must be an object.")
    duration = parameters.get("durationSeconds")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int) or duration not in (4, 5, 6, 8)
    ):
        return google_error(400, f"durationSeconds must be 4, 5, 6 or 8, got {duration!r}.")
    found = markers(prompt or "")
    if "input-moderation" in found:
        return google_error(400, MSG_INPUT_MODERATION)
    task = sim.state.create_task(NAME, {**body, "model": model}, False, found)
    call.entry.task_id = task.id
    return json_response(200, {"name": operation_name(task)})


async def _download(sim: Simulator, request: web.Request, task: Task, truncate: int | None) -> web.StreamResponse:
    now = time.time()
    if request.query.get("alt") != "media":
        return google_error(400, "Add alt=media to download the file's bytes.")
    if task.status(now) != "succeeded" or now >= task.expires_at(now):
        return google_error(404, f"File {task.id} not found (videos are kept about 2 days).")
    body = task.created_body if isinstance(task.created_body, Mapping) else {}
    instance = (body.get("instances") or [{}])[0]
    redirect = markers(instance.get("prompt") or "").get("file-redirect")
    if redirect:
        location = sim.state.file_url(task, "videos", redirect.rstrip("/"), now)
        return web.Response(status=302, headers={"Location": location})
    return await files.serve(sim, request, task, task.video_size, "video/mp4", truncate, None)


def _part(pattern: re.Pattern[str], path: str, group: int) -> str:
    found = pattern.search(path)
    assert found is not None  # the path matched it in match()
    return found.group(group)


def _api_root(request: web.Request) -> str:
    """``scheme://host`` and the prefix the request came under (``/v1beta``), for the file URIs."""
    prefix = request.path.split("/models/", 1)[0]
    return f"{request.scheme}://{request.host}{prefix}"
