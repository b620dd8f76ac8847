"""The simulator's Vertex AI Veo routes (``vertex_veo``) and the OAuth token endpoint its credentials use.

::

POST {prefix}/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning -> {"name": <operation>}
POST {prefix}/projects/{p}/locations/{l}/publishers/google/models/{m}:fetchPredictOperation
     {"operationName": <operation>} -> the operation (no "done" while it renders, then "error" or "response")
POST /token   a service account's signed JWT (grant type jwt-bearer) -> {"access_token", "expires_in"}

The token endpoint is Google's ``token_uri`` for a service-account key made in a test: it checks
the assertion is an RS256 JWT whose ``aud`` is Google's token endpoint (or this one) and whose ``scope`` holds
``cloud-platform`` (the signature itself is not checked), and answers the simulator's key as the
access token, which the Vertex routes take as ``Authorization: Bearer``.
A finished operation's ``response.videos[]`` holds a ``gcsUri`` under the create's ``storageUri``
when it named one (written into the GCS server the simulator was given, e.g. the GCS emulator, as Vertex
writes into the user's bucket; none given: nothing is written), else the video inline as ``bytesBase64Encoded``,
streamed (an answer of tens of MB is never built whole). A task failed with the output-moderation
code is a filtered result (``raiMediaFilteredCount``/``raiMediaFilteredReasons``). No cancel.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

from aiohttp import web

from airflow_provider_videogen.testing._media import clip_video, video_bytes
from airflow_provider_videogen.testing.simulator.config import MSG_INPUT_MODERATION
from airflow_provider_videogen.testing.simulator.faults import send_truncated
from airflow_provider_videogen.testing.simulator.routes.base import (
    Call,
    StyleRoutes,
    json_body,
    json_response,
    markers,
    write_finished_video,
)
from airflow_provider_videogen.testing.simulator.routes.gemini_veo import google_error

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.contract import Simulator
    from airflow_provider_videogen.testing.simulator.state import Task

NAME = "vertex_veo"
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MODEL_PATH = rf"/projects/({_SEGMENT})/locations/({_SEGMENT})/publishers/google/models/({_SEGMENT})"
_CREATE_RE = re.compile(rf"{_MODEL_PATH}:predictLongRunning$")
_FETCH_RE = re.compile(rf"{_MODEL_PATH}:fetchPredictOperation$")
_OPERATION_RE = re.compile(rf"^{_MODEL_PATH[1:]}/operations/({_SEGMENT})$")
TOKEN_PATH = "/token"
_GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_MODERATION_CODE = "OutputVideoSensitiveContentDetected"
_ENDED = {"cancelled": (1, "The operation was cancelled."), "expired": (4, "The operation expired.")}
# Bytes of video per base64 piece streamed (a multiple of 3: the pieces join into one base64 text).
_PIECE = 3 * 256 * 1024


def access_token(api_key: str, account: str) -> str:
    """Return the access token the simulator grants ``account``: its key, which its routes take as Bearer.

    The simulator's key stands for the token, as it stands for every other style's key: a fault that
    echoes the key echoes the token, which the provider must mask.
    """
    return api_key


class VertexVeoRoutes(StyleRoutes):
    """``:predictLongRunning``, ``:fetchPredictOperation`` and the token endpoint; Bearer tokens it granted."""

    name: ClassVar[str] = NAME
    targets: ClassVar[Mapping[tuple[str, str], str]] = {}

    def match(self, method: str, path: str) -> tuple[str | None, str | None] | None:
        """Match the model's create and fetch routes (the operation travels in the body), and ``/token``."""
        if path == TOKEN_PATH:
            return ("token" if method == "POST" else None), None
        if _CREATE_RE.search(path):
            return ("create" if method == "POST" else None), None
        if _FETCH_RE.search(path):
            return ("query" if method == "POST" else None), None
        return None

    def new_task_id(self, now: float) -> str:
        return str(uuid.uuid4())

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
        """Let anyone's assertion reach the token endpoint; the API takes the token the simulator grants."""
        return request.path == TOKEN_PATH or super().authorised(request, api_key)

    def unauthorised(self) -> web.Response:
        return google_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            reason="ACCESS_TOKEN_TYPE_UNSUPPORTED",
        )

    def not_allowed(self, request: web.Request) -> web.Response:
        return google_error(405, f"Method {request.method} is not allowed for {request.path}.")

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        return google_error(status, f"simulated error {status}", headers=headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        if call.target == "token":
            return _token(sim, call)
        if call.target == "create":
            return _create(sim, call)
        body = json_body(call.body) or {}
        name = body.get("operationName")
        found = _OPERATION_RE.match(name) if isinstance(name, str) else None
        path = _FETCH_RE.search(call.request.path)
        assert path is not None  # matched in match()
        if found is None or found.groups()[:3] != path.groups():
            return google_error(400, f"operationName must be an operation of {path.group(0)[1:]}, got {name!r}.")
        task = sim.state.tasks.get(found.group(4))
        if task is None or task.style != NAME or task.params.get("operation") != name:
            return google_error(404, f"Operation {name} not found.")
        call.entry.task_id = task.id
        return await _operation_answer(sim, call.request, task, call.truncate)


def _token(sim: Simulator, call: Call) -> web.Response:
    form = {name: values[0] for name, values in parse_qs(call.body.decode(errors="replace")).items()}
    if form.get("grant_type") != _JWT_BEARER:
        return json_response(400, {"error": "unsupported_grant_type"})
    parts = form.get("assertion", "").split(".")
    try:
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2])
    except (ValueError, binascii.Error, TypeError):
        return json_response(400, {"error": "invalid_grant", "error_description": "Invalid JWT."})
    # google-auth names Google's own endpoint as the audience wherever it sends the assertion.
    audiences = (f"{call.base}{TOKEN_PATH}", _GOOGLE_TOKEN_URI)
    problem = None
    if len(parts) != 3 or not parts[2] or header.get("alg") != "RS256":
        problem = "Invalid JWT Signature."
    elif claims.get("aud") not in audiences:
        problem = f"Invalid JWT: the audience must be {_GOOGLE_TOKEN_URI}."
    elif _CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
        problem = "Invalid OAuth scope: Vertex AI needs cloud-platform."
    elif not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        problem = "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
    if problem is not None:
        return json_response(400, {"error": "invalid_grant", "error_description": problem})
    token = access_token(sim.state.config.api_key, str(claims.get("iss")))
    return json_response(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})


