"""How the simulator misbehaves on purpose: error answers, dropped connections, cut and slow bodies."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.state import Fault

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
