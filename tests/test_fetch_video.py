"""``FetchVideoOperator`` against the simulator: metadata to XCom, or the video landed in local storage."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.sdk import ObjectStoragePath

from airflow_provider_videogen.exceptions import (
    VideoDestinationExistsError,
    VideoDownloadCancelledError,
    VideoDownloadError,
    VideoIntegrityError,
    VideoTaskFailedError,
    VideoTaskNotReadyError,
    VideoURLExpiredError,
)
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.video_download import RECORD_SUFFIX, VideoDownloader, _StagedFile, advertised_sha256
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef,attr-defined]

from tests.conftest import API_KEY

FAST_RETRIES = RetryPolicy(max_attempts=3, max_seconds=30, initial_wait=0.01, max_wait=0.02)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fetch(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("http_retry_policy", FAST_RETRIES)
    operator = FetchVideoOperator(task_id="fetch", **kwargs)
    result: dict[str, Any] = operator.execute(context={})  # type: ignore[arg-type]
    return result


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def served_bytes(url: str) -> bytes:
    answer = requests.get(url, timeout=10)
    answer.raise_for_status()
    return answer.content


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    return tmp_path / "videos"


# ---- metadata only ---------------------------------------------------------------------------


@pytest.mark.parametrize("api_style", ["contents_generations", "video_generations"])
def test_without_destination_returns_the_task_dict_and_downloads_nothing(sim, videogen_connection, api_style):
    conn_id = videogen_connection(conn_id=f"vg_{api_style}", api_style=api_style)
    task_id = sim.add_task(style=api_style, queued_seconds=0, running_seconds=0)

    result = fetch(video_task_id=task_id, videogen_conn_id=conn_id)

    assert result == VideoGenHook(conn_id).get_task(task_id).to_dict()
    assert result["status"] == "succeeded"
    assert result["video_url"].startswith(f"{sim.base_url}/_files/videos/{task_id}.mp4?")
    assert "video_path" not in result
    assert sim.requests(target="download") == []


# ---- copies to file:// -----------------------------------------------------------------------


def test_copies_the_video_into_a_folder_as_task_id_mp4_with_the_served_sha256(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=3_000_000)

    result = fetch(video_task_id=task_id, destination=f"file://{videos}/")

    landed = videos / f"{task_id}.mp4"
    served = sim.get_task(task_id)
    assert result["video_path"] == f"file://{landed}"
    assert result["size_bytes"] == landed.stat().st_size == 3_000_000
    assert result["sha256"] == sha256_of(landed) == served["video_sha256"]
    assert result["video_url"] == served["video_url"]
    assert result["last_frame_path"] is None


@pytest.mark.parametrize("api_style", ["contents_generations", "video_generations"])
def test_copies_the_video_to_a_named_file(sim, videogen_connection, videos, api_style):
    conn_id = videogen_connection(conn_id=f"vg_{api_style}", api_style=api_style)
    task_id = sim.add_task(style=api_style, queued_seconds=0, running_seconds=0)

    result = fetch(video_task_id=task_id, videogen_conn_id=conn_id, destination=f"file://{videos}/clip.mp4")

    assert files_in(videos) == ["clip.mp4", f"clip.mp4{RECORD_SUFFIX}"]
    assert result["sha256"] == sha256_of(videos / "clip.mp4") == sim.get_task(task_id)["video_sha256"]


def test_accepts_an_object_storage_path_to_an_existing_folder(sim, videogen_connection, videos):
    videos.mkdir()
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)

    result = fetch(video_task_id=task_id, destination=ObjectStoragePath(f"file://{videos}"))

    assert result["video_path"] == f"file://{videos / task_id}.mp4"
    assert result["sha256"] == sim.get_task(task_id)["video_sha256"]


def test_integrity_record_names_the_task_size_and_sha256(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)

    result = fetch(video_task_id=task_id, destination=f"file://{videos}/")

    record = json.loads((videos / f"{task_id}.mp4{RECORD_SUFFIX}").read_text())
    assert record["video_task_id"] == task_id
    assert record["kind"] == "video"
    assert record["sha256"] == result["sha256"]
    assert record["size_bytes"] == result["size_bytes"]
    assert "?" not in record["source"]  # the signature of the pre-signed URL is never stored


def test_last_frame_lands_beside_the_video_as_a_png(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, return_last_frame=True)

    result = fetch(video_task_id=task_id, destination=f"file://{videos}/clip.mp4", include_last_frame=True)

    frame = videos / "clip.png"
    expected = served_bytes(sim.get_task(task_id)["last_frame_url"])
    assert result["last_frame_path"] == f"file://{frame}"
    assert frame.read_bytes() == expected
    assert expected.startswith(PNG_SIGNATURE)
    assert result["last_frame_sha256"] == hashlib.sha256(expected).hexdigest()
    assert result["last_frame_size_bytes"] == len(expected)
    assert result["sha256"] == sim.get_task(task_id)["video_sha256"]


def test_last_frame_of_a_task_created_without_one_fails_before_writing(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, return_last_frame=False)

    with pytest.raises(VideoDownloadError, match="return_last_frame"):
        fetch(video_task_id=task_id, destination=f"file://{videos}/", include_last_frame=True)

    assert files_in(videos) == []
    assert sim.requests(target="download") == []


# ---- broken downloads ------------------------------------------------------------------------


def test_truncated_download_is_resumed_with_a_range_request(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=3_000_000)
    sim.add_fault(kind="truncate", target="download", truncate_at=1_500_000, times=1)

    result = fetch(video_task_id=task_id, destination=f"file://{videos}/", chunk_size=256 * 1024)

    assert result["sha256"] == sim.get_task(task_id)["video_sha256"]
    first, second = sim.requests(target="download")
    assert first["fault"] == "truncate"
    assert second["status"] == 206
    assert second["headers"]["Range"] == "bytes=1310720-"  # the whole 256 KiB chunks received
    assert second["headers"]["If-Range"]  # the ETag: never splice two different files
    assert files_in(videos) == [f"{task_id}.mp4", f"{task_id}.mp4{RECORD_SUFFIX}"]


def test_download_that_stays_broken_fails_and_leaves_no_file_behind(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=1_000_000)
    # The first answer delivers part of the file (so a temporary file exists), then nothing more arrives.
    sim.add_fault(kind="truncate", target="download", truncate_at=300_000, times=1)
    sim.add_fault(kind="truncate", target="download", truncate_at=0, times=0)

    with pytest.raises(
        VideoDownloadError, match=r"Could not download the complete video .* 4 attempts, the last 3 without progress"
    ):
        fetch(video_task_id=task_id, destination=f"file://{videos}/", chunk_size=64 * 1024)

    assert len(sim.requests(target="download")) == 1 + FAST_RETRIES.max_attempts
    assert files_in(videos) == []


def test_transient_file_host_errors_are_retried(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    sim.add_fault(kind="http_error", target="download", status=503, times=2)

    result = fetch(video_task_id=task_id, destination=f"file://{videos}/")

    assert result["sha256"] == sim.get_task(task_id)["video_sha256"]
    assert [r["status"] for r in sim.requests(target="download")] == [503, 503, 200]


def test_host_without_range_support_is_downloaded_again_from_the_start(tmp_path):
    body = bytes(range(256)) * 4096  # 1 MiB
    with _PlainFileHost(body, cut_first_answer_at=400_000) as server:
        downloader = VideoDownloader(chunk_size=64 * 1024, retry_policy=FAST_RETRIES)
        stored = downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1")

    assert stored.sha256 == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "x.mp4").read_bytes() == body
    assert server.ranges == [None, "bytes=393216-"]  # asked to resume, got the whole file, kept it whole


def test_bytes_that_differ_from_the_advertised_sha256_fail_and_leave_no_file(tmp_path):
    body = b"video bytes" * 1000
    wrong = hashlib.sha256(b"other bytes").hexdigest()
    with _PlainFileHost(body, headers={"x-checksum-sha256": wrong}) as server:
        downloader = VideoDownloader(retry_policy=FAST_RETRIES)
        with pytest.raises(VideoIntegrityError, match=f"advertises {wrong}"):
            downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1")

    assert files_in(tmp_path) == []


# ---- idempotent retries ----------------------------------------------------------------------


def test_retry_after_success_verifies_the_file_and_downloads_nothing(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=2_000_000)
    first = fetch(video_task_id=task_id, destination=f"file://{videos}/")
    landed = videos / f"{task_id}.mp4"
    written_at = landed.stat().st_mtime_ns
    sim.clear_requests()

    again = fetch(video_task_id=task_id, destination=f"file://{videos}/")

    assert again == first
    assert landed.stat().st_mtime_ns == written_at
    (probe,) = sim.requests(target="download")  # one byte, to compare the size and the ETag
    assert probe["headers"]["Range"] == "bytes=0-0"


def test_retry_after_success_succeeds_even_once_the_url_has_expired(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    first = fetch(video_task_id=task_id, destination=f"file://{videos}/")
    sim.add_fault(kind="expired", target="download", times=0)

    again = fetch(video_task_id=task_id, destination=f"file://{videos}/")

    assert again["sha256"] == first["sha256"]


def test_a_retry_removes_the_temporary_file_of_a_try_killed_midway(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=1_000_000)
    videos.mkdir()
    # What a try killed outright (SIGKILL, a lost machine) leaves: its hidden temporary file, half written.
    (videos / f".{task_id}.mp4.0123456789ab.part").write_bytes(b"\0" * 400_000)
    # Another video's temporary file, and files that only look alike, are not this retry's business.
    (videos / ".other.mp4.0123456789ab.part").write_bytes(b"\0")
    (videos / f"{task_id}.mp4.part").write_bytes(b"\0")

    result = fetch(video_task_id=task_id, destination=f"file://{videos}/")

    assert result["sha256"] == sim.get_task(task_id)["video_sha256"]
    assert files_in(videos) == sorted(
        [".other.mp4.0123456789ab.part", f"{task_id}.mp4", f"{task_id}.mp4.part", f"{task_id}.mp4{RECORD_SUFFIX}"]
    )


def test_existing_different_file_fails_without_overwrite(sim, videogen_connection, videos):
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(b"someone else's video")
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)

    with pytest.raises(VideoDestinationExistsError, match="overwrite=True") as caught:
        fetch(video_task_id=task_id, destination=f"file://{videos}/clip.mp4")

    assert isinstance(caught.value, AirflowFailException)  # retrying the Airflow task cannot help
    assert (videos / "clip.mp4").read_bytes() == b"someone else's video"
    assert files_in(videos) == ["clip.mp4"]


def test_existing_file_of_the_right_size_but_other_bytes_fails_without_overwrite(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    fetch(video_task_id=task_id, destination=f"file://{videos}/clip.mp4")
    landed = videos / "clip.mp4"
    landed.write_bytes(bytes(landed.stat().st_size))  # same size, zeroed: the record no longer matches

    with pytest.raises(VideoDestinationExistsError, match="SHA-256"):
        fetch(video_task_id=task_id, destination=f"file://{videos}/clip.mp4")


def test_existing_different_file_is_replaced_with_overwrite(sim, videogen_connection, videos):
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(b"someone else's video")
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)

    result = fetch(video_task_id=task_id, destination=f"file://{videos}/clip.mp4", overwrite=True)

    assert sha256_of(videos / "clip.mp4") == result["sha256"] == sim.get_task(task_id)["video_sha256"]


# ---- refused URLs and credentials ------------------------------------------------------------


def test_expired_url_fails_saying_videos_must_be_fetched_within_24_hours(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    sim.add_fault(kind="expired", target="download", times=0)

    with pytest.raises(VideoURLExpiredError) as caught:
        fetch(video_task_id=task_id, destination=f"file://{videos}/")

    message = str(caught.value)
    assert "expired" in message
    assert "within 24 hours of generation" in message
    assert "X-Signature" not in message  # the signed query is a credential
    assert caught.value.http_status == 403
    assert isinstance(caught.value, AirflowFailException)
    assert len(sim.requests(target="download")) == 1  # refused URLs are not retried
    assert files_in(videos) == []


def test_the_file_host_never_receives_the_api_key(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, return_last_frame=True)
    sim.add_fault(kind="truncate", target="download", truncate_at=10_000, times=1)

    fetch(video_task_id=task_id, destination=f"file://{videos}/", include_last_frame=True)

    downloads = sim.requests(target="download")
    assert len(downloads) == 3  # truncated video, its resumption, the last frame
    for request in downloads:
        assert "Authorization" not in request["headers"]
        assert API_KEY not in json.dumps(request)
    assert "Authorization" in sim.requests(target="query")[0]["headers"]  # the API itself did get the key


def test_non_http_video_url_is_refused(monkeypatch, videogen_connection, videos):
    task = VideoTask(id="cgt-1", status=VideoTaskStatus.SUCCEEDED, video_url="file:///etc/passwd")
    monkeypatch.setattr(VideoGenHook, "get_task", lambda self, video_task_id: task)

    with pytest.raises(VideoDownloadError, match="only http and https"):
        fetch(video_task_id="cgt-1", destination=f"file://{videos}/")

    assert files_in(videos) == []


# ---- task states -----------------------------------------------------------------------------


def test_task_not_yet_succeeded_fails_saying_to_wait_with_the_sensor(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=600)

    with pytest.raises(VideoTaskNotReadyError, match=r"is running .* Wait for it with VideoTaskSensor") as caught:
        fetch(video_task_id=task_id, destination=f"file://{videos}/")

    assert not isinstance(caught.value, AirflowFailException)  # it may succeed by the next try
    assert sim.requests(target="download") == []


def test_failed_task_fails_with_its_error_code_and_message(sim, videogen_connection):
    task_id = sim.add_task(
        final_status="failed",
        queued_seconds=0,
        running_seconds=0,
        error_code="OutputVideoSensitiveContentDetected",
        error_message="The output video may contain sensitive information.",
    )

    with pytest.raises(VideoTaskFailedError) as caught:
        fetch(video_task_id=task_id)

    message = str(caught.value)
    assert f"video task {task_id} ended failed" in message
    assert "OutputVideoSensitiveContentDetected" in message
    assert "The output video may contain sensitive information." in message
    assert isinstance(caught.value, AirflowFailException)


# ---- cancellation ----------------------------------------------------------------------------


def test_on_kill_stops_the_copy_and_removes_the_temporary_file(sim, videogen_connection, videos, monkeypatch):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=2_000_000)
    first_chunk_written, killed = threading.Event(), threading.Event()
    write = _StagedFile.write

    def write_then_wait(self: _StagedFile, chunk: bytes) -> None:
        write(self, chunk)
        first_chunk_written.set()
        killed.wait(10)

    monkeypatch.setattr(_StagedFile, "write", write_then_wait)
    operator = FetchVideoOperator(
        task_id="fetch", video_task_id=task_id, destination=f"file://{videos}/", chunk_size=64 * 1024
    )
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            operator.execute(context={})  # type: ignore[arg-type]
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    assert first_chunk_written.wait(10)
    assert any(name.endswith(".part") for name in files_in(videos))
    operator.on_kill()
    killed.set()
    worker.join(10)

    assert [type(error) for error in outcome] == [VideoDownloadCancelledError]
    assert files_in(videos) == []


# ---- checksum headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-amz-checksum-sha256": "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="}, "2c26b4"),
        ({"x-amz-checksum-sha256": "LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=-3"}, None),  # multipart
        ({"Repr-Digest": "sha-512=:abc=:, sha-256=:LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=:"}, "2c26b4"),
        ({"Digest": "SHA-256=LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564="}, "2c26b4"),
        ({"x-checksum-sha256": "2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE"}, "2c26b4"),
        ({"ETag": '"acbd18db4cc2f85cedef654fccc4a4d8"'}, None),  # an ETag is never taken for a hash
    ],
)
def test_advertised_sha256_reads_the_standard_checksum_headers(headers, expected):
    found = advertised_sha256(headers)
    assert (found[:6] if found else None) == expected


# ---- helpers ---------------------------------------------------------------------------------


class _PlainFileHost:
    """A minimal file host: ignores ``Range``, may cut its first answer short or send extra headers."""

    def __init__(self, body: bytes, cut_first_answer_at: int | None = None, headers: dict[str, str] | None = None):
        self.body = body
        self.cut = cut_first_answer_at
        self.ranges: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.ranges.append(self.headers.get("Range"))
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.body)))
                self.send_header("ETag", '"v1"')
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if len(outer.ranges) == 1 and outer.cut is not None:
                    self.wfile.write(outer.body[: outer.cut])
                    self.close_connection = True
                else:
                    self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mp4?X-Signature=s"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self) -> _PlainFileHost:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    before = {t.name for t in threading.enumerate()}
    yield
    leaked = {t.name for t in threading.enumerate()} - before
    assert not {name for name in leaked if name.startswith("videogen-sha256")}
