"""``FetchVideoOperator`` landing videos in S3: a moto S3 server on loopback, through the amazon provider and s3fs.

Needs the ``[s3]`` extra (``apache-airflow-providers-amazon``, ``s3fs``) and ``moto[server]``; skipped without them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("airflow.providers.amazon")
pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

from moto.server import ThreadedMotoServer  # noqa: E402

from airflow_provider_videogen.exceptions import VideoDownloadError  # noqa: E402
from airflow_provider_videogen.hooks.videogen import RetryPolicy  # noqa: E402
from airflow_provider_videogen.operators.videogen import FetchVideoOperator  # noqa: E402
from airflow_provider_videogen.video_download import RECORD_SUFFIX  # noqa: E402

pytestmark = pytest.mark.s3

BUCKET = "videogen-test"
S3_CONN_ID = "videogen_test_s3"
FAST_RETRIES = RetryPolicy(max_attempts=3, max_seconds=30, initial_wait=0.01, max_wait=0.02)
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto) on a free loopback port, with one bucket.

    One for the whole run: Airflow caches a storage connection's filesystem (and so its endpoint) per
    process, so a second server on another port would be unreachable for the modules that share it.
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A boto3 client of the server; also defines the ``aws`` connection the operator writes with."""
    connection = {
        "conn_type": "aws",
        "login": CREDENTIALS["aws_access_key_id"],
        "password": CREDENTIALS["aws_secret_access_key"],
        "extra": {"endpoint_url": s3_endpoint, "region_name": CREDENTIALS["region_name"]},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", json.dumps(connection))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)


@pytest.fixture
def prefix() -> str:
    return f"videos/{uuid.uuid4().hex[:8]}"


def fetch(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("http_retry_policy", FAST_RETRIES)
    operator = FetchVideoOperator(task_id="fetch", dest_conn_id=S3_CONN_ID, **kwargs)
    result: dict[str, Any] = operator.execute(context={})  # type: ignore[arg-type]
    return result


def keys(s3: Any, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    return sorted(item["Key"].removeprefix(prefix + "/") for item in listing.get("Contents", []))


def object_sha256(s3: Any, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def test_copies_the_video_to_s3_with_the_served_sha256(sim, videogen_connection, s3, prefix):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=3_000_000)

    result = fetch(video_task_id=task_id, destination=f"s3://{BUCKET}/{prefix}/")

    served = sim.get_task(task_id)["video_sha256"]
    assert result["video_path"] == f"s3://{BUCKET}/{prefix}/{task_id}.mp4"
    assert result["sha256"] == served == object_sha256(s3, f"{prefix}/{task_id}.mp4")
    assert result["size_bytes"] == 3_000_000
    assert keys(s3, prefix) == [f"{task_id}.mp4", f"{task_id}.mp4{RECORD_SUFFIX}"]


def test_last_frame_lands_beside_the_video_in_s3(sim, videogen_connection, s3, prefix):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, return_last_frame=True)

    result = fetch(video_task_id=task_id, destination=f"s3://{BUCKET}/{prefix}/clip.mp4", include_last_frame=True)

    assert result["last_frame_path"] == f"s3://{BUCKET}/{prefix}/clip.png"
    png = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/clip.png")["Body"].read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert hashlib.sha256(png).hexdigest() == result["last_frame_sha256"]


def test_a_retry_in_s3_removes_the_temporary_object_of_a_try_killed_midway(sim, videogen_connection, s3, prefix):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/.{task_id}.mp4.0123456789ab.part", Body=b"half a video")

    fetch(video_task_id=task_id, destination=f"s3://{BUCKET}/{prefix}/")

    assert keys(s3, prefix) == [f"{task_id}.mp4", f"{task_id}.mp4{RECORD_SUFFIX}"]


def test_retry_after_success_in_s3_downloads_nothing(sim, videogen_connection, s3, prefix):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    first = fetch(video_task_id=task_id, destination=f"s3://{BUCKET}/{prefix}/")
    written = s3.head_object(Bucket=BUCKET, Key=f"{prefix}/{task_id}.mp4")["LastModified"]
    sim.clear_requests()

    again = fetch(video_task_id=task_id, destination=f"s3://{BUCKET}/{prefix}/")

    assert again == first
    assert s3.head_object(Bucket=BUCKET, Key=f"{prefix}/{task_id}.mp4")["LastModified"] == written
    assert [r["headers"].get("Range") for r in sim.requests(target="download")] == ["bytes=0-0"]


def test_download_that_stays_broken_leaves_no_object_and_no_pending_upload(sim, videogen_connection, s3, prefix):
    # Large enough that a multipart upload has started (8 MiB parts) when the download breaks for good.
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=20_000_000)
    sim.add_fault(kind="truncate", target="download", truncate_at=12_000_000, times=1)
    sim.add_fault(kind="truncate", target="download", truncate_at=0, times=0)

    with pytest.raises(VideoDownloadError, match="Could not download the complete video"):
        fetch(video_task_id=task_id, destination=f"s3://{BUCKET}/{prefix}/", chunk_size=1 << 20)

    assert keys(s3, prefix) == []
    uploads = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix + "/").get("Uploads", [])
    assert uploads == []
