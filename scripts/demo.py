"""
``make demo``: generate a video against the bundled simulator, end to end, on an embedded Airflow.

Starts the simulator in its own process (serving its sample clip, a playable H.264 MP4), points a
``videogen`` connection at it, and runs the example DAG with ``airflow dags test`` on a throwaway
SQLite Airflow home. While the DAG runs it prints the provider's steps as they happen (submitted,
deferred, polled, finished, landed); it ends by checking the landed file against what the service
served and printing where it is, its size and sha256, and the video's metadata.

Everything it writes is in ``.demo/demo/``, which it empties first; the other folders of ``.demo/``
(``make airflow``'s home, ``make distributed``'s) are never touched. ``--root`` puts the demo's
folder under another directory than ``.demo/``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORKSPACES = REPO / ".demo"  # one folder per launcher: demo/, airflow-local/, airflow-distributed/
FOLDER = "demo"
DAG_ID = "videogen_generate_and_fetch"
API_KEY = "demo-key"

# An Airflow log line as `airflow dags test` prints it: time, [level], message, [logger], key=value...
LOG_LINE = re.compile(r"^\S+\s+\[(?P<level>\w+)\s*\]\s+(?P<message>.*?)\s+\[(?P<logger>[\w.]+)\]")
# The provider's log lines worth a step, by the start of their message: (step, pattern).
STEPS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("submitted", re.compile(r"Created video task (?P<id>\S+) at (?P<rest>.*)")),
    ("waiting", re.compile(r"Waiting for video task (?P<id>\S+) at (?P<rest>.*)")),
    ("status", re.compile(r"Video task (?P<id>\S+) is (?P<rest>.*)")),
    ("finished", re.compile(r"Video task (?P<id>[^\s:]+) (?P<rest>succeeded|failed|was cancelled|expired.*)")),
    ("landed", re.compile(r"Landed (?P<rest>.*)")),
)


def demo_folder(root: Path) -> Path:
    """Empty (or make) the demo's own folder under ``root`` and return it; nothing else is touched."""
    folder = root / FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def provider_step(line: str) -> str | None:
    """The readable step a line of ``airflow dags test``'s output shows, or ``None`` for Airflow's own chatter.

    Warnings and errors of any logger are steps too: a newcomer should see what went wrong.
    """
    match = LOG_LINE.match(line)
    if match is None:
        return None
    level, message, logger = match.group("level"), match.group("message"), match.group("logger")
    if message.startswith("[DAG TEST] starting task_id="):
        return f"task      {message.split('=')[1].split()[0]} starts"
    if message == "Pausing task as DEFERRED.":
        return "deferred  the task hands the wait to the trigger and frees its worker slot"
    if "airflow_provider_videogen" in logger:
        for step, pattern in STEPS:
            found = pattern.match(message)
            if found:
                return f"{step:<9} {message}"
    if level in ("warning", "error", "critical"):
        return f"{level:<9} {message} [{logger}]"
    return None


class PollWatcher:
    """Says each status query and list call the simulator answers, read from its request log.

    Calls while the task is deferred are the trigger's polls; the one after is the resumed task
    reading the video's URL before it lands the video. :meth:`drain` is also called before a step
    that follows a call (the trigger's "finished" follows its last poll), so the lines keep the
    order things happened in.
    """

    def __init__(self, sim: Any, say: Callable[[str], None]) -> None:
        self.sim, self.say = sim, say
        self.seen = 0
        self.label = "polled"
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def drain(self) -> None:
        """Say the calls answered since the last drain."""
        with self.lock:
            try:
                answered = self.sim.requests()
            except Exception:  # the simulator stopping: nothing more to say
                return
            for request in answered[self.seen :]:
                where = f"{request['method']} {request['path']}"
                if request["target"] == "query":
                    now = self.sim.get_task(request["task_id"])["status"]
                    self.say(f"{self.label:<9} {where}: HTTP {request['status']} (the task is {now})")
                elif request["target"] == "list":
                    # The trigger asks for every task it waits for in one list call where the service has one.
                    self.say(f"{self.label:<9} {where}?{request['query_string']}: HTTP {request['status']}")
            self.seen = len(answered)

    def _loop(self) -> None:
        while not self.stopped.wait(0.5):
            self.drain()

    def __enter__(self) -> PollWatcher:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join()


