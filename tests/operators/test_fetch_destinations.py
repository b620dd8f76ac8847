"""Where ``FetchVideoOperator`` lands a video: only absolute, well-formed destinations of an installed filesystem."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_videogen._compat import AirflowFailException
from airflow_provider_videogen.exceptions import VideoDestinationError, VideoGenConfigurationError
from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.styles import STYLES

FAST_RETRIES = RetryPolicy(max_attempts=3, max_seconds=30, initial_wait=0.01, max_wait=0.02)
# A folder at the root of the file system, which ``file:<name>/`` used to resolve to.
ROOT_FOLDER = f"videogen-destination-test-{uuid.uuid4().hex[:8]}"


def fetch(**kwargs: Any) -> dict[str, Any]:
    operator = FetchVideoOperator(task_id="fetch", http_retry_policy=FAST_RETRIES, **kwargs)
    result: dict[str, Any] = operator.execute(context={})  # type: ignore[arg-type]
    return result


def everything_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def worker_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    """The worker's current folder and home, both empty: a relative destination would land in one of them."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(home))
    yield cwd, home
    shutil.rmtree(f"/{ROOT_FOLDER}", ignore_errors=True)


REFUSED = {
    "relative": ("relative/videos/", "relative path"),
    "parent": ("../up/", "relative path"),
    "home": ("~/v/", "relative path"),
    "file-url-with-a-host": ("file://relative/", "three slashes"),
    "file-url-localhost": ("file://localhost/videos/", "three slashes"),
    "file-url-relative": (f"file:{ROOT_FOLDER}/", "relative path"),
    "s3-bucket-only": ("s3://clip.mp4", "names only the bucket"),
    "s3-no-bucket": ("s3:///videos/", "names no bucket"),
    "web-address": ("http://files.example.com/videos/", "web address"),
    "unknown-scheme": ("nosuchfs://bucket/videos/", "no installed filesystem"),
}


@pytest.mark.parametrize(("destination", "problem"), list(REFUSED.values()), ids=list(REFUSED))
def test_a_destination_that_is_not_absolute_and_well_formed_is_refused_before_downloading(
    sim, videogen_connection, worker_folders, destination, problem
):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    with pytest.raises(VideoDestinationError, match=problem) as caught:
        fetch(video_task_id=task_id, destination=destination)
    message = str(caught.value)
    assert repr(destination) in message  # names the destination...
    assert "file:///" in message and "s3://bucket/" in message  # ...and the forms it should take
    assert isinstance(caught.value, AirflowFailException)  # a retry with the same destination cannot help
    assert sim.requests(target="download") == []
    cwd, home = worker_folders
    assert everything_under(cwd) == [] and everything_under(home) == []
    assert not Path(f"/{ROOT_FOLDER}").exists()


@pytest.mark.parametrize(
    ("suffix", "problem"),
    [
        ("/a/../videos/", r"'\.\.' segment"),
        ("/videos/./", r"'\.' segment"),
        ("/videos/?versionId=1", "query"),
        ("/videos/#frag", "fragment"),
        ("/vid\neos/", "control character"),
    ],
    ids=["dot-dot", "dot", "query", "fragment", "newline"],
)
def test_a_malformed_absolute_destination_is_refused(sim, videogen_connection, tmp_path, suffix, problem):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    with pytest.raises(VideoDestinationError, match=problem):
        fetch(video_task_id=task_id, destination=f"file://{tmp_path}{suffix}")
    assert sim.requests(target="download") == []
    assert everything_under(tmp_path) == []


