"""Video-task helpers shared by the end-to-end tests."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import AirflowDeployment, ApiError, wait_for

# The repo's example DAGs.
GENERATE_AND_FETCH = "videogen_generate_and_fetch"
WAIT_AND_FETCH = "videogen_wait_and_fetch"
# The DAGs of tests/e2e/dags.
FAN_IN = "videogen_e2e_fan_in"
SCALE = "videogen_e2e_scale"
DEADLINE = "videogen_e2e_deadline"
TRIGGER_CLASSPATH = "airflow_provider_videogen.triggers.videogen.VideoTaskTrigger"


# A generation asked for with this in its prompt renders for an hour, until :func:`release`.
HOLD = "[sim:queued=0.2] [sim:running=3600]"


def held_video_task(sim: SimulatorProcess) -> str:
    """Create a simulator task that stays ``running`` until :func:`release` makes it succeed.

    Holding it keeps the waiting task deferred for as long as a test needs, however slow the machine.
    """
    task_id = sim.add_task()
    sim.set_status(task_id, "running")
    return task_id


def release(sim: SimulatorProcess, task_id: str) -> None:
    """Make a held task succeed: the next poll finds its video ready."""
    sim.set_status(task_id, "succeeded")


def held_prompt(text: str) -> str:
    """A prompt whose generation renders until :func:`release` (and that no other test uses)."""
    return f"{text} {uuid.uuid4().hex} {HOLD}"


def creates_with(sim: SimulatorProcess, prompt: str) -> list[dict[str, Any]]:
    """The create calls that submitted ``prompt``."""
    return [r for r in sim.requests(target="create") if prompt in json.dumps(r["body"])]


def video_downloads(sim: SimulatorProcess, task_id: str) -> list[dict[str, Any]]:
    """The requests that downloaded the task's video (not its last frame)."""
    return [r for r in sim.requests(target="download", task_id=task_id) if "/videos/" in r["path"]]


def video_download_counts(sim: SimulatorProcess) -> Counter[str]:
    """``{video task id: requests that downloaded its video}``, for every task at once."""
    return Counter(r["task_id"] for r in sim.requests(target="download") if "/videos/" in r["path"])


def created_tasks(sim: SimulatorProcess, prompts: list[str]) -> list[list[str]]:
    """For each prompt, the ids of the video tasks its create calls made (one each, normally)."""
    creates = [(json.dumps(r["body"]), r["task_id"]) for r in sim.requests(target="create")]
    return [[task_id for body, task_id in creates if json.dumps(prompt)[1:-1] in body] for prompt in prompts]


def new_folder(airflow: AirflowDeployment, name: str) -> Path:
    """An empty folder in the deployment's home, for videos to land in."""
    folder = airflow.home / "videos" / name
    folder.mkdir(parents=True)
    return folder


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_until_triggers_run(
    airflow: AirflowDeployment,
    dag_id: str,
    run_ids: list[str],
    task_id: str,
    count: int,
    timeout: float = 150.0,
    interval: float = 0.5,
) -> list[dict[str, Any]]:
    """Wait until ``count`` instances of ``task_id`` are deferred and their triggers run in a triggerer.

    "Run" means the provider's trigger has logged that it is waiting, which it does from the
    triggerer only. Returns those task instances as the REST API shows them. Checks every
    ``interval`` seconds.

    It also waits until the scheduler has processed the exit of the worker process that deferred
    each of them. Airflow fails a resumed task when that (stale) event comes after the trigger has
    already fired and the task is running again (apache/airflow#72716; 3.1 also when it is
    scheduled or queued, #66374 and #67287): a video released sooner could make a run fail for
    reasons that have nothing to do with this provider.
    """
    seen: dict[str, Any] = {}

    def running() -> list[dict[str, Any]] | None:
        airflow.check_alive()
        waiting = []
        for run_id in run_ids:
            closed = airflow.recorded_deferrals(dag_id, run_id, task_id)
            for ti in airflow.task_instances(dag_id, run_id):
                if ti["task_id"] != task_id:
                    continue
                seen[f"{run_id}[{ti['map_index']}]"] = ti["state"]
                if ti["state"] != "deferred" or not (ti.get("trigger") or {}).get("triggerer_id"):
                    continue
                logs = airflow.trigger_log_events(dag_id, run_id, task_id, ti["map_index"])
                if ti["map_index"] in closed and any(is_waiting(e) for events in logs.values() for e in events):
                    waiting.append(ti)
        return waiting if len(waiting) >= count else None

    return wait_for(
        running, timeout=timeout, interval=interval, message=lambda: f"{count} running triggers of {task_id!r}: {seen}"
    )


def is_waiting(event: dict[str, Any]) -> bool:
    """Whether a trigger log event is the provider's trigger saying that it starts waiting."""
    return str(event.get("event", "")).startswith("Waiting for video task ")


def fired_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The "Trigger fired event" entries of a trigger log."""
    return [e for e in events if e.get("event") == "Trigger fired event"]


def wait_for_xcom(
    airflow: AirflowDeployment, dag_id: str, run_id: str, task_id: str, key: str, timeout: float = 120.0
) -> Any:
    """Wait until a task has pushed ``key``; return its value."""

    def pushed() -> list[Any] | None:
        airflow.check_alive()
        try:
            return [airflow.xcom(dag_id, run_id, task_id, key)]
        except ApiError as error:
            if error.status != 404:
                raise
            return None

    return wait_for(pushed, timeout=timeout, message=f"XCom {key!r} of {task_id!r} in run {run_id}")[0]
