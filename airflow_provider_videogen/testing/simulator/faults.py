"""How the simulator misbehaves on purpose: error answers, dropped connections, cut and slow bodies."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.records import Fault

TRICKLE_BYTES = 4
MALFORMED_BODY = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)
_XML_CODES = {
    400: ("BadRequest", "Bad Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    429: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}

ErrorForStatus = Callable[[int, Mapping[str, str]], web.Response]


def xml_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """Return an object store's error answer (the file host's)."""
    body = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return web.Response(status=status, text=body, content_type="application/xml", headers=headers)


def file_host_error(status: int, headers: Mapping[str, str]) -> web.Response:
    """Return the file host's own error answer for an HTTP status."""
    code, message = _XML_CODES.get(status, ("SimulatedError", "Simulated error."))
    return xml_error(status, code, message, headers)


def fault_response(fault: Fault, error_for_status: ErrorForStatus) -> web.Response:
    """Build the answer of an ``http_error``, ``empty_body``, ``malformed_body`` or ``expired`` fault.

    :param error_for_status: the answer of the route's service for a status (when the fault gives no body).
    """
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = fault.retry_after
    if fault.kind == "empty_body":
        return web.Response(status=fault.status or 200, body=b"", headers={"Content-Type": "application/json"})
    if fault.kind == "malformed_body" and fault.body is None:
        return web.Response(status=fault.status or 200, text=MALFORMED_BODY, content_type="text/html")
    if fault.kind == "expired" and fault.body is None:
        return xml_error(fault.status or 403, "AccessDenied", "Request has expired", headers)
    status = fault.status or (200 if fault.kind == "malformed_body" else 403 if fault.kind == "expired" else 500)
    if fault.body is None:
        return error_for_status(status, headers)
    if isinstance(fault.body, str):
        if fault.content_type:
            headers["Content-Type"] = fault.content_type
            return web.Response(status=status, body=fault.body.encode(), headers=headers)
        return web.Response(status=status, text=fault.body, headers=headers)
    body = json.dumps(fault.body).encode()
    headers["Content-Type"] = fault.content_type or "application/json"
    return web.Response(status=status, body=body, headers=headers)


def drop_connection(request: web.BaseRequest) -> web.Response:
    """Abort the request's connection (a reset)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # Writing the answer fails on the closed transport; aiohttp then drops it silently.
    return web.Response(status=500)


def dropped(request: web.BaseRequest) -> bool:
    """Whether the request's connection is gone."""
    transport = request.transport
    return transport is None or transport.is_closing()


async def send_truncated(
    request: web.BaseRequest, response: web.StreamResponse, chunks: Any, total: int, limit: int
) -> web.StreamResponse:
    """Announce ``total`` bytes, send only ``limit`` of them, then close the connection."""
    response.content_length = total
    await response.prepare(request)
    sent = 0
    for chunk in chunks:
        if sent >= limit:
            break
        piece = chunk[: limit - sent]
        await response.write(piece)
        sent += len(piece)
    transport = request.transport
    if transport is not None:
        transport.close()
    return response


async def send_trickled(
    request: web.BaseRequest,
    response: web.StreamResponse,
    payload: bytes,
    delay: float,
    pause: Callable[[float], Awaitable[bool]],
) -> web.StreamResponse:
    """Send the whole answer a few bytes at a time, ``delay`` seconds apart (a slow, live connection)."""
    response.content_length = len(payload)
    await response.prepare(request)
    for start in range(0, len(payload), TRICKLE_BYTES):
        if start and not await pause(delay):
            break
        if dropped(request):
            break
        await response.write(payload[start : start + TRICKLE_BYTES])
    return response


#: Bytes an ``oversized`` fault pads an answer to by default: past any sane limit on an API answer.
OVERSIZED_BYTES = 5 * 1024 * 1024
#: The first copy of each item of a ``duplicate`` list answer says this by default (the second is the truth).
CONTRADICTION: dict[str, Any] = {
    "status": "failed",
    "error": {"code": "SimulatedContradiction", "message": "This copy of the task contradicts the other one."},
}


def other_origin(request: web.BaseRequest) -> str:
    """Return the scheme and host of another origin that reaches this same server (127.0.0.1 and localhost)."""
    host, _, port = request.host.rpartition(":")
    if not host or port.startswith("]") or not port.isdigit():
        host, port = request.host, ""
    other = "localhost" if host != "localhost" else "127.0.0.1"
    return f"{request.scheme}://{other}{':' + port if port else ''}"


def redirect_elsewhere(request: web.BaseRequest, fault: Fault) -> web.Response:
    """Answer a ``redirect`` fault: the same path and query at another origin (a CDN, a login page)."""
    location = other_origin(request) + request.path_qs
    return web.Response(status=fault.status or 307, headers={"Location": location})


def _each_object(value: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(value, dict):
        visit(value)
        for item in value.values():
            _each_object(item, visit)
    elif isinstance(value, list):
        for item in value:
            _each_object(item, visit)


def reshape(fault: Fault, response: web.Response, api_key: str) -> web.Response:
    r"""Apply an answer-changing fault to a style's JSON answer.

    ``echo_key``: every object of the answer gets an ``echo`` field holding the key (``fault.escape``:
    as is, with ``/`` written ``\/``, or every character as ``\uXXXX``, all valid JSON); ``cookie``: the
    answer sets a cookie; ``oversized``: a ``padding`` field makes it ``fault.size`` bytes or more;
    ``duplicate``: each item of a list answer comes twice, the first copy changed by ``fault.body``
    (a mapping; by default a failure), the second the truth. An answer that is not JSON is left as it is.
    """
    if fault.kind == "cookie":
        response.headers.add("Set-Cookie", f"videogen_sim_session=fault-{fault.id}; Path=/; HttpOnly")
        return response
    raw = response.body if isinstance(response.body, bytes) else b""
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        return response
    if fault.kind == "echo_key":
        _each_object(payload, lambda obj: obj.__setitem__("echo", api_key))
        text = json.dumps(payload)
        if fault.escape == "slash":
            text = text.replace("/", "\\/")
        elif fault.escape == "unicode":
            text = text.replace(json.dumps(api_key)[1:-1], "".join(f"\\u{ord(c):04x}" for c in api_key))
    elif fault.kind == "oversized":
        size = OVERSIZED_BYTES if fault.size is None else fault.size
        if isinstance(payload, dict):
            payload["padding"] = "x" * size
        text = json.dumps(payload) if isinstance(payload, dict) else json.dumps({"padding": "x" * size})
    elif fault.kind == "duplicate":
        change = fault.body if isinstance(fault.body, Mapping) else CONTRADICTION
        items = payload.get("items") if isinstance(payload, dict) else None
        if isinstance(payload, dict) and isinstance(items, list):
            payload["items"] = [copy for item in items for copy in ({**item, **change}, item)]
        text = json.dumps(payload)
    else:
        return response
    return web.Response(status=response.status, body=text.encode(), headers={"Content-Type": "application/json"})
