"""The simulator's file host: ``/_files/{videos,frames}/{id}.{mp4,png}`` at signed, expiring URLs.

Like an object store behind a CDN: no authentication, ``Range`` and ``ETag``, XML errors. The
``/v1/videos`` content route serves its files through :func:`serve` too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from aiohttp import web

from airflow_provider_videogen.testing._media import clip_png, clip_video, frame_png, iter_video
from airflow_provider_videogen.testing.simulator.faults import (
    dropped,
    file_host_error,
    send_truncated,
    xml_error,
)

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator.contract import Simulator
    from airflow_provider_videogen.testing.simulator.records import LogEntry, Task

_FILE_RE = re.compile(r"^/_files/(videos|frames)/([^/]+)\.(mp4|png)$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_STREAM_THRESHOLD = 256 * 1024


async def download(sim: Simulator, request: web.Request) -> web.StreamResponse:
    """Serve ``/_files/``: videos and last frames at their signed, expiring URLs, with ``Range``."""
    state = sim.state
    match = _FILE_RE.match(request.path)
    task_id = match.group(2) if match else None
    entry = state.record(request, "download", task_id, b"")
    response = await _download_answer(sim, request, match, entry)
    entry.status = None if dropped(request) and entry.fault in ("reset", "slow", "throttle") else response.status
    return response


async def _download_answer(
    sim: Simulator, request: web.Request, match: re.Match[str] | None, entry: LogEntry
) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        return xml_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    if match is None or (match.group(1) == "videos") != (match.group(3) == "mp4"):
        return xml_error(404, "NoSuchKey", "The specified key does not exist.")
    kind, task_id = match.group(1), match.group(2)
    instead, fault = await sim.apply_fault(
        request, "download", task_id, entry, file_host_error, ("truncate", "throttle")
    )
    if instead is not None:
        return instead
    now = time.time()
    task = sim.state.tasks.get(task_id)
    if task is None or task.status(now) != "succeeded" or (kind == "frames" and not task.return_last_frame):
        return xml_error(404, "NoSuchKey", "The specified key does not exist.")
    query = request.query
    expires = query.get("X-Expires")
    signature = query.get("X-Signature")
    if expires is not None or signature is not None:
        expected = sim.state.signature(kind, task_id, expires or "")
        if not signature or not hmac.compare_digest(signature, expected):
            return xml_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            url_expired = now >= float(expires or "0")
        except ValueError:
            url_expired = True
        if url_expired:
            return xml_error(403, "AccessDenied", "Request has expired")
    if now >= task.expires_at(now):
        return xml_error(403, "AccessDenied", "Request has expired")
    truncate = None
    if fault is not None and fault.kind == "truncate":
        truncate = fault.truncate_at
        if truncate is None:
            truncate = -1
    rate = fault.rate if fault is not None and fault.kind == "throttle" else None
    if kind == "frames":
        png = last_frame(task)
        return await serve(sim, request, task, len(png), "image/png", truncate, png, rate)
    return await serve(sim, request, task, task.video_size, "video/mp4", truncate, None, rate)


def last_frame(task: Task) -> bytes:
    """Return the PNG served as the last frame (or thumbnail) of ``task``."""
    return clip_png() if task.clip else frame_png(task.id)


async def serve(
    sim: Simulator,
    request: web.Request,
    task: Task,
    size: int,
    content_type: str,
    truncate: int | None,
    payload: bytes | None,
    rate: float | None = None,
) -> web.StreamResponse:
    """Send a task's file (``payload``, or the task's video made on the fly) with ``Range`` and ``ETag``.

    :param truncate: cut the body after that many bytes (``-1``: half) and close the connection.
    :param rate: send at most this many bytes per second.
    """
    etag = '"' + hashlib.md5(f"{task.id}:{size}:{content_type}".encode(), usedforsecurity=False).hexdigest() + '"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": formatdate(task.expires_at(time.time()) - task.url_ttl, usegmt=True),
        "Content-Type": content_type,
    }
    start, stop, status = 0, size, 200
    range_header = request.headers.get("Range")
    if range_header:
        parsed = parse_range(range_header, size)
        if parsed == "unsatisfiable":
            headers["Content-Range"] = f"bytes */{size}"
            del headers["Content-Type"]
            return xml_error(416, "InvalidRange", "The requested range is not satisfiable", headers)
        if isinstance(parsed, tuple):
            start, stop = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    length = stop - start

    if payload is None and task.clip:
        payload = clip_video()

    def chunks() -> Any:
        if payload is not None:
            return iter([memoryview(payload)[start:stop]])
        return iter_video(task.id, size, start, stop)

    response = web.StreamResponse(status=status, headers=headers)
    if truncate is not None and request.method == "GET":
        limit = length // 2 if truncate < 0 else truncate
        return await send_truncated(request, response, chunks(), length, limit)
    if request.method == "GET" and length <= _STREAM_THRESHOLD and rate is None:
        return web.Response(status=status, body=b"".join(chunks()), headers=headers)
    response.content_length = length
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    for chunk in chunks():
        if sim.closing.is_set():
            transport = request.transport
            if transport is not None:
                transport.abort()
            return response
        # A throttled body: each chunk (at most 1 MiB) is sent after its share of a second at ``rate``.
        if rate is not None and not await sim.pause(len(chunk) / rate):
            return response
        try:
            await response.write(chunk)
        except ConnectionResetError:  # the client went away
            return response
    await response.write_eof()
    return response


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """Parse a single ``bytes=`` range; None means "ignore the header and send everything"."""
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size
    start = int(first)
    if start >= size:
        return "unsatisfiable"
    if last:
        end = int(last)
        if end < start:
            return None
        return start, min(end + 1, size)
    return start, size
