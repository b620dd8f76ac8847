"""The ``vertex_veo`` style: Veo on Vertex AI, with the access token of an Airflow Google connection.

The Google connection holds a service-account key made in the test, whose ``token_uri`` is the
simulator's token endpoint: the real google-auth code signs the JWT and exchanges it there, and the
simulator's Vertex routes take only the tokens it granted. Needs the ``[google]`` extra.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import tracemalloc
from typing import Any

import pytest

pytest.importorskip("airflow.providers.google")

from airflow_provider_videogen.exceptions import (
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenNotSupportedError,
)
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.settings import VideoGenConnectionSettings
from airflow_provider_videogen.styles import get_style
from airflow_provider_videogen.testing._media import video_sha256
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_task import VideoTaskStatus
from tests.conftest import VERTEX_ACCOUNT, VERTEX_BUCKET, VERTEX_GCP_CONN, VERTEX_LOCATION, VERTEX_PROJECT

STYLE = get_style("vertex_veo").with_options({"project_id": VERTEX_PROJECT, "location": VERTEX_LOCATION})
FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.02)
CONN = "vg_vertex"
MODEL = "veo-3.0-generate-001"
PNG = "data:image/png;base64,iVBORw0KGgo="
OPERATION = (
    f"projects/{VERTEX_PROJECT}/locations/{VERTEX_LOCATION}/publishers/google/models/{MODEL}/operations/"
    "2b3e1f5a-6c7d-4e8f-9a0b-1c2d3e4f5a6b"
)


@pytest.fixture
def vertex(vertex_connection) -> str:
    """A ``vertex_veo`` connection to the simulator, borrowing the Google connection ``VERTEX_GCP_CONN``."""
    return vertex_connection(CONN)


def hook() -> VideoGenHook:
    return VideoGenHook(CONN, retry_policy=FAST)


def body(**fields: Any) -> dict[str, Any]:
    return STYLE.create_body(VideoGenerationRequest.from_fields(model=MODEL, **fields))


def operation(sim, prompt: str = "a fox", **kwargs: Any) -> str:
    """Create a generation through the hook; return its operation name."""
    return hook().create_task(model=MODEL, prompt=prompt, **kwargs)


def sim_id(name: str) -> str:
    """The simulator's task id of an operation (its last segment)."""
    return name.rsplit("/", 1)[1]


def granted_token(sim) -> str:
    from airflow_provider_videogen.testing.simulator.routes.vertex_veo import access_token

    return access_token(sim.api_key, VERTEX_ACCOUNT)


# ---- the connection and the token ----------------------------------------------------------------


def test_the_connection_holds_no_key_and_borrows_google_cloud_default_unless_told():
    settings = VideoGenConnectionSettings.from_connection_fields(
        "c", host=None, password=None, extra={"api_style": "vertex_veo", "data_center": "europe_west4"}
    )
    assert settings.base_url == "https://europe-west4-aiplatform.googleapis.com"
    assert settings.path_prefix == "/v1"
    assert settings.credential.gcp_conn_id == "google_cloud_default"  # type: ignore[attr-defined]
    with pytest.raises(VideoGenConfigurationError, match="never sends a key"):
        VideoGenConnectionSettings.from_connection_fields(
            "c", host=None, password="sk-123", extra={"api_style": "vertex_veo"}
        )


def test_every_call_carries_the_google_connection_s_access_token_from_the_token_endpoint(sim, vertex):
    name = operation(sim)
    hook().get_task(name)

    exchanges = sim.requests(target="token")
    assert len(exchanges) == 1  # one token for every call of the hook
    assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in exchanges[0]["body"]
    calls = sim.requests(target="create") + sim.requests(target="query")
    assert len(calls) == 2
    for call in calls:
        assert call["headers"]["Authorization"] == f"Bearer {granted_token(sim)}"


def test_the_token_goes_to_the_api_s_origin_only(sim, vertex):
    settings = hook().settings
    credential = settings.credential
    assert "Authorization" not in credential.sign("GET", "https://files.example.com/a.mp4", None, {})  # type: ignore[attr-defined]
    assert credential.headers_for(f"{sim.base_url}/v1/x") == {}
    assert credential.sign("POST", f"{sim.base_url}/v1/x", b"{}", {})["Authorization"].startswith("Bearer ")  # type: ignore[attr-defined]


