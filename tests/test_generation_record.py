"""The durable record's parts that need no Airflow: the request fingerprint, the loop-pass key, old records."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_videogen.generation_record import Recorded, record_key, request_fingerprint
from airflow_provider_videogen.generation_request import Upload

BASE = {"style": "openai_videos", "base_url": "https://gateway.example", "model": "sora-2"}


def fingerprint(body: Any, uploads: tuple[Upload, ...] = (), **changes: str) -> str:
    return request_fingerprint(**{**BASE, **changes}, body=body, uploads=uploads)


def test_the_fingerprint_does_not_depend_on_the_order_of_the_body_keys():
    one = {"model": "sora-2", "prompt": "a fox", "metadata": {"ratio": "16:9", "resolution": "720p"}}
    other = {"metadata": {"resolution": "720p", "ratio": "16:9"}, "prompt": "a fox", "model": "sora-2"}
    assert fingerprint(one) == fingerprint(other)


@pytest.mark.parametrize(
    "change",
    [
        {"body": {"model": "sora-2", "prompt": "a wolf"}},
        {"body": {"model": "sora-2", "prompt": "a fox", "seconds": "8"}},
        {"style": "video_generations"},
        {"base_url": "https://other-gateway.example"},
        {"model": "sora-2-pro"},
    ],
    ids=["prompt", "parameter", "style", "base-url", "model"],
)
def test_the_fingerprint_changes_with_each_part_of_what_is_sent(change):
    body = change.pop("body", {"model": "sora-2", "prompt": "a fox"})
    assert fingerprint(body, **change) != fingerprint({"model": "sora-2", "prompt": "a fox"})


def test_an_uploaded_file_counts_by_its_content():
    def upload(data: bytes) -> Upload:
        return Upload("input_reference", "frame.png", data, "image/png")

    body = {"model": "sora-2", "prompt": "a fox"}
    assert fingerprint(body, (upload(b"one"),)) == fingerprint(body, (upload(b"one"),))
    assert fingerprint(body, (upload(b"one"),)) != fingerprint(body, (upload(b"two"),))
    assert fingerprint(body, (upload(b"one"),)) != fingerprint(body)


def test_the_fingerprint_is_a_hash_that_holds_no_part_of_the_request():
    secret_prompt = "a fox named sk-live-0123456789"
    value = fingerprint({"model": "sora-2", "prompt": secret_prompt})
    assert value.startswith("sha256:") and len(value) == len("sha256:") + 64
    assert "sk-live" not in value and "fox" not in value


def test_a_record_of_the_previous_release_reads_as_an_id_without_a_fingerprint():
    assert Recorded.from_json("cgt-1") == Recorded("cgt-1")
    assert Recorded.from_json({"video_task_id": "cgt-1", "request": "sha256:ab"}) == Recorded("cgt-1", "sha256:ab")
    assert Recorded.from_json({"request": "sha256:ab", "intent_at": 12.5}) == Recorded(None, "sha256:ab", 12.5)
    assert Recorded.from_json({"request": "sha256:ab"}) is None  # neither an id nor an intent
    assert Recorded.from_json(["cgt-1"]) is None


class LoopTaskInstance:
    """A task instance as Airflow 3.4's Task Loops hands one pass of a loop to its task (feature-detected)."""

    def __init__(self, region_id: Any, map_index: int) -> None:
        self.region_id = region_id
        self.map_index = map_index


def test_each_pass_of_a_task_loop_keeps_its_own_record():
    loop = uuid.uuid7() if hasattr(uuid, "uuid7") else uuid.uuid4()
    first = record_key({"ti": LoopTaskInstance(loop, 0)}, "video_task_id")
    second = record_key({"ti": LoopTaskInstance(loop, 1)}, "video_task_id")
    assert first != second
    assert first == "video_task_id.pass-0"


def test_outside_a_loop_the_record_keeps_the_key_it_had():
    class PlainTaskInstance:  # Airflow before 3.4: no region
        map_index = -1

    assert record_key({"ti": PlainTaskInstance()}, "video_task_id") == "video_task_id"
    # Airflow 3.4 outside any loop or mapping: the nil region.
    assert record_key({"ti": LoopTaskInstance(uuid.UUID(int=0), -1)}, "video_task_id") == "video_task_id"
    assert record_key({}, "video_task_id") == "video_task_id"
