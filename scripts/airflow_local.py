"""
``make airflow``: a full local Airflow (UI included) with the simulator and the example DAGs.

1. Takes a lock in the Airflow home, so that a second launcher refuses to start beside a running one.
2. Starts the simulator on port 9000 (another port only when 9000 is taken, and says so).
3. Migrates the metadata database (SQLite) and writes one connection per API style an example DAG
   uses (:data:`PRESETS`) into it, pointing at the simulator, so the UI lists them.
4. Runs ``airflow standalone`` (scheduler, triggerer, dag-processor and api-server) in a process
   group and session of its own, with ``example_dags/`` and your own ``dags/`` folder as DAG
   bundles (both rescanned every few seconds), the UI on 127.0.0.1:8080 and connection testing
   enabled; prints where to open the UI, the connections and what to try once it answers.
5. On Ctrl+C, SIGTERM, SIGHUP or an error, stops all of Airflow: nothing it started outlives the
   launcher.

Honoured from the environment: ``AIRFLOW__API__HOST`` (default 127.0.0.1: the UI has no login, so
it is not offered to the network unless asked) and ``AIRFLOW__API__PORT`` (default 8080, or a free
port when 8080 is taken).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / ".demo" / "airflow-local"
# A folder of the user's (not in git), watched beside the examples: a DAG dropped there shows up in seconds.
MY_DAGS = REPO / "dags"
# Airflow rescans a bundle for new files every 5 minutes by default: a newcomer would think theirs was lost.
DAGS_REFRESH_SECONDS = 5
API_KEY = "local-demo-key"
LOOPBACK = "127.0.0.1"
UI_PORT = 8080
SIMULATOR_PORT = 9000
VIDEOS = "/tmp/videogen/videos/"  # the example DAGs' default destination


@dataclass(frozen=True)
class Preset:
    """A connection the launchers write, pointing at the simulator: one per connection an example DAG uses."""

    conn_id: str
    api_style: str
    description: str
    #: Extras beyond ``api_style`` (e.g. the ``prices`` an example's cost cap needs).
    extra: Mapping[str, Any] = field(default_factory=dict)


# The one list: make airflow writes these, make distributed defines them, and the banners print them.
PRESETS = (
    Preset("videogen_default", "contents_generations", "contents generations style (as RongCloud and Ark)"),
    Preset("videogen_gateway", "video_generations", "video generations style (as new-api gateways)"),
    Preset("videogen_openai", "openai_videos", "OpenAI videos style (the /v1/videos shape of gateways)"),
    Preset("videogen_gemini", "gemini_veo", "Gemini API style (Google's Veo models)"),
    Preset("videogen_runway", "runway", "Runway style (Runway's own API)"),
    Preset("videogen_dashscope", "dashscope", "DashScope style (Alibaba Cloud's Wan models)"),
    Preset("videogen_fal", "fal", "fal style (fal.ai's queue: Kling, Veo, Wan...)"),
    Preset("videogen_replicate", "replicate", "Replicate style (Replicate's predictions: Veo, Kling, Wan...)"),
    Preset(
        "videogen_priced",
        "contents_generations",
        "contents generations style with prices (the draft-then-final example's cost caps)",
        # Made-up prices for the simulator: set your own for a real service (prices change).
        {"prices": {"doubao-seedance-*": {"per_million_tokens": 2.5, "currency": "USD"}}},
    ),
)
EXAMPLE_DAG = "videogen_generate_and_fetch"
READY_TIMEOUT = 300.0
# Components the health endpoint must report healthy before the UI is announced.
HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class Port:
    """A port to listen on, and the one that was wanted."""

    number: int
    preferred: int

    @property
    def moved(self) -> bool:
        """Whether the preferred port was taken, so another one is used."""
        return self.number != self.preferred


def choose_port(preferred: int, host: str = LOOPBACK) -> Port:
    """The preferred port if a server can listen on it now, else a free one the system picks."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the servers do: a connection of the last run in TIME_WAIT does not make the port taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, preferred))
        except OSError:
            probe.bind((host, 0))
        return Port(int(probe.getsockname()[1]), preferred)


def client_host(listen_host: str) -> str:
    """The address to reach a server listening on ``listen_host`` from this machine."""
    if listen_host in WILDCARD_HOSTS:
        return LOOPBACK
    return f"[{listen_host}]" if ":" in listen_host else listen_host


def ui_url(listen_host: str, port: int) -> str:
    """Where the UI (and the REST and execution APIs) answer."""
    return f"http://{client_host(listen_host)}:{port}"


