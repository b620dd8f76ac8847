"""The scaled-out deployment: CeleryExecutor on PostgreSQL with a Redis broker, two workers, two triggerers.

What teams generating videos at volume run, on one machine: PostgreSQL as the metadata database,
Redis as the Celery broker (both real servers on loopback, see :mod:`.servers`), the scheduler,
dag-processor and api-server, two Celery workers and two triggerers. ``[triggerer] queues_enabled``
is on, so a deferred task's trigger carries the task's queue: ``triggerer-videos`` runs only the
triggers of the ``videos`` queue (where the video DAGs run), ``triggerer-all`` those of ``default``
and ``videos``, so either can take over the other's video triggers.

Sized for a shared 2-core machine: each worker runs :data:`WORKER_CONCURRENCY` tasks at a time, and
the health-check threshold after which a silent triggerer's triggers move to a live one is
:data:`HEALTH_CHECK_THRESHOLD` seconds (Airflow's default is 30) so that failover tests stay short.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from .deployment import AirflowDeployment, tail
from .servers import PostgresServer, RedisServer

VIDEOS_QUEUE = "videos"
TRIGGERERS = {"triggerer-videos": (VIDEOS_QUEUE,), "triggerer-all": ("default", VIDEOS_QUEUE)}
WORKERS = ("worker-1", "worker-2")
WORKER_CONCURRENCY = 5
# Seconds without a heartbeat after which a triggerer counts as dead and its triggers move.
HEALTH_CHECK_THRESHOLD = 8
# Seconds without a heartbeat from a running task's process (e.g. its worker died) before the
# scheduler fails that try, so that it is retried (Airflow's default is 300).
TASK_HEARTBEAT_TIMEOUT = 20


def services() -> dict[str, list[str]]:
    """The services besides the api-server: ``{name: airflow command}``."""
    commands: dict[str, list[str]] = {"dag-processor": ["dag-processor"], "scheduler": ["scheduler"]}
    for name, queues in TRIGGERERS.items():
        # Log serving is off: every service shares one machine and one log folder.
        commands[name] = ["triggerer", "--queues", ",".join(queues), "--skip-serve-logs"]
    for name in WORKERS:
        commands[name] = [
            *("celery", "worker", "--queues", f"default,{VIDEOS_QUEUE}"),
            *("--concurrency", str(WORKER_CONCURRENCY), "--celery-hostname", f"{name}@%h"),
            *("--skip-serve-logs", "--without-mingle", "--without-gossip"),
        ]
    return commands


def config(postgres: PostgresServer, redis: RedisServer) -> dict[str, dict[str, object]]:
    """Airflow settings for CeleryExecutor on ``postgres`` with ``redis`` as the broker."""
    return {
        "core": {
            "executor": "CeleryExecutor",
            # Task tries queued or running at once across the workers (deferred ones do not count).
            "parallelism": 2 * WORKER_CONCURRENCY + 2,
            "default_pool_task_slot_count": 1000,
        },
        "database": {
            "sql_alchemy_conn": postgres.url,
            "sql_alchemy_pool_size": 3,
            "sql_alchemy_max_overflow": 10,
        },
        "celery": {
            "broker_url": redis.url,
            "result_backend": f"db+{postgres.url}",
            "worker_concurrency": WORKER_CONCURRENCY,
            "worker_prefetch_multiplier": 1,
            "sync_parallelism": 1,
        },
        "triggerer": {
            "queues_enabled": True,
            "job_heartbeat_sec": 1,
            "triggerer_health_check_threshold": HEALTH_CHECK_THRESHOLD,
        },
        "scheduler": {
            "task_instance_heartbeat_timeout": TASK_HEARTBEAT_TIMEOUT,
            "task_instance_heartbeat_timeout_detection_interval": 2,
        },
    }


class DistributedDeployment(AirflowDeployment):
    """The distributed deployment's Airflow, on ``postgres`` and ``redis`` (both already running).

    Each triggerer runs with its service name as its user name (``LOGNAME``), which Airflow records
    as its job's ``unixname``: that tells which triggerer a trigger's ``triggerer_id`` (a job id) is.
    """

    def __init__(
        self,
        home: Path,
        dags_folders: Sequence[Path],
        postgres: PostgresServer,
        redis: RedisServer,
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            home,
            dags_folders,
            env=env,
            config=config(postgres, redis),
            services=services(),
            service_env={name: {"LOGNAME": name, "USER": name} for name in TRIGGERERS},
            # Celery prints "celery@<hostname> ready." once it consumes its queues.
            ready_patterns={name: rf"{name}@\S+ ready\." for name in WORKERS},
        )
        self.postgres = postgres
        self.redis = redis

    def diagnostics(self, lines: int = 40, task_logs: int = 4) -> str:
        """The Airflow services' diagnostics, and the tail of each server's output."""
        parts = [super().diagnostics(lines, task_logs)]
        for server in (self.postgres, self.redis):
            parts.append(f"----- {server.name}: last {lines} lines of {server.log} -----\n{tail(server.log, lines)}")
        return "\n".join(parts)

    def triggerer_jobs(self) -> dict[int, str]:
        """``{triggerer job id: the triggerer service that ran (or runs) it}``, every start of each."""
        rows = self.postgres.query("SELECT id, unixname FROM job WHERE job_type = 'TriggererJob'")
        return {int(job): str(name) for job, name in rows}

    def assigned_triggerers(self, dag_id: str, run_id: str, task_id: str) -> dict[int, int | None]:
        """``{map index: triggerer job}`` of the task's deferred instances in the run (``None``: not assigned yet)."""
        rows = self.postgres.query(
            "SELECT ti.map_index, t.triggerer_id FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
            "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s",
            dag_id,
            run_id,
            task_id,
        )
        return {int(index): job for index, job in rows}

    def triggerer_named(self, job_id: int) -> str:
        """The triggerer service whose job is ``job_id``."""
        return self.triggerer_jobs()[job_id]


@contextlib.contextmanager
def running(
    home: Path, dags_folders: Sequence[Path], *, env: Mapping[str, str] | None = None
) -> Iterator[DistributedDeployment]:
    """Start PostgreSQL, Redis and Airflow (in ``home``); stop them all when done, even on failure."""
    servers_logs = home / "services"
    with PostgresServer(servers_logs) as postgres, RedisServer(servers_logs) as redis:
        airflow = DistributedDeployment(home, dags_folders, postgres, redis, env=env)
        try:
            airflow.launch(timeout=240)
            yield airflow
        finally:
            airflow.stop()
