"""VideoDownloader: what it verifies before a file is moved into place."""

from __future__ import annotations

import hashlib

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_videogen.download import VideoDownloader
from airflow_provider_videogen.exceptions import VideoIntegrityError
from tests.download.file_hosts import FAST_RETRIES, LOCAL_HOSTS, PlainFileHost, files_in, mp4_bytes


def test_bytes_that_differ_from_the_advertised_sha256_fail_and_leave_no_file(tmp_path):
    body = mp4_bytes(11_000)
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    with PlainFileHost(body, headers={"x-checksum-sha256": wrong}) as server:
        downloader = VideoDownloader(retry_policy=FAST_RETRIES, address_policy=LOCAL_HOSTS)
        with pytest.raises(VideoIntegrityError, match=f"advertises {wrong}"):
            downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1")

    assert files_in(tmp_path) == []
