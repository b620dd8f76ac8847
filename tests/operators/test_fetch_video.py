"""``FetchVideoOperator`` against the simulator: metadata to XCom, or the video landed in local storage."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from airflow.sdk import ObjectStoragePath

from airflow_provider_videogen.download.staging import _StagedFile
from airflow_provider_videogen.exceptions import (
    VideoDestinationExistsError,
    VideoDownloadCancelledError,
    VideoDownloadError,
    VideoFileHostRefusedError,
    VideoStorageError,
    VideoTaskFailedError,
    VideoTaskNotReadyError,
    VideoURLExpiredError,
)
from airflow_provider_videogen.hooks.videogen import VideoGenHook
from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.transport import AddressPolicy
from airflow_provider_videogen.video_download import RECORD_SUFFIX, VideoDownloader
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

try:
    from airflow.sdk.exceptions import AirflowFailException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException  # type: ignore[no-redef,attr-defined]

from tests.download.file_hosts import (
    FAST_RETRIES,
    PlainFileHost,
    files_in,
    mp4_bytes,
    no_leftover_threads,  # noqa: F401 (an autouse fixture)
)
from tests.loopback import API_KEY, LoopbackServer, QuietHandler

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


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    return tmp_path / "videos"


# ---- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [0, -1, True, 1.5, "65536", float("inf")])
def test_a_chunk_size_that_is_not_a_whole_number_of_bytes_is_refused_when_the_dag_is_parsed(chunk_size):
    with pytest.raises(ValueError, match=r"^chunk_size must be a whole number of at least 1"):
        FetchVideoOperator(task_id="fetch", video_task_id="cgt-1", destination="file:///tmp/v/", chunk_size=chunk_size)


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


@pytest.mark.parametrize("destination", [None, "folder"])
@pytest.mark.parametrize("include_urls", [True, False])
def test_the_return_value_holds_the_signed_file_urls_only_with_include_urls(
    sim, videogen_connection, videos, include_urls, destination
):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, return_last_frame=True)
    where = f"file://{videos}/" if destination else None
    result = fetch(video_task_id=task_id, destination=where, include_last_frame=bool(where), include_urls=include_urls)
    if include_urls:
        assert "X-Signature=" in result["video_url"] and "X-Signature=" in result["last_frame_url"]
    else:
        assert result["video_url"] is None and result["last_frame_url"] is None
        assert "X-Signature" not in json.dumps(result)  # nor in the raw answer, which holds them too
    if where:
        assert result["video_path"] == f"file://{videos}/{task_id}.mp4" and result["last_frame_path"]


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
    assert second["headers"]["Range"] == "bytes=1500000-"  # every byte received is kept
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


@pytest.mark.parametrize(
    ("api_style", "model", "lifetime"),
    [
        ("contents_generations", "doubao-seedance-1-0-pro-250528", "within 24 hours of generation"),
        ("video_generations", "doubao-seedance-1-0-pro-250528", "within the service's own lifetime for them"),
        ("openai_videos", "sora-2", "within the service's own lifetime for them"),
        ("dashscope", "wan2.5-t2v-preview", "within 24 hours of generation"),
        ("runway", "gen4.5", "within 24 hours of generation"),
        ("gemini_veo", "veo-3.1-generate-preview", "within 48 hours of generation"),
        ("fal", "fal-ai/kling-video/v2.1/master/text-to-video", "within the service's own lifetime for them"),
        ("replicate", "google/veo-3", "within 1 hour of generation"),
    ],
)
def test_an_expired_url_names_the_file_lifetime_of_the_connections_style(
    sim, videogen_connection, videos, api_style, model, lifetime
):
    conn_id = videogen_connection(conn_id=f"vg_{api_style}", api_style=api_style)
    # Created through the hook: each style's task id has its own shape (an operation name, a request path...).
    task_id = VideoGenHook(conn_id).create_task(model=model, prompt="a fox [sim:queued=0] [sim:running=0]")
    VideoGenHook(conn_id).get_task(task_id)  # the simulator's clock: the task has ended by its first read
    # 404: a refusal of the URL itself on every style (a 401/403 of a route that takes the key is about the key).
    sim.add_fault(kind="expired", target="download", status=404, times=0)

    with pytest.raises(VideoURLExpiredError) as caught:
        fetch(video_task_id=task_id, videogen_conn_id=conn_id, destination=f"file://{videos}/")

    assert f"Generated files must be fetched {lifetime}; generate the video again." in str(caught.value)


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


# ---- helpers ---------------------------------------------------------------------------------


# ---- hardening: success without a video fails for good where the URL is needed ---------------


@pytest.mark.parametrize("destination", [None, "videos"])
def test_a_succeeded_task_without_a_video_url_fails_without_retries(sim, videogen_connection, videos, destination):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    answer = {"id": task_id, "model": "m", "status": "succeeded", "content": {}}
    sim.add_fault(kind="http_error", target="query", status=200, body=answer, times=5)
    with pytest.raises(AirflowFailException, match="no video URL") as caught:
        fetch(video_task_id=task_id, destination=f"{videos.as_uri()}/" if destination else None)
    assert isinstance(caught.value, VideoDownloadError)
    assert files_in(videos) == []


def test_a_missing_last_frame_fails_without_retries(sim, videogen_connection, videos):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, return_last_frame=False)
    with pytest.raises(AirflowFailException, match="return_last_frame"):
        fetch(video_task_id=task_id, destination=f"{videos.as_uri()}/", include_last_frame=True)
    assert files_in(videos) == []


# ---- hardening: the file host's texts are masked ---------------------------------------------


def test_a_file_host_that_echoes_the_key_never_gets_it_into_errors_or_logs(sim, videogen_connection, videos, caplog):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    echo = f"upstream said: Authorization: Bearer {API_KEY} was not accepted"
    sim.add_fault(kind="http_error", target="download", status=502, body=echo, content_type="text/plain", times=0)
    with caplog.at_level(logging.DEBUG), pytest.raises(VideoDownloadError) as caught:
        fetch(video_task_id=task_id, destination=f"{videos.as_uri()}/")
    assert "was not accepted" in str(caught.value)  # the host's text is kept, masked
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("airflow_provider_videogen"))
    assert "Authorization: Bearer ***" in ours  # the retries were logged, masked
    assert API_KEY not in str(caught.value) and API_KEY not in caplog.text
    assert "X-Signature=" not in str(caught.value) + ours
    assert files_in(videos) == []


# ---- hardening: a changed file is never spliced onto the first one's bytes ---------------------


# ---- hardening: what lands must be a whole file of its kind -----------------------------------


# ---- hardening: file URLs may not lead into internal networks ----------------------------------


@pytest.fixture
def no_traffic_off_loopback(monkeypatch) -> list[Any]:
    """Fail, without sending anything, if anything connects elsewhere than loopback."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        attempts.append(address)
        if not (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1")):
            raise AssertionError(f"a connection to {address!r} was attempted")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


@pytest.fixture
def internal_names(monkeypatch) -> dict[str, str]:
    """Host names that resolve to internal addresses (nothing is ever sent to them)."""
    names = {"files.internal.test": "10.20.30.40", "metadata.internal.test": "169.254.169.254"}
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], int(port or 80)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return names


