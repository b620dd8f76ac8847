"""What ``FetchVideoOperator`` tells Airflow's assets about a landed video (a real outlet-events accessor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetAlias
from airflow.sdk.execution_time.context import OutletEventAccessors

from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from tests.operators.test_fetch_video import FAST_RETRIES


def land(sim: Any, destination: str, outlets: list[Any]) -> tuple[dict[str, Any], OutletEventAccessors]:
    task_id = sim.add_task(queued_seconds=0, running_seconds=0, return_last_frame=True)
    operator = FetchVideoOperator(
        task_id="fetch",
        video_task_id=task_id,
        destination=destination,
        include_last_frame=True,
        outlets=outlets,
        http_retry_policy=FAST_RETRIES,
    )
    events = OutletEventAccessors()
    landed = operator.execute(context={"outlet_events": events})  # type: ignore[arg-type]
    return landed, events


def test_a_fixed_destination_fills_the_extra_of_its_plain_asset_outlet(sim, videogen_connection, tmp_path: Path):
    folder = Asset(tmp_path.as_uri() + "/")
    landed, events = land(sim, tmp_path.as_uri() + "/", [folder])
    extra = events[folder].extra
    assert extra == {
        "video_task_id": landed["id"],
        "model": landed["model"],
        "video_path": landed["video_path"],
        "sha256": landed["sha256"],
        "size_bytes": landed["size_bytes"],
        "duration": landed["duration"],
        "last_frame_path": landed["last_frame_path"],
        "cost": None,  # the connection has no prices
    }
    assert landed["video_path"] == (tmp_path / f"{landed['id']}.mp4").as_uri()


def test_an_alias_outlet_adds_one_asset_per_landed_video(sim, videogen_connection, tmp_path: Path):
    alias = AssetAlias("videos")
    first, events = land(sim, tmp_path.as_uri() + "/", [alias])
    [event] = events[alias].asset_alias_events
    assert event.dest_asset_key.uri == first["video_path"]
    assert event.extra["video_task_id"] == first["id"]
    assert event.extra["sha256"] == first["sha256"]


def test_a_plain_asset_that_does_not_hold_the_video_is_named_in_a_warning(
    sim, videogen_connection, tmp_path: Path, capsys
):
    # The operator's log is the task's (structlog): it goes to the captured output outside a task run.
    land(sim, tmp_path.as_uri() + "/", [Asset("s3://bucket/other/")])
    assert "The outlet asset s3://bucket/other does not contain the landed video" in capsys.readouterr().out


def test_the_asset_event_and_the_return_value_carry_the_videos_cost(sim, videogen_connection, tmp_path: Path, capsys):
    videogen_connection(prices={"doubao-seedance-*": {"per_million_tokens": "2.5", "currency": "USD"}})
    alias = AssetAlias("videos")
    landed, events = land(sim, tmp_path.as_uri() + "/", [alias])
    [event] = events[alias].asset_alias_events
    tokens = landed["usage"]["completion_tokens"]
    assert landed["cost"]["basis"] == "priced" and landed["cost"]["currency"] == "USD"
    assert f"{tokens} tokens reported" in landed["cost"]["computed"]
    assert event.extra["cost"] == landed["cost"]
    assert f"Video task {landed['id']} cost {landed['cost']['amount']} USD (priced" in capsys.readouterr().out
