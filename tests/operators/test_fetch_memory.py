"""A large video is streamed: the peak memory of the copying process stays flat, whatever the file size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIG = 256 * 1024 * 1024
WARM_UP = 24 * 1024 * 1024
# A few 8 MiB chunks in flight (being received, hashed, written), with room for allocator noise:
# a small fraction of the file, which is what "flat" means here.
ALLOWED_GROWTH = 48 * 1024 * 1024

# Runs in a fresh process so that ru_maxrss (the peak resident set) measures this copy alone.
CHILD = r"""
import json, resource, sys
from airflow_provider_videogen.operators.videogen import FetchVideoOperator

def fetch(video_task_id, destination):
    operator = FetchVideoOperator(task_id="fetch", video_task_id=video_task_id, destination=destination)
    return operator.execute(context={})

warm_up_id, big_id, folder = sys.argv[1:4]
# A smaller copy first, so that lazy imports, the HTTP session and one full cycle of chunk buffers
# are in the baseline; what the big copy adds on top of it is what the file size could make grow.
fetch(warm_up_id, f"file://{folder}/warm-up/")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
result = fetch(big_id, f"file://{folder}/big/")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "after": after, "sha256": result["sha256"], "size": result["size_bytes"]}))
"""


def test_peak_memory_stays_flat_while_a_256_mib_video_is_copied(sim, videogen_connection, tmp_path: Path):
    warm_up_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=WARM_UP)
    big_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=BIG)

    child = subprocess.run(
        [sys.executable, "-c", CHILD, warm_up_id, big_id, str(tmp_path)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )

    assert child.returncode == 0, child.stderr[-3000:]
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    assert measured["size"] == BIG == (tmp_path / "big" / f"{big_id}.mp4").stat().st_size
    assert measured["sha256"] == sim.get_task(big_id)["video_sha256"]
    growth = measured["after"] - measured["before"]
    assert growth < ALLOWED_GROWTH, f"peak RSS grew by {growth / 2**20:.1f} MiB while copying {BIG / 2**20:.0f} MiB"
