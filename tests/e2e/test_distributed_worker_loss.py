"""A Celery worker killed outright midway through a large video's download: the other worker lands it once."""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_videogen.testing import SimulatorProcess
from airflow_provider_videogen.video_download import RECORD_SUFFIX

from .deployment import ti_key, wait_for
from .distributed import TASK_HEARTBEAT_TIMEOUT, WORKERS, DistributedDeployment
from .videos import HOLD, SCALE, created_tasks, new_folder, release, sha256_of, video_downloads, wait_until_triggers_run

pytestmark = pytest.mark.distributed

SIZE = 300_000_000
# 300 MB in about 8 s: long enough to kill the worker midway.
RATE = 40_000_000


def _executing(airflow: DistributedDeployment, worker: str, run_id: str, try_number: int, since: int = 0) -> bool:
    """Whether ``worker`` has started the given try of the run's ``fetch``."""
    text = airflow.log_since(worker, since)
    return any(
        f"run_id='{run_id}'" in line and "task_id='fetch'" in line and f"try_number={try_number}" in line
        for line in text.splitlines()
        if "Executing workload in Celery" in line
    )


def _partial_file(folder: Path) -> Path | None:
    """The copy's hidden temporary file, once it holds a tenth of the video."""
    parts = [p for p in folder.glob(".*.part") if p.stat().st_size >= SIZE // 10]
    return parts[0] if parts else None


def test_a_worker_killed_midway_through_a_large_download_is_replaced_by_the_other_which_lands_it_once(
    distributed: DistributedDeployment, dsim: SimulatorProcess, figures: Callable[[str], None]
) -> None:
    airflow = distributed
    airflow.wait_for_dag(SCALE)
    prompt = f"[{uuid.uuid4().hex[:12]}:0] A whale breaching, 4K [sim:size={SIZE}] {HOLD}"
    folder = new_folder(airflow, f"worker-loss-{uuid.uuid4().hex[:8]}")
    offsets = {worker: airflow.log_size(worker) for worker in WORKERS}
    run_id = airflow.trigger_dag(SCALE, {"prompts": [prompt], "destination": f"file://{folder}/"})
    wait_until_triggers_run(airflow, SCALE, [run_id], "generate", count=1)
    [[video_task_id]] = created_tasks(dsim, [prompt])
    dsim.add_fault("throttle", "download", task_id=video_task_id, rate=RATE, times=0)
    try:
        release(dsim, video_task_id)

        # The fetch is copying the video (a tenth of it is written): kill the worker running it.
        partial = wait_for(lambda: _partial_file(folder), timeout=180, message="the copy to be a tenth done")
        [victim] = [w for w in WORKERS if _executing(airflow, w, run_id, try_number=1, since=offsets[w])]
        [other] = set(WORKERS) - {victim}
        written = partial.stat().st_size
        airflow.kill_service(victim, signal.SIGKILL)
        killed_at = time.monotonic()

        # The scheduler notices the lost task (no heartbeat) and Airflow retries it, on the other worker.
        alive = [name for name in airflow.commands if name != victim]
        run = airflow.wait_for_run(SCALE, run_id, timeout=300, services=alive)
        landed_after = time.monotonic() - killed_at
    finally:
        dsim.clear_faults()
    tis = {ti_key(ti): (ti["state"], ti["try_number"]) for ti in airflow.task_instances(SCALE, run_id)}
    figures(
        f"{victim} killed with {written / 1e6:.0f} of {SIZE / 1e6:.0f} MB copied; the retry on {other} had "
        f"landed the video {landed_after:.0f} s later (task heartbeat timeout {TASK_HEARTBEAT_TIMEOUT} s)"
    )
    assert run["state"] == "success", tis
    # Only the fetch was retried, once; the generation was neither retried nor submitted again.
    assert tis == {"prompts": ("success", 1), "generate[0]": ("success", 1), "fetch[0]": ("success", 2)}
    assert len(created_tasks(dsim, [prompt])[0]) == 1
    assert _executing(airflow, other, run_id, try_number=2, since=offsets[other])
    # The file landed once, complete and verified; the killed try's partial copy is gone.
    video = folder / f"{video_task_id}.mp4"
    assert sorted(p.name for p in folder.iterdir()) == [video.name, video.name + RECORD_SUFFIX]
    expected = dsim.get_task(video_task_id)
    assert (video.stat().st_size, sha256_of(video)) == (SIZE, expected["video_sha256"])
    record = json.loads((folder / (video.name + RECORD_SUFFIX)).read_text())
    assert (record["video_task_id"], record["sha256"], record["size_bytes"]) == (
        video_task_id,
        expected["video_sha256"],
        SIZE,
    )
    # One download broke off when the worker died; one complete download followed.
    statuses = [r["status"] for r in video_downloads(dsim, video_task_id)]
    assert statuses == [None, 200], statuses
    retry_log = "\n".join(
        p.read_text() for p in airflow.task_log_folder(SCALE, run_id, "fetch", 0).glob("attempt=2.log")
    )
    assert re.search(r"Removed \S+\.part, left by an earlier try that was killed", retry_log), retry_log[-2000:]