def test_a_password_in_the_destination_is_refused_without_showing_it(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    with pytest.raises(VideoDestinationError, match="dest_conn_id") as caught:
        fetch(video_task_id=task_id, destination="s3://AKIAEXAMPLE:s3cr3t-value@bucket/videos/")
    assert "s3cr3t-value" not in str(caught.value)
    assert sim.requests(target="download") == []


def test_a_relative_object_storage_path_is_refused(sim, videogen_connection, worker_folders):
    relative = ObjectStoragePath("relative/videos/")
    if relative.path.startswith("/"):
        pytest.skip("this Airflow's ObjectStoragePath makes a relative path absolute itself (at the root)")
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    with pytest.raises(VideoDestinationError, match="relative/videos"):
        fetch(video_task_id=task_id, destination=relative)
    cwd, _ = worker_folders
    assert everything_under(cwd) == [] and sim.requests(target="download") == []


@pytest.mark.parametrize("form", ["{folder}/", "file://{folder}/", "file:{folder}/", "local://{folder}/"], ids=str)
def test_absolute_paths_and_file_urls_land_where_they_say(sim, videogen_connection, tmp_path, form):
    task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    folder = tmp_path / "videos"
    result = fetch(video_task_id=task_id, destination=form.format(folder=folder))
    assert result["video_path"] == f"file://{folder}/{task_id}.mp4"
    assert (folder / f"{task_id}.mp4").stat().st_size == result["size_bytes"]


# ---- default file names: one task, one name ------------------------------------------------------------

_UUID = "0385dc79-5ff8-4d82-bcb6-1d3f2c5e4a7b"
_GEMINI_PARTS = ["veo", "veo_3", "3_abc", "abc", "a_", "a__b", "a.b", "a-b"]
SAMPLE_TASK_IDS = [
    "cgt-20250331175019-68d9t",
    "cgt-20250331175019-68d9t_",
    "task_" + "a" * 32,
    "task_" + "a" * 31 + "_",
    "video_abc",
    "video_ab_c",
    "a.b",
    "a_b",
    "x.png",
    "x.mp4",
    _UUID,
    _UUID.upper(),
    "00000000-0000-0000-0000-000000000000",
    *(f"models/{model}/operations/{op}" for model in _GEMINI_PARTS for op in _GEMINI_PARTS),
    # fal: one request id under two apps, and apps whose parts join alike.
    *(f"{app}/requests/{_UUID}" for app in ("fal-ai/kling-video", "fal-ai/veo3", "a/b-c", "a-b/c")),
    "workflows/fal-ai/kling-video/requests/" + _UUID,
    # replicate: prediction ids (26 lower-case letters and digits today).
    "rrr4z55ocneqzikepnug6xezpe",
    "gm3qorzdhgbfurvjtvhg6dckhu",
    "a" * 26,
    # bedrock_video: one invocation id in two regions and two accounts.
    *(
        f"arn:aws:bedrock:{region}:{account}:async-invoke/abcd1234efgh"
        for region in ("us-east-1", "us-west-2")
        for account in ("123456789012", "210987654321")
    ),
    # vertex_veo: one operation id of one model in two projects and two locations, and models whose
    # names join alike with the id.
    *(
        f"projects/{project}/locations/{location}/publishers/google/models/veo-3.0/operations/{_UUID}"
        for project in ("my-project", "123456789012")
        for location in ("us-central1", "europe-west4")
    ),
    f"projects/my-project/locations/us-central1/publishers/google/models/veo_3/operations/{_UUID}",
    f"projects/my-project/locations/us-central1/publishers/google/models/veo/operations/3_{_UUID}",
]


@pytest.mark.parametrize("style_name", sorted(STYLES))
def test_every_style_names_the_files_of_different_tasks_differently(style_name):
    style = STYLES[style_name]
    valid = []
    for task_id in SAMPLE_TASK_IDS:
        try:
            valid.append(style.check_task_id(task_id))
        except VideoGenConfigurationError:
            continue
    assert len(valid) >= 3, f"{style_name}: too few sample ids to compare"
    stems = [style.file_stem(task_id) for task_id in valid]
    # The video, its last frame and their integrity records: every name, across every task, is different.
    names = [
        f"{stem}{suffix}" for stem in stems for suffix in (".mp4", ".png", ".mp4.videogen.json", ".png.videogen.json")
    ]
    assert len(set(names)) == len(names)
    assert all("/" not in stem and stem not in ("", ".", "..") for stem in stems)
