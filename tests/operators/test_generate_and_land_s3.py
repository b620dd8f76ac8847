"""GenerateVideoOperator landing in S3 after the wait, on the suite's moto server (needs the ``[s3]`` extra)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.operators.videogen import GenerateVideoOperator
from airflow_provider_videogen.video_download import RECORD_SUFFIX
from tests.operators import test_fetch_s3 as fetch_s3  # skipped without the [s3] extra
from tests.task_context import FakeTaskInstance

pytestmark = pytest.mark.s3

# The fetch tests' fixtures: the moto server, its client, and a fresh prefix per test.
s3_endpoint, s3, prefix = fetch_s3.s3_endpoint, fetch_s3.s3, fetch_s3.prefix
BUCKET, S3_CONN_ID = fetch_s3.BUCKET, fetch_s3.S3_CONN_ID


def test_a_generation_lands_in_s3_in_the_task_that_waited(s3: Any, prefix: str, sim, videogen_connection) -> None:
    operator = GenerateVideoOperator(
        task_id="generate",
        model="doubao-seedance-1-0-pro-250528",
        prompt="a heron [sim:queued=0] [sim:running=0.1]",
        generation_params={"return_last_frame": True},
        destination=f"s3://{BUCKET}/{prefix}/",
        dest_conn_id=S3_CONN_ID,
        include_last_frame=True,
        poll_interval=0.05,
        deferrable=False,
        http_retry_policy=RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.02),
    )
    result = operator.execute(context={"ti": FakeTaskInstance()})  # type: ignore[arg-type]

    video_task_id = result["id"]
    assert result["video_path"] == f"s3://{BUCKET}/{prefix}/{video_task_id}.mp4"
    names = [f"{video_task_id}{suffix}" for suffix in (".mp4", ".png")]
    assert fetch_s3.keys(s3, prefix) == sorted([*names, *(name + RECORD_SUFFIX for name in names)])
    served = sim.get_task(video_task_id)["video_sha256"]
    assert fetch_s3.object_sha256(s3, f"{prefix}/{video_task_id}.mp4") == result["sha256"] == served
    assert len(sim.requests(target="create")) == 1
