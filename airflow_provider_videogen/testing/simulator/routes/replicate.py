"""The simulator's Replicate routes: predictions, as ``api.replicate.com`` serves them under ``/v1``.

::

POST {prefix}/models/{owner}/{name}/predictions   create (an official model) -> 201, the prediction
POST {prefix}/predictions                         create with "version" (64 hex digits) -> 201
GET  {prefix}/predictions[?cursor=...]            list: newest first, 100 a page, {"next", "previous", "results"}
GET  {prefix}/predictions/{id}                    query: starting, processing, succeeded, failed, canceled, aborted
POST {prefix}/predictions/{id}/cancel             cancel: 200, the prediction (a finished one unchanged)
GET  {prefix}/files/{id}/download                 an output under the API's root, to the token only

The key is ``Authorization: Bearer``. Errors are problem details (``{"title", "detail", "status"}``);
a 429 says when to come back in ``detail`` ("Expected available in 5 seconds."), with no
``Retry-After`` unless the fault gives a body of its own. A ``Cancel-After`` header (``1h5m30s``) is
the prediction's deadline: reached before it started it ends ``aborted``, while it ran ``canceled``.
An output is a URL on the file host; prompt markers change it: ``[sim:output-list]`` a list (a
thumbnail, then the video), ``[sim:api-file]`` a file under the API's root that needs the token,
``[sim:file-redirect=<base URL>]`` that file answering 302 to the file host at another origin. An
hour after a prediction finished (``[sim:output-ttl=<seconds>]`` sooner) its output is gone:
``output`` null and ``data_removed`` true. ``Prefer: wait`` is never honoured (the simulator answers
at once and records it). Matched before fal's catch-all create; Gemini's ``/models/...`` routes end
otherwise (``:predictLongRunning``, ``/operations/{id}``), so neither catches the other's requests.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
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
    from airflow_provider_videogen.testing.simulator.state import SimulatorState, Task

NAME = "replicate"
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MODEL_CREATE_RE = re.compile(rf"/models/({_SEGMENT})/({_SEGMENT})/predictions/?$")
_PREDICTION_RE = re.compile(r"/predictions(?:/([^/]+)(/cancel)?)?/?$")
_FILE_RE = re.compile(r"/files/([a-z0-9]+)/download$")
_VERSION_RE = re.compile(r"[0-9a-f]{64}")
_DURATION_RE = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_KEPT = 3600.0  # seconds Replicate keeps an API prediction's input and output after it finished
_PAGE = 100  # predictions a list page holds, as Replicate's
_PUBLIC_STATUS = {
    "queued": "starting",
    "running": "processing",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "canceled",
    "aborted": "aborted",
    "expired": "succeeded",  # an ended prediction has no "expired": its output is removed instead
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    422: "Invalid input",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ReplicateRoutes(StyleRoutes):
    """A model's or a version's create, a prediction's read and cancel, an output under the API's root."""

    name: ClassVar[str] = NAME
    targets: ClassVar[Mapping[tuple[str, str], str]] = {
        ("collection", "POST"): "create",
        ("collection", "GET"): "list",
        ("task", "GET"): "query",
        ("cancel", "POST"): "cancel",
        ("content", "GET"): "download",
        ("content", "HEAD"): "download",
    }

    def match(self, method: str, path: str) -> tuple[str | None, str | None] | None:
        """Match the model's create, the predictions collection, one prediction, its cancel, a file under the root."""
        if _MODEL_CREATE_RE.search(path):
            # A model's predictions are created there, never listed.
            return ("create" if method == "POST" else None), None
        elif found := _PREDICTION_RE.search(path):
            task_id = found.group(1)
            resource = "collection" if task_id is None else "cancel" if found.group(2) else "task"
        elif found := _FILE_RE.search(path):
            resource, task_id = "content", found.group(1)
        else:
            return None
        return self.targets.get((resource, method)), task_id

    def new_task_id(self, now: float) -> str:
        return random_id("", _ID_ALPHABET, 26)

    def generation_fields(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        found = body.get("input")
        model_input: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        return {**model_input, "ratio": model_input.get("aspect_ratio")}

    def unauthorised(self) -> web.Response:
        return problem(401, "You did not pass a valid authentication token")

    def not_allowed(self, request: web.Request) -> web.Response:
        return problem(405, f'Method "{request.method}" not allowed.')

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        if status == 429:
            # Replicate says when to come back in the detail, not in a Retry-After header.
            wait = headers.get("Retry-After") or "1"
            unit = "second" if wait == "1" else "seconds"
            return json_response(429, {"detail": f"Request was throttled. Expected available in {wait} {unit}."})
        return problem(status, f"Simulated error {status}.", headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        state = sim.state
        if call.target == "create":
            return _create(state, call)
        if call.target == "list":
            return _list(state, call)
        task = state.tasks.get(call.task_id or "")
        if task is None or task.style != NAME:
            return json_response(404, {"detail": "Not found."})
        now = time.time()
        status = _status(task, now)
        if call.target == "download":
            return await _download(sim, call, task, status)
        if call.target == "cancel" and status in ("queued", "running"):
            task.pinned = None
            task.cancelled_at = now
            status = "cancelled"
        return json_response(200, prediction(state, task, status, _api_root(call.request), now))


def problem(status: int, detail: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return an error the way Replicate answers it: problem details (``title``, ``detail``, ``status``)."""
    title = _TITLES.get(status, "Error")
    return json_response(status, {"title": title, "detail": detail, "status": status}, headers)


def _api_root(request: web.Request) -> str:
    """``scheme://host`` and the prefix the request came under (``/v1``): the prediction's URLs start there."""
    path = request.path
    for marker in ("/models/", "/predictions", "/files/"):
        if marker in path:
            path = path.split(marker, 1)[0]
            break
    return f"{request.scheme}://{request.host}{path}"


def cancel_after_seconds(value: str | None) -> float | None:
    """Read a ``Cancel-After`` duration (``1h5m30s``, ``1m``, ``30s``) as seconds; ``None`` if absent or unreadable."""
    found = _DURATION_RE.fullmatch(value.strip()) if value else None
    if found is None or not any(found.groups()):
        return None
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def _create(state: SimulatorState, call: Call) -> web.Response:
    body = json_body(call.body)
    if body is None or not isinstance(body.get("input"), dict):
        return problem(422, "The request body must be a JSON object with an 'input' object.")
    if found := _MODEL_CREATE_RE.search(call.request.path):
        model = f"{found.group(1)}/{found.group(2)}"
    else:
        version = body.get("version")
        if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
            return problem(422, "The specified version does not exist (or perhaps you cannot use it?)")
        model = f"version-{version[:12]}"
    prompt = body["input"].get("prompt")
    found_markers = markers(prompt if isinstance(prompt, str) else "")
    if "invalid-request" in found_markers:
        return problem(422, "- input.prompt: refused by the simulator")
    task = state.create_task(NAME, {**body, "model": model}, False, found_markers)
    if "input-moderation" in found_markers:
        task.final_status, task.error_code = "failed", "E005"
        task.error_message = MSG_INPUT_MODERATION
    deadline = cancel_after_seconds(call.request.headers.get("Cancel-After"))
    if deadline is not None:
        task.params["cancel_after"] = deadline
    call.entry.task_id = task.id
    now = time.time()
    return json_response(201, prediction(state, task, _status(task, now), _api_root(call.request), now))


def _list(state: SimulatorState, call: Call) -> web.Response:
    """List the predictions newest first, a page at a time: ``cursor`` is opaque, the id the page starts after."""
    newest_first = [task for task in reversed(state.tasks.values()) if task.style == NAME]
    ids = [task.id for task in newest_first]
    start = 0
    cursor = call.request.query.get("cursor")
    if cursor is not None:
        try:
            after = base64.urlsafe_b64decode(cursor.encode()).decode()
        except (binascii.Error, UnicodeDecodeError):
            after = ""
        if after not in ids:
            return problem(400, "Invalid cursor.")
        start = ids.index(after) + 1
    page = newest_first[start : start + _PAGE]
    root, now = _api_root(call.request), time.time()

    def link(after: Task | None) -> str:
        if after is None:
            return f"{root}/predictions"
        return f"{root}/predictions?cursor={base64.urlsafe_b64encode(after.id.encode()).decode()}"

    more = start + _PAGE < len(newest_first)
    previous = None if start == 0 else link(newest_first[start - _PAGE - 1] if start > _PAGE else None)
    return json_response(
        200,
        {
            "next": link(page[-1]) if more and page else None,
            "previous": previous,
            "results": [prediction(state, task, _status(task, now), root, now) | {"source": "api"} for task in page],
        },
    )


def _status(task: Task, now: float) -> str:
    """Return the status with the ``Cancel-After`` deadline applied: ``aborted`` before it started, else canceled."""
    status = task.status(now)
    deadline = task.params.get("cancel_after")
    if deadline is None or status not in ("queued", "running") or now < task.created + deadline:
        return status
    started = task.created + task.queued_seconds
    task.pinned, task.pinned_at = ("aborted" if task.created + deadline < started else "cancelled"), now
    return task.status(now)


def _output_kept_until(task: Task, now: float) -> float:
    found = _prompt_markers(task)
    kept = _KEPT
    if "output-ttl" in found:
        with contextlib.suppress(ValueError):
            kept = float(found["output-ttl"])
    finished = task.timeline(now)[2] or now
    return finished + kept


def _prompt_markers(task: Task) -> dict[str, str]:
    body = task.created_body if isinstance(task.created_body, Mapping) else {}
    model_input = body.get("input")
    prompt = model_input.get("prompt") if isinstance(model_input, Mapping) else None
    return markers(prompt if isinstance(prompt, str) else "")


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prediction(state: SimulatorState, task: Task, status: str, api_root: str, now: float) -> dict[str, Any]:
    """Return the prediction of a task, as ``GET {prefix}/predictions/{id}`` answers it."""
    _status_name, started, finished, _updated = task.timeline(now)
    body = task.created_body if isinstance(task.created_body, Mapping) else {}
    answer: dict[str, Any] = {
        "id": task.id,
        "model": task.model,
        "version": body.get("version") or "hidden",
        "input": body.get("input"),
        "logs": "",
        "output": None,
        "data_removed": False,
        "error": None,
        "status": _PUBLIC_STATUS.get(status, status),
        "created_at": _iso(task.created),
        "started_at": _iso(started),
        "completed_at": _iso(finished),
        "urls": {
            "get": f"{api_root}/predictions/{task.id}",
            "cancel": f"{api_root}/predictions/{task.id}/cancel",
            "web": f"https://replicate.com/p/{task.id}",
        },
    }
    if finished is not None:
        answer["metrics"] = {"predict_time": task.running_seconds if started is not None else 0}
    failure = task.error(status)
    if status == "failed" and failure is not None:
        answer["error"] = failure[1]
    if status in ("succeeded", "expired"):
        if status == "expired" or now >= _output_kept_until(task, now):
            answer["input"], answer["data_removed"] = {}, True
            return answer
        answer["output"] = _output(state, task, api_root, now)
    return answer


def _output(state: SimulatorState, task: Task, api_root: str, now: float) -> str | list[str]:
    found = _prompt_markers(task)
    base = api_root.split("/", 3)
    origin = "/".join(base[:3])
    if "api-file" in found or "file-redirect" in found:
        video = f"{api_root}/files/{task.id}/download"
    else:
        video = state.file_url(task, "videos", origin, now)
    if "output-list" in found:
        return [f"{origin}/_files/frames/{task.id}.png", video]
    return video


async def _download(sim: Simulator, call: Call, task: Task, status: str) -> web.StreamResponse:
    now = time.time()
    if status != "succeeded" or now >= _output_kept_until(task, now):
        return json_response(404, {"detail": "Not found."})
    redirect = _prompt_markers(task).get("file-redirect")
    if redirect:
        return web.Response(status=302, headers={"Location": sim.state.file_url(task, "videos", redirect, now)})
    return await files.serve(sim, call.request, task, task.video_size, "video/mp4", call.truncate, None)
