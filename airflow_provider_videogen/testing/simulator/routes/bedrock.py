"""The simulator's Amazon Bedrock runtime async-invoke routes (``bedrock_video``), served without a path prefix.

::

POST /async-invoke                    StartAsyncInvoke -> {"invocationArn"}
GET  /async-invoke/{invocationArn}    GetAsyncInvoke   -> status InProgress | Completed | Failed (failureMessage)
GET  /async-invoke                    ListAsyncInvokes -> {"asyncInvokeSummaries": [...]} (statusEquals, maxResults)

Requests must be SigV4-signed: the ``Authorization`` header starts with ``AWS4-HMAC-SHA256`` and
its credential scope names a region and the ``bedrock`` service (the HMAC itself is not checked).
``clientRequestToken`` is honoured as the service does: the same token with the same body answers
the invocation it made (nothing new is created or billed); the same token with another body is a
400 ``ConflictException``. Errors are the service's: HTTP status, ``x-amzn-ErrorType`` and
``{"message"}``. Queued and running both read ``InProgress``; a cancelled or expired task reads
``Failed``. When the simulator is given an ``s3_endpoint`` (a moto server, say), a completed
invocation's ``output.mp4`` is written there, under ``<s3Uri>/<invocation id>/``, before its first
``Completed`` answer, as Bedrock writes into the user's bucket.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs

from aiohttp import web

from airflow_provider_videogen.testing.simulator.routes.base import (
    Call,
    StyleRoutes,
    json_body,
    json_response,
    markers,
    write_finished_video,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.contract import Simulator
    from airflow_provider_videogen.testing.simulator.state import SimulatorState, Task

NAME = "bedrock_video"
#: The simulated account and region of every invocation ARN.
ACCOUNT = "123456789012"
REGION = "us-east-1"
_ARN = r"arn:aws:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:async-invoke/[a-z0-9]{12}"
_TASK_RE = re.compile(rf"^/async-invoke/({_ARN})$")
_COLLECTION = "/async-invoke"
_SCOPE_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request,")
_STATUS = {"queued": "InProgress", "running": "InProgress", "succeeded": "Completed"}
_ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


class BedrockRoutes(StyleRoutes):
    """StartAsyncInvoke, GetAsyncInvoke and ListAsyncInvokes; the signature's presence stands for the key."""

    name: ClassVar[str] = NAME
    targets: ClassVar[Mapping[tuple[str, str], str]] = {}

    def match(self, method: str, path: str) -> tuple[str | None, str | None] | None:
        """Match ``/async-invoke`` (create, list) and ``/async-invoke/{arn}`` (the path as decoded: the ARN whole)."""
        if path == _COLLECTION:
            return {"POST": "create", "GET": "list"}.get(method), None
        if found := _TASK_RE.match(path):
            return ("query" if method == "GET" else None), found.group(1)
        return None

    def new_task_id(self, now: float) -> str:
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=12))
        return f"arn:aws:bedrock:{REGION}:{ACCOUNT}:async-invoke/{suffix}"

    def authorised(self, request: web.Request, api_key: str) -> bool:
        found = _SCOPE_RE.match(request.headers.get("Authorization", ""))
        return found is not None and found.group(2) == "bedrock" and "X-Amz-Date" in request.headers

    def unauthorised(self) -> web.Response:
        return aws_error(403, "UnrecognizedClientException", "The security token included in the request is invalid.")

    def not_allowed(self, request: web.Request) -> web.Response:
        return aws_error(405, "UnknownOperationException", "Unknown operation.")

    def error_for_status(self, status: int, headers: Mapping[str, str]) -> web.Response:
        code = _ERRORS.get(status, "InternalServerException")
        return aws_error(status, code, f"Simulated {code}.", headers)

    async def answer(self, sim: Simulator, call: Call) -> web.StreamResponse:
        state = sim.state
        if call.target == "create":
            return _create(state, call)
        if call.target == "list":
            return _list(state, call)
        task = state.tasks.get(call.task_id or "")
        if task is None or task.style != NAME:
            return aws_error(404, "ResourceNotFoundException", f"Invocation {call.task_id} not found.")
        status = task.status(time.time())
        if status == "succeeded":
            await _write_output(state, task)
        return json_response(200, invocation(task, status))


