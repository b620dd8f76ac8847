from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_videogen.styles import STYLES
from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

CONTENTS_GENERATIONS = STYLES["contents_generations"]
VIDEO_GENERATIONS = STYLES["video_generations"]

CONTENTS_SUCCEEDED = {
    "id": "cgt-20250331175019-68d9t",
    "model": "doubao-seedance-1-0-pro-250528",
    "status": "succeeded",
    "content": {
        "video_url": "https://files.example.com/v.mp4?sig=1",
        "last_frame_url": "https://files.example.com/f.png?sig=1",
    },
    "usage": {"completion_tokens": 108900, "total_tokens": 108900},
    "created_at": 1743414619,
    "updated_at": 1743414673,
    "seed": 10423,
    "resolution": "720p",
    "ratio": "16:9",
    "duration": 5,
    "framespersecond": 24,
    "generate_audio": True,
}

DOCUMENTED_COMPLETED = {
    "task_id": "abcd1234efgh",
    "status": "completed",
    "url": "https://example.com/video.mp4",
    "format": "mp4",
    "metadata": {"duration": 5, "fps": 30, "width": 1280, "height": 720, "seed": 20231234},
}

GATEWAY_SUCCESS = {
    "code": "success",
    "message": "",
    "data": {
        "task_id": "task_0123456789abcdef0123456789abcdef",
        "status": "SUCCESS",
        "progress": "100%",
        "result_url": "https://files.example.com/gw.mp4",
        "fail_reason": "",
        "submit_time": 1743414600,
        "start_time": 1743414610,
        "finish_time": 1743414680,
        "data": CONTENTS_SUCCEEDED,
    },
}


def test_contents_generations_answer_fills_every_field():
    task = CONTENTS_GENERATIONS.parse_task(CONTENTS_SUCCEEDED, None)
    assert task.id == "cgt-20250331175019-68d9t"
    assert task.status is VideoTaskStatus.SUCCEEDED
    assert task.raw_status == "succeeded"
    assert task.video_url == "https://files.example.com/v.mp4?sig=1"
    assert task.last_frame_url == "https://files.example.com/f.png?sig=1"
    assert task.model == "doubao-seedance-1-0-pro-250528"
    assert (task.created_at, task.updated_at) == (1743414619, 1743414673)
    assert (task.duration, task.fps, task.seed) == (5, 24, 10423)
    assert (task.resolution, task.ratio, task.format) == ("720p", "16:9", "mp4")
    assert task.generate_audio is True
    assert task.usage == {"completion_tokens": 108900, "total_tokens": 108900}
    assert task.raw == CONTENTS_SUCCEEDED
    assert task.is_terminal


def test_contents_generations_failure_carries_error_code_and_message():
    task = CONTENTS_GENERATIONS.parse_task(
        {
            "id": "cgt-1",
            "status": "failed",
            "error": {"code": "OutputVideoSensitiveContentDetected", "message": "The output video may contain..."},
            "created_at": 1,
            "updated_at": 2,
        },
        None,
    )
    assert task.status is VideoTaskStatus.FAILED
    assert task.error_code == "OutputVideoSensitiveContentDetected"
    assert task.error_message == "The output video may contain..."
    assert task.video_url is None
    assert "OutputVideoSensitiveContentDetected" in task.describe_failure()
    assert "cgt-1" in task.describe_failure()


def test_queued_contents_task_with_missing_fields_gives_none():
    task = CONTENTS_GENERATIONS.parse_task(
        {"id": "cgt-2", "model": "m", "status": "queued", "created_at": 5, "updated_at": 5}, None
    )
    assert task.status is VideoTaskStatus.QUEUED
    assert not task.is_terminal
    assert task.video_url is None
    assert task.duration is None
    assert task.usage == {}


def test_documented_video_generations_answer():
    task = VIDEO_GENERATIONS.parse_task(DOCUMENTED_COMPLETED, None)
    assert task.id == "abcd1234efgh"
    assert task.status is VideoTaskStatus.SUCCEEDED
    assert task.raw_status == "completed"
    assert task.video_url == "https://example.com/video.mp4"
    assert (task.width, task.height, task.fps, task.duration, task.seed) == (1280, 720, 30, 5, 20231234)
    assert task.format == "mp4"


