"""The example DAGs: they parse, and run end to end under ``dag.test()`` against the simulator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "example_dags"
EXAMPLE_FILES = sorted(EXAMPLES.glob("example_*.py"))


def test_every_example_dag_parses_without_import_errors():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "videogen_generate_and_fetch",
        "videogen_wait_and_fetch",
        "videogen_many_videos",
        "videogen_gateway_generate_and_fetch",
        "videogen_openai_videos_generate_and_fetch",
        "videogen_dashscope_generate_and_fetch",
        "videogen_runway_generate_and_fetch",
        "videogen_gemini_veo_generate_and_fetch",
        "videogen_fal_generate_and_fetch",
        "videogen_replicate_generate_and_fetch",
        "videogen_bedrock_generate_and_fetch",
        "videogen_vertex_veo_generate_and_fetch",
        "videogen_land_videos",
        "videogen_use_landed_videos",
        "videogen_review_and_publish",
        "videogen_draft_then_final",
        "videogen_batch",
    }
    for dag in bag.dags.values():
        assert dag.doc_md, f"{dag.dag_id} has no documentation"


#: The examples that generate and land the video in the same task, and the one that fetches a video made elsewhere.
GENERATE_AND_LAND = {
    "videogen_generate_and_fetch": {"generate", "record_metadata"},
    "videogen_many_videos": {"list_prompts", "generate"},
    "videogen_land_videos": {"list_prompts", "generate"},
    "videogen_gateway_generate_and_fetch": {"generate"},
    "videogen_openai_videos_generate_and_fetch": {"generate"},
    "videogen_dashscope_generate_and_fetch": {"generate"},
    "videogen_runway_generate_and_fetch": {"generate"},
    "videogen_gemini_veo_generate_and_fetch": {"generate"},
    "videogen_fal_generate_and_fetch": {"generate"},
    "videogen_replicate_generate_and_fetch": {"generate"},
}


def test_the_examples_land_in_the_task_that_generated_and_fetch_only_videos_made_elsewhere():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag

    from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator

    bag = DagBag(dag_folder=str(EXAMPLES))
    for dag_id, task_ids in GENERATE_AND_LAND.items():
        dag = bag.dags[dag_id]
        assert set(dag.task_ids) == task_ids, dag_id
        generate = dag.get_task("generate")
        # A mapped task keeps its arguments in partial_kwargs, a plain one as attributes.
        destination = getattr(generate, "partial_kwargs", {}).get("destination") or generate.destination
        assert (generate.task_type, bool(destination)) == (GenerateVideoOperator.__name__, True), dag_id
    wait_and_fetch = bag.dags["videogen_wait_and_fetch"]
    assert {task.task_type for task in wait_and_fetch.tasks} >= {FetchVideoOperator.__name__}


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    """The examples poll every 10-15 s, as real services want; against the simulator 0.2 s will do."""
    from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger

    real_init = VideoTaskTrigger.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.poll_interval = min(self.poll_interval or 0.2, 0.2)

    monkeypatch.setattr(VideoTaskTrigger, "__init__", init)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quick(prompt: str) -> str:
    return f"{prompt} [sim:queued=0.2] [sim:running=0.3]"


def test_generate_and_fetch_lands_the_video_and_its_metadata(load_dag_file, sim, videogen_connection, tmp_path):
    dag = load_dag_file(EXAMPLES / "example_videogen_generate_and_fetch.py").dag
    run = dag.test(
        run_conf={"prompt": quick("a paper boat"), "destination": tmp_path.as_uri() + "/"},
    )
    assert run.state == "success"
    (video,) = tmp_path.glob("*.mp4")
    (create,) = sim.requests(target="create")
    assert create["body"]["return_last_frame"] is True
    assert sha256_of(video) == sim.get_task(video.stem)["video_sha256"]
    assert (tmp_path / f"{video.stem}.png").exists()
    metadata = json.loads((tmp_path / f"{video.stem}.json").read_text())
    assert (metadata["id"], metadata["prompt"], metadata["resolution"]) == (video.stem, quick("a paper boat"), "720p")
    assert metadata["files"] == {"video": video.name, "last_frame": f"{video.stem}.png"}


def test_the_walkthrough_example_makes_an_asset_event_of_each_landed_video(
    load_dag_file, sim, videogen_connection, tmp_path
):
    from airflow.models.asset import AssetEvent
    from airflow.sdk import AssetAlias
    from airflow.utils.session import create_session

    dag = load_dag_file(EXAMPLES / "example_videogen_generate_and_fetch.py").dag
    (outlet,) = dag.get_task("generate").outlets
    assert isinstance(outlet, AssetAlias)
    assert dag.test(run_conf={"prompt": quick("a lantern"), "destination": tmp_path.as_uri() + "/"}).state == "success"
    (video,) = tmp_path.glob("*.mp4")
    with create_session() as session:
        events = [e for e in session.query(AssetEvent) if e.extra.get("video_task_id") == video.stem]
    (event,) = events
    assert event.extra["video_path"] == video.as_uri() and event.extra["sha256"] == sha256_of(video)


def test_generate_and_fetch_lands_one_metadata_file_and_an_integrity_record_per_file(
    load_dag_file, sim, videogen_connection, tmp_path
):
    from airflow_provider_videogen.video_download import RECORD_SUFFIX

    dag = load_dag_file(EXAMPLES / "example_videogen_generate_and_fetch.py").dag
    assert dag.test(run_conf={"prompt": quick("a kite"), "destination": tmp_path.as_uri() + "/"}).state == "success"
    (video,) = tmp_path.glob("*.mp4")
    name = video.stem
    assert {p.name for p in tmp_path.iterdir()} == {
        f"{name}.mp4",
        f"{name}.png",
        f"{name}.json",
        f"{name}.mp4{RECORD_SUFFIX}",
        f"{name}.png{RECORD_SUFFIX}",
    }
    # Checksums live in the integrity records only: the metadata file does not repeat them.
    metadata = json.loads((tmp_path / f"{name}.json").read_text())
    assert not {"sha256", "size_bytes", "video_path"} & set(metadata)
    record = json.loads((tmp_path / f"{name}.mp4{RECORD_SUFFIX}").read_text())
    assert (record["sha256"], record["size_bytes"]) == (sha256_of(video), video.stat().st_size)


def test_gateway_example_runs_on_the_video_generations_style(load_dag_file, sim, videogen_connection, tmp_path):
    videogen_connection(conn_id="videogen_gateway", api_style="video_generations")
    dag = load_dag_file(EXAMPLES / "example_videogen_gateway.py").dag
    run = dag.test(run_conf={"prompt": quick("waves"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    (video,) = tmp_path.glob("*.mp4")
    assert video.stem.startswith("task_")
    (create,) = sim.requests(target="create")
    assert create["path"] == "/v1/video/generations"
    assert create["body"]["metadata"] == {"resolution": "720p", "ratio": "16:9"}
    # The task page's extra link: the gateway's task log, kept in XCom by Airflow when the task ended.
    links = {
        ti.task_id: ti.xcom_pull(task_ids=ti.task_id, key="_link_VideoServiceConsoleLink")
        for ti in run.get_task_instances()
    }
    assert links["generate"] == f"{sim.base_url}/console/task"


def test_openai_videos_example_lands_the_video_from_the_content_route(
    load_dag_file, sim, videogen_connection, tmp_path
):
    videogen_connection(conn_id="videogen_openai", api_style="openai_videos")
    dag = load_dag_file(EXAMPLES / "example_videogen_openai_videos.py").dag
    run = dag.test(run_conf={"prompt": quick("lighthouse"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    (video,) = tmp_path.glob("*.mp4")
    assert video.stem.startswith("video_")
    assert sha256_of(video) == sim.get_task(video.stem)["video_sha256"]
    assert (tmp_path / f"{video.stem}.png").exists()  # the thumbnail, as the last frame
    (create,) = sim.requests(target="create")
    assert (create["path"], create["body"]["seconds"], create["body"]["size"]) == ("/v1/videos", "8", "1280x720")
    assert {d["path"] for d in sim.requests(target="download")} == {f"/v1/videos/{video.stem}/content"}


@pytest.mark.parametrize(
    ("style", "create_path"),
    [
        ("dashscope", "/api/v1/services/aigc/video-generation/video-synthesis"),
        ("runway", "/v1/text_to_video"),
    ],
)
def test_style_examples_land_the_video(load_dag_file, sim, videogen_connection, tmp_path, style, create_path):
    videogen_connection(conn_id=f"videogen_{style}", api_style=style)
    dag = load_dag_file(EXAMPLES / f"example_videogen_{style}.py").dag
    run = dag.test(run_conf={"prompt": quick("a kite"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    (video,) = tmp_path.glob("*.mp4")
    assert sha256_of(video) == sim.get_task(video.stem)["video_sha256"]
    (create,) = sim.requests(target="create")
    assert create["path"] == create_path


def test_gemini_veo_example_lands_the_video_of_the_operation(load_dag_file, sim, videogen_connection, tmp_path):
    videogen_connection(conn_id="videogen_gemini", api_style="gemini_veo")
    dag = load_dag_file(EXAMPLES / "example_videogen_gemini_veo.py").dag
    run = dag.test(run_conf={"prompt": quick("hummingbird"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    (video,) = tmp_path.glob("*.mp4")
    model, _, operation = video.stem.partition("_")
    assert model == "veo-3.1-generate-preview"
    assert sha256_of(video) == sim.get_task(operation)["video_sha256"]
    (create,) = sim.requests(target="create")
    assert create["path"] == "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    assert create["body"]["parameters"]["negativePrompt"] == "text, logos"


def test_fal_example_lands_the_video_of_the_request_after_reading_its_result(
    load_dag_file, sim, videogen_connection, tmp_path
):
    videogen_connection(conn_id="videogen_fal", api_style="fal")
    dag = load_dag_file(EXAMPLES / "example_videogen_fal.py").dag
    run = dag.test(run_conf={"prompt": quick("heron"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    (video,) = tmp_path.glob("*.mp4")
    app, _, request_id = video.stem.rpartition("~")  # named by the app and the request id
    assert app == "fal-ai~kling-video"
    assert sha256_of(video) == sim.get_task(request_id)["video_sha256"]
    (create,) = sim.requests(target="create")
    assert create["path"] == "/fal-ai/kling-video/v2.1/master/text-to-video"
    assert create["body"]["aspect_ratio"] == "16:9" and create["body"]["duration"] == "5"
    assert {r["path"] for r in sim.requests(target="result")} == {f"/fal-ai/kling-video/requests/{request_id}"}


def test_replicate_example_lands_the_video_of_the_prediction_with_its_timeout_as_the_deadline(
    load_dag_file, sim, videogen_connection, tmp_path
):
    videogen_connection(conn_id="videogen_replicate", api_style="replicate")
    dag = load_dag_file(EXAMPLES / "example_videogen_replicate.py").dag
    run = dag.test(run_conf={"prompt": quick("kite"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    (video,) = tmp_path.glob("*.mp4")
    assert sha256_of(video) == sim.get_task(video.stem)["video_sha256"]  # named by the prediction id
    (create,) = sim.requests(target="create")
    assert create["path"] == "/v1/models/kwaivgi/kling-v2.1/predictions"
    assert create["body"]["input"]["aspect_ratio"] == "16:9" and create["body"]["input"]["duration"] == 5
    assert create["headers"]["Cancel-After"] == "1h" and "Prefer" not in create["headers"]


def test_many_videos_lands_one_file_per_prompt(load_dag_file, sim, videogen_connection, tmp_path):
    dag = load_dag_file(EXAMPLES / "example_videogen_many_videos.py").dag
    prompts = [quick(f"clip {n}") for n in range(3)]
    run = dag.test(run_conf={"prompts": prompts, "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    assert len(list(tmp_path.glob("*.mp4"))) == 3
    assert len(sim.requests(target="create")) == 3


def test_many_videos_lands_every_video_made_when_one_generation_fails(
    load_dag_file, sim, videogen_connection, tmp_path
):
    """One failed generation must not cost the batch its other videos, nor pass as a successful run."""
    dag = load_dag_file(EXAMPLES / "example_videogen_many_videos.py").dag
    prompts = [quick("clip 0"), quick("clip 1 [sim:fail]"), quick("clip 2")]
    run = dag.test(run_conf={"prompts": prompts, "destination": tmp_path.as_uri() + "/"})
    assert run.state == "failed"
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert [states[("generate", n)] for n in range(3)] == ["success", "failed", "success"]
    landed = sorted(video.stem for video in tmp_path.glob("*.mp4"))
    made = sorted(task["id"] for task in sim.tasks() if task["final_status"] == "succeeded")
    assert landed == made and len(landed) == 2
    assert len(sim.requests(target="create")) == 3


def test_wait_and_fetch_lands_a_video_created_elsewhere(load_dag_file, sim, videogen_connection, tmp_path):
    task_id = sim.add_task(queued_seconds=0.2, running_seconds=0.3)
    dag = load_dag_file(EXAMPLES / "example_videogen_wait_and_fetch.py").dag
    run = dag.test(run_conf={"video_task_id": task_id, "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    assert sha256_of(tmp_path / f"{task_id}.mp4") == sim.get_task(task_id)["video_sha256"]


@pytest.mark.parametrize("name", [p.name for p in EXAMPLE_FILES])
def test_examples_wait_deferred(name):
    """The point of the examples is waiting without a worker slot: every wait is deferrable."""
    text = (EXAMPLES / name).read_text()
    assert "deferrable=False" not in text
    assert text.count("deferrable=True") >= 1 or ("VideoTaskSensor" not in text and "GenerateVideo" not in text)


def test_landed_videos_become_asset_events_through_the_alias(load_dag_file, sim, videogen_connection, tmp_path):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    module = load_dag_file(EXAMPLES / "example_videogen_assets.py")
    prompts = [quick(f"asset clip {n}") for n in range(2)]
    run = module.producer.test(run_conf={"prompts": prompts, "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
        found = {event.asset.uri: dict(event.extra) for event in events}
    videos = sorted(tmp_path.glob("*.mp4"))
    assert sorted(found) == [video.as_uri() for video in videos]  # one asset per landed object
    for video in videos:
        extra = found[video.as_uri()]
        served = sim.get_task(video.stem)
        assert extra["video_task_id"] == video.stem
        assert (extra["sha256"], extra["size_bytes"]) == (served["video_sha256"], video.stat().st_size)
        assert extra["model"] == "doubao-seedance-1-0-pro-250528"
        assert extra["duration"] == 5
        assert extra["last_frame_path"] == (tmp_path / f"{video.stem}.png").as_uri()
        assert "?" not in json.dumps(extra)  # no signed URL


DRAFT_PRICES = {"doubao-seedance-*": {"per_million_tokens": "2.5", "currency": "USD"}}


def test_draft_then_final_renders_the_full_video_after_the_draft_and_reports_each_steps_cost(
    load_dag_file, sim, videogen_connection, tmp_path
):
    videogen_connection(conn_id="videogen_priced", prices=DRAFT_PRICES)
    dag = load_dag_file(EXAMPLES / "example_videogen_draft_then_final.py").dag
    run = dag.test(run_conf={"prompt": quick("a lighthouse"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    draft_create, final_create = sim.requests(target="create")
    assert (draft_create["body"]["resolution"], draft_create["body"]["duration"]) == ("480p", 3)
    assert (final_create["body"]["resolution"], final_create["body"]["duration"]) == ("1080p", 5)
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    draft = tis["draft"].xcom_pull(task_ids="draft")
    assert final_create["body"]["seed"] == draft["seed"]  # the final render keeps the draft's composition
    (video,) = tmp_path.glob("*.mp4")
    assert sha256_of(video) == sim.get_task(video.stem)["video_sha256"]
    costs = tis["report_costs"].xcom_pull(task_ids="report_costs")
    for step in ("draft", "final"):
        assert costs[step]["basis"] == "priced" and costs[step]["currency"] == "USD"
        assert "tokens reported x 2.5 USD per million tokens" in costs[step]["computed"]
    assert float(costs["draft"]["amount"]) < 0.10 < float(costs["final"]["amount"]) < 1.00


def test_draft_then_final_pays_for_the_draft_only_when_the_check_stops_it(
    load_dag_file, sim, videogen_connection, tmp_path
):
    videogen_connection(conn_id="videogen_priced", prices=DRAFT_PRICES)
    dag = load_dag_file(EXAMPLES / "example_videogen_draft_then_final.py").dag
    conf = {"prompt": quick("a lighthouse"), "destination": tmp_path.as_uri() + "/", "render_final": False}
    run = dag.test(run_conf=conf)
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert (states["draft"], states["final"], states["fetch"]) == ("success", "skipped", "skipped")
    assert len(sim.requests(target="create")) == 1
    assert list(tmp_path.glob("*.mp4")) == []


def test_bedrock_example_waits_for_the_invocation_and_returns_the_video_s_s3_uri(
    load_dag_file, sim, bedrock_connection, bedrock_s3_endpoint
):
    import boto3

    from tests.conftest import BEDROCK_BUCKET, BEDROCK_SECRET

    bedrock_connection("videogen_bedrock", f"s3://{BEDROCK_BUCKET}/example")
    dag = load_dag_file(EXAMPLES / "example_videogen_bedrock.py").dag
    run = dag.test(run_conf={"prompt": quick("heron")})
    assert run.state == "success"
    (create,) = sim.requests(target="create")
    assert create["body"]["modelInput"]["videoGenerationConfig"] == {
        "durationSeconds": 6,
        "fps": 24,
        "dimension": "1280x720",
        "seed": 42,
    }
    # The token is the task instance's: derived from the DAG, task, run and map index, and the request.
    assert create["body"]["clientRequestToken"].startswith("videogen-")
    (task,) = [t for t in sim.tasks() if t["style"] == "bedrock_video"]
    fetched = run.get_task_instance("fetch").xcom_pull(task_ids="fetch")
    key = f"example/{task['id'].rsplit('/', 1)[1]}/output.mp4"
    assert fetched["video_url"] == f"s3://{BEDROCK_BUCKET}/{key}"
    keys = {"aws_access_key_id": "t", "aws_secret_access_key": "t", "region_name": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=bedrock_s3_endpoint, **keys)
    video = s3.get_object(Bucket=BEDROCK_BUCKET, Key=key)["Body"].read()
    assert hashlib.sha256(video).hexdigest() == sim.get_task(task["id"])["video_sha256"]
    assert BEDROCK_SECRET not in json.dumps(fetched)


def test_vertex_veo_example_waits_for_the_operation_and_lands_the_inline_video(
    load_dag_file, sim, vertex_connection, tmp_path
):
    from airflow_provider_videogen.testing.simulator.routes.vertex_veo import access_token
    from tests.conftest import VERTEX_ACCOUNT

    vertex_connection("videogen_vertex")
    dag = load_dag_file(EXAMPLES / "example_videogen_vertex_veo.py").dag
    run = dag.test(run_conf={"prompt": quick("heron"), "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    (create,) = sim.requests(target="create")
    assert create["body"]["parameters"] == {
        "aspectRatio": "16:9",
        "resolution": "720p",
        "durationSeconds": 8,
        "sampleCount": 1,
    }
    (video,) = tmp_path.glob("*.mp4")
    (listed,) = [t for t in sim.tasks() if t["style"] == "vertex_veo"]
    expected = sim.get_task(listed["id"])["video_sha256"]
    assert sha256_of(video) == expected
    fetched = run.get_task_instance("fetch").xcom_pull(task_ids="fetch")
    assert fetched["sha256"] == expected
    assert access_token(sim.api_key, VERTEX_ACCOUNT) not in json.dumps(fetched)


def test_the_batch_example_lands_every_request_of_its_upstream_task_and_a_manifest(
    load_dag_file, sim, videogen_connection, tmp_path
):
    dag = load_dag_file(EXAMPLES / "example_videogen_batch.py").dag
    products = [quick(f"product {n}") for n in range(3)]
    run = dag.test(run_conf={"products": products, "destination": tmp_path.as_uri() + "/"})
    assert run.state == "success"
    assert sorted(path.name for path in tmp_path.glob("*.mp4")) == [f"product-000{n}.mp4" for n in range(3)]
    lines = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [line["status"] for line in lines] == ["landed"] * 3
    assert len(sim.requests(target="create")) == 3