def test_the_token_is_masked_in_what_an_answer_echoes(sim, vertex):
    settings = hook().settings
    credential = settings.credential
    credential.sign("POST", f"{sim.base_url}/v1/x", b"{}", {})  # type: ignore[attr-defined]
    token = granted_token(sim)
    assert token not in credential.mask(f"echo: {token}")
    assert token.encode() not in credential.mask_body(json.dumps({"t": token}).encode())


def test_a_token_the_endpoint_refuses_is_an_auth_error_that_names_the_google_connection(sim, vertex_connection):
    # A connection of its own: the settings (and the token) of a connection id are shared in a process.
    vertex_connection("vg_vertex_refused")
    sim.add_fault(kind="http_error", target="token", status=400, times=0)
    with pytest.raises(VideoGenAuthError, match=VERTEX_GCP_CONN):
        VideoGenHook("vg_vertex_refused", retry_policy=FAST).create_task(model=MODEL, prompt="a fox")
    assert sim.requests(target="create") == []


def test_a_request_without_a_token_is_refused_as_vertex_refuses_it(sim, vertex):
    import requests

    answer = requests.post(
        f"{sim.base_url}/v1/{OPERATION.partition('/operations/')[0]}:fetchPredictOperation", timeout=5
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


# ---- the request ---------------------------------------------------------------------------------


def test_the_create_route_names_the_project_location_and_model():
    route = STYLE.create_route(VideoGenerationRequest.from_fields(model=MODEL, prompt="p"))
    assert (
        route
        == f"/projects/{VERTEX_PROJECT}/locations/{VERTEX_LOCATION}/publishers/google/models/{MODEL}:predictLongRunning"
    )
    with pytest.raises(VideoGenConfigurationError, match="project_id and location extras"):
        get_style("vertex_veo").create_route(VideoGenerationRequest.from_fields(model=MODEL, prompt="p"))


def test_the_body_takes_instances_and_parameters_with_a_gcs_image_and_the_output_prefix():
    sent = body(
        prompt="a fox",
        image_urls=["gs://in/frame.jpg"],
        duration=8,
        ratio="16:9",
        resolution="1080p",
        sample_count=1,
        storage_uri="gs://out/videos/",
    )
    assert sent["instances"] == [
        {"prompt": "a fox", "image": {"gcsUri": "gs://in/frame.jpg", "mimeType": "image/jpeg"}}
    ]
    assert sent["parameters"] == {
        "aspectRatio": "16:9",
        "resolution": "1080p",
        "durationSeconds": 8,
        "sampleCount": 1,
        "storageUri": "gs://out/videos/",
    }
    assert body(prompt="a fox", image_urls=[PNG])["instances"][0]["image"] == {
        "bytesBase64Encoded": "iVBORw0KGgo=",
        "mimeType": "image/png",
    }
    with pytest.raises(VideoGenConfigurationError, match="storage_uri must be a gs:// prefix"):
        body(prompt="a fox", storage_uri="s3://elsewhere/")


# ---- ids and queries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "models/veo/operations/1",
        f"{OPERATION}/../../x",
        OPERATION.replace("publishers/google", "publishers/other"),
        OPERATION.replace("/operations/", "/operations/../"),
        f"{OPERATION}?alt=media",
        "",
        None,
    ],
)
def test_an_id_that_is_not_a_vertex_operation_name_is_refused_before_any_request(sim, vertex, bad):
    with pytest.raises(VideoGenConfigurationError, match="Invalid Vertex AI operation name"):
        hook().get_task(bad)
    assert sim.requests(target="query") == []


def test_a_query_posts_the_operation_name_to_the_model_s_fetch_predict_operation(sim, vertex):
    name = operation(sim)
    assert name.startswith(f"projects/{VERTEX_PROJECT}/locations/{VERTEX_LOCATION}/publishers/google/models/{MODEL}/")
    hook().get_task(name)
    (query,) = sim.requests(target="query")
    assert query["method"] == "POST"
    assert query["path"] == f"/v1/{name.partition('/operations/')[0]}:fetchPredictOperation"
    assert query["body"] == {"operationName": name}


def test_every_end_reads_as_its_task_status(sim, vertex):
    name = operation(sim)
    sim.set_status(sim_id(name), "running")
    assert hook().get_task(name).status is VideoTaskStatus.RUNNING
    sim.set_status(sim_id(name), "failed")
    failed = hook().get_task(name)
    assert failed.status is VideoTaskStatus.FAILED and failed.error_message


def test_a_filtered_result_is_a_failure_with_the_filter_s_reasons(sim, vertex):
    name = operation(sim, prompt="a fox [sim:output-moderation]")
    sim.set_status(sim_id(name), "failed")
    task = hook().get_task(name)
    assert task.status is VideoTaskStatus.FAILED
    assert task.error_code == "RAI_MEDIA_FILTERED" and task.error_message


