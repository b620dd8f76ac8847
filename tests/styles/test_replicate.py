"""The ``replicate`` style (Replicate predictions): its request, ids, statuses, cancel, files and key."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_videogen.exceptions import (
    VideoGenAPIError,
    VideoGenAuthError,
    VideoGenConfigurationError,
    VideoGenTransientError,
    VideoNotAvailableError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.generation_request import VideoGenerationRequest
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.videogen import GenerateVideoOperator
from airflow_provider_videogen.settings import VideoGenConnectionSettings
from airflow_provider_videogen.styles.replicate import cancel_after_duration
from airflow_provider_videogen.testing._media import video_sha256
from airflow_provider_videogen.testing.simulator.routes.replicate import cancel_after_seconds
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_task import VideoTaskStatus
from tests.loopback import API_KEY
from tests.styles.style_cases import FAST, StyleCase

CASE = StyleCase("replicate", "vg_replicate")
STYLE = CASE.style
CONN = CASE.conn_id
hook, fetch = CASE.hook, CASE.fetch
MODEL = "kwaivgi/kling-v2.1"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
PREDICTION_ID = "gm3qorzdhgbfurvjtvhg6dckhu"  # the shape of Replicate's own examples
QUICK = "[sim:queued=0] [sim:running=0]"


def body(model: str = MODEL, **fields: Any) -> dict[str, Any]:
    return STYLE.create_body(VideoGenerationRequest.from_fields(model=model, **fields))


def prediction(sim, prompt: str = "p", **kwargs: Any) -> str:
    """Add a Replicate prediction to the simulator, finished at once unless told otherwise; return its id."""
    return CASE.add(sim, model=MODEL, created_body={"model": MODEL, "input": {"prompt": prompt}}, **kwargs)


# ---- the request ---------------------------------------------------------------------------------


def test_the_body_is_the_model_input_with_replicate_names_and_every_generation_param_as_given():
    assert body(
        prompt="a heron",
        ratio="16:9",
        duration=5,
        seed=7,
        start_image="https://x/first.png",
        negative_prompt="blur",
    ) == {
        "input": {
            "prompt": "a heron",
            "aspect_ratio": "16:9",
            "duration": 5,
            "seed": 7,
            "start_image": "https://x/first.png",
            "negative_prompt": "blur",
        }
    }
    assert body(prompt="only this") == {"input": {"prompt": "only this"}}  # nothing added that was not asked for


@pytest.mark.parametrize(
    ("model", "route", "version"),
    [
        (MODEL, f"/models/{MODEL}/predictions", None),
        (f"{MODEL}:{VERSION}", "/predictions", VERSION),
        (VERSION, "/predictions", VERSION),
    ],
)
def test_an_official_model_is_run_by_name_and_a_version_through_the_predictions_collection(model, route, version):
    request = VideoGenerationRequest.from_fields(model=model, prompt="p")
    assert STYLE.create_route(request) == route
    assert STYLE.create_body(request).get("version") == version


@pytest.mark.parametrize(
    ("model", "fields", "reason"),
    [
        ("kling", {}, "Invalid Replicate model"),
        ("owner/../admin", {}, "Invalid Replicate model"),
        ("owner/name?x=1", {}, "Invalid Replicate model"),
        (f"{MODEL}:notaversion", {}, "Invalid Replicate model"),
        (VERSION.upper(), {}, "Invalid Replicate model"),
        (MODEL, {"content": [{"type": "text", "text": "p"}]}, "content list"),
        (MODEL, {"image_urls": ["https://x/first.png"]}, "under the name the model"),
        (MODEL, {"image_file": b"\x89PNG"}, "data: URIs in image_urls"),
    ],
)
def test_what_replicate_cannot_take_is_refused_before_sending(sim, style_connection, model, fields, reason):
    with pytest.raises(VideoGenConfigurationError, match=reason):
        hook().create_task(model=model, prompt="p", **fields)
    assert sim.requests() == []


def test_create_posts_the_input_with_the_bearer_token_never_prefer_wait_and_returns_the_prediction_id(
    sim, style_connection
):
    task_id = hook().create_task(model=MODEL, prompt="a heron", duration=5)
    assert len(task_id) == 26 and task_id.isalnum() and task_id.islower()
    (create,) = sim.requests(target="create")
    assert (create["method"], create["path"]) == ("POST", f"/v1/models/{MODEL}/predictions")
    assert create["body"] == {"input": {"prompt": "a heron", "duration": 5}}
    assert create["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert "Prefer" not in create["headers"]  # the create answers at once, so its id is recorded
    assert "Cancel-After" not in create["headers"]  # no timeout, no deadline
    assert hook().get_task(task_id).id == task_id


def test_a_version_is_created_on_the_predictions_collection(sim, style_connection):
    task_id = hook().create_task(model=f"{MODEL}:{VERSION}", prompt="p")
    (create,) = sim.requests(target="create")
    assert create["path"] == "/v1/predictions" and create["body"] == {"input": {"prompt": "p"}, "version": VERSION}
    assert hook().get_task(task_id).status is VideoTaskStatus.QUEUED


@pytest.mark.parametrize(("seconds", "header"), [(30, "30s"), (60, "1m"), (3900, "1h5m"), (3930.2, "1h5m31s")])
def test_a_deadline_is_written_as_replicate_s_duration_and_read_back_by_the_simulator(seconds, header):
    assert cancel_after_duration(seconds) == header
    assert cancel_after_seconds(header) == float(int(seconds + 0.99))


def test_the_operator_s_timeout_is_sent_as_cancel_after_so_replicate_stops_a_prediction_nobody_waits_for(
    sim, style_connection
):
    operator = GenerateVideoOperator(
        task_id="g", model=MODEL, prompt="p [sim:queued=600]", videogen_conn_id=CONN, timeout=90
    )
    hook().create_task(operator.generation_request())
    (create,) = sim.requests(target="create")
    assert create["headers"]["Cancel-After"] == "1m30s"
    # Without cancel_on_kill the user keeps it running past the wait; without a wait a sensor may wait longer.
    for kwargs in ({"cancel_on_kill": False}, {"wait_for_completion": False}):
        kept = GenerateVideoOperator(task_id="g", model=MODEL, prompt="p", videogen_conn_id=CONN, timeout=90, **kwargs)
        assert kept.generation_request().cancel_after is None


def test_a_deadline_reached_before_the_start_aborts_and_one_reached_while_running_cancels(sim, style_connection):
    waiting = hook().create_task(VideoGenerationRequest(model=MODEL, prompt="p [sim:queued=600]", cancel_after=1))
    running = hook().create_task(
        VideoGenerationRequest(model=MODEL, prompt="p [sim:queued=0] [sim:running=600]", cancel_after=1)
    )
    assert [r["headers"]["Cancel-After"] for r in sim.requests(target="create")] == ["1s", "1s"]
    time.sleep(1.1)  # nothing else happens to them: the deadline alone ends them
    aborted, cancelled = hook().get_task(waiting), hook().get_task(running)
    assert (aborted.status, aborted.raw_status) == (VideoTaskStatus.CANCELLED, "aborted")  # not billed
    assert (cancelled.status, cancelled.raw_status) == (VideoTaskStatus.CANCELLED, "canceled")  # billed
    assert "aborted" in aborted.describe_failure()


def test_without_a_host_the_connection_is_replicate_s_api():
    settings = VideoGenConnectionSettings.from_connection_fields(
        "c", host=None, password="k", extra={"api_style": "replicate"}
    )
    assert (settings.base_url, settings.path_prefix) == ("https://api.replicate.com", "/v1")
    assert settings.task_url(PREDICTION_ID) == f"https://api.replicate.com/v1/predictions/{PREDICTION_ID}"


# ---- the id ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        f"{PREDICTION_ID}/cancel",
        f"../{PREDICTION_ID}",
        f"{PREDICTION_ID}?x=1",
        f"{PREDICTION_ID}#x",
        f"{PREDICTION_ID}%2f..",
        PREDICTION_ID.upper(),
        f"https://evil.example/v1/predictions/{PREDICTION_ID}",
        f" {PREDICTION_ID}",
        "cgt-20250331175019-68d9t",  # another style's id
        "short",
        "",
        None,
    ],
)
def test_a_hostile_id_is_refused_before_any_request(sim, style_connection, bad):
    with pytest.raises(VideoGenConfigurationError, match="Invalid Replicate prediction id"):
        hook().get_task(bad)
    with pytest.raises(VideoGenConfigurationError, match="Invalid Replicate prediction id"):
        hook().cancel_task(bad)
    assert sim.requests() == []


# ---- the statuses and the outputs -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_status_maps_onto_the_video_task(mode, sim, style_connection):
    ids = [
        prediction(sim, queued_seconds=600),
        prediction(sim, running_seconds=600),
        prediction(sim),
        prediction(sim, final_status="failed", error_code="E6716", error_message="Director: unexpected error"),
        prediction(sim, running_seconds=600),
        prediction(sim, queued_seconds=600),
    ]
    sim.set_status(ids[4], "cancelled")
    sim.set_status(ids[5], "aborted")

    async def read_all() -> list[Any]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return [await h.aget_task(i) for i in ids]

    tasks = [hook().get_task(i) for i in ids] if mode == "sync" else asyncio.run(read_all())
    assert [(t.status, t.raw_status) for t in tasks] == [
        (VideoTaskStatus.QUEUED, "starting"),
        (VideoTaskStatus.RUNNING, "processing"),
        (VideoTaskStatus.SUCCEEDED, "succeeded"),
        (VideoTaskStatus.FAILED, "failed"),
        (VideoTaskStatus.CANCELLED, "canceled"),
        (VideoTaskStatus.CANCELLED, "aborted"),
    ]
    assert tasks[2].video_url and f"/_files/videos/{ids[2]}.mp4" in tasks[2].video_url
    assert tasks[3].error_message == "Director: unexpected error"
    assert all(t.is_terminal for t in tasks[2:]) and not any(t.is_terminal for t in tasks[:2])


@pytest.mark.parametrize(
    ("output", "video"),
    [
        ("https://replicate.delivery/xezq/a/output.mp4", "https://replicate.delivery/xezq/a/output.mp4"),
        (["https://replicate.delivery/t.webp", "https://replicate.delivery/v.mp4"], "https://replicate.delivery/v.mp4"),
        (["https://replicate.delivery/v.mp4?x=1", "https://replicate.delivery/a.wav"], "https://replicate.delivery/v.mp4?x=1"),
        ({"thumbnail": "https://replicate.delivery/t.png", "video": "https://replicate.delivery/v"}, "https://replicate.delivery/v"),
        (["https://replicate.delivery/only-one"], "https://replicate.delivery/only-one"),
        ([], None),
        (None, None),
    ],
)  # fmt: skip
def test_the_video_is_taken_from_every_output_shape(output, video):
    task = STYLE.parse_task({"id": PREDICTION_ID, "status": "succeeded", "output": output}, PREDICTION_ID)
    assert task.video_url == video


def test_a_list_output_with_a_thumbnail_first_lands_the_video(sim, style_connection, tmp_path: Path):
    task_id = hook().create_task(model=MODEL, prompt=f"p {QUICK} [sim:output-list]")
    task = hook().get_task(task_id)
    assert isinstance(task.raw["output"], list) and task.raw["output"][0].endswith(".png")
    result = fetch(video_task_id=task_id, destination=f"{tmp_path.as_uri()}/")
    assert result["video_path"].endswith(f"/{task_id}.mp4")
    assert result["sha256"] == video_sha256(task_id, sim.get_task(task_id)["video_size"])
    assert [d["path"] for d in sim.requests(target="download")] == [f"/_files/videos/{task_id}.mp4"]


def test_an_unknown_prediction_is_not_found(sim, style_connection):
    with pytest.raises(VideoTaskNotFoundError, match="Not found"):
        hook().get_task(PREDICTION_ID)


def test_an_answer_about_another_prediction_is_not_trusted(sim, style_connection):
    task_id = prediction(sim, running_seconds=600)
    other = {"id": PREDICTION_ID, "status": "succeeded", "output": "https://replicate.delivery/other.mp4"}
    sim.add_fault(kind="http_error", target="query", status=200, body=other)
    with pytest.raises(VideoGenAPIError, match="another task"):
        hook().get_task(task_id)


def test_a_refused_key_is_an_auth_error_that_does_not_show_the_key(sim, videogen_connection):
    CASE.connect(videogen_connection, api_key="wrong-key-123")
    with pytest.raises(VideoGenAuthError, match="Unauthenticated") as raised:
        hook().get_task(prediction(sim))
    assert "wrong-key-123" not in str(raised.value)


def test_a_create_refused_by_the_api_says_why(sim, style_connection):
    with pytest.raises(VideoGenAPIError, match=r"input\.prompt"):
        hook().create_task(model=MODEL, prompt="x [sim:invalid-request]")


def test_the_connection_test_passes_on_a_404_with_replicate_s_detail(sim, style_connection):
    ok, message = VideoGenHook(CONN).test_connection()
    assert ok, message
    (probe,) = sim.requests()
    assert probe["path"] == f"/v1/predictions/{STYLE.probe_task_id}"


def test_the_console_link_is_the_prediction_s_web_page_that_replicate_answers(sim, style_connection):
    task_id = prediction(sim)
    page = STYLE.console_url("https://api.replicate.com", task_id)
    assert page == f"https://replicate.com/p/{task_id}" == hook().get_task(task_id).raw["urls"]["web"]
    assert API_KEY not in page


# ---- 429 ------------------------------------------------------------------------------------------


def test_a_throttled_call_waits_the_seconds_replicate_names_in_its_detail(sim, style_connection):
    task_id = prediction(sim)
    sim.add_fault(kind="http_error", target="query", status=429, retry_after=7)
    with pytest.raises(VideoGenTransientError) as raised:
        VideoGenHook(CONN, retry_policy=RetryPolicy(max_attempts=1)).get_task(task_id)
    assert raised.value.retry_after == 7.0
    # As Replicate answers it: the wait is in the detail alone, no Retry-After.
    sim.add_fault(kind="http_error", target="query", status=429, retry_after=7)
    direct = requests.get(
        f"{sim.base_url}/v1/predictions/{task_id}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert "Retry-After" not in direct.headers
    assert direct.json() == {"detail": "Request was throttled. Expected available in 7 seconds."}
    assert STYLE.retry_after({}, {"detail": "Request was throttled. Your rate limit resets in ~30s."}) == 30.0


def test_a_throttled_call_waits_its_retry_after_header_first(sim, style_connection):
    task_id = prediction(sim)
    sim.add_fault(kind="http_error", target="query", status=429, retry_after=37, body={"detail": "Throttled."})
    with pytest.raises(VideoGenTransientError) as raised:
        VideoGenHook(CONN, retry_policy=RetryPolicy(max_attempts=1)).get_task(task_id)
    assert raised.value.retry_after == 37.0


def test_a_throttled_create_is_sent_again_and_creates_once(sim, style_connection):
    sim.add_fault(kind="http_error", target="create", status=429, retry_after=0)
    task_id = hook().create_task(model=MODEL, prompt="p")
    assert [r["status"] for r in sim.requests(target="create")] == [429, 201]
    assert [t["id"] for t in sim.tasks()] == [task_id]


# ---- cancel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{"queued_seconds": 600}, {"running_seconds": 600}])
def test_a_prediction_starting_or_processing_is_cancelled(sim, style_connection, kwargs):
    task_id = prediction(sim, **kwargs)
    assert hook().cancel_task(task_id) is True
    (cancel,) = sim.requests(target="cancel")
    assert (cancel["method"], cancel["path"], cancel["status"]) == ("POST", f"/v1/predictions/{task_id}/cancel", 200)
    assert cancel["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert hook().get_task(task_id).raw_status == "canceled"


@pytest.mark.parametrize("kwargs", [{}, {"final_status": "failed"}])
def test_a_finished_prediction_is_never_sent_a_cancel(sim, style_connection, kwargs):
    task_id = prediction(sim, **kwargs)
    assert hook().cancel_task(task_id) is False
    assert sim.requests(target="cancel") == []


def test_the_async_cancel_cancels_a_running_prediction_and_spares_a_finished_one(sim, style_connection):
    running, finished = prediction(sim, running_seconds=600), prediction(sim)

    async def cancel_both() -> tuple[bool, bool]:
        async with VideoGenHook(CONN, retry_policy=FAST) as h:
            return await h.acancel_task(running), await h.acancel_task(finished)

    assert asyncio.run(cancel_both()) == (True, False)
    assert [c["path"] for c in sim.requests(target="cancel")] == [f"/v1/predictions/{running}/cancel"]


# ---- the wait and the file ------------------------------------------------------------------------


def test_the_deferred_wait_ends_on_success_and_its_payload_holds_no_key(sim, style_connection):
    task_id = prediction(sim, running_seconds=0.3)
    trigger = VideoTaskTrigger(task_id, videogen_conn_id=CONN, poll_interval=0.1)
    assert API_KEY not in json.dumps(trigger.serialize())

    async def first_event() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first_event())
    assert event.payload["status"] == "success"
    assert API_KEY not in json.dumps(event.payload)


def test_the_video_lands_from_the_public_url_without_the_token_even_after_a_redirect(
    sim, style_connection, tmp_path: Path
):
    task_id = prediction(sim, video_size=300_000)
    sim.add_fault(kind="redirect", target="download")
    result = fetch(video_task_id=task_id, destination=f"{tmp_path.as_uri()}/")
    assert result["video_path"].endswith(f"/{task_id}.mp4")
    assert result["sha256"] == video_sha256(task_id, 300_000)
    downloads = sim.requests(target="download")
    assert downloads[0]["status"] == 307 and len(downloads) >= 2
    assert all("authorization" not in {h.lower() for h in d["headers"]} for d in downloads)
    assert API_KEY not in json.dumps(result)


def test_an_output_under_the_api_s_own_root_is_fetched_with_the_token(sim, style_connection, tmp_path: Path):
    task_id = hook().create_task(model=MODEL, prompt=f"p {QUICK} [sim:api-file] [sim:size=200000]")
    result = fetch(video_task_id=task_id, destination=f"{tmp_path.as_uri()}/")
    assert result["sha256"] == video_sha256(task_id, 200_000)
    (download,) = sim.requests(target="download")
    assert download["path"] == f"/v1/files/{task_id}/download"
    assert download["headers"]["Authorization"] == f"Bearer {API_KEY}"
    refused = requests.get(f"{sim.base_url}/v1/files/{task_id}/download", timeout=5)
    assert refused.status_code == 401  # the simulator's API file is the token's only


def test_the_token_does_not_follow_an_api_file_redirected_to_another_origin(sim, style_connection, tmp_path: Path):
    elsewhere = sim.base_url.replace("127.0.0.1", "localhost")  # the same server, another origin
    task_id = hook().create_task(model=MODEL, prompt=f"p {QUICK} [sim:file-redirect={elsewhere}]")
    result = fetch(video_task_id=task_id, destination=f"{tmp_path.as_uri()}/")
    assert result["size_bytes"] > 0
    api, signed = sim.requests(target="download")
    assert api["status"] == 302 and api["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert signed["path"].startswith("/_files/videos/") and signed["headers"]["Host"].startswith("localhost")
    assert "authorization" not in {h.lower() for h in signed["headers"]}


def test_an_output_replicate_removed_after_an_hour_says_so_and_how_to_land_in_time(
    sim, style_connection, tmp_path: Path
):
    task_id = hook().create_task(model=MODEL, prompt=f"p {QUICK} [sim:output-ttl=0]")
    task = hook().get_task(task_id)
    assert task.status is VideoTaskStatus.SUCCEEDED and task.raw["data_removed"] is True and task.video_url is None
    with pytest.raises(VideoNotAvailableError, match="data_removed") as raised:
        fetch(video_task_id=task_id, destination=f"{tmp_path.as_uri()}/")
    assert "an hour after it finishes" in str(raised.value) and "same DAG run" in str(raised.value)
    assert sim.requests(target="download") == [] and list(tmp_path.iterdir()) == []


def test_waits_poll_every_5_s_by_default(style_connection):
    operator = GenerateVideoOperator(task_id="g", model=MODEL, prompt="p", videogen_conn_id=CONN)
    assert operator._poll_interval() == 5.0


# ---- beside Gemini's /models/... routes -----------------------------------------------------------


def test_replicate_and_gemini_routes_answer_their_own_requests_on_one_simulator(sim, videogen_connection):
    gemini = StyleCase("gemini_veo", "vg_gemini")
    gemini.connect(videogen_connection)
    CASE.connect(videogen_connection)
    name = gemini.hook().create_task(model="veo-3.1-generate-preview", prompt="p")
    task_id = hook().create_task(model="google/veo-3", prompt="p")
    assert name.startswith("models/veo-3.1-generate-preview/operations/") and len(task_id) == 26
    assert gemini.hook().get_task(name).id == name and hook().get_task(task_id).id == task_id
    styles = {t["id"]: t["style"] for t in sim.tasks()}
    assert styles == {name.rsplit("/", 1)[1]: "gemini_veo", task_id: "replicate"}
    # A Gemini operation under a model called like Replicate's collection is still Gemini's, and back.
    assert gemini.hook().create_task(model="predictions", prompt="p").startswith("models/predictions/operations/")
    assert sim.requests(target="other") == []


# ---- the list call: finding the prediction a killed try paid for ------------------------------------


def listed(model: str = MODEL, **fields: Any) -> dict[str, Any]:
    """A prediction as Replicate's list call shows it: the model by name, its version, the whole input."""
    return {
        "id": PREDICTION_ID,
        "model": model,
        "version": VERSION,
        "input": body(model, **fields)["input"],
        "source": "api",
        "status": "starting",
        "created_at": "2025-06-27T19:49:32.335Z",
    }


