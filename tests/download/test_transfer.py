"""One copy across broken attempts: a host without ranges, a resume answered from a changed file."""

from __future__ import annotations

import hashlib

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_videogen.download import VideoDownloader
from tests.download.file_hosts import FAST_RETRIES, LOCAL_HOSTS, ChangingFileHost, PlainFileHost, mp4_bytes


def test_host_without_range_support_is_downloaded_again_from_the_start(tmp_path):
    body = mp4_bytes(1 << 20)
    with PlainFileHost(body, cut_first_answer_at=400_000) as server:
        downloader = VideoDownloader(chunk_size=64 * 1024, retry_policy=FAST_RETRIES, address_policy=LOCAL_HOSTS)
        stored = downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1")

    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "x.mp4").read_bytes() == body
    assert server.ranges == [None, "bytes=400000-"]  # asked to resume, got the whole file, kept it whole


@pytest.mark.parametrize("change", ["etag", "last_modified", "total"])
def test_a_resume_answered_from_a_changed_file_starts_over(tmp_path, change):
    first, second = mp4_bytes(600_000, "old"), mp4_bytes(600_000, "new")
    with ChangingFileHost(first, second, cut_at=300_000, change=change) as server:
        downloader = VideoDownloader(chunk_size=64 * 1024, retry_policy=FAST_RETRIES, address_policy=LOCAL_HOSTS)
        stored = downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1")
    landed = (tmp_path / "x.mp4").read_bytes()
    assert landed == second  # the new file, whole: never the old file's start joined to the new file's end
    assert stored.sha256 == hashlib.sha256(second).hexdigest()
    assert server.requests[1][0] is not None and server.requests[-1][0] is None  # resumed, then started over