def airflow_settings(home: Path, ui_host: str, ui_port: int) -> dict[str, str]:
    """The Airflow settings the launcher passes (as ``AIRFLOW__...`` environment variables)."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": name,
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(path), "refresh_interval": DAGS_REFRESH_SECONDS},
                }
                for name, path in (("videogen-examples", REPO / "example_dags"), ("my-dags", MY_DAGS))
            ]
        ),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The examples have no schedule: unpaused, a newcomer's first trigger runs at once.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        # LocalExecutor starts this many worker processes (default 32): plenty for the examples.
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__API__HOST": ui_host,
        "AIRFLOW__API__PORT": str(ui_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{ui_url(ui_host, ui_port)}/execution/",
    }


def preset_connections(simulator_url: str, api_key: str) -> dict[str, dict[str, Any]]:
    """The connections written into the metadata database at each start (``airflow connections import`` format)."""
    from airflow_provider_videogen import get_provider_info

    # Every field of the form, unset ones as null: the UI's edit form shows only the extras a
    # connection has, and a newcomer should see them all.
    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    common: dict[str, Any] = {
        "conn_type": "videogen",
        "host": simulator_url,
        "password": api_key,
        # Airflow 3.3's Test button sends port 0 for a connection without a port, which the
        # api-server then refuses as another endpoint (apache/airflow#73298); stored as 0, these
        # connections can be tested. The hook ignores port 0.
        "port": 0,
    }
    return {
        preset.conn_id: {
            **common,
            "description": f"The bundled simulator, {preset.description}. Written by make airflow at each start.",
            "extra": json.dumps({**dict.fromkeys(fields), "api_style": preset.api_style, **preset.extra}),
        }
        for preset in PRESETS
    }


def launcher_environment(base: Mapping[str, str], settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of every Airflow command: ``base`` with the launcher's settings on top."""
    # A preset connection also defined as an environment variable would hide the one in the database.
    hidden = {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in preset_connections("", "")}
    env = {name: value for name, value in base.items() if name not in hidden}
    env.update(settings)
    env["PYTHONWARNINGS"] = "ignore"
    # standalone starts its components as `airflow ...`: use this environment's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    return env


# ---- the lock against a second launcher ---------------------------------------------------------


class AlreadyRunningError(RuntimeError):
    """Another launcher holds the lock of this Airflow home, or left processes running there."""


class LauncherLock:
    """An exclusive lock on a file in the Airflow home, held while the launcher runs.

    The file also says who holds it (pid, UI URL, the pids of Airflow and the simulator), so a
    second launcher can say where the first one is, and a launcher that was killed outright (so
    could not stop Airflow) is noticed at the next start. The operating system releases the lock
    when its holder exits in any way.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`AlreadyRunningError` saying where the other launcher is."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.read()
            file.close()
            where = f" (pid {holder['pid']}, UI at {holder.get('ui_url', '?')})" if "pid" in holder else ""
            raise AlreadyRunningError(
                f"make airflow is already running for this checkout{where}: use that one, or stop it with "
                f"Ctrl+C in its terminal (or kill {holder.get('pid', '<pid>')}) before starting another."
            ) from None
        self._file = file
        leftovers = self.leftovers()
        if leftovers:
            facts = self.read()
            self.release(clear=False)  # what it says is needed again, until the leftovers are gone
            pids = " ".join(str(pid) for pid in leftovers)
            first = [f"kill -INT {facts['airflow_pid']}" if facts.get("airflow_pid") in leftovers else ""]
            first.append(f"kill {facts['simulator_pid']}" if facts.get("simulator_pid") in leftovers else "")
            raise AlreadyRunningError(
                "Processes of an earlier make airflow are still running (its launcher was killed before it "
                f"could stop them): pids {pids}. Stop them with: {'; '.join(c for c in first if c)} "
                f"(Airflow stops in order, in about 20 s), and whatever is left then with: kill -9 {pids}"
            )

    def read(self) -> dict[str, Any]:
        """What the holder wrote (empty if nothing or unreadable)."""
        try:
            facts = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return facts if isinstance(facts, dict) else {}

    def record(self, **facts: Any) -> None:
        """Write this launcher's pid and ``facts`` into the lock file."""
        assert self._file is not None, "record() needs the lock"
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), **facts}))
        self._file.flush()

    def leftovers(self) -> list[int]:
        """Processes an earlier holder started and could not stop (it was killed outright)."""
        from airflow_provider_videogen.testing.process_tree import members_of

        facts = self.read()
        if facts.get("pid") == os.getpid():
            return []
        found: set[int] = set()
        if isinstance(facts.get("airflow_pid"), int):
            found.update(pid for pid in members_of(facts["airflow_pid"]) if "airflow" in _command_line(pid))
        pid = facts.get("simulator_pid")
        if isinstance(pid, int) and "testing.simulator" in _command_line(pid):
            found.add(pid)
        return sorted(found)

    def release(self, *, clear: bool = True) -> None:
        """Let go of the lock, clearing what the file says unless ``clear`` is false."""
        if self._file is not None:
            if clear:
                self._file.seek(0)
                self._file.truncate()
            self._file.close()
            self._file = None

    def __enter__(self) -> LauncherLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ---- running Airflow ----------------------------------------------------------------------------


