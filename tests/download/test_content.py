"""Content checks: what lands must be a whole video or image of its kind."""

from __future__ import annotations

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_videogen.download import VideoDownloader
from airflow_provider_videogen.exceptions import VideoContentError
from tests.download.file_hosts import FAST_RETRIES, LOCAL_HOSTS, PlainFileHost, files_in, mp4_bytes


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "the body is empty"),
        (b"<!DOCTYPE html><html><body>Please log in</body></html>", "looks like HTML"),
        (b"\n  <html>sign in</html>", "looks like HTML"),
        (mp4_bytes(500_000)[:300_000], "cut short"),
        (mp4_bytes(500_000) + b"trailing junk", "cut short"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 100, "no readable type"),
        (b"GIF89a" + b"\x00" * 100, "does not start like an MP4"),
    ],
    ids=["empty", "html", "html-after-space", "content-length-lying-low", "trailing", "header-only", "gif"],
)
def test_a_body_that_is_not_a_whole_video_is_refused_and_nothing_lands(tmp_path, body, reason):
    with PlainFileHost(body) as server:  # an honest Content-Length for whatever it serves
        downloader = VideoDownloader(retry_policy=FAST_RETRIES, address_policy=LOCAL_HOSTS)
        with pytest.raises(VideoContentError, match=reason) as caught:
            downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1")
    assert "Nothing was stored" in str(caught.value)
    assert files_in(tmp_path) == []


def test_webm_and_quicktime_videos_are_accepted(tmp_path):
    wide, moov, mdat = b"\x00\x00\x00\x10wide" + bytes(8), b"\x00\x00\x00\x10moov" + bytes(8), b"\x00\x00\x00\x08mdat"
    quicktime = wide + moov + mdat
    for name, body in [("a.webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 500), ("b.mov", quicktime)]:
        with PlainFileHost(body) as server:
            downloader = VideoDownloader(retry_policy=FAST_RETRIES, address_policy=LOCAL_HOSTS)
            downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/{name}"), video_task_id="t1")
    assert files_in(tmp_path) == ["a.webm", "a.webm.videogen.json", "b.mov", "b.mov.videogen.json"]


def test_a_large_mp4_box_header_across_chunks_is_read(tmp_path):
    """A 64-bit box size, with the box header split over two reads, is followed like any other."""
    body = (
        b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00"
        + b"\x00\x00\x00\x08moov"
        + b"\x00\x00\x00\x01mdat"
        + (16 + 1000).to_bytes(8, "big")
        + b"\x01" * 1000
    )
    with PlainFileHost(body) as server:
        downloader = VideoDownloader(chunk_size=7, retry_policy=FAST_RETRIES, address_policy=LOCAL_HOSTS)
        downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1")
    assert (tmp_path / "x.mp4").read_bytes() == body


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20 + b"\x00\x00\x00\x00IEND\xaeB`\x82", True),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, False),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20 + b"\xff\xd9", True),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, False),
        (b"RIFF" + (8).to_bytes(4, "little") + b"WEBPVP8 ", True),
        (b"RIFF" + (400).to_bytes(4, "little") + b"WEBPVP8 ", False),
        (b"<html>expired</html>", False),
    ],
    ids=["png", "png-cut", "jpeg", "jpeg-cut", "webp", "webp-cut", "html"],
)
def test_a_last_frame_must_be_a_whole_image(tmp_path, body, accepted):
    with PlainFileHost(body) as server:
        downloader = VideoDownloader(retry_policy=FAST_RETRIES, address_policy=LOCAL_HOSTS)
        path = ObjectStoragePath(f"file://{tmp_path}/x.png")
        if accepted:
            downloader.fetch(server.url, path, video_task_id="t1", kind="last_frame")
        else:
            with pytest.raises(VideoContentError, match="is not an image"):
                downloader.fetch(server.url, path, video_task_id="t1", kind="last_frame")
    assert files_in(tmp_path) == (["x.png", "x.png.videogen.json"] if accepted else [])