def test_with_an_output_prefix_the_video_is_its_gcs_uri(sim, vertex_connection):
    vertex_connection(CONN, vertex_output_gcs_uri="gs://out/videos")
    name = operation(sim)
    sim.set_status(sim_id(name), "succeeded")
    assert hook().get_task(name).video_url == f"gs://out/videos/{sim_id(name)}/sample_0.mp4"


def test_vertex_cannot_cancel(sim, vertex):
    name = operation(sim)
    with pytest.raises(VideoGenNotSupportedError, match="documents no cancel"):
        hook().cancel_task(name)


# ---- the wait ------------------------------------------------------------------------------------


def test_the_deferred_wait_ends_with_the_video_and_does_no_blocking_io_on_the_event_loop(
    sim, vertex, vertex_connection, monkeypatch
):
    from airflow.sdk import BaseHook
    from google.oauth2 import service_account

    name = operation(sim, prompt="a fox [sim:size=300000]")
    sim.set_status(sim_id(name), "succeeded")
    loop_threads: set[int] = set()
    blocking_on_loop: list[str] = []
    real_refresh = service_account.Credentials.refresh
    real_get_connection = BaseHook.get_connection

    def refresh(self: Any, request: Any) -> None:
        if threading.get_ident() in loop_threads:
            blocking_on_loop.append("token refresh")
        real_refresh(self, request)

    def sync_get_connection(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() in loop_threads:
            blocking_on_loop.append("sync get_connection")
        return real_get_connection(*args, **kwargs)

    monkeypatch.setattr(service_account.Credentials, "refresh", refresh)
    monkeypatch.setattr(BaseHook, "get_connection", sync_get_connection)
    # A connection of its own: the trigger gets its first token in the triggerer, not the create's.
    trigger = VideoTaskTrigger(name, videogen_conn_id=vertex_connection("vg_vertex_trigger"), poll_interval=0.1)

    exchanges = len(sim.requests(target="token"))

    async def first_event() -> Any:
        loop_threads.add(threading.get_ident())
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    assert blocking_on_loop == []
    assert granted_token(sim) not in json.dumps(event.payload)
    assert len(sim.requests(target="token")) == exchanges + 1  # the trigger's own token, got in a thread


# ---- landing -------------------------------------------------------------------------------------


def fetch(**kwargs: Any) -> dict[str, Any]:
    operator = FetchVideoOperator(task_id="fetch", videogen_conn_id=CONN, http_retry_policy=FAST, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def test_without_a_destination_fetch_returns_the_video_s_gcs_uri(sim, vertex_connection):
    vertex_connection(CONN, vertex_output_gcs_uri="gs://out/videos")
    name = operation(sim)
    sim.set_status(sim_id(name), "succeeded")
    assert fetch(video_task_id=name)["video_url"] == f"gs://out/videos/{sim_id(name)}/sample_0.mp4"


def test_an_inline_video_is_landed_whole_and_checked_and_a_retry_copies_nothing(sim, vertex, tmp_path, caplog):
    name = operation(sim, prompt="a fox [sim:size=300000]")
    sim.set_status(sim_id(name), "succeeded")

    first = fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")
    again = fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")

    video = tmp_path / f"{STYLE.file_stem(name)}.mp4"
    assert hashlib.sha256(video.read_bytes()).hexdigest() == first["sha256"] == video_sha256(sim_id(name), 300_000)
    assert first["size_bytes"] == 300_000 and again["sha256"] == first["sha256"]
    assert granted_token(sim) not in json.dumps(first) + caplog.text


def test_a_20_mb_inline_answer_is_read_under_the_answer_cap_and_landed_without_holding_the_video(
    vertex_google_connection, videogen_connection, tmp_path
):
    from airflow_provider_videogen.testing import SimulatorProcess

    size = 15 * 1024 * 1024  # 20 MB of base64 in one answer, five times the 4 MiB cap of an API answer
    # The simulator in a process of its own: only the provider's memory is measured here.
    server = SimulatorProcess().start()
    try:
        vertex_google_connection(f"{server.base_url}/token")
        conn = videogen_connection(
            conn_id="vg_vertex_large",
            api_style="vertex_veo",
            api_key="",
            host=server.base_url,
            gcp_conn_id=VERTEX_GCP_CONN,
            project_id=VERTEX_PROJECT,
            location=VERTEX_LOCATION,
        )
        large = VideoGenHook(conn, retry_policy=FAST)
        name = large.create_task(model=MODEL, prompt=f"a fox [sim:size={size}]")
        server.set_status(sim_id(name), "succeeded")

        tracemalloc.start()
        try:
            task = large.get_task(name)
            _, polled_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            operator = FetchVideoOperator(
                task_id="fetch",
                videogen_conn_id=conn,
                video_task_id=name,
                destination=f"{tmp_path.as_uri()}/",
                chunk_size=1024 * 1024,
                http_retry_policy=FAST,
            )
            landed = operator.execute(context={})  # type: ignore[arg-type]
            _, landing_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        server.stop()

    assert task.status is VideoTaskStatus.SUCCEEDED
    assert len(json.dumps(task.raw)) < 1000  # the value was dropped as the answer came in
    assert landed["size_bytes"] == size and landed["sha256"] == video_sha256(sim_id(name), size)
    # Neither the poll nor the landing held the video (15 MB) or its base64 (20 MB) whole: the poll
    # keeps the small JSON around it; the landing, the staged file's 8 MiB upload block and a few
    # read blocks, as any download of any size does.
    assert polled_peak < 1024 * 1024, polled_peak
    assert landing_peak < size, landing_peak  # the video whole would be 15 MiB at least


def test_an_inline_answer_cut_short_lands_nothing(sim, vertex, tmp_path):
    from airflow_provider_videogen.download.landing import Landing
    from airflow_provider_videogen.exceptions import VideoContentError, VideoDownloadError

    name = operation(sim, prompt="a fox [sim:size=300000]")
    sim.set_status(sim_id(name), "succeeded")
    task = hook().get_task(name)
    sim.add_fault(kind="truncate", target="query", truncate_at=200_000, times=0)

    with pytest.raises((VideoContentError, VideoDownloadError)):
        Landing(f"{tmp_path.as_uri()}/").land(task, hook().settings)
    assert list(tmp_path.iterdir()) == []


def test_an_inline_value_that_is_not_base64_lands_nothing(sim, vertex, tmp_path):
    from airflow_provider_videogen.exceptions import VideoContentError

    name = operation(sim)
    sim.set_status(sim_id(name), "succeeded")
    answer = {"name": name, "done": True, "response": {"videos": [{"bytesBase64Encoded": "<html>denied</html>"}]}}
    sim.add_fault(kind="http_error", target="query", status=200, body=answer, times=0)

    with pytest.raises(VideoContentError, match="not valid base64"):
        fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")
    assert list(tmp_path.iterdir()) == []


# ---- landing a video Vertex wrote into a GCS bucket (the GCS emulator) -------------------------------


@pytest.fixture
def vertex_gcs(sim, vertex_connection, vertex_google_connection, gcs_endpoint) -> str:
    """A ``vertex_veo`` connection with an output prefix: Vertex (the simulator) writes each video into the
    GCS emulator, where the Google connection reads (and writes) ``gs://`` files."""
    vertex_google_connection(f"{sim.base_url}/token", gcs_endpoint)
    sim.configure(gcs_endpoint=gcs_endpoint)
    return vertex_connection(CONN, vertex_output_gcs_uri=f"gs://{VERTEX_BUCKET}/videos/")


@pytest.fixture
def gcs(gcs_endpoint) -> Any:
    """The emulator's buckets as a test reads them (no credentials: the emulator takes none)."""
    import gcsfs

    return gcsfs.GCSFileSystem(endpoint_url=gcs_endpoint, token="anon", skip_instance_cache=True)


def written(sim, prompt: str = "a fox [sim:size=300000]") -> str:
    """A succeeded operation whose video Vertex wrote into the bucket; return its name."""
    name = operation(sim, prompt=prompt)
    sim.set_status(sim_id(name), "succeeded")
    hook().get_task(name)  # its first finished answer: the simulator writes sample_0.mp4 first
    return name


def source_of(name: str) -> str:
    return f"{VERTEX_BUCKET}/videos/{sim_id(name)}/sample_0.mp4"


def test_with_a_local_destination_a_gcs_video_is_streamed_verified_and_a_retry_copies_nothing(
    sim, vertex_gcs, gcs, tmp_path, caplog
):
    name = written(sim)

    first = fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")
    again = fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")

    video = tmp_path / f"{STYLE.file_stem(name)}.mp4"
    assert hashlib.sha256(video.read_bytes()).hexdigest() == first["sha256"] == video_sha256(sim_id(name), 300_000)
    assert first["size_bytes"] == 300_000 and again["sha256"] == first["sha256"]
    assert "nothing to download" in caplog.text
    assert gcs.info(source_of(name))["size"] == 300_000  # the paid video stays where Vertex wrote it
    assert granted_token(sim) not in json.dumps(first) + caplog.text


def test_with_a_gcs_destination_the_video_is_copied_server_side_verified_and_recorded(
    sim, vertex_gcs, gcs, server_side_copies
):
    name = written(sim)

    result = fetch(
        video_task_id=name, destination=f"gs://{VERTEX_BUCKET}/landed/{sim_id(name)}/", dest_conn_id=VERTEX_GCP_CONN
    )

    stem = STYLE.file_stem(name)
    folder = f"{VERTEX_BUCKET}/landed/{sim_id(name)}"
    assert result["video_path"] == f"gs://{folder}/{stem}.mp4"
    assert result["sha256"] == video_sha256(sim_id(name), 300_000) and result["size_bytes"] == 300_000
    assert sorted(gcs.ls(folder, detail=False)) == [f"{folder}/{stem}.mp4", f"{folder}/{stem}.mp4.videogen.json"]
    record = json.loads(gcs.cat(f"{folder}/{stem}.mp4.videogen.json"))
    assert record["sha256"] == result["sha256"] and record["video_task_id"] == name
    # A server-side copy into a hidden temporary beside the destination (then moved into place): no download.
    source, temporary = server_side_copies[0]
    assert source.endswith(source_of(name)) and f"/{sim_id(name)}/.{stem}.mp4." in temporary
    assert gcs.info(source_of(name))["size"] == 300_000


def test_a_gcs_object_that_is_not_a_whole_mp4_is_not_landed(sim, vertex_gcs, gcs, tmp_path):
    from airflow_provider_videogen.exceptions import VideoContentError

    name = written(sim)
    gcs.pipe(source_of(name), b"<html>denied</html>")

    with pytest.raises(VideoContentError, match="is not"):
        fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")
    assert list(tmp_path.iterdir()) == []


def test_a_gcs_video_that_is_missing_says_so_and_names_the_google_connection(sim, vertex_gcs, gcs, tmp_path):
    from airflow_provider_videogen.exceptions import VideoNotAvailableError

    name = written(sim)
    gcs.rm_file(source_of(name))

    with pytest.raises(VideoNotAvailableError, match=r"object does not exist.*google_cloud_platform connection"):
        fetch(video_task_id=name, destination=f"{tmp_path.as_uri()}/")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("deferrable", [False, True], ids=["in the worker", "deferred"])
def test_generate_waits_and_lands_the_video_vertex_wrote_to_gcs(sim, vertex_gcs, tmp_path, deferrable):
    from airflow_provider_videogen.operators.videogen import GenerateVideoOperator
    from tests.task_context import FakeTaskInstance

    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow 3.1
        from airflow.exceptions import TaskDeferred  # type: ignore[no-redef,attr-defined]

    op = GenerateVideoOperator(
        task_id="generate",
        videogen_conn_id=CONN,
        model=MODEL,
        prompt="a heron [sim:queued=0] [sim:running=0.1] [sim:size=300000]",
        destination=f"{tmp_path.as_uri()}/",
        poll_interval=0.05,
        deferrable=deferrable,
        http_retry_policy=FAST,
    )
    ctx: dict[str, Any] = {"ti": FakeTaskInstance()}
    if deferrable:
        with pytest.raises(TaskDeferred) as deferred:
            op.execute(ctx)  # type: ignore[arg-type]
        event = asyncio.run(deferred.value.trigger.run().__anext__())
        result = op.execute_complete(ctx, event.payload, **(deferred.value.kwargs or {}))  # type: ignore[arg-type]
    else:
        result = op.execute(ctx)  # type: ignore[arg-type]

    name = result["id"]
    video = tmp_path / f"{STYLE.file_stem(name)}.mp4"
    assert result["video_url"] == f"gs://{source_of(name)}"
    assert result["video_path"] == video.as_uri()
    assert hashlib.sha256(video.read_bytes()).hexdigest() == result["sha256"] == video_sha256(sim_id(name), 300_000)
    assert len(sim.requests(target="create")) == 1


def test_what_veo_lacks_is_refused_in_vertex_s_name_before_sending():
    from airflow_provider_videogen.exceptions import VideoGenConfigurationError

    lacking = r"^Veo on Vertex AI has no fps .*Leave them out on vertex_veo"
    with pytest.raises(VideoGenConfigurationError, match=lacking):
        body(prompt="a fox", fps=30)