def run_airflow_command(env: Mapping[str, str], *args: str) -> None:
    """Run ``airflow <args>`` to completion; on failure show its output and stop the launcher."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(result.stdout[-5000:], result.stderr[-5000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"`airflow {' '.join(args)}` failed with exit code {result.returncode}")


def write_preset_connections(env: Mapping[str, str], simulator_url: str) -> None:
    """Create (or reset) the preset connections in the metadata database."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "connections.json"
        path.write_text(json.dumps(preset_connections(simulator_url, API_KEY)))
        run_airflow_command(env, "connections", "import", "--overwrite", str(path))


def start_airflow(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``airflow standalone`` as the leader of a new process group and session."""
    return subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        # Its own group: Ctrl+C reaches the launcher only, which then stops all of Airflow in order.
        start_new_session=True,
    )


def health(url: str) -> dict[str, Any] | None:
    """The api-server's health answer, or ``None`` while it does not answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/api/v2/monitor/health", timeout=5) as answer:
            result = json.loads(answer.read())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def is_ready(answer: Mapping[str, Any] | None) -> bool:
    """Whether a health answer reports the database and every component healthy."""
    if answer is None:
        return False
    return all((answer.get(name) or {}).get("status") == "healthy" for name in HEALTH_COMPONENTS)


def wait_until_ready(airflow: subprocess.Popen[bytes], url: str, timeout: float = READY_TIMEOUT) -> bool:
    """Wait until the UI answers and reports Airflow healthy; ``False`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if airflow.poll() is not None:
            raise SystemExit(f"airflow standalone exited with code {airflow.returncode} (see its output above)")
        if is_ready(health(url)):
            return True
        time.sleep(1.0)
    return False


@contextlib.contextmanager
def interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """Turn Ctrl+C, SIGTERM and SIGHUP (a closed terminal) into ``KeyboardInterrupt`` while inside.

    SIGINT too, explicitly: started where it is ignored (a background job of a script), Python would
    leave it ignored, and so would every Airflow process started from here.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Ignore Ctrl+C, SIGTERM and SIGHUP inside: a second Ctrl+C must not cut the shutdown short."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_airflow(airflow: subprocess.Popen[bytes]) -> None:
    """Stop all of Airflow: Ctrl+C to ``airflow standalone``, which stops its components; then SIGTERM, SIGKILL."""
    from airflow_provider_videogen.testing.process_tree import stop_tree

    with signals_ignored():
        print("\nStopping Airflow and everything it started (about 20 s) ...", flush=True)
        started = time.monotonic()
        killed = stop_tree(airflow, first_signal=signal.SIGINT, grace=30.0, term_grace=5.0)
        if killed:
            print(f"Killed {len(killed)} Airflow processes that did not stop in time.", flush=True)
        print(f"Airflow stopped ({time.monotonic() - started:.0f} s).", flush=True)


# ---- what the launcher says ---------------------------------------------------------------------


def start_banner(simulator_url: str, simulator_port: Port, url: str, ui_port: Port) -> str:
    """What is printed before Airflow starts."""
    lines = [
        "",
        f"VideoGen simulator: {simulator_url} (API key {API_KEY})",
    ]
    if simulator_port.moved:
        lines.append(
            f"  port {simulator_port.preferred} is taken, so the simulator listens on port {simulator_port.number}; "
            f"connections saved with port {simulator_port.preferred} do not reach it this time"
        )
    if ui_port.moved:
        lines.append(f"Port {ui_port.preferred} is taken, so the UI will be on port {ui_port.number}")
    lines += [
        f"Airflow home: {HOME}",
        f"Starting Airflow (about a minute); the UI will be at {url} once it is ready.",
        "",
    ]
    return "\n".join(lines)


def ready_banner(url: str, ui_host: str, simulator_url: str) -> str:
    """What is printed once the UI answers: where to log in, and what to try."""
    if ui_host in (LOOPBACK, "localhost", "::1"):
        exposure = (
            f"It listens on {ui_host} only: no login, everyone who can open it is admin. To offer it to "
            "your network (then everyone who can reach this machine is admin): AIRFLOW__API__HOST=0.0.0.0 make airflow"
        )
    else:
        exposure = (
            f"WARNING: it listens on {ui_host or 'all interfaces'}: no login, everyone who can reach "
            f"this machine on that port is admin. Unset AIRFLOW__API__HOST to keep it on {LOOPBACK}."
        )
    rule = "=" * 100
    return "\n".join(
        [
            "",
            rule,
            "Airflow is ready. Open the UI (no login needed):",
            "",
            f"    {url}",
            "",
            exposure,
            f"Connections (Admin > Connections), one per API style, for the simulator at {simulator_url}:",
            *(f"    {preset.conn_id} ({preset.api_style})" for preset in PRESETS),
            f"Try it: trigger {EXAMPLE_DAG} (Dags > {EXAMPLE_DAG} > Trigger); the video lands in {VIDEOS}",
            f"Your own DAGs: put them in {MY_DAGS} (watched beside the examples, picked up within "
            f"{DAGS_REFRESH_SECONDS} s).",
            "Test a connection you saved yourself from the command line (on Airflow 3.3 the UI's Test answers "
            "only 'Bad Request' for one saved without a port):",
            f"    AIRFLOW_HOME={HOME} {Path(sys.executable).parent / 'airflow'} connections test <your connection id>",
            f"Airflow home (logs, database): {HOME}",
            "Ctrl+C stops everything.",
            rule,
            "",
        ]
    )


def ui_address(environ: Mapping[str, str]) -> tuple[str, Port]:
    """Where the UI listens: ``AIRFLOW__API__HOST`` and ``AIRFLOW__API__PORT`` if set, else 127.0.0.1:8080.

    Without ``AIRFLOW__API__PORT``, a free port is used when 8080 is taken.
    """
    host = environ.get("AIRFLOW__API__HOST") or LOOPBACK
    wanted = environ.get("AIRFLOW__API__PORT")
    if wanted:
        return host, Port(int(wanted), int(wanted))
    return host, choose_port(UI_PORT, "0.0.0.0" if host in WILDCARD_HOSTS else host)


def main() -> int:
    """Start the simulator and Airflow, and stop both on Ctrl+C; return the exit code."""
    lock = LauncherLock(HOME / "launcher.lock")
    try:
        lock.acquire()
    except AlreadyRunningError as error:
        print(error, file=sys.stderr)
        return 1
    try:
        with interrupts_as_keyboard_interrupt():
            return _run(lock)
    except KeyboardInterrupt:
        return 0
    finally:
        lock.release()


def _run(lock: LauncherLock) -> int:
    from airflow_provider_videogen.testing import SimulatorProcess

    ui_host, ui_port = ui_address(os.environ)
    url = ui_url(ui_host, ui_port.number)
    simulator_port = choose_port(SIMULATOR_PORT)
    simulator = SimulatorProcess(
        api_key=API_KEY, port=simulator_port.number, queued_seconds=5, running_seconds=20, clip=True
    )
    with simulator as sim:
        env = launcher_environment(os.environ, airflow_settings(HOME, ui_host, ui_port.number))
        print(start_banner(sim.base_url, simulator_port, url, ui_port), flush=True)
        print("Preparing the metadata database and the preset connections ...", flush=True)
        MY_DAGS.mkdir(exist_ok=True)
        run_airflow_command(env, "db", "migrate")
        write_preset_connections(env, sim.base_url)
        airflow = start_airflow(env)
        lock.record(ui_url=url, airflow_pid=airflow.pid, simulator_pid=sim.process.pid if sim.process else None)
        try:
            if wait_until_ready(airflow, url):
                print(ready_banner(url, ui_host, sim.base_url), flush=True)
            else:
                print(f"\nThe UI did not answer within {READY_TIMEOUT:.0f} s; see the output above.", flush=True)
            return airflow.wait()
        finally:
            stop_airflow(airflow)


if __name__ == "__main__":
    sys.exit(main())
