"""Extra links: the video service's console per API style, and the landed object's console page."""

from __future__ import annotations

import json

import pytest

from airflow_provider_videogen.links import LandedVideoLink, VideoServiceConsoleLink, landed_video_url, s3_console_url
from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator
from airflow_provider_videogen.sensors.videogen import VideoTaskSensor
from airflow_provider_videogen.styles import STYLES
from tests.loopback import API_KEY
from tests.operators.test_fetch_video import FAST_RETRIES


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("contents_generations", None),
        ("video_generations", "https://gateway.example.com/console/task"),
        ("openai_videos", None),
    ],
)
def test_only_the_styles_with_a_console_page_give_one(style, expected):
    assert STYLES[style].console_url("https://gateway.example.com", "task_1") == expected


def test_an_s3_landing_links_to_its_object_in_the_aws_console():
    assert s3_console_url("s3://my-bucket/videos/2026-01-01/cgt-1 x.mp4") == (
        "https://s3.console.aws.amazon.com/s3/object/my-bucket?prefix=videos/2026-01-01/cgt-1%20x.mp4"
    )


@pytest.mark.parametrize("uri", ["file:///data/videos/x.mp4", "s3://bucket", "gs://bucket/x.mp4"])
def test_destinations_without_a_browsable_form_get_no_link(uri):
    assert s3_console_url(uri) is None


def test_an_s3_compatible_store_behind_an_endpoint_url_gets_no_aws_link(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_MINIO",
        json.dumps({"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9100"}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_PLAIN", json.dumps({"conn_type": "aws", "extra": {"region_name": "eu-west-1"}})
    )
    assert landed_video_url("s3://bucket/x.mp4", "minio") is None
    assert landed_video_url("s3://bucket/x.mp4", "aws_plain") == s3_console_url("s3://bucket/x.mp4")


def test_the_operators_declare_their_links():
    # With a destination, GenerateVideoOperator lands the video itself: it links it as FetchVideoOperator does.
    generate_links = [link.name for link in GenerateVideoOperator.operator_extra_links]
    assert generate_links == ["Video service console", "Landed video"]
    assert [link.name for link in VideoTaskSensor.operator_extra_links] == ["Video service console"]
    assert [link.name for link in FetchVideoOperator.operator_extra_links] == ["Landed video"]


def test_a_gateway_task_links_its_console_and_the_link_holds_no_key(sim, videogen_connection):
    conn_id = videogen_connection(conn_id="vg_gateway", api_style="video_generations")
    task_id = sim.add_task(style="video_generations", queued_seconds=0, running_seconds=0)
    sensor = VideoTaskSensor(task_id="wait", video_task_id=task_id, videogen_conn_id=conn_id, deferrable=True)
    sensor.execute(context={})  # type: ignore[arg-type]
    link = VideoServiceConsoleLink().get_link(sensor, ti_key=None)
    assert link == f"{sim.base_url}/console/task"
    assert API_KEY not in link


def test_a_file_landing_has_no_landed_video_link(sim, videogen_connection, tmp_path):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    fetch = FetchVideoOperator(
        task_id="fetch", video_task_id=task_id, destination=f"file://{tmp_path}/", http_retry_policy=FAST_RETRIES
    )
    fetch.execute(context={})  # type: ignore[arg-type]
    assert LandedVideoLink().get_link(fetch, ti_key=None) == ""