def _task_with_video_url(sim, url: str) -> str:
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    answer = {"id": task_id, "model": "m", "status": "succeeded", "content": {"video_url": url}}
    sim.add_fault(kind="http_error", target="query", status=200, body=answer, times=0)
    return task_id


@pytest.mark.parametrize(
    "url",
    [
        "http://files.internal.test/v.mp4?X-Signature=s",
        "http://metadata.internal.test/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[fd00::7]:8080/admin",
        "http://0.0.0.0:9000/v.mp4",
    ],
)
def test_a_video_url_on_an_internal_address_is_refused_before_connecting(
    sim, videogen_connection, videos, internal_names, no_traffic_off_loopback, url
):
    task_id = _task_with_video_url(sim, url)
    with pytest.raises(VideoFileHostRefusedError, match="allow_private_file_hosts") as caught:
        fetch(video_task_id=task_id, destination=f"{videos.as_uri()}/")
    assert isinstance(caught.value, AirflowFailException)
    assert urlsplit(url).hostname in str(caught.value)
    assert "X-Signature" not in str(caught.value)
    assert [a for a in no_traffic_off_loopback if a[0] != "127.0.0.1"] == []
    assert files_in(videos) == []


def test_a_redirect_to_an_internal_address_is_refused(
    sim, videogen_connection, videos, internal_names, no_traffic_off_loopback
):
    class Redirect(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://metadata.internal.test/latest/meta-data/iam/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    with LoopbackServer(Redirect) as server:
        task_id = _task_with_video_url(sim, f"{server.base_url}/v.mp4")
        with pytest.raises(VideoFileHostRefusedError, match=r"metadata\.internal\.test \(169\.254\.169\.254\)"):
            fetch(video_task_id=task_id, destination=f"{videos.as_uri()}/")
    assert files_in(videos) == []


def test_loopback_files_are_refused_when_the_connection_is_not_on_loopback(tmp_path, no_traffic_off_loopback):
    from airflow_provider_videogen.hooks.videogen import VideoGenConnectionSettings

    remote = VideoGenConnectionSettings.from_connection_fields("c", host="https://203.0.113.10", password="k")
    local = VideoGenConnectionSettings.from_connection_fields("c", host="http://127.0.0.1:9000", password="k")
    trusting = VideoGenConnectionSettings.from_connection_fields(
        "c", host="https://203.0.113.10", password="k", extra={"allow_private_file_hosts": "true"}
    )
    assert remote.file_host_policy() == AddressPolicy()
    assert local.file_host_policy() == AddressPolicy(allow_loopback=True)
    assert trusting.file_host_policy() == AddressPolicy(allow_private=True)
    with PlainFileHost(mp4_bytes(10_000)) as server:
        downloader = VideoDownloader(retry_policy=FAST_RETRIES, address_policy=remote.file_host_policy())
        with pytest.raises(VideoFileHostRefusedError, match="loopback"):
            downloader.fetch(server.url, ObjectStoragePath(f"file://{tmp_path}/x.mp4"), video_task_id="t1")
    assert no_traffic_off_loopback == []


def test_allow_private_file_hosts_must_be_true_or_false():
    from airflow_provider_videogen.exceptions import VideoGenConfigurationError
    from airflow_provider_videogen.hooks.videogen import VideoGenConnectionSettings

    with pytest.raises(VideoGenConfigurationError, match="allow_private_file_hosts='maybe'"):
        VideoGenConnectionSettings.from_connection_fields(
            "c", host="h", password="k", extra={"allow_private_file_hosts": "maybe"}
        )


# ---- hardening: a destination that cannot be written ---------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 256 KiB file system (tmpfs), for a disk that fills up; needs root, as CI has."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_raises_the_typed_error_naming_the_destination_and_leaves_nothing(
    sim, videogen_connection, small_disk
):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=1_000_000)
    with pytest.raises(VideoStorageError, match=r"No space left on device \(ENOSPC\)") as caught:
        fetch(video_task_id=task_id, destination=f"file://{small_disk}/videos/")
    assert f"file://{small_disk}/videos/{task_id}.mp4" in str(caught.value)
    assert files_in(small_disk / "videos") == []