def aws_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return an error as the Bedrock runtime answers one: ``x-amzn-ErrorType`` and ``{"message"}``."""
    return json_response(status, {"message": message}, {**(headers or {}), "x-amzn-ErrorType": f"{code}:"})


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _body_hash(body: Mapping[str, Any]) -> str:
    shown = {name: value for name, value in body.items() if name != "clientRequestToken"}
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def _output_prefix(task: Task) -> str:
    body = task.created_body if isinstance(task.created_body, Mapping) else {}
    config = body.get("outputDataConfig")
    s3 = config.get("s3OutputDataConfig") if isinstance(config, Mapping) else None
    uri = s3.get("s3Uri") if isinstance(s3, Mapping) else None
    return uri if isinstance(uri, str) else "s3://simulated-bucket/videos"


def invocation(task: Task, status: str) -> dict[str, Any]:
    """Return the ``GetAsyncInvoke`` answer of a task in ``status``."""
    _, _, finished, updated = task.timeline(time.time())
    raw_status = _STATUS.get(status, "Failed")
    folder = f"{_output_prefix(task).rstrip('/')}/{task.id.rpartition('/')[2]}"
    answer: dict[str, Any] = {
        "invocationArn": task.id,
        "modelArn": f"arn:aws:bedrock:{REGION}::foundation-model/{task.model}",
        "status": raw_status,
        "submitTime": _iso(task.created),
        "lastModifiedTime": _iso(updated),
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": folder}},
    }
    token = task.params.get("client_request_token")
    if token:
        answer["clientRequestToken"] = token
    if raw_status != "InProgress":
        answer["endTime"] = _iso(finished)
    if raw_status == "Failed":
        error = task.error(status)
        answer["failureMessage"] = error[1] if error else f"The invocation ended {status}."
    return answer


def _create(state: SimulatorState, call: Call) -> web.Response:
    body = json_body(call.body)
    if body is None:
        return aws_error(400, "ValidationException", "The request body must be a JSON object.")
    missing = [name for name in ("modelId", "modelInput", "outputDataConfig") if name not in body]
    if missing:
        return aws_error(400, "ValidationException", f"Missing required parameters: {', '.join(missing)}.")
    model_input = body["modelInput"] if isinstance(body["modelInput"], Mapping) else {}
    prompt = _prompt(model_input)
    found = markers(prompt)
    if "invalid-request" in found or "input-moderation" in found:
        return aws_error(400, "ValidationException", "The prompt was refused by the simulator.")
    token = body.get("clientRequestToken")
    digest = _body_hash(body)
    if isinstance(token, str) and token:
        for task in state.tasks.values():
            if task.style == NAME and task.params.get("client_request_token") == token:
                if task.params.get("body_hash") != digest:
                    return aws_error(
                        400, "ConflictException", "The clientRequestToken was already used with another request."
                    )
                call.entry.task_id = task.id
                return json_response(200, {"invocationArn": task.id})  # the same invocation: not billed again
    task = state.create_task(NAME, {**body, "model": body["modelId"]}, False, found)
    task.params.update(client_request_token=token, body_hash=digest)
    call.entry.task_id = task.id
    return json_response(200, {"invocationArn": task.id})


def _prompt(model_input: Mapping[str, Any]) -> str:
    for params in ("textToVideoParams", "multiShotAutomatedParams"):
        found = model_input.get(params)
        if isinstance(found, Mapping) and isinstance(found.get("text"), str):
            return str(found["text"])
    prompt = model_input.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def _list(state: SimulatorState, call: Call) -> web.Response:
    query = parse_qs(call.request.query_string)
    wanted = query["statusEquals"][0] if query.get("statusEquals") else None
    try:
        limit = int((query.get("maxResults") or ["1000"])[0])
    except ValueError:
        return aws_error(400, "ValidationException", "maxResults must be a number.")
    now = time.time()
    summaries = []
    for task in state.tasks.values():
        if task.style != NAME:
            continue
        summary = invocation(task, task.status(now))
        if wanted is None or summary["status"] == wanted:
            summaries.append(summary)
    return json_response(200, {"asyncInvokeSummaries": summaries[:limit]})


async def _write_output(state: SimulatorState, task: Task) -> None:
    """Write the task's ``output.mp4`` into the S3 server the simulator was given, once (none given: nothing)."""
    folder = invocation(task, "succeeded")["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"]
    await write_finished_video(state.config.s3_endpoint, f"{folder}/output.mp4", task)