def test_the_predictions_list_reads_newest_first_with_the_next_page_url():
    answer = {"next": "https://api.replicate.com/v1/predictions?cursor=cD0y", "previous": None, "results": [listed()]}
    items, more = STYLE.recent_generations(answer)
    assert [item["id"] for item in items] == [PREDICTION_ID] and more
    assert STYLE.recent_generations_next(answer) == answer["next"]
    last = {"next": None, "previous": answer["next"], "results": []}
    assert STYLE.recent_generations(last) == ([], False) and STYLE.recent_generations_next(last) is None
    assert STYLE.recent_generations({"detail": "Not found."}) is None  # not a list: the caller says so
    assert STYLE.recent_generations_query(body(prompt="p")) == ("/predictions", [])
    assert STYLE.parse_task(listed(), None).created_at == 1751053772  # ISO, read as unix seconds


def test_a_listed_prediction_answers_a_request_of_the_same_model_and_the_whole_same_input():
    sent = body(prompt="a heron", duration=5)
    assert STYLE.answers_request(listed(prompt="a heron", duration=5), sent, model=MODEL)
    assert not STYLE.answers_request(listed(prompt="a heron"), sent, model=MODEL)  # an input field missing
    assert not STYLE.answers_request(listed(prompt="a heron", duration=5, seed=1), sent, model=MODEL)  # one more
    assert not STYLE.answers_request(listed(prompt="a heron", duration=10), sent, model=MODEL)
    assert not STYLE.answers_request({**listed(prompt="a heron", duration=5), "input": None}, sent, model=MODEL)


