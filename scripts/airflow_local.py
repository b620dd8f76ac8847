"""
``make airflow``: a full local Airflow (UI included) with the simulator and the example DAGs.

Runs ``airflow standalone`` (scheduler, triggerer, dag-processor and api-server on SQLite) with
``example_dags/`` as its DAGs folder and the ``videogen_default`` and ``videogen_gateway``
connections pointing at a simulator started beside it. Stop it with Ctrl+C.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / ".demo" / "airflow-local"
API_KEY = "local-demo-key"


def free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    from airflow_provider_videogen.testing import SimulatorProcess

    HOME.mkdir(parents=True, exist_ok=True)
    port = free_port(8080)
    with SimulatorProcess(api_key=API_KEY, queued_seconds=5, running_seconds=20, video_size=5_000_000) as sim:
        env = os.environ.copy()
        env.update(
            {
                "AIRFLOW_HOME": str(HOME),
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
                "AIRFLOW_CONN_VIDEOGEN_DEFAULT": sim.connection_json(),
                "AIRFLOW_CONN_VIDEOGEN_GATEWAY": sim.connection_json(api_style="video_generations"),
                "PYTHONWARNINGS": "ignore",
                # standalone starts its components as `airflow ...`: use this environment's.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            }
        )
        print(
            f"\nVideoGen simulator: {sim.base_url}  (key {API_KEY!r}; connections videogen_default, videogen_gateway)"
            f"\nAirflow UI:         http://localhost:{port}  (local only: no login needed, everyone is admin)"
            f"\nAirflow home:       {HOME}"
            "\nTrigger 'videogen_generate_and_fetch' in the UI; videos land in /tmp/videogen/. Ctrl+C stops it.\n",
            flush=True,
        )
        try:
            return subprocess.call([sys.executable, "-m", "airflow", "standalone"], env=env)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
