"""One ``GenerateVideosOperator`` over thousands of items against the simulator: wall time and worker RSS growth.

The simulator runs in a process of its own; the batch runs here, in the worker's place
(``deferrable=False``: the same loop the resumes run, without a triggerer), with a ``task_state_store``
in memory as Airflow 3.3's. Every generation renders for ``--render`` seconds; the window and the
create rate are set wide (``--in-flight``, 100,000 creates a minute) so that the figure is the
operator's own cost, not the service's limits. Printed: wall time beside the simulated render time
of the whole batch (``items / in_flight x render``) plus the bytes copied at the measured landing speed,
the worker's RSS growth, and the service's requests per item.

    python benchmarks/batch.py                        # 5,000 items, 500 in flight, 2 s renders, 64 KiB videos
    python benchmarks/batch.py --items 1000 --render 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class MemoryStateStore:
    """Airflow 3.3's ``task_state_store``, in memory: the batch's record is written to it as in a task."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0
        self.bytes_written = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        # Kept as the API server keeps it: JSON text.
        text = json.dumps(value)
        self.writes += 1
        self.bytes_written += len(text)
        self.values[key] = json.loads(text)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


class TaskInstance:
    dag_id, task_id, run_id, map_index, try_number, max_tries = "bench", "batch", "manual__1", -1, 1, 0

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--render", type=float, default=2.0, help="seconds each generation renders")
    parser.add_argument("--size", type=int, default=65536, help="bytes of each video")
    parser.add_argument("--poll", type=float, default=0.5, help="poll interval, seconds")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    from airflow_provider_videogen.testing import SimulatorProcess

    # Stopped from outside (a time limit, a kill): the simulator's process is stopped with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sim = SimulatorProcess(
        queued_seconds=0.0,
        running_seconds=args.render,
        video_size=args.size,
        request_log=True,  # the service's requests per item are counted from it
        request_log_size=500_000,
        max_request_line=32768,  # a host that takes a list call of 500 ids
    ).start()
    try:
        os.environ.update(sim.conn_env("videogen_default"))
        from airflow_provider_videogen.operators.videogen import GenerateVideosOperator

        requests = [
            {"model": "doubao-seedance-1-0-pro-250528", "prompt": f"product {n}", "key": f"p{n:05d}"}
            for n in range(args.items)
        ]
        with tempfile.TemporaryDirectory(prefix="videogen-batch-") as folder:
            operator = GenerateVideosOperator(
                task_id="batch",
                requests=requests,
                destination=Path(folder).as_uri() + "/",
                max_in_flight=args.in_flight,
                max_creates_per_minute=100_000,
                poll_interval=args.poll,
                deferrable=False,
            )
            store = MemoryStateStore()
            before = rss_mb()
            started, cpu_started = time.monotonic(), time.process_time()
            result = operator.execute({"ti": TaskInstance(), "task_state_store": store})
            wall, cpu = time.monotonic() - started, time.process_time() - cpu_started
            growth = rss_mb() - before
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            landed_bytes = sum(p.stat().st_size for p in Path(folder).glob("*.mp4"))
        served: dict[str, int] = {}
        for request in sim.requests():
            served[request["target"]] = served.get(request["target"], 0) + 1
    finally:
        sim.stop()
    waves = -(-args.items // args.in_flight)
    render_floor = waves * args.render
    figures = {
        "items": args.items,
        "in_flight": args.in_flight,
        "render_s": args.render,
        "landed": result["landed"],
        "wall_s": round(wall, 1),
        "worker_cpu_s": round(cpu, 1),
        "render_floor_s": round(render_floor, 1),
        "wall_over_render": round(wall / render_floor, 2),
        "landed_mib": round(landed_bytes / 2**20, 1),
        "rss_growth_mb": round(growth, 1),
        "peak_rss_mb": round(peak, 1),
        "record_writes": store.writes,
        "record_mib_written": round(store.bytes_written / 2**20, 1),
        "record_pages": len(store.values),
        "service_requests_per_item": {target: round(count / args.items, 2) for target, count in sorted(served.items())},
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