def run_dag(env: dict[str, str], conf: dict[str, Any], log_file: Path, sim: Any) -> int:
    """Run the example DAG with ``airflow dags test``, printing the provider's steps; return its exit code.

    Its whole output goes to ``log_file``; the last lines are printed too if it fails.
    """
    started = time.monotonic()
    printing = threading.Lock()

    def say(text: str) -> None:
        with printing:
            print(f"    {time.monotonic() - started:5.1f} s  {text}", flush=True)

    tail: deque[str] = deque(maxlen=60)
    command = [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, "--conf", json.dumps(conf)]
    with (
        log_file.open("w") as log,
        PollWatcher(sim, say) as polls,
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            tail.append(line)
            step = provider_step(line.rstrip("\n"))
            if step:
                if step.startswith(("status", "finished", "landed")):
                    polls.drain()
                say(step)
                if step.startswith("finished"):
                    polls.label = "queried"
        code = process.wait()
    if code != 0:
        print("".join(tail), file=sys.stderr)
        print(f"`airflow dags test` failed with exit code {code}; its whole output: {log_file}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=WORKSPACES, help="where the demo's folder goes (.demo/)")
    root: Path = parser.parse_args(argv).root.resolve()
    folder = demo_folder(root)
    videos = folder / "videos"
    videos.mkdir()
    env = os.environ.copy()
    env.update(
        {
            "AIRFLOW_HOME": str(folder / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # INFO: the provider's steps are read from the log lines (Airflow's own are filtered out).
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "PYTHONWARNINGS": "ignore",
        }
    )
    os.environ.update(env)
    from airflow_provider_videogen.testing import SimulatorProcess

    step("Starting the video generation simulator")
    with SimulatorProcess(api_key=API_KEY, queued_seconds=2, running_seconds=12, clip=True) as sim:
        print(f"    simulator listening on {sim.base_url} (it serves a sample clip as every video)")
        env["AIRFLOW_CONN_VIDEOGEN_DEFAULT"] = json.dumps(
            {"conn_type": "videogen", "host": sim.base_url, "password": API_KEY}
        )
        step("Preparing an embedded Airflow (SQLite)")
        airflow(env, "db", "migrate")
        providers = airflow(env, "providers", "list", capture=True)
        line = next((ln for ln in providers.splitlines() if "airflow-provider-videogen" in ln), "")
        print(f"    provider registered: {' '.join(line.split())}")
        step(f"Running the example DAG '{DAG_ID}' with `airflow dags test`: the provider's steps as they happen")
        conf = {"destination": videos.as_uri() + "/", "prompt": "A paper boat drifting down a rainy street, cinematic"}
        if run_dag(env, conf, folder / "dags-test.log", sim) != 0:
            return 1
        landed = sorted(videos.glob("*.mp4"))
        if not landed:
            print(f"The DAG finished but no video landed; see {folder / 'dags-test.log'}", file=sys.stderr)
            return 1
        report(landed[0], sim.get_task(landed[0].stem), folder / "dags-test.log")
    return 0


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def airflow(env: dict[str, str], *args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        print(result.stdout[-5000:], result.stderr[-5000:], file=sys.stderr)
        raise SystemExit(f"`airflow {' '.join(args)}` failed with exit code {result.returncode}")
    return result.stdout if capture else ""


def report(video: Path, simulated: dict[str, Any], log_file: Path) -> None:
    from airflow_provider_videogen.video_download import RECORD_SUFFIX

    digest = hashlib.sha256()
    with video.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    matches = digest.hexdigest() == simulated.get("video_sha256")
    metadata = video.with_suffix(".json")
    step("Done: the generated video landed in object storage (here the local file system)")
    print(f"    video file : {video}")
    print("                 the simulator's sample clip (5 s, H.264): open it in any video player")
    print(f"    size       : {video.stat().st_size:,} bytes")
    print(f"    sha256     : {digest.hexdigest()}")
    print(f"    verified   : {'yes' if matches else 'NO'}, the same bytes as the service served")
    frame = video.with_suffix(".png")
    if frame.exists():
        print(f"    last frame : {frame} ({frame.stat().st_size:,} bytes)")
    records = sorted(video.parent.glob(f"{video.stem}.*{RECORD_SUFFIX}"))
    if records:
        print(f"    integrity  : {', '.join(r.name for r in records)} (size and sha256: a rerun downloads nothing)")
    print(f"    Airflow log: {log_file}")
    if metadata.exists():
        print(f"    metadata   : {metadata} (what was generated)")
        print("    " + json.dumps(json.loads(metadata.read_text()), indent=2).replace("\n", "\n    "))


if __name__ == "__main__":
    sys.exit(main())