def test_a_read_only_destination_raises_the_typed_error_naming_it(sim, videogen_connection, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    with pytest.raises(VideoStorageError, match=r"Read-only file system \(EROFS\)") as caught:
        fetch(video_task_id=task_id, destination=f"file://{small_disk}/")
    assert f"file://{small_disk}/{task_id}.mp4" in str(caught.value)
    assert files_in(small_disk) == []


# ---- progress in the log ---------------------------------------------------------------------


def download_progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Downloading the video:")]


def test_a_slow_download_logs_bytes_percent_and_rate_every_interval(
    sim, videogen_connection, videos, caplog, monkeypatch
):
    monkeypatch.setattr(VideoDownloader, "progress_log_interval", 0.2)
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=2_000_000)
    sim.add_fault(kind="throttle", target="download", task_id=task_id, rate=2_000_000, times=1)
    with caplog.at_level(logging.INFO, logger="airflow_provider_videogen.video_download"):
        fetch(video_task_id=task_id, destination=f"file://{videos}/", chunk_size=64 * 1024)
    lines = download_progress_lines(caplog)
    assert 2 <= len(lines) <= 8, lines
    assert all(" of 1.9 MiB (" in line and "%) at " in line and line.endswith(" MiB/s.") for line in lines), lines


def test_a_quick_download_logs_no_progress(sim, videogen_connection, videos, caplog):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=500_000)
    with caplog.at_level(logging.INFO, logger="airflow_provider_videogen.video_download"):
        fetch(video_task_id=task_id, destination=f"file://{videos}/")
    assert download_progress_lines(caplog) == []
    assert any(r.getMessage().startswith("Landed file://") for r in caplog.records)


def test_the_landed_line_starts_with_the_path_and_writes_the_size_with_thousands_separators(
    sim, videogen_connection, videos, caplog
):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=2_555_123)
    with caplog.at_level(logging.INFO, logger="airflow_provider_videogen.video_download"):
        landed = fetch(video_task_id=task_id, destination=f"file://{videos}/")
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Landed ")]
    assert line.startswith(f"Landed {landed['video_path']} (the video of video task {task_id}, 2,555,123 bytes, ")
    assert line.endswith(f"sha256 {landed['sha256']}).")
