"""Hundreds of videos in one task on the distributed deployment, the triggerer its wait runs in lost meanwhile.

One run of ``videogen_e2e_batch`` submits :data:`ITEMS` generations from one ``GenerateVideosOperator``
and waits for all of them in one trigger. The triggerer running it is killed (SIGKILL, as when its
machine dies) while every generation still renders; the other triggerer takes the wait over. Then
the videos are released, and the task lands each once.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest

from airflow_provider_videogen.testing import SimulatorProcess
from airflow_provider_videogen.video_download import RECORD_SUFFIX

from .deployment import wait_for
from .distributed import TRIGGERERS, DistributedDeployment
from .videos import HOLD, created_tasks, new_folder, release, sha256_of, video_download_counts

pytestmark = pytest.mark.distributed

BATCH = "videogen_e2e_batch"
ITEMS = 200
MODEL = "doubao-seedance-1-0-lite-t2v-250428"


def _batch_triggerer(airflow: DistributedDeployment, run_id: str) -> int | None:
    """The triggerer job the batch's deferred wait is assigned to (``None``: not deferred or not assigned)."""
    return airflow.assigned_triggerers(BATCH, run_id, "generate_many").get(-1)


def test_a_batch_of_hundreds_waits_in_one_trigger_outlives_its_triggerer_and_pays_once_per_item(
    distributed: DistributedDeployment, dsim: SimulatorProcess, figures: Callable[[str], None]
) -> None:
    airflow = distributed
    airflow.wait_for_dag(BATCH)
    token = uuid.uuid4().hex[:12]
    prompts = [f"[{token}:{index}] A kite over a wheat field {HOLD}" for index in range(ITEMS)]
    requests = [{"model": MODEL, "prompt": prompt, "key": f"clip-{index}"} for index, prompt in enumerate(prompts)]
    folder = new_folder(airflow, f"batch-{token}")
    started = time.monotonic()

    run_id = airflow.trigger_dag(BATCH, {"requests": requests, "destination": f"file://{folder}/"})

    # 1. Every item is submitted and the batch defers to one trigger, which a triggerer picks up.
    wait_for(
        lambda: all(len(ids) == 1 for ids in created_tasks(dsim, prompts)) or None,
        timeout=600,
        interval=2,
        message=f"the batch to submit its {ITEMS} generations",
    )
    holder = wait_for(lambda: _batch_triggerer(airflow, run_id), timeout=300, interval=1, message="the batch to wait")
    deferred_at = time.monotonic()

    # 2. That triggerer dies with every generation still rendering; the other one takes the wait over.
    jobs = airflow.triggerer_jobs()
    killed = jobs[holder]
    [survivor] = set(TRIGGERERS) - {killed}
    airflow.kill_service(killed, signal.SIGKILL)
    killed_at = time.monotonic()
    taken_over = wait_for(
        lambda: job if (job := _batch_triggerer(airflow, run_id)) not in (None, holder) else None,
        timeout=120,
        interval=0.5,
        message=f"{survivor} to be assigned the batch's wait",
    )
    assert airflow.triggerer_named(taken_over) == survivor
    assigned_at = time.monotonic()

    # 3. The videos are ready: the batch lands them.
    created = created_tasks(dsim, prompts)
    for (video_task_id,) in created:
        release(dsim, video_task_id)
    alive = [name for name in airflow.commands if name != killed]
    run = airflow.wait_for_run(BATCH, run_id, timeout=900, services=alive, interval=3)
    finished_at = time.monotonic()
    tis = airflow.task_instances(BATCH, run_id)
    assert run["state"] == "success", Counter((ti["task_id"], ti["state"]) for ti in tis)
    figures(
        f"{ITEMS} items submitted and waiting in one trigger {deferred_at - started:.0f} s after the run started; "
        f"SIGKILL of {killed}: {survivor} was assigned the wait {assigned_at - killed_at:.1f} s later; "
        f"once released, all landed {finished_at - assigned_at:.0f} s later"
    )

    # One try of each task: losing the triggerer cost the batch nothing but the takeover.
    assert sorted((ti["task_id"], ti["state"], ti["try_number"]) for ti in tis) == [
        ("generate_many", "success", 1),
        ("requests", "success", 1),
    ]
    # Each item was paid for once and its video downloaded once...
    assert [len(ids) for ids in created] == [1] * ITEMS
    video_task_ids = [ids[0] for ids in created]
    downloads = video_download_counts(dsim)
    assert {video_task_id: downloads[video_task_id] for video_task_id in video_task_ids} == dict.fromkeys(
        video_task_ids, 1
    )
    # ...and landed whole as its key, described by the manifest: nothing else is in the folder.
    lines = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert [(line["key"], line["status"], line["video_task_id"]) for line in lines] == [
        (f"clip-{index}", "landed", video_task_id) for index, video_task_id in enumerate(video_task_ids)
    ]
    expected = {"manifest.jsonl"} | {
        name for index in range(ITEMS) for name in (f"clip-{index}.mp4", f"clip-{index}.mp4{RECORD_SUFFIX}")
    }
    assert {path.name for path in folder.iterdir()} == expected
    for index, video_task_id in enumerate(video_task_ids):
        assert sha256_of(folder / f"clip-{index}.mp4") == dsim.get_task(video_task_id)["video_sha256"]
