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


def test_a_large_video_is_written_in_pieces_that_fit_a_core_cache_and_lands_whole(tmp_path, monkeypatch):
    # Pieces that outgrow a core's cache cost up to five times the system time per GiB to copy into
    # the page cache, which made the operator's copy CPU-bound.
    from airflow_provider_videogen.download.staging import _StagedFile

    written: list[int] = []
    write = _StagedFile.write

    def counting_write(self: _StagedFile, chunk: bytes | memoryview) -> None:
        written.append(len(chunk))
        write(self, chunk)

    monkeypatch.setattr(_StagedFile, "write", counting_write)
    body = mp4_bytes(5 * 1024 * 1024 + 123)
    with PlainFileHost(body) as server:
        stored = VideoDownloader(retry_policy=FAST_RETRIES, address_policy=LOCAL_HOSTS).fetch(
            server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1"
        )

    assert max(written) <= 512 * 1024
    assert sum(written) == len(body)
    assert (stored.size_bytes, stored.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    assert (tmp_path / "x.mp4").read_bytes() == body