def _create(sim: Simulator, call: Call) -> web.Response:
    found = _CREATE_RE.search(call.request.path)
    assert found is not None  # matched in match()
    project, location, model = found.groups()
    body = json_body(call.body)
    if body is None:
        return google_error(400, "Invalid JSON payload: expected a JSON object.")
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances or not isinstance(instances[0], dict):
        return google_error(400, "Invalid JSON payload: 'instances' must hold one instance.")
    prompt = instances[0].get("prompt")
    if not isinstance(prompt, str) and "image" not in instances[0]:
        return google_error(400, "An instance needs a prompt or an image.")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        return google_error(400, "Invalid JSON payload: 'parameters' must be an object.")
    found_markers = markers(prompt or "")
    if "input-moderation" in found_markers:
        return google_error(400, MSG_INPUT_MODERATION)
    task = sim.state.create_task(NAME, {**body, "model": model}, False, found_markers)
    operation = f"projects/{project}/locations/{location}/publishers/google/models/{model}/operations/{task.id}"
    task.params.update(operation=operation, storage_uri=parameters.get("storageUri"))
    call.entry.task_id = task.id
    return json_response(200, {"name": operation})


async def _operation_answer(
    sim: Simulator, request: web.Request, task: Task, truncate: int | None
) -> web.StreamResponse:
    status = task.status(time.time())
    name = task.params["operation"]
    if status in ("queued", "running"):
        return json_response(200, {"name": name})  # proto3 JSON leaves out done=false
    failure = task.error(status)
    if status == "succeeded":
        storage = task.params.get("storage_uri")
        if isinstance(storage, str) and storage:
            video = {"gcsUri": f"{storage.rstrip('/')}/{task.id}/sample_0.mp4", "mimeType": "video/mp4"}
            await write_finished_video(sim.state.config.gcs_endpoint, video["gcsUri"], task)
            return json_response(200, _done(name, {"videos": [video]}))
        return await _inline_answer(request, name, task, truncate)
    if failure is not None and failure[0] == _MODERATION_CODE:
        return json_response(200, _done(name, {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [failure[1]]}))
    code, message = _ENDED.get(status, (13, "Internal error."))
    if failure is not None:
        code, message = (int(failure[0]) if failure[0].isdigit() else 13), failure[1]
    return json_response(200, {"name": name, "done": True, "error": {"code": code, "message": message}})


def _done(name: str, response: Mapping[str, Any]) -> dict[str, Any]:
    typed = {"@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse", **response}
    return {"name": name, "done": True, "response": typed}


async def _inline_answer(request: web.Request, name: str, task: Task, truncate: int | None) -> web.StreamResponse:
    """Stream the operation with its video inline: the JSON around it, and the base64 piece by piece.

    A ``truncate`` fault cuts it after that many bytes (``-1``: half) and closes the connection.
    """
    marker = "\x00video\x00"
    head, _, tail = json.dumps(
        _done(name, {"videos": [{"bytesBase64Encoded": marker, "mimeType": "video/mp4"}]})
    ).partition(json.dumps(marker)[1:-1])
    answer = web.StreamResponse(status=200, headers={"Content-Type": "application/json; charset=utf-8"})
    video_size = len(clip_video()) if task.clip else task.video_size
    total = len(head) + 4 * -(-video_size // 3) + len(tail)
    chunks = itertools.chain([head.encode()], (base64.b64encode(p) for p in _pieces(task)), [tail.encode()])
    if truncate is not None:
        return await send_truncated(request, answer, chunks, total, total // 2 if truncate < 0 else truncate)
    answer.content_length = total
    await answer.prepare(request)
    for chunk in chunks:
        await answer.write(chunk)
    await answer.write_eof()
    return answer


def _pieces(task: Task) -> Iterator[bytes]:
    """Yield the task's video in pieces of :data:`_PIECE` bytes (the last one shorter)."""
    if task.clip:
        data = clip_video()
        yield from (data[start : start + _PIECE] for start in range(0, len(data), _PIECE))
        return
    held = b""
    for chunk in video_bytes(task.id, task.video_size):
        held += chunk
        while len(held) >= _PIECE:
            yield held[:_PIECE]
            held = held[_PIECE:]
    if held:
        yield held
