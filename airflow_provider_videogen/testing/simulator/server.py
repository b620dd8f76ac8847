"""The simulator's server: one catch-all handler that records, faults, authenticates and routes.

Every request but the control API's is recorded in the request log; a queued fault for its target
applies next; then the style's key check and its :meth:`~routes.base.StyleRoutes.answer`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import ssl
import sys
from collections.abc import Sequence
from http import HTTPStatus

from aiohttp import web

from airflow_provider_videogen.testing.simulator import control, files
from airflow_provider_videogen.testing.simulator.config import (
    LISTEN_BACKLOG,
    SimulatorConfig,
    add_config_arguments,
    config_from_arguments,
)
from airflow_provider_videogen.testing.simulator.faults import (
    ErrorForStatus,
    drop_connection,
    dropped,
    fault_response,
    redirect_elsewhere,
    reshape,
    send_trickled,
    send_truncated,
)
from airflow_provider_videogen.testing.simulator.routes import ROUTES, StyleRoutes, style_routes
from airflow_provider_videogen.testing.simulator.routes.base import Call
from airflow_provider_videogen.testing.simulator.routes.video_generations import invalid_url
from airflow_provider_videogen.testing.simulator.state import Fault, LogEntry, SimulatorState

# Faults applied to the style's own answer (the rest replace it): cut, slowed, or changed.
_RESHAPING = ("echo_key", "cookie", "oversized", "duplicate")
_SHAPING = ("truncate", "trickle", *_RESHAPING)

STATE_KEY = web.AppKey("videogen_simulator_state", SimulatorState)
CLOSING_KEY = web.AppKey("videogen_simulator_closing", asyncio.Event)


class Simulator:
    """The request handler bound to one :class:`SimulatorState`."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.closing = asyncio.Event()

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Answer any request: the control API, the file host, or one of the styles' routes."""
        path = request.path
        if path.startswith("/_simulator/"):
            return await control.control(self.state, request)
        if path.startswith("/_files/"):
            return await files.download(self, request)
        return await self.api(request)

    async def pause(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; return False when the server shuts down meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closing.wait(), delay)
        return not self.closing.is_set()

    async def apply_fault(
        self,
        request: web.Request,
        target: str,
        task_id: str | None,
        entry: LogEntry,
        error_for_status: ErrorForStatus,
        shaping: tuple[str, ...] = _SHAPING,
    ) -> tuple[web.StreamResponse | None, Fault | None]:
        """Take the queued fault for a request, if any, and apply it.

        Returns the answer to send instead (a reset, an error answer in the service's own shape) or
        ``None`` to go on (a ``slow`` fault has paused first), and the fault itself: a ``shaping``
        kind (a cut, slow or throttled body) is left for the answer to apply.
        """
        fault = self.state.take_fault(target, task_id)
        if fault is None:
            return None, None
        entry.fault = fault.kind
        if fault.kind == "reset":
            instead: web.StreamResponse = drop_connection(request)
        elif fault.kind == "slow":
            return (None if await self.pause(fault.delay) else drop_connection(request)), fault
        elif fault.kind in shaping:
            return None, fault
        elif fault.kind == "redirect":
            instead = redirect_elsewhere(request, fault)
        else:
            instead = fault_response(fault, error_for_status)
        self.fired(fault)
        return instead, fault

    def fired(self, fault: Fault) -> None:
        """Once a fault's answer is made: move its task on to ``then_status``, if it asks (and the task exists)."""
        if fault.then_status is not None and fault.task_id in self.state.tasks:
            self.state.set_status(fault.task_id, fault.then_status)

    async def api(self, request: web.Request) -> web.StreamResponse:
        """Answer a request to a style's routes."""
        state = self.state
        body = await request.read() if request.body_exists else b""
        for style in ROUTES:
            found = style.match(request.method, request.path)
            if found is not None:
                break
        else:
            entry = state.record(request, "other", None, body)
            entry.status = 404
            return invalid_url(request)
        target, task_id = found
        entry = state.record(request, target or "other", task_id, body)
        limit = state.config.request_line_limit
        if limit is not None and _request_line_length(request) > limit:
            # Refused in front of the service, before the key or any fault is looked at.
            status = state.config.request_line_status
            entry.status = status
            return web.Response(status=status, text=f"{status} {HTTPStatus(status).phrase}\n")
        if target is None:
            response: web.StreamResponse = style.not_allowed(request)
        else:
            response = await self._answer(request, style, target, task_id, body, entry)
        entry.status = None if dropped(request) and entry.fault in ("reset", "slow") else response.status
        return response

    async def _answer(
        self,
        request: web.Request,
        style: StyleRoutes,
        target: str,
        task_id: str | None,
        body: bytes,
        entry: LogEntry,
    ) -> web.StreamResponse:
        instead, fault = await self.apply_fault(request, target, task_id, entry, style.error_for_status)
        if instead is not None:
            return instead
        truncate = None
        if fault is not None and fault.kind == "truncate":
            truncate = -1 if fault.truncate_at is None else fault.truncate_at
        if not style.authorised(request, self.state.config.api_key):
            return style.unauthorised()
        response = await style.answer(self, Call(request, target, task_id, body, entry, truncate))
        if fault is not None:
            self.fired(fault)
        if fault is not None and fault.kind in _RESHAPING and isinstance(response, web.Response):
            return reshape(fault, response, self.state.config.api_key)
        if fault is None or fault.kind not in ("truncate", "trickle") or not isinstance(response, web.Response):
            return response  # a streamed file was cut by the style itself
        payload = response.body if isinstance(response.body, bytes) else b""
        stream = web.StreamResponse(status=response.status, headers={"Content-Type": response.content_type})
        if fault.kind == "trickle":
            return await send_trickled(request, stream, payload, fault.delay, self.pause)
        limit = len(payload) // 2 if fault.truncate_at is None else fault.truncate_at
        return await send_truncated(request, stream, [payload], len(payload), limit)


