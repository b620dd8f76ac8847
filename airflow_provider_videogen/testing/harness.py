"""Run the simulator in a background thread or in its own process, and drive it from tests.

Both :class:`VideoGenSimulator` (in-thread) and :class:`SimulatorProcess` (subprocess) talk to the
simulator through its HTTP control API under ``/_simulator/``, so they offer the same methods.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from airflow_provider_videogen.testing.simulator import SimulatorConfig

__all__ = ["SimulatorProcess", "VideoGenSimulator"]

_CONTROL_TIMEOUT = 30.0
_READY_PREFIX = "VideoGen simulator listening on "


class SimulatorControlError(RuntimeError):
    """The simulator's control API refused a request or could not be reached."""


class _SimulatorClient:
    """Methods shared by the in-thread and the subprocess simulators (HTTP control API)."""

    api_key: str
    _base_url: str | None = None
    #: The CA certificate (PEM) the simulator's HTTPS certificate comes from; ``None`` over plain HTTP.
    ca_file: str | None = None
    _opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _tls_start(self, tls: bool) -> None:
        """Pick the file the CA is written to and a control client that trusts it (HTTPS only)."""
        if not tls:
            return
        import tempfile

        folder = tempfile.mkdtemp(prefix="videogen-simulator-tls-")
        self.ca_file = os.path.join(folder, "ca.pem")

    def _tls_started(self) -> None:
        if self.ca_file is None:
            return
        from airflow_provider_videogen.testing.simulator.tls import client_context

        context = client_context(self.ca_file)
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )

    def ca_env(self) -> dict[str, str]:
        """Return the variables that make ``aiohttp``, ``requests`` and ``curl`` trust the simulator's HTTPS.

        ``SSL_CERT_FILE`` replaces the system's CA bundle in the process that gets it (only the
        simulator is trusted there); empty over plain HTTP.
        """
        if self.ca_file is None:
            return {}
        return {"SSL_CERT_FILE": self.ca_file, "REQUESTS_CA_BUNDLE": self.ca_file, "CURL_CA_BUNDLE": self.ca_file}

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running simulator."""
        if self._base_url is None:
            raise RuntimeError("the simulator is not running")
        return self._base_url

    def _call(self, method: str, path: str, payload: Any = None, query: dict[str, str] | None = None) -> Any:
        url = f"{self.base_url}/_simulator/{path}"
        if query:
            url += "?" + urlencode(query)
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=_CONTROL_TIMEOUT) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            try:
                message = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                message = detail
            if exc.code == 404:
                raise KeyError(message) from None
            if exc.code == 400:
                raise ValueError(message) from None
            raise SimulatorControlError(f"{method} {path}: HTTP {exc.code}: {message}") from None
        except OSError as exc:
            raise SimulatorControlError(f"{method} {path}: {exc}") from exc
        return json.loads(raw) if raw else None

    # -- tasks ---------------------------------------------------------------------------------

    def add_task(
        self,
        style: str = "contents_generations",
        *,
        final_status: str = "succeeded",
        queued_seconds: float | None = None,
        running_seconds: float | None = None,
        video_size: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        return_last_frame: bool = False,
        model: str | None = None,
        task_id: str | None = None,
        shape: str | None = None,
        url_ttl: float | None = None,
        created_body: Any = None,
    ) -> str:
        """Create a task as if a client had created it; return its id.

        ``None`` durations, size and URL lifetime take the simulator's settings. ``shape`` overrides
        the ``video_generations_shape`` setting for this (style-2) task only.
        """
        payload = {
            "style": style,
            "final_status": final_status,
            "queued_seconds": queued_seconds,
            "running_seconds": running_seconds,
            "video_size": video_size,
            "error_code": error_code,
            "error_message": error_message,
            "return_last_frame": return_last_frame,
            "model": model,
            "task_id": task_id,
            "shape": shape,
            "url_ttl": url_ttl,
            "created_body": created_body,
        }
        task: dict[str, Any] = self._call("POST", "tasks", payload)
        return str(task["id"])

    def get_task(self, task_id: str) -> dict[str, Any]:
        """Return the internal record of a task (``KeyError`` when unknown).

        Keys include ``status`` (now), ``video_url``, ``last_frame_url``, ``video_size``,
        ``video_sha256``, ``created_body``, ``final_status``, ``pinned_status`` and timings.
        """
        result: dict[str, Any] = self._call("GET", f"tasks/{quote(task_id, safe='')}")
        return result

    def tasks(self) -> list[dict[str, Any]]:
        """Return the records of all tasks (without ``video_sha256``)."""
        result: list[dict[str, Any]] = self._call("GET", "tasks")
        return result

    def set_status(self, task_id: str, status: str) -> dict[str, Any]:
        """Pin a task's status (overrides the time-based lifecycle); ``"auto"`` unpins it.

        Canonical statuses are ``queued``, ``running``, ``succeeded``, ``failed``, ``cancelled`` and
        ``expired``; any other string is answered verbatim (e.g. ``"UNKNOWN"``) and is not final.
        """
        result: dict[str, Any] = self._call("POST", f"tasks/{quote(task_id, safe='')}/status", {"status": status})
        return result

    def delete_task(self, task_id: str) -> None:
        """Forget a task (as if it had been purged by the service)."""
        self._call("DELETE", f"tasks/{quote(task_id, safe='')}")

    # -- faults --------------------------------------------------------------------------------

    def add_fault(
        self,
        kind: str,
        target: str = "any",
        *,
        status: int | None = None,
        retry_after: str | float | None = None,
        body: Any = None,
        content_type: str | None = None,
        times: int = 1,
        task_id: str | None = None,
        delay: float = 1.0,
        truncate_at: int | None = None,
        rate: float | None = None,
        escape: str = "raw",
        size: int | None = None,
        then_status: str | None = None,
    ) -> int:
        r"""Queue a fault for the next matching requests; return its id.

        :param kind: ``http_error``, ``reset``, ``slow``, ``empty_body``, ``malformed_body``,
            ``truncate``, ``expired``, ``trickle`` (an API answer sent a few bytes at a time,
            ``delay`` seconds apart), ``throttle`` (a download's body sent at ``rate``), ``echo_key`` (the
            answer's objects hold the key, written as ``escape`` says), ``cookie`` (the answer sets a
            cookie), ``oversized`` (the answer padded to ``size`` bytes, 5 MiB by default), ``duplicate``
            (each item of a list answer twice, the first copy changed by ``body``, by default to a
            failure) or ``redirect`` (``status``, default 307, to the same path at another origin:
            ``localhost`` for ``127.0.0.1`` and back).
        :param target: ``query``, ``create``, ``cancel``, ``list``, ``download`` or ``any``.
        :param status: HTTP status of ``http_error`` (default 500).
        :param retry_after: ``Retry-After`` header (seconds or an HTTP date).
        :param body: custom body: a str is sent as text, anything else as JSON.
        :param content_type: custom ``Content-Type`` for ``body``.
        :param times: how many matching requests it affects; ``<= 0`` means until cleared.
        :param task_id: only requests about this task.
        :param delay: seconds a ``slow`` answer is held back, or between the pieces of a ``trickle``.
        :param truncate_at: body bytes sent before a ``truncate`` closes the connection
            (default half the body).
        :param rate: bytes per second of a ``throttle``d download.
        :param escape: how ``echo_key`` writes the key: ``raw``, ``slash`` (``/`` as ``\/``) or
            ``unicode`` (every character as ``\uXXXX``).
        :param size: bytes of an ``oversized`` answer.
        :param then_status: pin the task ``task_id`` to this status once the fault has fired (it moves on
            before the client's next request).
        """
        payload = {
            "kind": kind,
            "target": target,
            "status": status,
            "retry_after": retry_after,
            "body": body,
            "content_type": content_type,
            "times": times,
            "task_id": task_id,
            "delay": delay,
            "truncate_at": truncate_at,
            "rate": rate,
            "escape": escape,
            "size": size,
            "then_status": then_status,
        }
        result: dict[str, Any] = self._call("POST", "faults", payload)
        return int(result["id"])

    def faults(self) -> list[dict[str, Any]]:
        """Return the queued faults."""
        result: list[dict[str, Any]] = self._call("GET", "faults")
        return result

    def clear_faults(self) -> None:
        """Remove every queued fault."""
        self._call("DELETE", "faults")

    # -- request log, settings -----------------------------------------------------------------

    def requests(
        self, target: str | None = None, method: str | None = None, task_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Return the recorded API and download requests, oldest first, optionally filtered.

        Each entry has ``method``, ``path``, ``query`` (repeated keys as lists), ``query_string``,
        ``headers`` (as received), ``body`` (parsed JSON, text or None), ``target`` (``create``,
        ``query``, ``cancel``, ``list``, ``download`` or ``other``), ``task_id``, ``time``,
        ``status`` (the answer's HTTP status) and ``fault`` (the kind of fault applied, if any).
        """
        query = {k: v for k, v in (("target", target), ("method", method), ("task_id", task_id)) if v}
        result: list[dict[str, Any]] = self._call("GET", "requests", query=query)
        return result

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._call("DELETE", "requests")

    def reset(self) -> None:
        """Forget tasks, faults and the request log, and restore the initial settings."""
        self._call("POST", "reset")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at run time (e.g. ``video_generations_shape="documented"``).

        :meth:`reset` restores the settings the simulator was started with.
        """
        result: dict[str, Any] = self._call("POST", "config", changes)
        return result

    @property
    def config(self) -> dict[str, Any]:
        """The current settings."""
        result: dict[str, Any] = self._call("GET", "config")
        return result

    # -- Airflow connections -------------------------------------------------------------------

    def connection_json(
        self,
        api_style: str = "contents_generations",
        path_prefix: str | None = None,
        timeout: float | None = None,
    ) -> str:
        """Return an Airflow connection (JSON, as in ``AIRFLOW_CONN_...``) pointing at this simulator."""
        from airflow_provider_videogen.styles import get_style

        extra: dict[str, Any] = {
            "api_style": api_style,
            "path_prefix": get_style(api_style).default_path_prefix if path_prefix is None else path_prefix,
        }
        if timeout is not None:
            extra["timeout"] = timeout
        return json.dumps({"conn_type": "videogen", "host": self.base_url, "password": self.api_key, "extra": extra})

    def conn_env(
        self,
        conn_id: str = "videogen_default",
        api_style: str = "contents_generations",
        path_prefix: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, str]:
        """Return ``{"AIRFLOW_CONN_<CONN_ID>": <connection JSON>}`` for this simulator."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(api_style, path_prefix, timeout)}


def _config(settings: dict[str, Any]) -> SimulatorConfig:
    """Check the settings early, in the caller's thread (a wrong name or value raises here)."""
    from airflow_provider_videogen.testing.simulator import SimulatorConfig

    return SimulatorConfig(**settings)


class VideoGenSimulator(_SimulatorClient):
    """A simulator serving on ``host`` (a free port by default) from a background thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with VideoGenSimulator(queued_seconds=0.2, running_seconds=0.3) as sim:
            task_id = sim.add_task(final_status="failed")
            ...

    :param host: the address to listen on.
    :param port: the port (0: a free one).
    :param tls: serve HTTPS with a certificate from a CA made at start (:attr:`ca_file`, :meth:`ca_env`).
    :param settings: any :class:`~airflow_provider_videogen.testing.simulator.SimulatorConfig` field
        (``api_key``, ``queued_seconds``, ``video_size``...); checked here.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, tls: bool = False, **settings: Any) -> None:
        self.tls = tls
        self.settings = _config(settings)
        self.api_key = self.settings.api_key
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> VideoGenSimulator:
        """Start serving; return once the port is bound and accepting."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        self._tls_start(self.tls)
        ready: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="videogen-simulator", daemon=True)
        self._thread.start()
        outcome, value = ready.get()
        if outcome == "error":
            self._thread.join()
            self._thread = None
            raise RuntimeError("the simulator failed to start") from value
        self._base_url = value
        self.port = int(value.rsplit(":", 1)[1])
        self._tls_started()
        return self

    def _run(self, ready: queue.Queue[tuple[str, Any]]) -> None:
        from airflow_provider_videogen.testing.simulator import start_server

        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            asyncio.set_event_loop(loop)
            try:
                stop = asyncio.Event()
                self._stop = stop
                context = None
                if self.ca_file is not None:
                    from airflow_provider_videogen.testing.simulator.tls import server_context

                    context = server_context(self.ca_file)
                runner, url = loop.run_until_complete(start_server(self.settings, self.host, self.port, context))
            except BaseException as exc:
                ready.put(("error", exc))
                return
            ready.put(("ok", url))
            try:
                loop.run_until_complete(stop.wait())
            finally:
                loop.run_until_complete(runner.cleanup())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()
            self._loop = None

    def stop(self) -> None:
        """Stop serving, close every connection and join the thread (idempotent)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join()
        self._thread = None
        self._stop = None
        self._base_url = None

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> VideoGenSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class SimulatorProcess(_SimulatorClient):
    """A simulator in its own Python process (``python -m airflow_provider_videogen.testing.simulator``).

    Same settings and methods as :class:`VideoGenSimulator`; use it where the simulator must not
    share the test process's CPU or event loop (benchmarks, demos).

    :param startup_timeout: seconds allowed until the process says it listens.
    :param python: the interpreter to run it with (this one by default).
    :param tls: serve HTTPS with a certificate from a CA made at start (:attr:`ca_file`, :meth:`ca_env`).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
        python: str | None = None,
        tls: bool = False,
        **settings: Any,
    ) -> None:
        self.tls = tls
        self.settings = _config(settings)
        self.api_key = self.settings.api_key
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.python = python or sys.executable
        self.args = ["--host", host, "--port", str(port), *self.settings.to_argv()]
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> SimulatorProcess:
        """Start the process and wait for its ``listening on`` line."""
        if self.process is not None:
            raise RuntimeError("the simulator is already running")
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        self._tls_start(self.tls)
        command = [self.python, "-m", "airflow_provider_videogen.testing.simulator", *self.args]
        if self.ca_file is not None:
            command += ["--tls-ca-file", self.ca_file]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        self.process = process
        lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        reader = threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True)
        reader.start()
        try:
            line = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"the simulator did not start within {self.startup_timeout} s") from None
        reader.join()
        if not line.startswith(_READY_PREFIX):
            code = self.stop()
            raise RuntimeError(f"the simulator failed to start (exit code {code}): {line.strip()!r}")
        self._base_url = line[len(_READY_PREFIX) :].strip()
        self.port = int(self._base_url.rsplit(":", 1)[1])
        self._tls_started()
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the process (SIGTERM, then kill after ``timeout``); return its exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.process = None
        self._base_url = None
        return process.returncode

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