def test_a_prediction_of_another_model_with_the_same_input_does_not_answer_the_request():
    sent = body(prompt="a heron")
    assert not STYLE.answers_request(listed("google/veo-3", prompt="a heron"), sent, model=MODEL)


def test_a_version_request_is_answered_by_a_prediction_of_that_version_whatever_its_model_is_called():
    for model in (VERSION, f"{MODEL}:{VERSION}"):
        sent = body(model, prompt="a heron")
        assert STYLE.answers_request(listed(prompt="a heron"), sent, model=model)
        other = {**listed(prompt="a heron"), "version": "0" * 64}
        assert not STYLE.answers_request(other, sent, model=model)


def test_a_prediction_made_on_the_website_never_answers_a_request_the_provider_sent():
    sent = body(prompt="a heron")
    assert not STYLE.answers_request({**listed(prompt="a heron"), "source": "web"}, sent, model=MODEL)


def test_the_simulator_lists_predictions_newest_first_a_hundred_a_page_with_a_next_url(sim, style_connection):
    made = [prediction(sim, prompt=f"p{n}") for n in range(101)]
    auth = {"Authorization": f"Bearer {API_KEY}"}
    first = requests.get(f"{sim.base_url}/v1/predictions", headers=auth, timeout=5).json()
    assert [p["id"] for p in first["results"]] == made[:0:-1] and first["previous"] is None
    assert first["results"][0]["input"] == {"prompt": "p100"} and first["results"][0]["model"] == MODEL
    assert first["results"][0]["created_at"].endswith("Z") and first["results"][0]["source"] == "api"
    assert first["next"].startswith(f"{sim.base_url}/v1/predictions?cursor=")
    second = requests.get(first["next"], headers=auth, timeout=5).json()
    assert [p["id"] for p in second["results"]] == made[:1] and second["next"] is None and second["previous"]


def test_find_generations_follows_the_next_pages_back_to_the_time_asked(sim, style_connection):
    since = time.time() - 1
    paid_for = hook().create_task(model=MODEL, prompt="a heron")
    for n in range(100):  # a busy account: the prediction is on the second page by the time a try looks
        prediction(sim, prompt=f"other {n}")
    found = hook().find_generations(VideoGenerationRequest(model=MODEL, prompt="a heron"), since)
    assert [task.id for task in found] == [paid_for]
    assert len(sim.requests(target="list")) == 2
