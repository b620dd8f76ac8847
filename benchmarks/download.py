"""Download cost: ``FetchVideoOperator`` copying one video from the simulator to ``file://``, beside ``curl -o``.

As a script it is the worker: it runs the operator's ``execute()`` once in this fresh process (so the
peak RSS is the operator's) and prints one JSON line. ``run.py`` calls :func:`measure_download`,
which alternates curl and operator rounds on the same URL and keeps the median of each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def warm_page_cache(folder: Path, size: int) -> None:
    """Write and delete ``size`` bytes in ``folder``, so that the copy timed next finds memory ready.

    Some virtual machines hand the memory of freed page-cache pages back to their host within a
    second or two, and the next writer pays for getting it back (here ~1.5 s of system time per GiB,
    a cap of ~600 MiB/s). The operator's copy starts seconds after the previous file was deleted
    (the interpreter and Airflow start first) while curl's starts at once, so without this step the
    comparison measured the machine, not the copies. Both copies get it, right before they start.
    """
    block = b"\0" * (1 << 20)
    path = folder / ".warm-up"
    with open(path, "wb", buffering=0) as f:
        for _ in range(-(-size // len(block))):
            f.write(block)
    path.unlink()


def worker() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--video-task-id", required=True)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--chunk-size", type=int, default=None, help="the operator's chunk_size (default: its own)")
    parser.add_argument("--warm-up", type=int, default=0, help="bytes to write and delete first (see warm_page_cache)")
    args = parser.parse_args()
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # logging that goes to stdout lands in the log instead

    from airflow_provider_videogen.operators.videogen import FetchVideoOperator

    options = {"chunk_size": args.chunk_size} if args.chunk_size else {}
    operator = FetchVideoOperator(
        task_id="fetch",
        video_task_id=args.video_task_id,
        videogen_conn_id="videogen_bench",
        destination=args.destination,
        **options,
    )
    # Airflow registers its object-storage file systems (importing every provider's) on first use:
    # done here, before the clock starts, as it would be in a worker that has already run a task.
    from airflow.sdk import ObjectStoragePath

    ObjectStoragePath(args.destination).fs  # noqa: B018
    if args.warm_up:
        folder = Path(args.destination.removeprefix("file://"))
        folder.mkdir(parents=True, exist_ok=True)
        warm_page_cache(folder, args.warm_up)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = operator.execute(context={})  # type: ignore[arg-type]
    wall, usage1 = time.perf_counter() - wall0, resource.getrusage(resource.RUSAGE_SELF)
    user, system = usage1.ru_utime - usage0.ru_utime, usage1.ru_stime - usage0.ru_stime
    out = {
        "wall_s": wall,
        "cpu_s": user + system,
        "user_s": user,
        "system_s": system,
        "minor_faults": usage1.ru_minflt - usage0.ru_minflt,
        "size_bytes": result["size_bytes"],
        "sha256": result["sha256"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_before_mb": rss_before,
    }
    print(json.dumps(out), file=protocol, flush=True)
    return 0


def _run_child(command: list[str], **kwargs: Any) -> tuple[subprocess.CompletedProcess[str], float, Any]:
    """Run a command; return it, its wall time and its own resource usage (peak RSS, CPU)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, **kwargs)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    out = process.stdout.read() if process.stdout else ""
    return subprocess.CompletedProcess(command, process.returncode, out, ""), wall, usage


def measure_download(
    sim: Any,
    size: int,
    rounds: int,
    env: dict[str, str],
    home: str,
    sampler_cls: Any,
    before_copy: Callable[[], object] = lambda: None,
    warm: bool = True,
) -> dict:
    """Copy a ``size``-byte video ``rounds`` times with curl and with the operator, alternating."""
    video_task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=size)
    info = sim.get_task(video_task_id)  # computes the expected SHA-256 too
    url = info["video_url"]
    work = Path(tempfile.mkdtemp(prefix="download-", dir=home))
    curl_runs: list[dict] = []
    operator_runs: list[dict] = []
    try:
        for i in range(rounds):
            target = work / f"curl-{i}.mp4"
            before_copy()
            if warm:
                warm_page_cache(work, size)
            with sampler_cls(sim.process.pid) as sampler:
                done, wall, usage = _run_child(["curl", "-sS", "--fail", "-o", str(target), url])
            if done.returncode != 0 or target.stat().st_size != size:
                raise RuntimeError(f"curl failed (exit {done.returncode})")
            target.unlink()
            curl_runs.append(
                {
                    "wall_s": wall,
                    "cpu_s": usage.ru_utime + usage.ru_stime,
                    "peak_rss_mb": usage.ru_maxrss / 1024,
                    "sim_cpu_s": sampler.cpu_s,
                }
            )

            folder = work / f"operator-{i}"
            command = [sys.executable, str(HERE / "download.py"), "--video-task-id", video_task_id]
            command += ["--destination", f"file://{folder}/", "--warm-up", str(size if warm else 0)]
            log_path = Path(home) / f"download-{i}.log"
            before_copy()
            with open(log_path, "w") as log, sampler_cls(sim.process.pid) as sampler:
                done, wall, usage = _run_child(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"the operator failed (exit {done.returncode}):\n{log_path.read_text()[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result["size_bytes"] != size or result["sha256"] != info["video_sha256"]:
                raise RuntimeError(f"the operator's copy differs from the video: {result}")
            shutil.rmtree(folder)
            # Timed around execute(): the copy, without the interpreter and Airflow starting up.
            result.update(process_wall_s=wall, process_peak_rss_mb=usage.ru_maxrss / 1024, sim_cpu_s=sampler.cpu_s)
            operator_runs.append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    curl_wall, operator_wall = median(curl_runs, "wall_s"), median(operator_runs, "wall_s")
    return {
        "size": size,
        "rounds": rounds,
        "curl": curl_runs,
        "operator": operator_runs,
        "curl_mib_s": size / curl_wall / 2**20,
        "operator_mib_s": size / operator_wall / 2**20,
        "ratio": curl_wall / operator_wall,
        "warm": warm,
    }


if __name__ == "__main__":
    sys.exit(worker())
