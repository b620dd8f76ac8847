"""
``make distributed``: the scaled-out Airflow the distributed tests run against, for a person to try.

PostgreSQL (metadata database) and Redis (Celery broker) as real servers on loopback, from PyPI
packages; the scheduler, dag-processor and api-server (UI, no login); two Celery workers; two
triggerers, ``triggerer-videos`` for the ``videos`` queue only and ``triggerer-all`` for ``default``
and ``videos``; and the simulator as the video service. The DAGs are the repo's examples (queue
``default``) and the end-to-end DAGs, among them ``videogen_e2e_scale`` (queue ``videos``).

Everything runs from ``.demo/airflow-distributed`` (logs in ``services/``); the database lives in a
temporary folder. Ctrl+C stops every process and removes the database.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / ".demo" / "airflow-distributed"
API_KEY = "local-demo-key"

sys.path.insert(0, str(REPO))

from scripts.airflow_local import PRESETS, interrupts_as_keyboard_interrupt  # noqa: E402  (the path above makes scripts importable)


def preset_connection_env(simulator_url: str, api_key: str) -> dict[str, str]:
    """The ``AIRFLOW_CONN_...`` variables of make airflow's preset connections, pointing at the simulator."""
    return {
        f"AIRFLOW_CONN_{preset.conn_id.upper()}": json.dumps(
            {
                "conn_type": "videogen",
                "host": simulator_url,
                "password": api_key,
                "extra": {"api_style": preset.api_style, **preset.extra},
            }
        )
        for preset in PRESETS
    }


def main() -> int:
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    print("Starting PostgreSQL, Redis, the simulator and Airflow (about a minute)...", flush=True)
    # Ctrl+C, SIGTERM (`kill`) and SIGHUP (a closed terminal) all stop every service and remove the database:
    # the services run in sessions of their own and would outlive the launcher otherwise.
    with interrupts_as_keyboard_interrupt():
        try:
            _run()
        except KeyboardInterrupt:
            print("Stopped: every service, and the database removed.", flush=True)
    return 0


def _run() -> None:
    """Start the deployment and keep it running until interrupted (the services stop as the blocks end)."""
    from airflow_provider_videogen.testing import SimulatorProcess
    from tests.e2e.distributed import TRIGGERERS, WORKERS, running

    with SimulatorProcess(api_key=API_KEY, queued_seconds=5, running_seconds=20, clip=True) as sim:
        env = preset_connection_env(sim.base_url, API_KEY)
        with running(HOME, [REPO / "example_dags", REPO / "tests" / "e2e" / "dags"], env=env) as airflow:
            triggerers = ", ".join(f"{name} (queues {','.join(queues)})" for name, queues in TRIGGERERS.items())
            print(
                f"\nAirflow UI:         {airflow.base_url}  (local only: no login needed, everyone is admin)"
                f"\nPostgreSQL:         {airflow.postgres.url}"
                f"\nRedis:              {airflow.redis.url}"
                f"\nCelery workers:     {', '.join(WORKERS)}"
                f"\nTriggerers:         {triggerers}"
                f"\nVideoGen simulator: {sim.base_url}  (it serves a sample clip as every video)"
                f"\nConnections:        {', '.join(f'{p.conn_id} ({p.api_style})' for p in PRESETS)}"
                f"\nLogs:               {airflow.logs_dir}"
                "\nTrigger 'videogen_e2e_scale' with prompts (its videos go through the 'videos' queue) or an "
                "example DAG. Ctrl+C stops it all.\n",
                flush=True,
            )
            while True:
                airflow.check_alive()
                time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
