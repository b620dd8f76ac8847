"""The same videos three ways on the distributed deployment: what Airflow spends per video landed.

The deployment of ``make distributed`` (CeleryExecutor on PostgreSQL and Redis, two Celery workers,
two triggerers), with the end-to-end suite's DAGs and simulator, runs ``--videos`` videos (200 by
default) three ways, one after the other, each alone:

a. ``videogen_e2e_scale``: mapped ``GenerateVideoOperator`` → mapped ``FetchVideoOperator``;
b. ``videogen_e2e_land``: mapped ``GenerateVideoOperator(destination=...)``, no fetch task;
c. ``videogen_e2e_batch``: one ``GenerateVideosOperator`` over every request.

Each generation renders ``--render`` seconds in the simulator. For each way it prints the task runs
(task instances and their tries), the wall time from trigger to the run's end, the CPU seconds of every
Airflow service in that time (each service's processes: the service, what it started, and what those
reaped, read from ``/proc``) per video landed, and the service's requests per video. PostgreSQL,
Redis and the simulator are not Airflow's and are left out.

    python benchmarks/volume.py                     # 200 videos, 20 s renders
    python benchmarks/volume.py --videos 50 --json volume.json

Needs Linux (``/proc``) and the ``distributed`` extra (``make distributed`` installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from airflow_provider_videogen.testing.process_tree import session_members  # noqa: E402
from tests.e2e.distributed import DistributedDeployment, running  # noqa: E402
from tests.e2e.simulator_service import simulator_service  # noqa: E402

E2E_DAGS = REPO / "tests" / "e2e" / "dags"
MODEL = "doubao-seedance-1-0-lite-t2v-250428"
#: The three ways, in the order they run: (label, DAG id).
WAYS = [
    ("a. mapped generate -> fetch", "videogen_e2e_scale"),
    ("b. mapped generate with a destination", "videogen_e2e_land"),
    ("c. one GenerateVideosOperator", "videogen_e2e_batch"),
]
TARGETS = {"videogen_e2e_land": 0.7, "videogen_e2e_batch": 0.05}
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and of its children it has reaped (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # After the name: state is field 3; utime, stime, cutime, cstime are fields 14 to 17.
    return sum(int(value) for value in fields[11:15]) / _TICKS


def service_cpu(airflow: DistributedDeployment) -> dict[str, float]:
    """``{service: CPU seconds of every process in its session}`` now."""
    return {
        name: sum(cpu_seconds(pid) for pid in session_members(process))
        for name, process in airflow.processes.items()
        if process.poll() is None
    }


def request_counts(sim: Any) -> Counter[str]:
    return Counter(str(r["target"]) for r in sim.requests())


def run_way(airflow: DistributedDeployment, sim: Any, dag_id: str, videos: int, render: float) -> dict[str, Any]:
    """Run ``videos`` videos through ``dag_id``; return its figures."""
    token = uuid.uuid4().hex[:12]
    prompts = [
        f"[{token}:{index}] A lantern on a pier [sim:queued=0] [sim:running={render}]" for index in range(videos)
    ]
    folder = airflow.home / "videos" / f"{dag_id}-{token}"
    folder.mkdir(parents=True)
    if dag_id == "videogen_e2e_batch":
        conf: dict[str, Any] = {
            "requests": [{"model": MODEL, "prompt": p, "key": f"v{i}"} for i, p in enumerate(prompts)]
        }
    else:
        conf = {"prompts": prompts}
    conf["destination"] = f"file://{folder}/"
    airflow.wait_for_dag(dag_id)
    requests_before, cpu_before, started = request_counts(sim), service_cpu(airflow), time.monotonic()
    run_id = airflow.trigger_dag(dag_id, conf)
    run = airflow.wait_for_run(dag_id, run_id, timeout=3600, interval=5)
    wall = time.monotonic() - started
    cpu_after, requests_after = service_cpu(airflow), request_counts(sim)
    tis = airflow.task_instances(dag_id, run_id)
    landed = len(list(folder.glob("*.mp4")))
    cpu = {name: round(cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0), 1) for name in cpu_after}
    requests = {target: requests_after[target] - requests_before[target] for target in requests_after}
    return {
        "dag_id": dag_id,
        "state": run["state"],
        "videos": videos,
        "landed": landed,
        "task_instances": len(tis),
        "tries": sum(int(ti["try_number"]) for ti in tis),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": cpu,
        "cpu_seconds_total": round(sum(cpu.values()), 1),
        "cpu_seconds_per_video": round(sum(cpu.values()) / max(landed, 1), 3),
        "requests_per_video": {target: round(count / videos, 2) for target, count in sorted(requests.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--render", type=float, default=20.0, help="seconds each generation renders")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="videogen-volume-") as home,
        simulator_service(request_log_size=500_000, video_size=300_000) as service,
    ):
        sim = service.alive()
        with running(Path(home), [E2E_DAGS], env=sim.conn_env()) as airflow:
            for label, dag_id in WAYS:
                print(f"{label}: {args.videos} videos ...", flush=True)
                results.append({"way": label, **run_way(airflow, sim, dag_id, args.videos, args.render)})
                print(json.dumps(results[-1]), flush=True)
    base = results[0]["cpu_seconds_per_video"]
    print()
    print(
        "| way | run | task runs (tries) | wall | Airflow CPU | CPU per video | vs a. | target | requests per video |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for result in results:
        ratio = result["cpu_seconds_per_video"] / base if base else float("nan")
        target = TARGETS.get(result["dag_id"])
        print(
            f"| {result['way']} | {result['state']}, {result['landed']} landed | {result['task_instances']} "
            f"({result['tries']}) | {result['wall_seconds']:.0f} s | {result['cpu_seconds_total']:.0f} s | "
            f"{result['cpu_seconds_per_video']:.2f} s | {ratio:.2f}x | {f'<= {target}x' if target else ''} | "
            + ", ".join(f"{k} {v}" for k, v in result["requests_per_video"].items())
            + " |"
        )
    print()
    for result in results:
        print(
            f"{result['way']}: CPU by service "
            + ", ".join(f"{k} {v} s" for k, v in sorted(result["cpu_seconds"].items()))
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["state"] == "success" and r["landed"] == args.videos for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