def test_documented_video_generations_error_code_integer_becomes_string():
    task = VIDEO_GENERATIONS.parse_task(
        {"task_id": "t1", "status": "failed", "error": {"code": 500, "message": "boom"}}, None
    )
    assert task.status is VideoTaskStatus.FAILED
    assert task.error_code == "500"
    assert task.error_message == "boom"


def test_gateway_wrapped_answer_uses_result_url_and_upstream_metadata():
    task = VIDEO_GENERATIONS.parse_task(GATEWAY_SUCCESS, None)
    assert task.id == "task_0123456789abcdef0123456789abcdef"
    assert task.status is VideoTaskStatus.SUCCEEDED
    assert task.raw_status == "SUCCESS"
    assert task.video_url == "https://files.example.com/gw.mp4"
    assert task.last_frame_url == "https://files.example.com/f.png?sig=1"
    assert task.progress == 100
    assert (task.created_at, task.updated_at) == (1743414600, 1743414680)
    assert (task.resolution, task.ratio, task.fps, task.duration) == ("720p", "16:9", 24, 5)
    assert task.usage["total_tokens"] == 108900
    assert task.raw == GATEWAY_SUCCESS


def test_gateway_answer_without_result_url_falls_back_to_upstream_video_url():
    answer = json.loads(json.dumps(GATEWAY_SUCCESS))
    answer["data"]["result_url"] = ""
    assert VIDEO_GENERATIONS.parse_task(answer, None).video_url == "https://files.example.com/v.mp4?sig=1"


def test_gateway_failure_reads_fail_reason_and_upstream_error():
    task = VIDEO_GENERATIONS.parse_task(
        {
            "code": "success",
            "data": {
                "task_id": "task_x",
                "status": "FAILURE",
                "progress": "100%",
                "fail_reason": "output moderation",
                "data": {"id": "cgt-9", "status": "failed", "error": {"code": "OutputVideoSensitiveContentDetected"}},
            },
        },
        None,
    )
    assert task.status is VideoTaskStatus.FAILED
    assert task.error_code == "OutputVideoSensitiveContentDetected"
    assert task.error_message == "output moderation"


def test_gateway_fail_reason_holding_upstream_json_is_decoded():
    reason = json.dumps({"error": {"code": "InternalServiceError", "message": "upstream broke"}})
    task = VIDEO_GENERATIONS.parse_task(
        {"code": "success", "data": {"task_id": "task_y", "status": "FAILURE", "fail_reason": reason}}, None
    )
    assert task.error_code == "InternalServiceError"
    assert task.error_message == "upstream broke"


def test_gateway_answer_without_upstream_task():
    task = VIDEO_GENERATIONS.parse_task(
        {"code": "success", "data": {"task_id": "task_z", "status": "IN_PROGRESS", "progress": "50%"}}, None
    )
    assert task.status is VideoTaskStatus.RUNNING
    assert task.progress == 50
    assert task.video_url is None


@pytest.mark.parametrize(
    ("spelling", "status"),
    [
        ("queued", VideoTaskStatus.QUEUED),
        ("QUEUED", VideoTaskStatus.QUEUED),
        ("NOT_START", VideoTaskStatus.QUEUED),
        ("SUBMITTED", VideoTaskStatus.QUEUED),
        ("running", VideoTaskStatus.RUNNING),
        ("in_progress", VideoTaskStatus.RUNNING),
        ("IN_PROGRESS", VideoTaskStatus.RUNNING),
        ("processing", VideoTaskStatus.RUNNING),
        ("succeeded", VideoTaskStatus.SUCCEEDED),
        ("completed", VideoTaskStatus.SUCCEEDED),
        ("SUCCESS", VideoTaskStatus.SUCCEEDED),
        ("failed", VideoTaskStatus.FAILED),
        ("FAILURE", VideoTaskStatus.FAILED),
        ("cancelled", VideoTaskStatus.CANCELLED),
        ("canceled", VideoTaskStatus.CANCELLED),
        ("expired", VideoTaskStatus.EXPIRED),
        ("unknown", VideoTaskStatus.UNKNOWN),
        ("UNKNOWN", VideoTaskStatus.UNKNOWN),
    ],
)
def test_every_status_spelling_maps(spelling, status):
    every_spelling = {key: value for style in STYLES.values() for key, value in style.statuses.items()}
    assert VideoTaskStatus.from_api(spelling, every_spelling) is status


