"""A real Airflow deployment for end-to-end tests: scheduler, triggerer, dag-processor and api-server.

Each :class:`AirflowDeployment` lives in its own fresh ``AIRFLOW_HOME`` (SQLite, LocalExecutor by
default; any database and executor through ``config``) and runs every service as a separate process
group, with its stdout/stderr captured to ``<home>/services/<name>.log``. A service is a name and an
``airflow`` command line, so a deployment can run several of one kind (two triggerers, Celery
workers). Configuration reaches the services only through the environment built here, never through
the test process's own environment.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from airflow_provider_videogen.testing.process_tree import kill_tree, signal_group

SERVICES = ("api-server", "dag-processor", "scheduler", "triggerer")
# The Airflow commands that report their health through the api-server's /api/v2/monitor/health.
_HEALTH_REPORTING = ("scheduler", "triggerer", "dag-processor")

T = TypeVar("T")

# Seconds after which an executor event the scheduler received has surely been processed (or dropped).
_EVENT_SETTLED_SECONDS = 10

_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


class DeploymentError(RuntimeError):
    """The deployment did not start, or did not reach the awaited state in time."""


class ApiError(RuntimeError):
    """The api-server answered with an HTTP error."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:2000]}")
        self.status = status
        self.body = body


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Call ``probe`` until it returns something truthy; return that, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise DeploymentError(f"Timed out after {timeout:.0f} s waiting for {text}")
        time.sleep(interval)


