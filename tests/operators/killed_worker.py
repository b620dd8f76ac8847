"""A worker for the kill-window tests: it runs ``GenerateVideoOperator.execute`` and waits to be SIGKILLed.

Run as ``python -m tests.operators.killed_worker STORE READY CONN_ID MODEL PROMPT``. The task's
``task_state_store`` is a JSON file (``STORE``) that outlives the process, as Airflow's outlives a
worker. When the operator writes the new id, that is after the create call answered and before the id
is kept, the worker writes it to ``READY`` and waits: the test kills it there with SIGKILL, where no
handler, ``finally`` or ``on_kill`` runs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


class FileStateStore:
    """A ``task_state_store`` kept in a JSON file; it stops the worker before the id is kept."""

    def __init__(self, path: Path, ready: Path) -> None:
        self.path, self.ready = path, ready

    def _values(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._values().get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        if isinstance(value, dict) and "video_task_id" in value:
            # Renamed into place whole: the test reads it as soon as it exists, never half written.
            written = self.ready.with_suffix(".tmp")
            written.write_text(value["video_task_id"])
            written.replace(self.ready)
            time.sleep(120)  # killed here
        values = self._values()
        values[key] = value
        self.path.write_text(json.dumps(values))

    def delete(self, key: str) -> None:
        values = self._values()
        values.pop(key, None)
        self.path.write_text(json.dumps(values))


class TaskInstance:
    """The task instance's key, as Airflow's runtime task instance has it (the same for every try)."""

    dag_id, task_id, run_id, map_index = "killed_worker", "generate", "manual__1", -1

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def main(store: str, ready: str, conn_id: str, model: str, prompt: str) -> None:
    from airflow_provider_videogen.operators.videogen import GenerateVideoOperator

    operator = GenerateVideoOperator(
        task_id="generate", model=model, prompt=prompt, videogen_conn_id=conn_id, deferrable=False, poll_interval=0.05
    )
    operator.execute({"ti": TaskInstance(), "task_state_store": FileStateStore(Path(store), Path(ready))})


if __name__ == "__main__":
    main(*sys.argv[1:6])
