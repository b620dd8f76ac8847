"""A worker for the batch kill test: it runs ``GenerateVideosOperator.execute`` until the test SIGKILLs it.

Run as ``python -m tests.operators.killed_batch_worker STORE CONN_ID DESTINATION MODEL COUNT RUNNING``.
The task's ``task_state_store`` is a JSON file (``STORE``) that outlives the process, as Airflow's
outlives a worker; the test reads it to kill the worker while it waits on a full window.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.operators.killed_worker import TaskInstance

__all__ = ["FileStateStore", "TaskInstance", "batch"]


class FileStateStore:
    """A ``task_state_store`` kept in a JSON file, each write renamed into place whole."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _values(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str, default: Any = None) -> Any:
        return self._values().get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        values = self._values()
        values[key] = value
        written = self.path.with_suffix(".tmp")
        written.write_text(json.dumps(values))
        written.replace(self.path)

    def delete(self, key: str) -> None:
        values = self._values()
        values.pop(key, None)
        self.path.write_text(json.dumps(values))


def batch(conn_id: str, destination: str, model: str, count: int, running: float) -> Any:
    """The batch both tries run: ``count`` items in a window of two, each rendering ``running`` seconds."""
    from airflow_provider_videogen.operators.videogen import GenerateVideosOperator

    requests = [
        {"model": model, "prompt": f"clip {n} [sim:queued=0] [sim:running={running}]", "key": f"clip-{n}"}
        for n in range(count)
    ]
    return GenerateVideosOperator(
        task_id="generate_many",
        requests=requests,
        destination=destination,
        videogen_conn_id=conn_id,
        max_in_flight=2,
        poll_interval=0.05,
        deferrable=False,
    )


def main(store: str, conn_id: str, destination: str, model: str, count: str, running: str) -> None:
    operator = batch(conn_id, destination, model, int(count), float(running))
    operator.execute({"ti": TaskInstance(), "task_state_store": FileStateStore(Path(store))})


if __name__ == "__main__":
    main(*sys.argv[1:7])