class AirflowDeployment:
    """The Airflow services of one deployment (by default the four of :data:`SERVICES`), and a client of its REST API.

    :param home: a new, empty folder to use as ``AIRFLOW_HOME``.
    :param dags_folders: the folders of DAG files to deploy (e.g. the e2e DAGs and the repo's
        ``example_dags``), each as a DAG bundle (``<folder name>-bundle``).
    :param env: extra environment for every service and task, e.g. ``AIRFLOW_CONN_*`` connections.
    :param config: ``{"section": {"option": value}}`` overriding the defaults set here.
    :param service_env: extra environment of single services, e.g. ``{"triggerer": {...}}``.
    :param python: interpreter of the Airflow installation (default: the one running the tests).
    :param services: ``{name: airflow command}`` of the services :meth:`start` starts after the
        api-server, in order, e.g. ``{"triggerer-2": ["triggerer", "--queues", "videos"], ...}``
        (default: the other :data:`SERVICES`, each named after its command). The api-server is
        always there, named ``api-server``, on the port chosen here.
    :param ready_patterns: ``{name: regular expression}``: a service that does not report to the
        api-server's health endpoint (e.g. a Celery worker) is ready once its output matches this.
    """

    def __init__(
        self,
        home: Path,
        dags_folders: Path | Iterable[Path],
        *,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Mapping[str, object]] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        python: str | None = None,
        services: Mapping[str, Sequence[str]] | None = None,
        ready_patterns: Mapping[str, str] | None = None,
    ) -> None:
        self.home = Path(home).resolve()
        folders = [dags_folders] if isinstance(dags_folders, Path) else list(dags_folders)
        self.dags_folders = [Path(folder).resolve() for folder in folders]
        names = [folder.name for folder in self.dags_folders]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"Give DAG folders with distinct names, got {names}")
        bundles = [
            # Not the folder's bare name: Airflow reserves "example_dags".
            {"name": f"{folder.name}-bundle", "classpath": _LOCAL_BUNDLE, "kwargs": {"path": str(folder)}}
            for folder in self.dags_folders
        ]
        self.python = python or sys.executable
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.logs_dir = self.home / "services"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # The api-server first, since the others (and task runs) talk to it.
        api_server = ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        self.commands = {"api-server": api_server}
        for name, command in (services or {s: [s] for s in SERVICES if s != "api-server"}).items():
            if name != "api-server":
                self.commands[name] = list(command)
        self.ready_patterns = dict(ready_patterns or {})
        self._starts: dict[str, int] = {}
        self._token: str | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        settings: dict[str, dict[str, object]] = {
            "core": {
                "dags_folder": self.dags_folders[0],
                "executor": "LocalExecutor",
                # LocalExecutor starts this many worker processes: the machine may have 2 cores.
                "parallelism": 4,
                "load_examples": False,
                "dags_are_paused_at_creation": False,
                "execution_api_server_url": f"{self.base_url}/execution/",
                "auth_manager": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
                "simple_auth_manager_all_admins": True,
                "min_serialized_dag_update_interval": 5,
                # As every real deployment: Variables and connections are written encrypted.
                "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            },
            "database": {"sql_alchemy_conn": f"sqlite:///{self.home / 'airflow.db'}"},
            "api": {"port": self.port, "host": "127.0.0.1", "base_url": self.base_url, "workers": 1},
            "api_auth": {"jwt_secret": secrets.token_urlsafe(64)},
            "logging": {
                "base_log_folder": self.home / "logs",
                "logging_level": "INFO",
                # Not the default ports, so that deployments can run side by side.
                "worker_log_server_port": free_port(),
                "trigger_log_server_port": free_port(),
            },
            "dag_processor": {
                "dag_bundle_config_list": json.dumps(bundles),
                "refresh_interval": 2,
                "bundle_refresh_check_interval": 2,
                "min_file_process_interval": 60,
                "parsing_processes": 1,
            },
            "scheduler": {"scheduler_heartbeat_sec": 2, "scheduler_idle_sleep_time": 0.5},
            # A killed triggerer's triggers go to a live one once its heartbeat is this old.
            "triggerer": {"job_heartbeat_sec": 1, "triggerer_health_check_threshold": 8},
        }
        for section, options in (config or {}).items():
            settings.setdefault(section, {}).update(options)
        self.settings = settings
        self.env = self._environment(settings, env or {})
        self.service_env = {name: dict(values) for name, values in (service_env or {}).items()}

    # ---- environment ----

    def _environment(self, settings: Mapping[str, Mapping[str, object]], extra: Mapping[str, str]) -> dict[str, str]:
        # Start from the test process's environment without any Airflow setting it may carry.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW_CONFIG=str(self.home / "airflow.cfg"),
            PYTHONUNBUFFERED="1",
            NO_PROXY="*",
            no_proxy="*",
        )
        for section, options in settings.items():
            for option, value in options.items():
                env[f"AIRFLOW__{section.upper()}__{option.upper()}"] = str(value)
        env.update(extra)
        return env

    # ---- services ----

    def migrate(self) -> None:
        """Create the metadata database (by default SQLite, in the home folder)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = self.logs_dir / "db-migrate.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [self.python, "-m", "airflow", "db", "migrate"],
                env=self.env,
                cwd=self.home,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        if result.returncode != 0:
            raise DeploymentError(f"airflow db migrate failed ({result.returncode}):\n{tail(log, 60)}")

    def launch(self, *, timeout: float = 120.0) -> None:
        """Create the database and start every service; on failure stop them all and explain why."""
        try:
            self.migrate()
            self.start(timeout=timeout)
        except BaseException as error:
            self.stop()
            raise DeploymentError(f"The deployment did not start: {error}\n{self.diagnostics()}") from error

    def start(self, services: Iterable[str] | None = None, *, timeout: float = 120.0) -> None:
        """Start the services (default: all) and wait until they are healthy (or ready)."""
        services = list(self.commands) if services is None else list(services)
        offsets = {name: self.log_size(name) for name in services}
        for name in services:
            self.start_service(name)
        self.wait_until_healthy(services, timeout=timeout)
        for name in services:
            if name in self.ready_patterns:
                self.wait_for_log(name, self.ready_patterns[name], since=offsets[name], timeout=timeout)

    def revive(self) -> list[str]:
        """Start again every service that has exited (a test may have killed it); return their names."""
        dead = [name for name in self.processes if not self.running(name)]
        if dead:
            self.start(dead)
        return dead

    def start_service(self, name: str) -> subprocess.Popen[bytes]:
        """Start one service by its name (e.g. ``scheduler``, ``triggerer``, ``api-server``)."""
        if name in self.processes and self.processes[name].poll() is None:
            raise DeploymentError(f"{name} is already running")
        if name not in self.commands:
            raise DeploymentError(f"No service {name!r} in this deployment: {sorted(self.commands)}")
        self._starts[name] = self._starts.get(name, 0) + 1
        self.processes[name] = start_process(
            [self.python, "-m", "airflow", *self.commands[name]],
            self.log_path(name),
            env={**self.env, **self.service_env.get(name, {})},
            cwd=self.home,
            start_number=self._starts[name],
        )
        return self.processes[name]

    def kill_service(self, name: str, sig: int = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Send ``sig`` to the service's process group and wait for it to exit.

        After a SIGKILL nothing the service started survives it (e.g. the triggerer's trigger runner),
        as when a machine or container dies.
        """
        process = self.processes[name]
        signal_group(process, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tree(process)
            process.wait(timeout)
        if sig == signal.SIGKILL:
            kill_tree(process)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every service: SIGTERM to each process group, then SIGKILL whatever is left of it."""
        stop_processes(self.processes.values(), timeout=timeout)

    def running(self, name: str) -> bool:
        """Whether the service's main process is alive."""
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def check_alive(self, services: Iterable[str] | None = None) -> None:
        """Raise if a started service has exited."""
        for name in services or list(self.processes):
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise DeploymentError(f"{name} exited with code {process.returncode}:\n{tail(self.log_path(name), 40)}")

    def wait_until_healthy(self, services: Iterable[str] | None = None, *, timeout: float = 120.0) -> dict[str, Any]:
        """Wait until ``/api/v2/monitor/health`` reports the metadatabase and ``services`` healthy.

        Only the scheduler, triggerers and dag-processor report there (several triggerers report as
        one, healthy while any of them is); other services (e.g. Celery workers) are not waited for.
        """
        commands = [self.commands[name][0] for name in (self.commands if services is None else services)]
        keys = ["metadatabase", *sorted({c.replace("-", "_") for c in commands if c in _HEALTH_REPORTING})]
        last: dict[str, Any] = {}

        def healthy() -> dict[str, Any] | None:
            nonlocal last
            self.check_alive()
            try:
                last = self.api("GET", "/api/v2/monitor/health", auth=False)
            except (OSError, ApiError):
                return None
            ok = all((last.get(key) or {}).get("status") == "healthy" for key in keys)
            return last if ok else None

        return wait_for(healthy, timeout=timeout, message=lambda: f"healthy {keys}; last health: {last}")

    def wait_for_log(self, name: str, pattern: str, *, since: int = 0, timeout: float = 120.0) -> re.Match[str]:
        """Wait until the service's output after ``since`` bytes matches the regular expression ``pattern``."""
        compiled = re.compile(pattern)

        def logged() -> re.Match[str] | None:
            self.check_alive([name])
            return compiled.search(self.log_since(name, since))

        return wait_for(logged, timeout=timeout, message=f"{pattern!r} in the output of {name}")

    # ---- logs ----

    def log_path(self, name: str) -> Path:
        """The file holding the service's stdout and stderr."""
        return self.logs_dir / f"{name}.log"

    def log_text(self, name: str) -> str:
        """The service's output so far (all its starts)."""
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def log_size(self, name: str) -> int:
        """Bytes of output so far; pass it to :meth:`log_since` to read what comes after."""
        path = self.log_path(name)
        return path.stat().st_size if path.exists() else 0

    def log_since(self, name: str, offset: int) -> str:
        """The service's output after ``offset`` bytes."""
        path = self.log_path(name)
        if not path.exists():
            return ""
        with path.open("rb") as file:
            file.seek(offset)
            return file.read().decode(errors="replace")

    def task_log_files(self, dag_id: str | None = None) -> list[Path]:
        """Task (and trigger) log files, oldest first."""
        root = self.home / "logs"
        pattern = f"dag_id={dag_id}/**/*.log" if dag_id else "dag_id=*/**/*.log"
        return sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)

    def task_log_folder(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Path:
        """Where a task instance's log files are (Airflow's default ``log_filename_template``)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return folder / f"map_index={map_index}" if map_index >= 0 else folder

    def trigger_log_events(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1
    ) -> dict[int, list[dict[str, Any]]]:
        """What triggers logged for a task instance: ``{triggerer job id: [JSON log events]}``.

        A triggerer writes what a trigger logs to ``attempt=<n>.log.trigger.<triggerer job id>.log``
        beside the task's own log, so these files also tell which triggerer ran the trigger.
        """
        folder = self.task_log_folder(dag_id, run_id, task_id, map_index)
        result: dict[int, list[dict[str, Any]]] = {}
        for path in sorted(folder.glob(f"attempt={try_number}.log.trigger.*.log")):
            job_id = int(path.name.rsplit(".", 2)[-2])
            result[job_id] = [
                json.loads(line) for line in path.read_text(errors="replace").splitlines() if line.startswith("{")
            ]
        return result

    def recorded_deferrals(self, dag_id: str, run_id: str, task_id: str) -> set[int]:
        """Map indexes (``-1``: not mapped) of the task instances whose deferring try the scheduler has closed.

        That is, the scheduler has processed the executor's event for the worker process that exited
        on deferral. Read from the scheduler's output: the REST API does not show executor events.
        On PostgreSQL the scheduler reads task instances with ``SKIP LOCKED``, and drops the event of
        one that another transaction holds locked at that moment (it was already deferred, so it
        comes to no harm): an event received more than :data:`_EVENT_SETTLED_SECONDS` ago counts too.
        """
        keys = rf"dag_id={re.escape(dag_id)}, task_id={re.escape(task_id)}, run_id={re.escape(run_id)}"
        finished = re.compile(
            rf"TaskInstance Finished: {keys}, map_index=(-?\d+),.*, state=deferred, .*executor_state=success"
        )
        key = re.escape(f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', ")
        received = re.compile(
            rf"^(\S+) \[info\s*\] Received executor event with state success for task instance "
            rf"{key}try_number=\d+, map_index=(-?\d+)\)",
            re.MULTILINE,
        )
        text = self.log_text("scheduler")
        closed = {int(match.group(1)) for match in finished.finditer(text)}
        settled = time.time() - _EVENT_SETTLED_SECONDS
        for match in received.finditer(text):
            if datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp() < settled:
                closed.add(int(match.group(2)))
        return closed

    def diagnostics(self, lines: int = 40, task_logs: int = 4) -> str:
        """The tail of every service's output and of the latest task logs, to explain a failure."""
        parts = [f"Airflow deployment in {self.home} (api-server {self.base_url})"]
        for name in self.commands:
            path = self.log_path(name)
            if path.exists():
                state = ""
                if name in self.processes:
                    code = self.processes[name].poll()
                    state = " (running)" if code is None else f" (exited {code})"
                parts.append(f"----- {name}{state}: last {lines} lines of {path} -----\n{tail(path, lines)}")
        for path in self.task_log_files()[-task_logs:]:
            parts.append(f"----- task log {path.relative_to(self.home)} -----\n{tail(path, lines // 2)}")
        return "\n".join(parts)

    # ---- REST API ----

    def token(self) -> str:
        """A JWT from the simple auth manager (all users are admins in this deployment)."""
        if self._token is None:
            answer = self.api("GET", "/auth/token", auth=False)
            self._token = str(answer["access_token"])
        return self._token

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        auth: bool = True,
        timeout: float = 30.0,
    ) -> Any:
        """Call the api-server; return the decoded JSON answer (``ApiError`` on an HTTP error)."""
        url = self.base_url + path + (f"?{urlencode(query, doseq=True)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token()}")
        try:
            with self._opener.open(request, timeout=timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as error:
            raise ApiError(method, path, error.code, error.read().decode(errors="replace")) from None
        return json.loads(raw) if raw else None

    def wait_for_dag(self, dag_id: str, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id`` and the api-server knows it."""
        errors: list[Any] = []

        def parsed() -> dict[str, Any] | None:
            nonlocal errors
            self.check_alive()
            try:
                return self.api("GET", f"/api/v2/dags/{quote(dag_id)}")  # type: ignore[no-any-return]
            except ApiError as error:
                if error.status != 404:
                    raise
            errors = self.api("GET", "/api/v2/importErrors").get("import_errors", [])
            if errors:
                raise DeploymentError(f"DAG files failed to import: {json.dumps(errors, indent=2)}")
            return None

        return wait_for(parsed, timeout=timeout, interval=1.0, message=f"DAG {dag_id!r} to be parsed")

    def trigger_dag(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        """Start a run of ``dag_id`` with ``conf``; return its run id."""
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf or {})}
        if run_id is not None:
            body["dag_run_id"] = run_id
        answer = self.api("POST", f"/api/v2/dags/{quote(dag_id)}/dagRuns", body)
        return str(answer["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run as the REST API returns it."""
        result: dict[str, Any] = self.api("GET", f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}")
        return result

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """All task instances of a run (mapped ones included), as the REST API returns them."""
        path = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances"
        result: list[dict[str, Any]] = []
        while True:
            # Pages of at most [api] maximum_page_limit (100) entries.
            answer = self.api("GET", path, query={"limit": 100, "offset": len(result), "order_by": "id"})
            result += answer["task_instances"]
            if not answer["task_instances"] or len(result) >= answer["total_entries"]:
                return result

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """The value of an XCom, as the REST API returns it."""
        path = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}/xcomEntries/{key}"
        return self.api("GET", path, query={"map_index": map_index})["value"]

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 180.0,
        services: Iterable[str] | None = None,
        interval: float = 1.0,
    ) -> dict[str, Any]:
        """Wait until the run has ended (``success`` or ``failed``); return it.

        Raises at once if one of ``services`` (default: all started) has exited meanwhile. Checks
        every ``interval`` seconds (for runs of hundreds of tasks, less often spares the api-server).
        """
        states: dict[str, Any] = {}

        def ended() -> dict[str, Any] | None:
            nonlocal states
            self.check_alive(services)
            run = self.dag_run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            states = {ti_key(ti): ti["state"] for ti in self.task_instances(dag_id, run_id)}
            return None

        return wait_for(
            ended, timeout=timeout, interval=interval, message=lambda: f"run {run_id} to end; tasks {states}"
        )


