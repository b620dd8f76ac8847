"""The ``openai_videos`` style (the ``/v1/videos`` shape) against the simulator over loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_videogen.exceptions import (
    VideoFileKeyRefusedError,
    VideoGenAPIError,
    VideoGenConfigurationError,
    VideoGenNotSupportedError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.hooks.videogen import VideoGenHook
from airflow_provider_videogen.testing._media import frame_png, video_sha256
from airflow_provider_videogen.transport import new_session, origin_of
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_task import VideoTaskStatus
from tests.loopback import API_KEY, LoopbackServer, QuietHandler
from tests.styles.style_cases import FAST, StyleCase

CASE = StyleCase("openai_videos", "vg_openai")
CONN = CASE.conn_id
hook, finished, fetch = CASE.hook, CASE.add, CASE.fetch


def test_create_sends_the_videos_shape_and_returns_the_video_id(sim, style_connection):
    video_id = hook().create_task(
        model="sora-2", prompt="a paper boat", duration=8, width=1280, height=720, image_urls=["https://x/i.png"]
    )
    assert video_id.startswith("video_")
    (create,) = sim.requests(target="create")
    assert create["path"] == "/v1/videos"
    assert create["body"] == {
        "model": "sora-2",
        "prompt": "a paper boat",
        "seconds": "8",
        "size": "1280x720",
        "input_reference": "https://x/i.png",
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"resolution": "720p"}, "resolution cannot be sent on openai_videos"),
        ({"duration": 4.5}, "whole number of seconds"),
        ({"width": 1280}, "both width and height"),
    ],
)
def test_fields_the_videos_shape_lacks_are_refused_before_sending(sim, style_connection, fields, reason):
    from airflow_provider_videogen.exceptions import VideoGenConfigurationError

    with pytest.raises(VideoGenConfigurationError, match=reason):
        hook().create_task(model="sora-2", prompt="p", **fields)
    assert sim.requests(target="create") == []


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_status_maps_onto_the_video_task(mode, sim, style_connection):
    queued = sim.add_task(style="openai_videos", queued_seconds=600)
    running = sim.add_task(style="openai_videos", queued_seconds=0, running_seconds=600)
    done = finished(sim)

    async def read_all() -> list[Any]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return [await h.aget_task(i) for i in (queued, running, done)]

    tasks = [hook().get_task(i) for i in (queued, running, done)] if mode == "sync" else asyncio.run(read_all())
    assert [t.status for t in tasks] == [VideoTaskStatus.QUEUED, VideoTaskStatus.RUNNING, VideoTaskStatus.SUCCEEDED]
    assert [t.raw_status for t in tasks] == ["queued", "in_progress", "completed"]
    done_task = tasks[2]
    assert (done_task.width, done_task.height, done_task.duration, done_task.progress) == (1280, 720, 5.0, 100)
    assert done_task.expires_at and done_task.expires_at > done_task.created_at
    assert done_task.video_url is None  # the file is behind the /content route


def test_a_failed_video_carries_the_api_code_and_message(sim, style_connection):
    video_id = finished(sim, final_status="failed", error_code="moderation_blocked", error_message="Blocked.")
    task = hook().get_task(video_id)
    assert task.status is VideoTaskStatus.FAILED
    assert (task.error_code, task.error_message) == ("moderation_blocked", "Blocked.")


def test_an_unknown_video_is_not_found(sim, style_connection):
    with pytest.raises(VideoTaskNotFoundError):
        hook().get_task("video_0000")


def test_a_bad_create_is_refused_with_the_api_message(sim, style_connection):
    with pytest.raises(VideoGenAPIError, match="moderation_blocked"):
        hook().create_task(model="sora-2", prompt="x [sim:input-moderation]")


def test_cancel_is_not_supported_and_nothing_is_deleted(sim, style_connection):
    video_id = sim.add_task(style="openai_videos", queued_seconds=600)
    with pytest.raises(VideoGenNotSupportedError, match="DELETE removes a video for good"):
        hook().cancel_task(video_id)
    assert sim.requests(method="DELETE") == []


# ---- the file: the /content route, with the key, to the connection's origin only ------------------


def test_the_video_lands_from_the_content_route_with_the_key(sim, style_connection, tmp_path: Path):
    video_id = finished(sim, video_size=600_000)
    result = fetch(video_task_id=video_id, destination=f"{tmp_path.as_uri()}/", include_last_frame=True)
    assert result["sha256"] == video_sha256(video_id, 600_000)
    assert (tmp_path / f"{video_id}.png").read_bytes() == frame_png(video_id)
    downloads = sim.requests(target="download")
    assert [d["path"] for d in downloads] == [f"/v1/videos/{video_id}/content"] * 2
    assert [d["query"] for d in downloads] == [{}, {"variant": "thumbnail"}]
    assert all(d["headers"]["Authorization"] == f"Bearer {API_KEY}" for d in downloads)


def test_a_direct_metadata_url_is_used_without_the_key(sim, style_connection, tmp_path: Path):
    sim.configure(openai_direct_url=True)
    try:
        video_id = finished(sim)
        result = fetch(video_task_id=video_id, destination=f"{tmp_path.as_uri()}/")
    finally:
        sim.configure(openai_direct_url=False)
    assert result["video_path"].endswith(f"{video_id}.mp4")
    (download,) = sim.requests(target="download")
    assert download["path"].startswith("/_files/videos/")
    assert "Authorization" not in download["headers"]


def test_a_broken_content_download_resumes_with_range(sim, style_connection, tmp_path: Path):
    video_id = finished(sim, video_size=1_000_000)
    sim.add_fault(kind="truncate", target="download", truncate_at=300_000)
    result = fetch(video_task_id=video_id, destination=f"{tmp_path.as_uri()}/", chunk_size=64 * 1024)
    assert result["sha256"] == video_sha256(video_id, 1_000_000)
    ranges = [d["headers"].get("Range") for d in sim.requests(target="download")]
    assert ranges[0] is None and ranges[1].startswith("bytes=")


@pytest.mark.parametrize("status", [401, 403])
def test_a_key_refused_on_the_content_route_is_reported_as_a_refused_key_not_an_expired_url(
    sim, style_connection, tmp_path: Path, status
):
    video_id = finished(sim)
    refusal = {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
    sim.add_fault(kind="http_error", target="download", status=status, body=refusal)
    with pytest.raises(VideoFileKeyRefusedError) as caught:
        fetch(video_task_id=video_id, destination=f"{tmp_path.as_uri()}/")
    message = str(caught.value)
    assert "refused the API key" in message and f"HTTP {status}" in message
    assert "expired" not in message.replace("has not expired", "")
    assert caught.value.http_status == status and API_KEY not in message
    assert list(tmp_path.iterdir()) == []


def test_a_landed_video_is_still_found_when_the_key_is_refused_on_a_retry(sim, style_connection, tmp_path: Path):
    video_id = finished(sim)
    first = fetch(video_task_id=video_id, destination=f"{tmp_path.as_uri()}/")
    sim.add_fault(kind="http_error", target="download", status=401, times=0)
    try:
        again = fetch(video_task_id=video_id, destination=f"{tmp_path.as_uri()}/")
    finally:
        sim.clear_faults()
    assert again["sha256"] == first["sha256"] and again["video_path"] == first["video_path"]


def test_the_key_goes_to_its_own_origin_only_never_across_a_redirect():
    seen: dict[str, list[str | None]] = {"api": [], "elsewhere": []}

    class Elsewhere(QuietHandler):
        def do_GET(self) -> None:
            seen["elsewhere"].append(self.headers.get("Authorization"))
            self.send_response(204)
            self.end_headers()

    with LoopbackServer(Elsewhere) as other:

        class Api(QuietHandler):
            def do_GET(self) -> None:
                seen["api"].append(self.headers.get("Authorization"))
                self.send_response(302)
                self.send_header("Location", f"{other.base_url}/upstream.mp4")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with LoopbackServer(Api) as api:
            session = new_session(strip_authorization=True, credentials_origin=origin_of(api.base_url))
            session.get(f"{api.base_url}/v1/videos/v/content", headers={"Authorization": "Bearer k"})
            session.get(f"{other.base_url}/direct", headers={"Authorization": "Bearer k"})
    assert seen == {"api": ["Bearer k"], "elsewhere": [None, None]}


def test_origins_compare_scheme_host_and_port():
    assert (
        origin_of("https://GW.example.com/v1")
        == origin_of("https://gw.example.com:443/x")
        == "https://gw.example.com:443"
    )
    assert origin_of("http://gw.example.com/v1") != origin_of("https://gw.example.com/v1")
    assert origin_of("https://gw.example.com:8443/") != origin_of("https://gw.example.com/")


# ---- the poll hint -------------------------------------------------------------------------------


async def test_the_trigger_waits_at_least_the_poll_hint(sim, style_connection):
    sim.configure(openai_poll_after_ms=4000)
    try:
        video_id = sim.add_task(style="openai_videos", queued_seconds=0, running_seconds=0.3)
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            await asyncio.sleep(min(seconds, 0.2))

        trigger = VideoTaskTrigger(video_id, videogen_conn_id=CONN, poll_interval=0.5)
        trigger._sleep = sleep  # type: ignore[method-assign]
        event = await trigger.run().__anext__()
    finally:
        sim.configure(openai_poll_after_ms=None)
    assert event.payload["status"] == "success"
    assert sleeps[0] < 1 and all(s >= 4.0 for s in sleeps[1:])


def test_the_worker_wait_honours_the_poll_hint(sim, style_connection, monkeypatch):
    from airflow_provider_videogen.operators import generate as operators

    sim.configure(openai_poll_after_ms=2500)
    waits: list[float] = []
    monkeypatch.setattr(operators.time, "sleep", lambda s: waits.append(s))
    try:
        video_id = finished(sim)
        sim.set_status(video_id, "running")
        op = operators.GenerateVideoOperator(
            task_id="g", model="m", prompt="p", videogen_conn_id=CONN, poll_interval=0.1, http_retry_policy=FAST
        )
        monkeypatch.setattr(op, "_reconnect_or_submit", lambda context: (video_id, None))
        calls = iter([None, "auto"])
        real_poll = op.hook.poll_answer

        def get_then_release(task_id: str) -> Any:
            answer = real_poll(task_id)
            if (change := next(calls, None)) is not None:
                sim.set_status(video_id, change)
            return answer

        monkeypatch.setattr(op.hook, "poll_answer", get_then_release)
        op.execute({"ti": None})  # type: ignore[arg-type]
    finally:
        sim.configure(openai_poll_after_ms=None)
    assert waits and all(w >= 2.5 for w in waits)


def test_the_simulator_content_route_needs_the_key(sim):
    video_id = finished(sim)
    answer = requests.get(f"{sim.base_url}/v1/videos/{video_id}/content", timeout=5)
    assert answer.status_code == 401
    ok = requests.get(
        f"{sim.base_url}/v1/videos/{video_id}/content", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert ok.status_code == 200 and hashlib.sha256(ok.content).hexdigest() == sim.get_task(video_id)["video_sha256"]


# ---- input_reference uploaded from a local file ----------------------------------------------


@pytest.mark.parametrize("as_path", [True, False], ids=["path", "bytes"])
def test_a_local_image_is_uploaded_as_multipart_input_reference(sim, style_connection, tmp_path, as_path):
    png = frame_png("reference")
    path = tmp_path / "boat.png"
    path.write_bytes(png)
    video_id = hook().create_task(
        model="sora-2", prompt="a paper boat", duration=4, image_file=path if as_path else png
    )
    (create,) = sim.requests(target="create")
    assert create["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert create["headers"]["Authorization"] == f"Bearer {API_KEY}"
    stored = sim.get_task(video_id)["created_body"]
    assert stored["model"] == "sora-2" and stored["prompt"] == "a paper boat" and stored["seconds"] == "4"
    assert stored["input_reference"] == {
        "filename": "boat.png" if as_path else "input_reference.png",
        "content_type": "image/png",
        "size": len(png),
        "sha256": hashlib.sha256(png).hexdigest(),
    }
    assert hook().get_task(video_id).id == video_id


@pytest.mark.parametrize(
    ("image_file", "reason"),
    [
        ("/no/such/image.png", r"Cannot read the image file '/no/such/image.png'"),
        (b"GIF89a not accepted", "not a PNG, JPEG or WebP image"),
        (12, "image_file must be a path or bytes"),
    ],
)
def test_a_bad_local_image_is_refused_before_anything_is_sent(sim, style_connection, image_file, reason):
    with pytest.raises(VideoGenConfigurationError, match=reason):
        hook().create_task(model="sora-2", prompt="p", image_file=image_file)
    assert sim.requests(target="create") == []


def test_a_named_pipe_as_image_file_is_refused_at_once_instead_of_blocking(sim, style_connection, tmp_path):
    pipe = tmp_path / "image.png"
    os.mkfifo(pipe)
    outcome: list[BaseException | str] = []

    def create() -> None:
        try:
            outcome.append(hook().create_task(model="sora-2", prompt="p", image_file=pipe))
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=create, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # blocked waiting for a writer: give it one (and EOF), so the thread ends
        with open(pipe, "wb"):
            pass
        worker.join(timeout=10)
        pytest.fail("reading a named pipe as image_file blocked")
    (error,) = outcome
    assert isinstance(error, VideoGenConfigurationError) and "not a regular file" in str(error)
    assert str(pipe) in str(error)
    assert sim.requests(target="create") == []


def test_a_device_as_image_file_is_refused_without_reading_it(sim, style_connection):
    with pytest.raises(VideoGenConfigurationError, match="'/dev/zero' is not a regular file"):
        hook().create_task(model="sora-2", prompt="p", image_file="/dev/zero")
    assert sim.requests(target="create") == []


def test_no_more_than_the_upload_limit_is_read_from_a_file_that_understates_its_size(
    sim, style_connection, monkeypatch
):
    from airflow_provider_videogen import generation_request

    # /proc files are regular files of size 0 whatever they hold: only a bounded read catches them.
    monkeypatch.setattr(generation_request, "MAX_UPLOAD_BYTES", 64)
    with pytest.raises(VideoGenConfigurationError, match="more than 64 bytes"):
        hook().create_task(model="sora-2", prompt="p", image_file="/proc/self/maps")
    assert sim.requests(target="create") == []


def test_a_link_to_a_text_file_with_an_image_signature_in_front_is_not_uploaded(sim, style_connection, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_bytes(b"\x89PNG\r\n\x1a\n" + b"private notes, not an image\n" * 100)
    link = tmp_path / "image.png"
    link.symlink_to(text)
    with pytest.raises(VideoGenConfigurationError, match="cut short") as caught:
        hook().create_task(model="sora-2", prompt="p", image_file=link)
    assert "private notes" not in str(caught.value)  # the file's content is never echoed
    assert sim.requests(target="create") == []


def test_a_link_to_a_whole_image_is_uploaded(sim, style_connection, tmp_path):
    png = frame_png("linked")
    (tmp_path / "real.png").write_bytes(png)
    (tmp_path / "image.png").symlink_to(tmp_path / "real.png")
    video_id = hook().create_task(model="sora-2", prompt="p", image_file=tmp_path / "image.png")
    assert sim.get_task(video_id)["created_body"]["input_reference"]["sha256"] == hashlib.sha256(png).hexdigest()


def test_one_input_image_only_url_or_file(sim, style_connection):
    with pytest.raises(VideoGenConfigurationError, match="one input image"):
        hook().create_task(model="sora-2", prompt="p", image_urls=["https://x/i.png"], image_file=frame_png("x"))


def test_styles_without_uploads_refuse_a_local_image(sim, videogen_connection):
    with pytest.raises(VideoGenConfigurationError, match="as URLs or data: URIs in image_urls"):
        VideoGenHook("videogen_default", retry_policy=FAST).create_task(
            model="m", prompt="p", image_file=frame_png("x")
        )
    assert sim.requests(target="create") == []
