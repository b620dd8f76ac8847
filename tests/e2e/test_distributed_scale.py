"""Hundreds of videos at once on the distributed deployment, and what that does to PostgreSQL.

One run of ``videogen_e2e_scale`` maps :data:`VIDEOS` generations: every one is deferred at the same
time, its trigger in one of the two triggerers, before any video is ready; then all are released and
fetched by the two Celery workers. The first test checks the videos, the second the database.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_videogen.operators.videogen import GenerateVideoOperator
from airflow_provider_videogen.testing import SimulatorProcess
from airflow_provider_videogen.video_download import RECORD_SUFFIX

from .conftest import SimulatorService
from .deployment import ti_key
from .distributed import TRIGGERERS, DistributedDeployment
from .videos import (
    HOLD,
    SCALE,
    created_tasks,
    fired_events,
    new_folder,
    release,
    sha256_of,
    video_download_counts,
    wait_until_triggers_run,
)

pytestmark = pytest.mark.distributed

VIDEOS = 20
# What PostgreSQL and psycopg say when a transaction is chosen as a deadlock victim or cannot be
# serialized (SQLSTATE 40P01 and 40001).
DB_CONFLICT = re.compile(r"deadlock detected|could not serialize access|DeadlockDetected|SerializationFailure")


@dataclass
class ManyVideos:
    run_id: str
    folder: Path
    prompts: list[str]
    #: The ids of the video tasks each prompt's create calls made, by map index.
    created: list[list[str]]
    #: ``{triggerer service: triggers of this run it ran}`` while all were deferred.
    spread: Counter[str]
    seconds_to_defer_all: float
    seconds_to_finish: float


@pytest.fixture(scope="module")
def many_videos(_distributed_deployment: DistributedDeployment, distributed_simulator: SimulatorService) -> ManyVideos:
    """One run of :data:`VIDEOS` mapped generations, all deferred at once, then all released."""
    airflow = _distributed_deployment
    airflow.revive()
    sim = distributed_simulator.alive()
    airflow.wait_for_dag(SCALE)
    token = uuid.uuid4().hex[:12]
    prompts = [f"[{token}:{index}] A paper boat on a rainy street {HOLD}" for index in range(VIDEOS)]
    folder = new_folder(airflow, f"many-{token}")
    started = time.monotonic()

    run_id = airflow.trigger_dag(SCALE, {"prompts": prompts, "destination": f"file://{folder}/"})

    waiting = wait_until_triggers_run(airflow, SCALE, [run_id], "generate", count=VIDEOS, timeout=420)
    all_deferred = time.monotonic()
    triggerers = airflow.triggerer_jobs()
    spread = Counter(triggerers[ti["trigger"]["triggerer_id"]] for ti in waiting)
    created = created_tasks(sim, prompts)
    for video_task_ids in created:
        for video_task_id in video_task_ids:
            release(sim, video_task_id)
    run = airflow.wait_for_run(SCALE, run_id, timeout=420)
    assert run["state"] == "success", Counter(
        (ti["task_id"], ti["state"]) for ti in airflow.task_instances(SCALE, run_id)
    )
    return ManyVideos(
        run_id=run_id,
        folder=folder,
        prompts=prompts,
        created=created,
        spread=spread,
        seconds_to_defer_all=all_deferred - started,
        seconds_to_finish=time.monotonic() - all_deferred,
    )


def test_hundreds_of_videos_wait_at_once_across_two_triggerers_and_land_once_each(
    many_videos: ManyVideos,
    distributed: DistributedDeployment,
    dsim: SimulatorProcess,
    figures: Callable[[str], None],
) -> None:
    run_id = many_videos.run_id
    figures(
        f"{VIDEOS} generations all deferred {many_videos.seconds_to_defer_all:.0f} s after the run started; "
        f"released, all landed {many_videos.seconds_to_finish:.0f} s later"
    )
    figures(
        "triggers per triggerer while all waited: "
        + ", ".join(f"{name} {many_videos.spread[name]}" for name in TRIGGERERS)
    )
    # All were waiting at the same time, spread over both triggerers.
    assert sum(many_videos.spread.values()) == VIDEOS
    assert set(many_videos.spread) == set(TRIGGERERS), many_videos.spread

    tis = distributed.task_instances(SCALE, run_id)
    by_task = Counter(ti["task_id"] for ti in tis)
    assert by_task == {"prompts": 1, "generate": VIDEOS, "fetch": VIDEOS}
    # Every task ran one try to its end: nothing was retried.
    assert {(ti["state"], ti["try_number"]) for ti in tis} == {("success", 1)}, [
        (ti_key(ti), ti["state"], ti["try_number"]) for ti in tis if (ti["state"], ti["try_number"]) != ("success", 1)
    ]
    # Each trigger ran in one triggerer only, and fired once, with success.
    for index in range(VIDEOS):
        logs = distributed.trigger_log_events(SCALE, run_id, "generate", index)
        assert len(logs) == 1, (index, list(logs))
        [fired] = fired_events(next(iter(logs.values())))
        assert "'status': 'success'" in fired["result"]

    # Each generation was submitted exactly once, and its video downloaded exactly once...
    assert [len(ids) for ids in many_videos.created] == [1] * VIDEOS
    video_task_ids = [ids[0] for ids in many_videos.created]
    downloads = video_download_counts(dsim)
    assert {video_task_id: downloads[video_task_id] for video_task_id in video_task_ids} == dict.fromkeys(
        video_task_ids, 1
    )
    # ...and landed whole: the video and its integrity record, nothing else.
    assert sorted(p.name for p in many_videos.folder.iterdir()) == sorted(
        name
        for video_task_id in video_task_ids
        for name in (f"{video_task_id}.mp4", f"{video_task_id}.mp4{RECORD_SUFFIX}")
    )
    for video_task_id in video_task_ids:
        assert sha256_of(many_videos.folder / f"{video_task_id}.mp4") == dsim.get_task(video_task_id)["video_sha256"]


def test_hundreds_of_task_state_store_writes_on_postgresql_meet_no_deadlock_or_serialization_error(
    many_videos: ManyVideos, distributed: DistributedDeployment, figures: Callable[[str], None]
) -> None:
    # Every generation kept its id in the task_state_store, in PostgreSQL: one row each.
    rows = distributed.postgres.query(
        "SELECT map_index, value FROM task_state_store WHERE dag_id = %s AND run_id = %s AND key = %s",
        SCALE,
        many_videos.run_id,
        GenerateVideoOperator.state_store_key,
    )
    stored = {int(map_index): value for map_index, value in rows}
    assert stored == {index: f'"{ids[0]}"' for index, ids in enumerate(many_videos.created)}

    # PostgreSQL chose no deadlock victim in the whole session...
    [(deadlocks, conflicts, commits, rollbacks)] = distributed.postgres.query(
        "SELECT deadlocks, conflicts, xact_commit, xact_rollback FROM pg_stat_database "
        "WHERE datname = current_database()"
    )
    lock_waits = distributed.postgres.log.read_text(errors="replace").count("still waiting for")
    figures(
        f"PostgreSQL: {commits} commits, {rollbacks} rollbacks, {deadlocks} deadlocks, "
        f"{lock_waits} lock waits over 1 s, {len(stored)} task_state_store rows"
    )
    assert (deadlocks, conflicts) == (0, 0)
    # ...and neither it nor any Airflow service or task logged a deadlock or a serialization failure.
    # (The servers' output is in the services' folder too.)
    logs = [*distributed.logs_dir.glob("*.log"), *distributed.task_log_files()]
    found = {str(path): DB_CONFLICT.findall(path.read_text(errors="replace")) for path in logs}
    assert {path: hits for path, hits in found.items() if hits} == {}
