"""Video-task helpers shared by the end-to-end tests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import AirflowDeployment, wait_for

WAIT_AND_FETCH = "videogen_e2e_wait_and_fetch"
FAN_IN = "videogen_e2e_fan_in"
TRIGGER_CLASSPATH = "airflow_provider_videogen.triggers.videogen.VideoTaskTrigger"


def held_video_task(sim: SimulatorProcess) -> str:
    """Create a simulator task that stays ``running`` until :func:`release` lets it succeed.

    Holding it keeps the sensor deferred for as long as a test needs, however slow the machine.
    """
    task_id = sim.add_task()
    sim.set_status(task_id, "running")
    return task_id


def release(sim: SimulatorProcess, task_id: str) -> None:
    """Let a held task follow its (short, long elapsed) lifecycle: the next poll finds it succeeded."""
    sim.set_status(task_id, "auto")


def new_folder(airflow: AirflowDeployment, name: str) -> Path:
    """An empty folder in the deployment's home, for videos to land in."""
    folder = airflow.home / "videos" / name
    folder.mkdir(parents=True)
    return folder


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_until_triggers_run(
    airflow: AirflowDeployment, dag_id: str, run_ids: list[str], task_id: str, count: int, timeout: float = 150.0
) -> list[dict[str, Any]]:
    """Wait until ``count`` instances of ``task_id`` are deferred and their triggers run in a triggerer.

    "Run" means the provider's trigger has logged that it is waiting, which it does from the
    triggerer only. Returns those task instances as the REST API shows them.

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
                if ti["map_index"] in closed and any(_is_waiting(e) for events in logs.values() for e in events):
                    waiting.append(ti)
        return waiting if len(waiting) >= count else None

    return wait_for(running, timeout=timeout, message=lambda: f"{count} running triggers of {task_id!r}: {seen}")


def _is_waiting(event: dict[str, Any]) -> bool:
    return str(event.get("event", "")).startswith("Waiting for video task ")


def fired_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The "Trigger fired event" entries of a trigger log."""
    return [e for e in events if e.get("event") == "Trigger fired event"]