def ti_key(ti: Mapping[str, Any]) -> str:
    """``task_id`` or ``task_id[map_index]`` of a task instance returned by the REST API."""
    index = ti.get("map_index", -1)
    return ti["task_id"] if index in (-1, None) else f"{ti['task_id']}[{index}]"


def start_process(
    command: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str],
    cwd: Path,
    start_number: int = 1,
    user: int | None = None,
    group: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a new session (its own process group), its output appended to ``log``.

    :param start_number: how many times this service has been started, this time included: from the
        second start on, a line in the log separates the starts.
    :param user: run as this uid (and ``group`` gid), e.g. a server that refuses to run as root.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        if start_number > 1:
            out.write(f"\n===== {log.stem} started again (start #{start_number}) =====\n".encode())
            out.flush()
        return subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, with everything it forks
            user=user,
            group=group,
        )


def stop_processes(
    processes: Iterable[subprocess.Popen[bytes]], *, timeout: float = 5.0, sig: int = signal.SIGTERM
) -> None:
    """Send ``sig`` to each process group, wait up to ``timeout`` seconds, then SIGKILL what is left."""
    processes = list(processes)
    for process in processes:
        signal_group(process, sig)
    deadline = time.monotonic() + timeout
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(deadline - time.monotonic(), 0.1))
    for process in processes:
        kill_tree(process)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(size - 200 * lines, 0))
            data = file.read().decode(errors="replace")
    except OSError as error:
        return f"<cannot read {path}: {error}>"
    return "\n".join(data.splitlines()[-lines:])