def test_terminal_states():
    terminal = {s for s in VideoTaskStatus if s.is_terminal}
    assert terminal == {"succeeded", "failed", "cancelled", "expired"}
    assert {s for s in VideoTaskStatus if s.is_failure} == {"failed", "cancelled", "expired"}


def test_unrecognised_spelling_is_unknown_not_final_and_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger="airflow_provider_videogen.video_task")
    for _ in range(3):
        task = CONTENTS_GENERATIONS.parse_task({"id": "cgt-3", "status": "rendering_v9"}, None)
        assert task.status is VideoTaskStatus.UNKNOWN
        assert not task.is_terminal
        assert task.raw_status == "rendering_v9"
    assert sum("rendering_v9" in r.getMessage() for r in caplog.records) == 1


def test_odd_field_types_become_none_rather_than_raise():
    task = CONTENTS_GENERATIONS.parse_task(
        {
            "id": "cgt-4",
            "status": "succeeded",
            "content": "not-an-object",
            "duration": "five",
            "seed": None,
            "framespersecond": float("nan"),
            "generate_audio": "maybe",
            "usage": [],
        },
        None,
    )
    assert task.video_url is None
    assert task.duration is None
    assert task.fps is None
    assert task.generate_audio is None
    assert task.usage == {}


def test_requested_id_fills_in_when_the_answer_omits_it():
    assert CONTENTS_GENERATIONS.parse_task({"status": "running"}, "cgt-5").id == "cgt-5"


@pytest.mark.parametrize(
    ("style", "payload"),
    [
        ("contents_generations", CONTENTS_SUCCEEDED),
        ("video_generations", DOCUMENTED_COMPLETED),
        ("video_generations", GATEWAY_SUCCESS),
    ],
)
def test_to_dict_is_json_safe_and_round_trips(style, payload):
    task = STYLES[style].parse_task(payload, None)
    data = task.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["status"] == "succeeded"
    assert data["is_terminal"] is True
    assert VideoTask.from_dict(data) == task


def test_to_dict_keeps_a_small_answer_and_leaves_a_bloated_one_out():
    small = CONTENTS_GENERATIONS.parse_task(CONTENTS_SUCCEEDED, None)
    assert small.to_dict()["raw"] == CONTENTS_SUCCEEDED
    bloated = CONTENTS_GENERATIONS.parse_task({**CONTENTS_SUCCEEDED, "padding": "x" * 3_000_000}, None)
    data = bloated.to_dict()
    assert data["raw"] == {}
    assert len(json.dumps(data)) < 4_000
    assert data["video_url"] == small.video_url  # everything the model names is still there


def test_a_tasks_cost_goes_to_json_and_back_exactly():
    from decimal import Decimal

    from airflow_provider_videogen.cost import Cost

    cost = Cost(Decimal("0.27225"), "USD", "priced", "108900 tokens reported x 2.5 USD per million tokens")
    task = VideoTask(id="cgt-1", status=VideoTaskStatus.SUCCEEDED, cost=cost)
    data = json.loads(json.dumps(task.to_dict()))
    assert data["cost"] == {"amount": "0.27225", "currency": "USD", "basis": "priced", "computed": cost.computed}
    assert VideoTask.from_dict(data).cost == cost
    assert VideoTask(id="cgt-1", status=VideoTaskStatus.SUCCEEDED).to_dict()["cost"] is None