def _request_line_length(request: web.BaseRequest) -> int:
    """Return the length of the request line (``GET /path?query HTTP/1.1``), as a server counts it."""
    version = f"HTTP/{request.version.major}.{request.version.minor}"
    return len(request.method) + len(request.raw_path) + len(version) + 2


def create_app(config: SimulatorConfig | None = None) -> web.Application:
    """Build the simulator's aiohttp application.

    The state is available as ``app[STATE_KEY]``; all routes are served by one catch-all handler so
    that the public API matches under any path prefix.
    """
    state = SimulatorState(config or SimulatorConfig(), style_routes)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    simulator = Simulator(state)
    app[STATE_KEY] = state
    app[CLOSING_KEY] = simulator.closing

    async def on_shutdown(_app: web.Application) -> None:
        simulator.closing.set()

    app.on_shutdown.append(on_shutdown)
    app.router.add_route("*", "/{tail:.*}", simulator.dispatch)
    return app


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _name, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def format_base_url(host: str, port: int, scheme: str = "http") -> str:
    """Return ``http://host:port`` (or ``https://``; IPv6 hosts in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{scheme}://{shown}:{port}"


async def start_server(
    config: SimulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, str]:
    """Start a simulator on the running event loop; return its runner and base URL.

    With ``ssl_context`` (see :mod:`~airflow_provider_videogen.testing.simulator.tls`) it serves HTTPS.
    Stop it with ``await runner.cleanup()``.
    """
    config = config or SimulatorConfig()
    app = create_app(config)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=2.0, max_line_size=config.max_request_line
    )
    await runner.setup()
    sock = _bind(host, port)
    try:
        site = web.SockSite(runner, sock, backlog=LISTEN_BACKLOG, ssl_context=ssl_context)
        await site.start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner, format_base_url(host, sock.getsockname()[1], "https" if ssl_context else "http")


def _raise_open_files_limit() -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def _serve_forever(config: SimulatorConfig, host: str, port: int, ca_file: str | None = None) -> None:
    context = None
    if ca_file:
        from airflow_provider_videogen.testing.simulator.tls import server_context

        context = server_context(ca_file)
    runner, url = await start_server(config, host, port, context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    print(f"VideoGen simulator listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser of ``python -m airflow_provider_videogen.testing.simulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_videogen.testing.simulator",
        description="Serve a simulator of the video-generation APIs the provider speaks.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one (default)")
    parser.add_argument(
        "--tls-ca-file",
        default=None,
        metavar="PATH",
        help="serve HTTPS with a certificate from a CA made at start, whose certificate is written to PATH "
        "(clients trust it through SSL_CERT_FILE / REQUESTS_CA_BUNDLE; needs trustme)",
    )
    add_config_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGINT or SIGTERM; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_arguments(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _raise_open_files_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(config, args.host, args.port, args.tls_ca_file))
    return 0
