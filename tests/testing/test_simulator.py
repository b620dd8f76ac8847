"""Tests of the VideoGen simulator itself, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
import requests

from airflow_provider_videogen.testing import (
    SimulatorConfig,
    SimulatorProcess,
    VideoGenSimulator,
    video_bytes,
    video_sha256,
)

KEY = "sim-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CONTENTS = "/llm/v1/contents/generations/tasks"
VIDEOS = "/v1/video/generations"
VIDEO_ID_RE = re.compile(r"^task_[A-Za-z0-9]{32}$")
CONTENTS_ID_RE = re.compile(r"^cgt-\d{14}-[a-z0-9]{5}$")
EXPIRED_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
)


@pytest.fixture(scope="module")
def videogen_simulator_settings() -> dict[str, Any]:
    """This module's simulator (the plugin's ``videogen_simulator``): the default key, a quicker lifecycle."""
    return {"api_key": KEY, "queued_seconds": 0.1, "running_seconds": 0.15, "video_size": 200_000}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # never go through a proxy from the environment
        yield session


def wait_for(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def create_contents(http: requests.Session, sim: VideoGenSimulator, text: str = "a cat", **extra: Any) -> str:
    body = {"model": "doubao-seedance-1-0-pro-250528", "content": [{"type": "text", "text": text}], **extra}
    answer = http.post(sim.base_url + CONTENTS, json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def get_contents(http: requests.Session, sim: VideoGenSimulator, task_id: str) -> dict[str, Any]:
    answer = http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def get_video(http: requests.Session, sim: VideoGenSimulator, task_id: str) -> dict[str, Any]:
    answer = http.get(f"{sim.base_url}{VIDEOS}/{task_id}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


# ---------------------------------------------------------------------------------------------
# Style 1: contents generations
# ---------------------------------------------------------------------------------------------


def test_contents_task_goes_queued_running_succeeded_by_time(sim, http):
    task_id = create_contents(http, sim, return_last_frame=False, seed=42)
    assert CONTENTS_ID_RE.match(task_id)
    first = get_contents(http, sim, task_id)
    assert first["status"] == "queued"
    assert set(first) == {"id", "model", "status", "created_at", "updated_at"}
    wait_for(lambda: get_contents(http, sim, task_id)["status"] == "running")
    done = wait_for(lambda: (t := get_contents(http, sim, task_id))["status"] == "succeeded" and t)
    assert done["id"] == task_id
    assert done["model"] == "doubao-seedance-1-0-pro-250528"
    assert done["content"]["video_url"].startswith(f"{sim.base_url}/_files/videos/{task_id}.mp4?X-Expires=")
    assert "last_frame_url" not in done["content"]
    assert done["usage"]["completion_tokens"] == done["usage"]["total_tokens"] > 0
    assert done["seed"] == 42
    assert (done["resolution"], done["ratio"], done["duration"], done["framespersecond"]) == ("720p", "16:9", 5, 24)
    assert done["generate_audio"] is False
    assert "error" not in done
    assert done["updated_at"] >= done["created_at"]


def test_created_body_is_recorded(sim, http):
    body_extra = {"return_last_frame": True, "generate_audio": True, "callback_url": "http://cb.invalid/x"}
    task_id = create_contents(http, sim, "a dog running", **body_extra)
    record = sim.get_task(task_id)
    assert record["created_body"]["content"] == [{"type": "text", "text": "a dog running"}]
    assert record["created_body"]["callback_url"] == "http://cb.invalid/x"
    assert record["style"] == "contents_generations"
    (logged,) = sim.requests(target="create")
    assert logged["body"] == record["created_body"]
    assert logged["task_id"] == task_id
    assert logged["method"] == "POST"
    assert logged["status"] == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"content": [{"type": "text", "text": "x"}]}, "model"),
        ({"model": "m"}, "content"),
        ({"model": "m", "content": []}, "content"),
    ],
)
def test_contents_create_missing_parameter(sim, http, body, param):
    answer = http.post(sim.base_url + CONTENTS, json=body, headers=AUTH)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["param"], error["type"]) == ("MissingParameter", param, "BadRequest")
    assert sim.tasks() == []


def test_contents_create_rejects_non_json(sim, http):
    answer = http.post(sim.base_url + CONTENTS, data="nope", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidParameter"


def test_prompt_markers(sim, http):
    sim.configure(queued_seconds=0, running_seconds=0)
    failed = create_contents(http, sim, "a cat [sim:fail]")
    expired = create_contents(http, sim, "a cat [sim:expire]")
    sized = create_contents(http, sim, "a cat [sim:size=12345]")
    answer = get_contents(http, sim, failed)
    assert answer["status"] == "failed"
    assert answer["error"]["code"] == "OutputVideoSensitiveContentDetected"
    assert answer["error"]["message"]
    assert "content" not in answer
    assert get_contents(http, sim, expired)["status"] == "expired"
    assert sim.get_task(sized)["video_size"] == 12345
    url = get_contents(http, sim, sized)["content"]["video_url"]
    assert len(http.get(url).content) == 12345

    moderated = http.post(
        sim.base_url + CONTENTS,
        json={"model": "m", "content": [{"type": "text", "text": "x [sim:input-moderation]"}]},
        headers=AUTH,
    )
    assert moderated.status_code == 400
    assert moderated.json()["error"]["code"] == "InputTextSensitiveContentDetected"
    assert len(sim.tasks()) == 3


def test_timing_markers(sim, http):
    task_id = create_contents(http, sim, "x [sim:queued=0] [sim:running=30]")
    assert get_contents(http, sim, task_id)["status"] == "running"


def test_return_last_frame_serves_a_png(sim, http):
    task_id = create_contents(http, sim, "[sim:queued=0][sim:running=0]", return_last_frame=True)
    content = get_contents(http, sim, task_id)["content"]
    assert content["last_frame_url"].startswith(f"{sim.base_url}/_files/frames/{task_id}.png?")
    png = http.get(content["last_frame_url"])
    assert png.status_code == 200
    assert png.headers["Content-Type"] == "image/png"
    data = png.content
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (64, 36)
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = zlib.decompress(data[41 : 41 + idat_len])
    assert len(raw) == height * (1 + width * 3)
    assert data.endswith(b"IEND\xaeB`\x82")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_contents_auth(sim, http, headers):
    task_id = sim.add_task()
    answer = http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {
        "error": {
            "code": "AuthenticationError",
            "message": "The API key in the request is missing or invalid.",
            "type": "Unauthorized",
        }
    }
    assert http.post(sim.base_url + CONTENTS, json={}, headers=headers).status_code == 401


def test_bearer_scheme_is_case_insensitive(sim, http):
    task_id = sim.add_task()
    assert http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers={"Authorization": f"bearer {KEY}"}).ok


@pytest.mark.parametrize("shape", ["gateway", "documented"])
def test_video_auth(sim, http, shape):
    sim.configure(video_generations_shape=shape)
    task_id = sim.add_task("video_generations")
    answer = http.get(f"{sim.base_url}{VIDEOS}/{task_id}", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert answer.json() == {"error": {"message": "invalid token", "type": "new_api_error", "code": "invalid_token"}}


def test_contents_not_found(sim, http):
    answer = http.get(f"{sim.base_url}{CONTENTS}/cgt-20250101000000-xxxxx", headers=AUTH)
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"code": "ResourceNotFound", "message": "The specified task is not found.", "type": "NotFound"}
    }


def test_tasks_are_only_visible_through_their_style(sim, http):
    contents_id = sim.add_task("contents_generations")
    video_id = sim.add_task("video_generations")
    assert VIDEO_ID_RE.match(video_id)
    assert http.get(f"{sim.base_url}{CONTENTS}/{video_id}", headers=AUTH).status_code == 404
    assert http.get(f"{sim.base_url}{VIDEOS}/{contents_id}", headers=AUTH).status_code == 400  # gateway
    listed = http.get(sim.base_url + CONTENTS, headers=AUTH).json()
    assert [item["id"] for item in listed["items"]] == [contents_id]


@pytest.mark.parametrize("prefix", ["/llm/v1", "/api/v3", "/v1", "", "/some/gateway/v1"])
def test_any_path_prefix(sim, http, prefix):
    contents_id = sim.add_task("contents_generations")
    video_id = sim.add_task("video_generations")
    assert http.get(f"{sim.base_url}{prefix}/contents/generations/tasks/{contents_id}", headers=AUTH).ok
    assert http.get(f"{sim.base_url}{prefix}/video/generations/{video_id}", headers=AUTH).ok


def test_unknown_route_is_a_json_404(sim, http):
    answer = http.get(f"{sim.base_url}/v1/models", headers=AUTH)
    assert answer.status_code == 404
    assert "error" in answer.json()
    assert sim.requests()[0]["target"] == "other"


def test_pinned_status_overrides_time_and_auto_unpins(sim, http):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    assert get_contents(http, sim, task_id)["status"] == "succeeded"
    for status in ["queued", "running", "failed", "succeeded", "expired", "cancelled"]:
        sim.set_status(task_id, status)
        assert get_contents(http, sim, task_id)["status"] == status
        assert sim.get_task(task_id)["status"] == status
    sim.set_status(task_id, "auto")
    assert get_contents(http, sim, task_id)["status"] == "succeeded"
    assert sim.get_task(task_id)["pinned_status"] is None


def test_non_canonical_pinned_status_is_answered_verbatim(sim, http):
    task_id = sim.add_task("video_generations")
    sim.set_status(task_id, "UNKNOWN")
    data = get_video(http, sim, task_id)["data"]
    assert data["status"] == "UNKNOWN"
    assert "result_url" not in data


def test_add_task_errors(sim):
    with pytest.raises(ValueError, match="style"):
        sim.add_task("nope")
    with pytest.raises(ValueError, match="final_status"):
        sim.add_task(final_status="running")
    sim.add_task(task_id="cgt-fixed")
    with pytest.raises(ValueError, match="already exists"):
        sim.add_task(task_id="cgt-fixed")
    with pytest.raises(KeyError):
        sim.get_task("missing")
    with pytest.raises(KeyError):
        sim.set_status("missing", "running")


# cancel / delete --------------------------------------------------------------------------


def test_cancel_a_queued_task(sim, http):
    task_id = sim.add_task(queued_seconds=30)
    answer = http.delete(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert (answer.status_code, answer.json()) == (200, {})
    assert get_contents(http, sim, task_id)["status"] == "cancelled"
    again = http.delete(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "InvalidAction.TaskStatus"
    assert get_contents(http, sim, task_id)["status"] == "cancelled"
    assert sim.requests(target="cancel", task_id=task_id)[0]["method"] == "DELETE"


def test_cancel_a_running_task_is_refused(sim, http):
    task_id = sim.add_task(queued_seconds=0, running_seconds=30)
    answer = http.delete(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidAction.TaskStatus"
    assert get_contents(http, sim, task_id)["status"] == "running"


@pytest.mark.parametrize("final_status", ["succeeded", "failed", "expired"])
def test_delete_a_finished_task_removes_it(sim, http, final_status):
    task_id = sim.add_task(final_status=final_status, queued_seconds=0, running_seconds=0)
    video_url = sim.get_task(task_id)["video_url"]
    answer = http.delete(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert (answer.status_code, answer.json()) == (200, {})
    assert http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH).status_code == 404
    assert http.get(video_url).status_code == 404


def test_cancel_unknown_task(sim, http):
    assert http.delete(f"{sim.base_url}{CONTENTS}/cgt-x", headers=AUTH).status_code == 404


# list -------------------------------------------------------------------------------------


def test_list_with_pages_and_filters(sim, http):
    done = [sim.add_task(queued_seconds=0, running_seconds=0, model="m1") for _ in range(3)]
    waiting = [sim.add_task(queued_seconds=30, model="m2") for _ in range(2)]
    sim.add_task("video_generations")

    def page(**params: Any) -> dict[str, Any]:
        answer = http.get(sim.base_url + CONTENTS, params=params, headers=AUTH)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    everything = page(page_size=10)
    assert everything["total"] == 5
    assert {item["id"] for item in everything["items"]} == set(done + waiting)
    first, second = page(page_num=1, page_size=3), page(page_num=2, page_size=3)
    assert (first["total"], len(first["items"]), len(second["items"])) == (5, 3, 2)
    assert {i["id"] for i in first["items"]} | {i["id"] for i in second["items"]} == set(done + waiting)
    assert page(**{"filter.status": "queued"})["total"] == 2
    assert page(**{"filter.status": "succeeded"})["total"] == 3
    assert page(**{"filter.model": "m2"})["total"] == 2
    picked = page(**{"filter.task_ids": [done[0], waiting[1]]})
    assert {i["id"] for i in picked["items"]} == {done[0], waiting[1]}
    succeeded = page(**{"filter.status": "succeeded"})["items"][0]
    assert "video_url" in succeeded["content"]
    assert sim.requests(target="list")


@pytest.mark.parametrize("params", [{"page_size": 501}, {"page_num": 0}, {"page_size": "x"}])
def test_list_rejects_bad_pages(sim, http, params):
    answer = http.get(sim.base_url + CONTENTS, params=params, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidParameter"


@pytest.mark.parametrize("status", [413, 414, 431])
def test_a_request_line_past_the_request_line_limit_is_refused_with_its_status_and_logged(sim, http, status):
    sim.configure(request_line_limit=400, request_line_status=status)
    task_ids = [sim.add_task() for _ in range(20)]  # 20 ids: a request line of ~900 bytes
    refused = http.get(sim.base_url + CONTENTS, params={"filter.task_ids": task_ids}, headers=AUTH)
    served = http.get(sim.base_url + CONTENTS, params={"filter.task_ids": task_ids[:5]}, headers=AUTH)
    assert refused.status_code == status and "application/json" not in refused.headers["Content-Type"]
    assert served.status_code == 200 and len(served.json()["items"]) == 5
    assert [r["status"] for r in sim.requests(target="list")] == [status, 200]
    with pytest.raises(ValueError):
        sim.configure(request_line_status=200)


def test_task_object_padding_makes_every_task_object_that_much_larger(sim, http):
    task_ids = [sim.add_task() for _ in range(3)]
    plain = len(http.get(sim.base_url + CONTENTS, params={"filter.task_ids": task_ids}, headers=AUTH).content)
    sim.configure(task_object_padding=10_000)
    listed = http.get(sim.base_url + CONTENTS, params={"filter.task_ids": task_ids}, headers=AUTH)
    assert len(listed.content) >= plain + 3 * 10_000
    assert len(get_contents(http, sim, task_ids[0])["padding"]) == 10_000  # the query answers the same object


# ---------------------------------------------------------------------------------------------
# Style 2: video generations
# ---------------------------------------------------------------------------------------------


def test_video_gateway_lifecycle(sim, http):
    created = http.post(
        sim.base_url + VIDEOS,
        json={"model": "doubao-seedance-1-0-pro", "prompt": "a cat", "metadata": {"return_last_frame": True}},
        headers=AUTH,
    )
    assert created.status_code == 200
    body = created.json()
    task_id = body["task_id"]
    assert VIDEO_ID_RE.match(task_id)
    assert body["id"] == task_id
    assert (body["object"], body["model"], body["status"], body["progress"]) == (
        "video",
        "doubao-seedance-1-0-pro",
        "queued",
        0,
    )
    assert isinstance(body["created_at"], int)

    queued = get_video(http, sim, task_id)
    assert (queued["code"], queued["message"]) == ("success", "")
    assert queued["data"]["task_id"] == task_id
    assert (queued["data"]["status"], queued["data"]["progress"]) == ("QUEUED", "0%")
    assert queued["data"]["start_time"] == queued["data"]["finish_time"] == 0
    assert queued["data"]["data"]["status"] == "queued"

    running = wait_for(lambda: (t := get_video(http, sim, task_id))["data"]["status"] == "IN_PROGRESS" and t)
    assert running["data"]["progress"].endswith("%")
    assert running["data"]["data"]["status"] == "running"

    done = wait_for(lambda: (t := get_video(http, sim, task_id))["data"]["status"] == "SUCCESS" and t)["data"]
    assert done["progress"] == "100%"
    assert done["result_url"].startswith(f"{sim.base_url}/_files/videos/{task_id}.mp4?")
    assert done["finish_time"] >= done["start_time"] >= done["submit_time"] > 0
    upstream = done["data"]
    assert upstream["status"] == "succeeded"
    assert upstream["id"].startswith("cgt-")
    assert upstream["content"]["video_url"] == done["result_url"]
    assert "last_frame_url" in upstream["content"]
    assert http.get(done["result_url"]).status_code == 200


@pytest.mark.parametrize("final_status", ["failed", "cancelled", "expired"])
def test_video_gateway_failures_map_to_failure(sim, http, final_status):
    task_id = sim.add_task("video_generations", queued_seconds=0, running_seconds=0)
    sim.set_status(task_id, final_status)
    data = get_video(http, sim, task_id)["data"]
    assert data["status"] == "FAILURE"
    assert data["fail_reason"]
    assert "result_url" not in data
    assert data["data"]["status"] == final_status


def test_video_gateway_unknown_task(sim, http):
    answer = http.get(f"{sim.base_url}{VIDEOS}/task_nope", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json() == {"code": "task_not_exist", "message": "task_not_exist", "data": None}


def test_video_documented_shape(sim, http):
    sim.configure(video_generations_shape="documented")
    created = http.post(
        sim.base_url + VIDEOS,
        json={"model": "m", "prompt": "a cat", "duration": 8, "fps": 30, "width": 1920, "height": 1080, "seed": 7},
        headers=AUTH,
    )
    task_id = created.json()["task_id"]
    assert created.json() == {"task_id": task_id, "status": "queued"}
    queued = get_video(http, sim, task_id)
    assert queued["status"] == "queued"
    assert "url" not in queued
    assert queued["metadata"] == {"duration": 8, "fps": 30, "width": 1920, "height": 1080, "seed": 7}
    assert queued["format"] == "mp4"
    wait_for(lambda: get_video(http, sim, task_id)["status"] == "in_progress")
    done = wait_for(lambda: (t := get_video(http, sim, task_id))["status"] == "completed" and t)
    assert done["url"].startswith(f"{sim.base_url}/_files/videos/{task_id}.mp4?")
    assert "error" not in done


@pytest.mark.parametrize("final_status", ["failed", "cancelled", "expired"])
def test_video_documented_failures(sim, http, final_status):
    task_id = sim.add_task("video_generations", shape="documented", queued_seconds=0, running_seconds=0)
    sim.set_status(task_id, final_status)
    answer = get_video(http, sim, task_id)
    assert answer["status"] == "failed"
    assert isinstance(answer["error"]["code"], int)
    assert answer["error"]["message"]


def test_video_documented_unknown_task(sim, http):
    sim.configure(video_generations_shape="documented")
    answer = http.get(f"{sim.base_url}{VIDEOS}/task_nope", headers=AUTH)
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"message": "task not found", "type": "invalid_request_error", "param": None, "code": "task_not_exist"}
    }


def test_per_task_shape_overrides_the_setting(sim, http):
    documented = sim.add_task("video_generations", shape="documented")
    gateway = sim.add_task("video_generations")
    assert "status" in get_video(http, sim, documented)
    assert get_video(http, sim, gateway)["code"] == "success"


@pytest.mark.parametrize("shape", ["gateway", "documented"])
@pytest.mark.parametrize("body", [{"prompt": "x"}, {"model": "m"}, {"model": "m", "prompt": ""}])
def test_video_create_missing_parameter(sim, http, shape, body):
    sim.configure(video_generations_shape=shape)
    answer = http.post(sim.base_url + VIDEOS, json=body, headers=AUTH)
    assert answer.status_code == 400
    if shape == "gateway":
        assert answer.json()["code"] == "invalid_request"
        assert answer.json()["data"] is None
    else:
        assert answer.json()["error"]["code"] == "invalid_request"
    assert sim.tasks() == []


def test_video_markers(sim, http):
    sim.configure(queued_seconds=0, running_seconds=0)
    post = lambda prompt: http.post(sim.base_url + VIDEOS, json={"model": "m", "prompt": prompt}, headers=AUTH)  # noqa: E731
    failed = post("x [sim:fail]").json()["task_id"]
    assert get_video(http, sim, failed)["data"]["status"] == "FAILURE"
    assert "OutputVideoSensitiveContentDetected" in get_video(http, sim, failed)["data"]["fail_reason"]
    assert sim.get_task(post("x [sim:size=999]").json()["task_id"])["video_size"] == 999
    assert post("x [sim:input-moderation]").status_code == 400


def test_video_has_no_cancel_endpoint(sim, http):
    task_id = sim.add_task("video_generations", queued_seconds=30)
    answer = http.delete(f"{sim.base_url}{VIDEOS}/{task_id}", headers=AUTH)
    assert answer.status_code == 404
    assert "error" in answer.json()
    assert sim.get_task(task_id)["status"] == "queued"


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


def test_http_error_fault_with_retry_after_and_times(sim, http):
    task_id = sim.add_task()
    sim.add_fault(kind="http_error", target="query", status=429, retry_after="1", times=2)
    url = f"{sim.base_url}{CONTENTS}/{task_id}"
    for _ in range(2):
        answer = http.get(url, headers=AUTH)
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["code"].startswith("RateLimitExceeded")
    assert http.get(url, headers=AUTH).status_code == 200
    statuses = [(r["status"], r["fault"]) for r in sim.requests(target="query")]
    assert statuses == [(429, "http_error"), (429, "http_error"), (200, None)]


def test_http_error_custom_bodies_and_date_retry_after(sim, http):
    task_id = sim.add_task()
    url = f"{sim.base_url}{CONTENTS}/{task_id}"
    when = "Wed, 21 Oct 2015 07:28:00 GMT"
    sim.add_fault(kind="http_error", target="query", status=503, retry_after=when, body={"custom": True})
    sim.add_fault(kind="http_error", target="query", status=502, body="upstream gone")
    first = http.get(url, headers=AUTH)
    assert (first.status_code, first.json(), first.headers["Retry-After"]) == (503, {"custom": True}, when)
    second = http.get(url, headers=AUTH)
    assert (second.status_code, second.text) == (502, "upstream gone")
    assert http.get(url, headers=AUTH).status_code == 200


def test_video_style_default_error_body(sim, http):
    task_id = sim.add_task("video_generations")
    sim.add_fault(kind="http_error", target="query", status=500)
    answer = http.get(f"{sim.base_url}{VIDEOS}/{task_id}", headers=AUTH)
    assert answer.status_code == 500
    assert "error" in answer.json()


def test_faults_are_fifo_and_can_target_one_task(sim, http):
    one, two = sim.add_task(), sim.add_task()
    sim.add_fault(kind="http_error", target="query", status=500, task_id=two)
    sim.add_fault(kind="http_error", target="any", status=503)
    assert http.get(f"{sim.base_url}{CONTENTS}/{one}", headers=AUTH).status_code == 503
    assert http.get(f"{sim.base_url}{CONTENTS}/{one}", headers=AUTH).status_code == 200
    assert http.get(f"{sim.base_url}{CONTENTS}/{two}", headers=AUTH).status_code == 500
    assert http.get(f"{sim.base_url}{CONTENTS}/{two}", headers=AUTH).status_code == 200


@pytest.mark.parametrize("target", ["create", "list", "cancel"])
def test_fault_targets(sim, http, target):
    task_id = sim.add_task(queued_seconds=30)
    sim.add_fault(kind="http_error", target=target, status=500)
    assert http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH).status_code == 200
    if target == "create":
        answer = http.post(sim.base_url + CONTENTS, json={"model": "m", "content": [{"type": "text"}]}, headers=AUTH)
    elif target == "list":
        answer = http.get(sim.base_url + CONTENTS, headers=AUTH)
    else:
        answer = http.delete(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert answer.status_code == 500
    assert sim.faults() == []


def test_permanent_fault_until_cleared(sim, http):
    task_id = sim.add_task()
    sim.add_fault(kind="http_error", target="query", status=500, times=0)
    for _ in range(3):
        assert http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH).status_code == 500
    sim.clear_faults()
    assert http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH).status_code == 200


def test_reset_fault_drops_the_connection(sim, http):
    task_id = sim.add_task()
    sim.add_fault(kind="reset", target="query")
    with pytest.raises(requests.ConnectionError):
        http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH).status_code == 200
    first = sim.requests(target="query")[0]
    assert (first["fault"], first["status"]) == ("reset", None)


def test_slow_fault_times_clients_out_then_answers(sim, http):
    task_id = sim.add_task()
    url = f"{sim.base_url}{CONTENTS}/{task_id}"
    sim.add_fault(kind="slow", target="query", delay=0.5)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        http.get(url, headers=AUTH, timeout=0.1)
    assert time.monotonic() - started < 0.4
    sim.add_fault(kind="slow", target="query", delay=0.15)
    started = time.monotonic()
    assert http.get(url, headers=AUTH, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.15


def test_empty_and_malformed_bodies(sim, http):
    task_id = sim.add_task()
    url = f"{sim.base_url}{CONTENTS}/{task_id}"
    sim.add_fault(kind="empty_body", target="query")
    sim.add_fault(kind="malformed_body", target="query")
    empty = http.get(url, headers=AUTH)
    assert (empty.status_code, empty.content) == (200, b"")
    malformed = http.get(url, headers=AUTH)
    assert malformed.status_code == 200
    assert malformed.text.startswith("<html>")
    with pytest.raises(ValueError):
        json.loads(malformed.text)
    assert http.get(url, headers=AUTH).json()["id"] == task_id


def test_truncated_api_answer(sim, http):
    task_id = sim.add_task()
    sim.add_fault(kind="truncate", target="query", truncate_at=10)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)


def test_invalid_faults_are_rejected(sim):
    with pytest.raises(ValueError, match="kind"):
        sim.add_fault(kind="explode")
    with pytest.raises(ValueError, match="target"):
        sim.add_fault(kind="reset", target="everything")


@pytest.mark.parametrize(
    ("escape", "written"), [("raw", KEY), ("slash", KEY), ("unicode", "".join(f"\\u{ord(c):04x}" for c in KEY))]
)
def test_echo_key_fault_writes_the_key_into_every_object_of_the_answer(sim, http, escape, written):
    task_id = sim.add_task()
    sim.add_fault(kind="echo_key", target="query", escape=escape)
    answer = http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert written in answer.text
    assert answer.json()["echo"] == KEY and answer.json()["id"] == task_id


def test_echo_key_fault_can_escape_slashes(sim, http):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)  # succeeded: its answer holds URLs
    sim.add_fault(kind="echo_key", target="query", escape="slash")
    answer = http.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH)
    assert "\\/" in answer.text and answer.json()["content"]["video_url"].startswith("http")


def test_cookie_oversized_and_duplicate_faults_change_the_real_answer(sim, http):
    one, two = sim.add_task(), sim.add_task()
    sim.add_fault(kind="cookie", target="query")
    assert http.get(f"{sim.base_url}{CONTENTS}/{one}", headers=AUTH).cookies.get("videogen_sim_session")
    sim.add_fault(kind="oversized", target="query", size=100_000)
    big = http.get(f"{sim.base_url}{CONTENTS}/{one}", headers=AUTH)
    assert len(big.content) > 100_000 and big.json()["id"] == one
    sim.add_fault(kind="duplicate", target="list")
    items = http.get(f"{sim.base_url}{CONTENTS}", headers=AUTH).json()["items"]
    assert [item["id"] for item in items] == [two, two, one, one] or [i["id"] for i in items] == [one, one, two, two]
    assert [item["status"] for item in items[::2]] == ["failed", "failed"]
    assert "failed" not in [item["status"] for item in items[1::2]]


def test_redirect_fault_sends_the_client_to_the_same_path_at_another_origin(sim, http):
    task_id = sim.add_task()
    sim.add_fault(kind="redirect", target="query")
    answer = http.get(f"{sim.base_url}{CONTENTS}/{task_id}?a=1", headers=AUTH, allow_redirects=False)
    port = sim.base_url.rsplit(":", 1)[1]
    assert (answer.status_code, answer.headers["Location"]) == (307, f"http://localhost:{port}{CONTENTS}/{task_id}?a=1")


def test_then_status_moves_the_task_on_once_the_fault_fired_and_the_log_has_each_arrival_status(sim, http):
    task_id = sim.add_task(queued_seconds=600)
    sim.add_fault(kind="http_error", target="cancel", status=429, task_id=task_id, then_status="succeeded")
    url = f"{sim.base_url}{CONTENTS}/{task_id}"
    assert http.delete(url, headers=AUTH).status_code == 429
    assert sim.get_task(task_id)["status"] == "succeeded"
    assert [r["task_status"] for r in sim.requests(target="cancel")] == ["queued"]
    with pytest.raises(ValueError, match="then_status"):
        sim.add_fault(kind="reset", then_status="succeeded")


# ---------------------------------------------------------------------------------------------
# File host
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def video(sim: VideoGenSimulator) -> tuple[str, str, int]:
    size = 3_000_000
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, video_size=size, return_last_frame=True)
    return task_id, sim.get_task(task_id)["video_url"], size


def test_download_whole_video(sim, http, video):
    task_id, url, size = video
    answer = http.get(url)
    assert answer.status_code == 200
    data = answer.content
    assert len(data) == size == int(answer.headers["Content-Length"])
    assert answer.headers["Content-Type"] == "video/mp4"
    assert answer.headers["Accept-Ranges"] == "bytes"
    assert answer.headers["ETag"] == http.get(url, headers={"Range": "bytes=0-0"}).headers["ETag"]
    assert data == b"".join(video_bytes(task_id, size))
    assert hashlib.sha256(data).hexdigest() == video_sha256(task_id, size) == sim.get_task(task_id)["video_sha256"]
    # A structurally valid MP4: ftyp (isom), moov/mvhd, then an mdat box that runs to the end.
    assert data[4:12] == b"ftypisom"
    offset, kinds = 0, []
    while offset < len(data):
        box_size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        kinds.append(kind)
        offset += box_size
    assert kinds == [b"ftyp", b"moov", b"mdat"]
    assert offset == size
    assert b"mvhd" in data[:200]


def test_downloads_need_no_key_and_never_see_one(sim, http, video):
    task_id, url, _size = video
    http.get(url)
    http.get(sim.get_task(task_id)["last_frame_url"])
    downloads = sim.requests(target="download")
    assert len(downloads) == 2
    assert all(entry["task_id"] == task_id for entry in downloads)
    assert all("authorization" not in {k.lower() for k in entry["headers"]} for entry in downloads)


@pytest.mark.parametrize(
    ("range_header", "start", "stop"),
    [("bytes=1000-", 1000, 3_000_000), ("bytes=10-19", 10, 20), ("bytes=-500", 2_999_500, 3_000_000)],
)
def test_range_downloads(sim, http, video, range_header, start, stop):
    task_id, url, size = video
    answer = http.get(url, headers={"Range": range_header})
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}"
    assert answer.content == b"".join(video_bytes(task_id, size, start, stop))


def test_unsatisfiable_range(sim, http, video):
    _task_id, url, size = video
    answer = http.get(url, headers={"Range": f"bytes={size}-"})
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{size}"


def test_head_download(sim, http, video):
    _task_id, url, size = video
    answer = http.head(url)
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == size
    assert answer.content == b""


def test_truncated_download(sim, http, video):
    task_id, url, size = video
    sim.add_fault(kind="truncate", target="download", truncate_at=1000)
    with http.get(url, stream=True) as answer:
        assert int(answer.headers["Content-Length"]) == size
        received = bytearray()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in answer.iter_content(100):
                received += chunk
    assert bytes(received) == b"".join(video_bytes(task_id, size, 0, 1000))
    assert len(http.get(url).content) == size


def test_throttled_download_is_paced_and_whole(sim, http, video):
    task_id, url, size = video
    # 1 MiB blocks at 2 MB/s: half a second between blocks, longer than the first client's read timeout.
    sim.add_fault(kind="throttle", target="download", task_id=task_id, rate=2_000_000, times=2)
    received = bytearray()
    with pytest.raises(requests.ConnectionError), http.get(url, stream=True, timeout=(5, 0.1)) as slow:
        assert int(slow.headers["Content-Length"]) == size
        for chunk in slow.iter_content(65536):
            received += chunk
    assert len(received) < size
    answer = http.get(url, timeout=(5, 5))
    assert answer.content == b"".join(video_bytes(task_id, size))
    throttled = [r for r in sim.requests(target="download", task_id=task_id) if r["fault"] == "throttle"]
    # The first client went away midway (no status recorded); the second got it all.
    assert [r["status"] for r in throttled] == [None, 200]
    assert sim.faults() == []


def test_throttle_fault_needs_a_download_target_and_a_rate(sim):
    with pytest.raises(ValueError, match="rate > 0"):
        sim.add_fault(kind="throttle", target="download")
    with pytest.raises(ValueError, match="target 'download'"):
        sim.add_fault(kind="throttle", target="query", rate=1000)


def test_expired_fault_on_download(sim, http, video):
    _task_id, url, _size = video
    sim.add_fault(kind="expired", target="download")
    answer = http.get(url)
    assert (answer.status_code, answer.text) == (403, EXPIRED_XML)
    assert http.get(url).status_code == 200


def test_url_expires_after_its_ttl(sim, http):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, url_ttl=0.2)
    url = get_contents(http, sim, task_id)["content"]["video_url"]
    assert http.get(url).status_code == 200
    time.sleep(0.25)
    answer = http.get(url)
    assert (answer.status_code, answer.text) == (403, EXPIRED_XML)


def test_tampered_or_unknown_file_urls(sim, http, video):
    task_id, url, _size = video
    assert http.get(url.replace("X-Signature=", "X-Signature=00")).status_code == 403
    missing = http.get(f"{sim.base_url}/_files/videos/cgt-nope.mp4")
    assert missing.status_code == 404
    assert "<Code>NoSuchKey</Code>" in missing.text
    pending = sim.add_task(queued_seconds=30)
    assert http.get(sim.get_task(pending)["video_url"]).status_code == 404
    no_frame = sim.add_task(queued_seconds=0, running_seconds=0)
    assert http.get(f"{sim.base_url}/_files/frames/{no_frame}.png").status_code == 404
    assert http.get(f"{sim.base_url}/_files/videos/{task_id}.mp4").status_code == 200  # unsigned still served


def test_download_error_faults_use_xml(sim, http, video):
    _task_id, url, _size = video
    sim.add_fault(kind="http_error", target="download", status=503, retry_after="2")
    answer = http.get(url)
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "2")
    assert "<Code>SlowDown</Code>" in answer.text


def test_video_bytes_helpers():
    size = 2 * (1 << 20) + 12345
    whole = b"".join(video_bytes("task-a", size))
    assert len(whole) == size
    assert whole == b"".join(video_bytes("task-a", size))
    assert whole != b"".join(video_bytes("task-b", size))
    assert b"".join(video_bytes("task-a", size, 1 << 20, (1 << 20) + 100)) == whole[1 << 20 : (1 << 20) + 100]
    assert b"".join(video_bytes("task-a", size, size - 7)) == whole[-7:]
    assert video_sha256("task-a", size) == hashlib.sha256(whole).hexdigest()
    assert len(b"".join(video_bytes("tiny", 50))) == 50
    assert b"".join(video_bytes("x", 0)) == b""


# ---------------------------------------------------------------------------------------------
# Request log, settings, lifecycle
# ---------------------------------------------------------------------------------------------


def test_request_log_entries_and_filters(sim, http):
    task_id = sim.add_task()
    http.get(f"{sim.base_url}{CONTENTS}/{task_id}?x=1&y=2&y=3", headers=AUTH)
    http.post(sim.base_url + VIDEOS, data="not json", headers=AUTH)
    sim.get_task(task_id)  # control requests are not recorded
    entries = sim.requests()
    assert [e["target"] for e in entries] == ["query", "create"]
    query = entries[0]
    assert query["method"] == "GET"
    assert query["path"] == f"{CONTENTS}/{task_id}"
    assert query["query"] == {"x": "1", "y": ["2", "3"]}
    assert query["headers"]["Authorization"] == f"Bearer {KEY}"
    assert query["task_id"] == task_id
    assert query["body"] is None
    assert isinstance(query["time"], float)
    assert entries[1]["body"] == "not json"
    assert sim.requests(method="post") == [entries[1]]
    assert sim.requests(task_id=task_id) == [entries[0]]
    assert sim.requests(target="download") == []
    sim.clear_requests()
    assert sim.requests() == []


def test_request_log_is_bounded_and_can_be_disabled(http):
    with VideoGenSimulator(request_log_size=3) as bounded:
        task_id = bounded.add_task()
        for index in range(5):
            http.get(f"{bounded.base_url}{CONTENTS}/{task_id}?n={index}", headers=AUTH)
        assert [e["query"]["n"] for e in bounded.requests()] == ["2", "3", "4"]
    with VideoGenSimulator(request_log=False) as silent:
        task_id = silent.add_task()
        assert http.get(f"{silent.base_url}{CONTENTS}/{task_id}", headers=AUTH).ok
        assert silent.requests() == []


def test_reset_restores_everything(sim, http):
    sim.configure(video_generations_shape="documented", api_key="other")
    task_id = sim.add_task()
    sim.add_fault(kind="reset")
    assert sim.config["api_key"] == "other"
    sim.reset()
    assert sim.config == {
        **SimulatorConfig().to_dict(),
        "queued_seconds": 0.1,
        "running_seconds": 0.15,
        "video_size": 200_000,
    }
    assert sim.tasks() == sim.faults() == sim.requests() == []
    with pytest.raises(KeyError):
        sim.get_task(task_id)
    with pytest.raises(ValueError):
        sim.configure(video_generations_shape="weird")


def test_in_thread_simulator_starts_and_stops_cleanly(http):
    threads_before = set(threading.enumerate())
    sim = VideoGenSimulator(port=0)
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    sim.start()
    host, port = "127.0.0.1", sim.port
    assert sim.base_url == f"http://{host}:{port}"
    task_id = sim.add_task()
    sim.add_fault(kind="slow", target="query", delay=30)
    hung: list[BaseException] = []

    def hang() -> None:
        try:
            requests.get(f"{sim.base_url}{CONTENTS}/{task_id}", headers=AUTH, timeout=10)
        except requests.RequestException as exc:
            hung.append(exc)

    waiter = threading.Thread(target=hang)
    waiter.start()
    wait_for(lambda: sim.requests(target="query"))
    started = time.monotonic()
    sim.stop()
    waiter.join(5)
    assert time.monotonic() - started < 3
    assert hung  # the pending request was dropped, not answered
    sim.stop()  # idempotent
    assert set(threading.enumerate()) == threads_before
    with socket.socket() as probe, pytest.raises(OSError):
        probe.connect((host, port))


async def test_many_concurrent_aiohttp_clients(sim):
    task_ids = [sim.add_task() for _ in range(5)]
    async with aiohttp.ClientSession(headers=AUTH, trust_env=False) as session:

        async def poll(task_id: str) -> str:
            async with session.get(f"{sim.base_url}{CONTENTS}/{task_id}") as answer:
                assert answer.status == 200
                return str((await answer.json())["id"])

        results = await asyncio.gather(*(poll(task_ids[n % 5]) for n in range(200)))
    assert sorted(set(results)) == sorted(task_ids)
    assert len(sim.requests(target="query")) == 200


def test_simulator_process(http):
    with SimulatorProcess(queued_seconds=0, running_seconds=0, video_size=5000) as process:
        assert process.running
        task_id = process.add_task("video_generations", shape="documented")
        answer = get_video(http, process, task_id)
        assert answer["status"] == "completed"
        assert len(http.get(answer["url"]).content) == 5000
        assert process.get_task(task_id)["video_sha256"] == video_sha256(task_id, 5000)
        process.add_fault(kind="http_error", target="query", status=429)
        assert http.get(f"{process.base_url}{VIDEOS}/{task_id}", headers=AUTH).status_code == 429
        assert [e["status"] for e in process.requests(target="query")] == [200, 429]
        process_handle = process.process
    assert process_handle is not None
    assert process_handle.returncode == 0
    assert not process.running


def test_every_setting_reaches_a_simulator_process(http):
    """The settings are defined once: each SimulatorConfig field is an option of the command line."""
    from airflow_provider_videogen.testing.simulator import build_parser

    changed = SimulatorConfig(
        api_key="k2", queued_seconds=0.0, running_seconds=0.0, video_size=3000, video_generations_shape="documented",
        url_ttl=60.0, openai_poll_after_ms=250, openai_direct_url=True, request_log=False, request_log_size=7,
        max_request_line=20_000, request_line_limit=4000, request_line_status=431, task_object_padding=100,
    )  # fmt: skip
    assert changed.to_dict() != SimulatorConfig().to_dict()
    args = build_parser().parse_args(changed.to_argv())
    assert {name: getattr(args, name) for name in changed.to_dict()} == changed.to_dict()
    with SimulatorProcess(api_key="k2", openai_poll_after_ms=250, openai_direct_url=True) as process:
        assert process.config["openai_poll_after_ms"] == 250
        assert process.config["openai_direct_url"] is True
    with pytest.raises(TypeError, match="no_such_setting"):
        SimulatorProcess(no_such_setting=1)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_command_line_server(http, stop_signal):
    command = [
        sys.executable,
        "-m",
        "airflow_provider_videogen.testing.simulator",
        "--port",
        "0",
        "--api-key",
        "cli-key",
        "--queued-seconds",
        "0",
        "--running-seconds",
        "0",
        "--video-generations-shape",
        "documented",
        "--no-request-log",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"VideoGen simulator listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        base_url = match.group(1)
        assert int(match.group(2)) > 0
        created = http.post(
            base_url + VIDEOS, json={"model": "m", "prompt": "p"}, headers={"Authorization": "Bearer cli-key"}
        )
        assert created.json()["status"] == "queued"
        assert http.get(f"{base_url}{VIDEOS}/x", headers=AUTH).status_code == 401
        assert http.get(f"{base_url}/_simulator/requests").json() == []
        process.send_signal(stop_signal)
        assert process.wait(10) == 0
        assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_pytest_plugin_fixtures(videogen_simulator, videogen_conn_env, http):
    connection = json.loads(os.environ["AIRFLOW_CONN_VIDEOGEN_DEFAULT"])
    assert videogen_conn_env["AIRFLOW_CONN_VIDEOGEN_DEFAULT"] == os.environ["AIRFLOW_CONN_VIDEOGEN_DEFAULT"]
    assert connection["conn_type"] == "videogen"
    assert connection["host"] == videogen_simulator.base_url
    assert connection["password"] == videogen_simulator.api_key
    assert connection["extra"] == {"api_style": "contents_generations", "path_prefix": "/llm/v1"}
    video = json.loads(videogen_conn_env["AIRFLOW_CONN_VIDEOGEN_VIDEO"])
    assert video["extra"] == {"api_style": "video_generations", "path_prefix": "/v1"}
    task_id = videogen_simulator.add_task()
    answer = http.get(
        f"{connection['host']}{connection['extra']['path_prefix']}/contents/generations/tasks/{task_id}",
        headers={"Authorization": f"Bearer {connection['password']}"},
    )
    assert answer.status_code == 200


# ---------------------------------------------------------------------------------------------
# The sample clip (``clip=True``: make demo and make airflow)
# ---------------------------------------------------------------------------------------------


def test_a_simulator_with_the_clip_serves_it_as_each_video_and_its_last_frame_as_the_frame(http):
    from airflow_provider_videogen.testing._media import clip_png, clip_video

    with VideoGenSimulator(api_key=KEY, queued_seconds=0, running_seconds=0, clip=True) as clip_sim:
        task_id = create_contents(http, clip_sim, "a paper boat", return_last_frame=True)
        content = wait_for(lambda: get_contents(http, clip_sim, task_id).get("content"))
        video = http.get(content["video_url"])
        frame = http.get(content["last_frame_url"])
        thumbnail_id = http.post(
            clip_sim.base_url + "/v1/videos", json={"model": "sora-2", "prompt": "a boat"}, headers=AUTH
        ).json()["id"]
        video_object = f"{clip_sim.base_url}/v1/videos/{thumbnail_id}"
        wait_for(lambda: http.get(video_object, headers=AUTH).json()["status"] == "completed")
        thumbnail = http.get(f"{video_object}/content?variant=thumbnail", headers=AUTH)
        # A size asked for in the prompt still gets a made-up video of that size (the tests' way).
        sized_id = create_contents(http, clip_sim, "a boat [sim:size=5000]")
        sized = http.get(wait_for(lambda: get_contents(http, clip_sim, sized_id).get("content"))["video_url"])
        recorded = clip_sim.get_task(task_id)
    assert video.content == clip_video() and video.headers["Content-Type"] == "video/mp4"
    assert frame.content == clip_png() and thumbnail.content == clip_png()
    assert recorded["video_size"] == len(clip_video())
    assert recorded["video_sha256"] == hashlib.sha256(clip_video()).hexdigest()
    assert len(sized.content) == 5000 and sized.content != clip_video()[:5000]


def test_a_simulator_serves_made_up_videos_unless_asked_for_the_clip(sim, http):
    task_id = create_contents(http, sim, "[sim:queued=0][sim:running=0]")
    video = http.get(get_contents(http, sim, task_id)["content"]["video_url"])
    assert len(video.content) == 200_000
