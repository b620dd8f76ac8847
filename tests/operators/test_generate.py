"""GenerateVideoOperator against the simulator: submit once, wait, reconnect, cancel."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_videogen._compat import AirflowFailException
from airflow_provider_videogen.exceptions import (
    VideoGenConfigurationError,
    VideoGenerationFailedError,
    VideoGenerationNotSavedError,
    VideoGenerationOverBudgetError,
    VideoGenError,
    VideoGenTransientError,
)
from airflow_provider_videogen.hooks.videogen import RetryPolicy
from airflow_provider_videogen.operators.videogen import GenerateVideoOperator
from airflow_provider_videogen.styles import STYLES
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from tests.task_context import FakeStateStore, FakeTaskInstance, recorded_id

try:
    from airflow.sdk.exceptions import TaskDeferred
except ImportError:  # Airflow 3.1
    from airflow.exceptions import TaskDeferred  # type: ignore[no-redef,attr-defined]

MODEL = "doubao-seedance-1-0-pro-250528"
FAST = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02)


def context(store: FakeStateStore | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"ti": FakeTaskInstance()}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def operator(**kwargs: Any) -> GenerateVideoOperator:
    defaults: dict[str, Any] = {
        "task_id": "generate",
        "model": MODEL,
        "prompt": "a red fox in the snow",
        "poll_interval": 0.05,
        "deferrable": False,
        "http_retry_policy": FAST,
    }
    return GenerateVideoOperator(**{**defaults, **kwargs})


def quick(prompt: str = "a red fox in the snow") -> str:
    """A prompt whose simulated generation finishes at once."""
    return f"{prompt} [sim:queued=0] [sim:running=0.1]"


def test_worker_mode_submits_once_waits_and_returns_the_task(sim, videogen_connection):
    ctx = context()
    result = operator(
        prompt=quick(), generation_params={"resolution": "720p", "duration": 5, "return_last_frame": True}
    ).execute(ctx)
    assert result["status"] == "succeeded"
    assert result["video_url"]
    assert ctx["ti"].xcom["video_task_id"] == result["id"]
    (create,) = sim.requests(target="create")
    assert create["body"]["resolution"] == "720p"
    assert create["body"]["return_last_frame"] is True


def test_the_finished_line_says_once_that_the_task_succeeded_and_how_long_it_waited(
    sim, videogen_connection, caplog, capsys
):
    with caplog.at_level(logging.INFO):
        result = operator(prompt=quick()).execute(context())
    (line,) = [line for line in operator_log(caplog, capsys) if "waited" in line]
    assert f"Video task {result['id']} succeeded (waited " in line
    assert line.count("succeeded") == 1 and "success" not in line


def test_a_failed_generation_is_logged_in_one_sentence_with_the_wait(sim, videogen_connection, caplog, capsys):
    with caplog.at_level(logging.INFO), pytest.raises(VideoGenerationFailedError):
        operator(prompt=quick("[sim:fail] a fox")).execute(context())
    (line,) = [line for line in operator_log(caplog, capsys) if "waited" in line]
    assert "ended failed" in line and "OutputVideoSensitiveContentDetected" in line
    # The event's own sentence, with the wait in it: not the status word, then the sentence again.
    assert ": failed (waited" not in line and "(waited " in line


@pytest.mark.parametrize("include_urls", [True, False])
def test_the_return_value_holds_the_signed_file_urls_only_with_include_urls(sim, videogen_connection, include_urls):
    result = operator(prompt=quick(), generation_params={"return_last_frame": True}, include_urls=include_urls).execute(
        context()
    )
    assert result["status"] == "succeeded"
    if include_urls:
        assert "X-Signature=" in result["video_url"] and "X-Signature=" in result["last_frame_url"]
    else:
        assert result["video_url"] is None and result["last_frame_url"] is None
        assert "/_files/" not in json.dumps(result)  # nor in the raw answer, which holds them too


def test_without_waiting_the_id_is_returned_at_once(sim, videogen_connection):
    ctx = context()
    video_task_id = operator(wait_for_completion=False).execute(ctx)
    assert video_task_id == ctx["ti"].xcom["video_task_id"]
    assert video_task_id.startswith("cgt-")
    assert sim.requests(target="query") == []


def test_video_generations_style_submits_to_the_gateway(sim, videogen_connection):
    videogen_connection(conn_id="vg_video", api_style="video_generations")
    result = operator(videogen_conn_id="vg_video", prompt=quick()).execute(context())
    assert result["id"].startswith("task_")
    assert result["status"] == "succeeded"


def test_deferrable_defers_with_the_trigger_and_pushes_the_id_first(sim, videogen_connection):
    ctx = context()
    op = operator(deferrable=True, timeout=600, poll_interval=7)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(ctx)
    trigger = deferred.value.trigger
    assert isinstance(trigger, VideoTaskTrigger)
    assert trigger.video_task_id == ctx["ti"].xcom["video_task_id"]
    assert trigger.poll_interval == 7
    assert trigger.cancel_on_kill is True
    assert trigger.end_time == pytest.approx(time.time() + 600, abs=30)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None
    assert len(sim.requests(target="create")) == 1


def test_remote_failure_fails_with_the_api_message(sim, videogen_connection):
    with pytest.raises(VideoGenerationFailedError, match="OutputVideoSensitiveContentDetected") as caught:
        operator(prompt=quick("[sim:fail] a fox")).execute(context())
    assert caught.value.api_code == "OutputVideoSensitiveContentDetected"
    # Retrying may succeed with a new generation: not an AirflowFailException.
    assert not isinstance(caught.value, AirflowFailException)


def test_crash_mid_wait_then_retry_reconnects_without_a_second_create(sim, videogen_connection):
    store = FakeStateStore()
    sim.add_fault(kind="http_error", target="query", status=503, times=2)
    first_try = operator(prompt="a fox [sim:queued=0] [sim:running=0.5]", http_retry_policy=RetryPolicy(max_attempts=1))
    with pytest.raises(VideoGenTransientError):
        first_try.execute(context(store))
    video_task_id = recorded_id(store)

    retry = operator(prompt="a fox [sim:queued=0] [sim:running=0.5]")
    result = retry.execute(context(store))
    assert result["id"] == video_task_id
    assert result["status"] == "succeeded"
    assert len(sim.requests(target="create")) == 1


def test_retry_after_success_returns_the_same_video_without_creating(sim, videogen_connection):
    store = FakeStateStore()
    first = operator(prompt=quick()).execute(context(store))
    again = operator(prompt=quick()).execute(context(store))
    assert again["id"] == first["id"]
    assert len(sim.requests(target="create")) == 1


def test_retry_after_a_remote_failure_submits_anew(sim, videogen_connection):
    store = FakeStateStore()
    with pytest.raises(VideoGenerationFailedError):
        operator(prompt=quick("[sim:fail] a fox")).execute(context(store))
    failed_id = recorded_id(store)
    result = operator(prompt=quick()).execute(context(store))
    assert result["id"] != failed_id
    assert recorded_id(store) == result["id"]
    assert len(sim.requests(target="create")) == 2


def test_without_a_state_store_every_try_submits(sim, videogen_connection):
    operator(prompt=quick(), wait_for_completion=False).execute(context())
    operator(prompt=quick(), wait_for_completion=False).execute(context())
    assert len(sim.requests(target="create")) == 2


def test_deadline_cancels_a_still_queued_generation(sim, videogen_connection):
    ctx = context()
    with pytest.raises(VideoGenError, match="still queued at the deadline"):
        operator(prompt="slow [sim:queued=600]", timeout=0.3).execute(ctx)
    assert sim.get_task(ctx["ti"].xcom["video_task_id"])["status"] == "cancelled"


def test_deadline_leaves_a_running_generation_alone(sim, videogen_connection):
    ctx = context()
    with pytest.raises(VideoGenError, match="still running at the deadline"):
        operator(prompt="slow [sim:queued=0] [sim:running=600]", timeout=0.3).execute(ctx)
    assert sim.get_task(ctx["ti"].xcom["video_task_id"])["status"] == "running"
    assert sim.requests(method="DELETE") == []


def test_deadline_without_cancel_on_kill_cancels_nothing(sim, videogen_connection):
    with pytest.raises(VideoGenError, match="deadline"):
        operator(prompt="slow [sim:queued=600]", timeout=0.3, cancel_on_kill=False).execute(context())
    assert sim.requests(method="DELETE") == []


def execute_in_a_worker(op: GenerateVideoOperator, ctx: dict[str, Any]) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``op.execute`` in a thread, as a worker runs it; the list receives what it raised."""
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(ctx)
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    return worker, outcome


def wait_until(condition: Any, seconds: float = 10) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.01)


def test_killing_the_worker_cancels_a_queued_generation(sim, videogen_connection):
    ctx = context()
    op = operator(prompt="slow [sim:queued=600]", timeout=30)
    worker, outcome = execute_in_a_worker(op, ctx)
    wait_until(lambda: sim.requests(target="query"))
    op.on_kill()
    worker.join(timeout=10)
    video_task_id = ctx["ti"].xcom["video_task_id"]
    assert sim.get_task(video_task_id)["status"] == "cancelled"
    assert [type(e) for e in outcome] == [VideoGenerationFailedError]


def test_kill_before_submitting_sends_nothing(sim, videogen_connection):
    operator().on_kill()
    assert sim.requests() == []


@pytest.mark.parametrize(
    ("event", "error", "match"),
    [
        (
            {"status": "failed", "message": "Video task x ended failed.", "error_code": "E1"},
            VideoGenerationFailedError,
            "ended failed",
        ),
        ({"status": "error", "message": "Stopped waiting: HTTP 401."}, VideoGenError, "HTTP 401"),
        (None, VideoGenError, "without a trigger event"),
        ({"status": "weird", "message": "?"}, VideoGenError, "does not understand"),
    ],
)
def test_execute_complete_turns_bad_events_into_clear_errors(event, error, match, videogen_connection):
    if isinstance(event, dict):
        event = {"video_task_id": "cgt-1", "task": None, **event}
    with pytest.raises(error, match=match):
        operator().execute_complete(context(), event)


def test_execute_complete_success_returns_the_task_read_again(sim, videogen_connection):
    task_id = sim.add_task(final_status="succeeded", queued_seconds=0, running_seconds=0)
    task = {"id": task_id, "status": "succeeded", "video_url": "https://files.example.com/v.mp4?…"}
    event = {"status": "success", "video_task_id": task_id, "task": task, "message": f"Video task {task_id} succeeded."}
    result = operator().execute_complete(context(), event)
    assert result["id"] == task_id and result["status"] == "succeeded"
    assert "X-Signature=" in result["video_url"]


def test_execute_complete_timeout_cancels_a_queued_generation(sim, videogen_connection):
    task_id = sim.add_task(queued_seconds=600)
    event = {"status": "timeout", "video_task_id": task_id, "task": None, "message": "still queued at the deadline"}
    with pytest.raises(VideoGenError, match="deadline"):
        operator().execute_complete(context(), event)
    assert sim.get_task(task_id)["status"] == "cancelled"


def test_generation_fields_are_templated():
    assert {"model", "prompt", "image_urls", "content", "generation_params", "videogen_conn_id"} <= set(
        GenerateVideoOperator.template_fields
    )


@pytest.mark.parametrize("kwargs", [{"poll_interval": 0}, {"timeout": -1}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        operator(**kwargs)


@pytest.mark.parametrize("deferrable", [True, False])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", float("inf")),
        ("timeout", float("nan")),
        ("timeout", True),
        ("timeout", "3600"),
        ("timeout", 1e15),
        ("timeout", timedelta(days=400)),
        ("poll_interval", float("inf")),
        ("poll_interval", True),
        ("poll_interval", "10"),
        ("poll_interval", 1e15),
    ],
)
def test_a_number_argument_that_is_not_finite_in_range_and_a_number_is_refused_before_anything_is_paid_for(
    sim, videogen_connection, deferrable, name, value
):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        operator(prompt=quick(), deferrable=deferrable, **{name: value}).execute(context())
    assert sim.requests(target="create") == []


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"duration": True}, "duration"),
        ({"duration": float("inf")}, "duration"),
        ({"duration": "five"}, "duration"),
        ({"frames": 120.5}, "frames"),
        ({"frames": "3.9"}, "frames"),
        ({"seed": 7.5}, "seed"),
        ({"width": 0}, "width"),
        ({"execution_expires_after": False}, "execution_expires_after"),
    ],
)
def test_a_rendered_generation_param_that_is_not_a_proper_number_is_refused_before_the_create(
    sim, videogen_connection, params, name
):
    with pytest.raises(VideoGenConfigurationError, match=rf"generation_params\['{name}'\] must be"):
        operator(prompt=quick(), generation_params=params).execute(context())
    assert sim.requests(target="create") == []


def test_rendered_generation_params_written_as_text_are_sent_as_numbers(sim, videogen_connection):
    # Jinja renders "{{ params.duration }}" as the text "5" unless the DAG renders native objects.
    params = {"duration": "5", "seed": "-1", "resolution": "720p"}
    operator(prompt=quick(), generation_params=params, wait_for_completion=False).execute(context())
    (create,) = sim.requests(target="create")
    assert (create["body"]["duration"], create["body"]["seed"], create["body"]["resolution"]) == (5, -1, "720p")


def test_numeric_arguments_are_not_templated_so_they_are_checked_when_the_dag_is_parsed():
    numeric = {"poll_interval", "timeout"}
    assert not numeric & set(GenerateVideoOperator.template_fields)


# ---- a real Airflow task_state_store, under dag.test() ----


def _has_task_state_store() -> bool:
    try:
        from airflow.sdk.execution_time.context import TaskStateStoreAccessor  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def retry_dag(load_dag_file):
    from pathlib import Path

    return load_dag_file(Path(__file__).parents[1] / "dags" / "generate_with_retry.py").dag


def test_airflow_retry_after_a_failure_mid_wait_reconnects_without_submitting_again(
    retry_dag, sim, videogen_connection, monkeypatch
):
    """A real retry reconnects: through task_state_store on Airflow 3.3+, through a Variable on 3.1 and 3.2."""
    from airflow.models import Variable

    from airflow_provider_videogen import generation_record

    saved: list[str] = []
    real_save = generation_record.VariableRecord.save

    def spying_save(self: generation_record.VariableRecord, video_task_id: str, request: str | None = None) -> None:
        real_save(self, video_task_id, request)
        saved.append(self.key)
        assert Variable.get(self.key, default_var=None) is not None  # really in the metadata database

    monkeypatch.setattr(generation_record.VariableRecord, "save", spying_save)
    sim.add_fault(kind="http_error", target="query", status=503, times=1)
    run = retry_dag.test(run_conf={"prompt": "a fox [sim:queued=0] [sim:running=0.5]"})
    assert run.state == "success"
    assert len(sim.requests(target="create")) == 1
    tries = [ti.try_number for ti in run.get_task_instances()]
    assert tries == [2]  # the first try really failed, and the second reconnected
    if not _has_task_state_store():
        # The Variable that carried the id across the retry is gone once the task has ended.
        key = generation_record.variable_key("generate_with_retry", run.run_id, "generate", None)
        assert key.startswith(f"videogen_generation.generate_with_retry.{run.run_id}.generate.-1.")
        assert saved == [key]
        assert Variable.get(key, default_var=None) is None


# ---- hardening: the id survives a failed state-store write; a kill during the create ---------


class FailingStateStore(FakeStateStore):
    """A ``task_state_store`` whose writes fail (the API server call behind it failed)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts = 0

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise RuntimeError("API server answered 503")
        super().set(key, value, retention=retention)


def test_a_state_store_write_that_keeps_failing_ends_the_task_for_good_naming_the_id(sim, videogen_connection):
    store = FailingStateStore(failures=10)
    ctx = context(store)
    with pytest.raises(AirflowFailException, match="could not be saved") as caught:
        operator(prompt="a fox [sim:queued=600]").execute(ctx)
    video_task_id = ctx["ti"].xcom["video_task_id"]  # pushed before the store was written
    assert f"VideoTaskSensor(video_task_id={video_task_id!r})" in str(caught.value)
    assert store.attempts == 4  # the intent before the create (failed, gone on without it), three saves
    assert len(sim.requests(target="create")) == 1
    assert sim.get_task(video_task_id)["status"] == "queued"  # the generation is left to be picked up


def test_a_state_store_write_that_fails_once_is_retried(sim, videogen_connection):
    store = FailingStateStore(failures=2)  # the intent before the create, then the id's first save
    ctx = context(store)
    result = operator(prompt="a fox [sim:queued=0] [sim:running=0]").execute(ctx)
    assert result["status"] == "succeeded"
    assert recorded_id(store, GenerateVideoOperator.state_store_key) == ctx["ti"].xcom["video_task_id"]


def test_a_kill_while_the_create_call_is_in_flight_cancels_the_new_generation(sim, videogen_connection):
    sim.add_fault(kind="slow", target="create", delay=1.0)
    ctx = context()
    op = operator(prompt="a fox [sim:queued=600]", timeout=30)
    worker, outcome = execute_in_a_worker(op, ctx)
    wait_until(lambda: sim.requests(target="create"))
    op.on_kill()  # the create has reached the service; its answer is held back
    worker.join(timeout=15)
    video_task_id = ctx["ti"].xcom["video_task_id"]
    assert sim.get_task(video_task_id)["status"] == "cancelled"
    assert [type(e) for e in outcome] == [VideoGenError]
    assert "killed while submitting" in str(outcome[0])
    assert sim.requests(target="query", task_id=video_task_id)  # read (queued) before the DELETE


# ---- hardening: only the API's own "not found" lets a retry submit again -----------------------

NGINX_404 = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>"
    "\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
#: 404 answers of something in front of the API (an nginx or ingress page, a Go server's bare text).
PROXY_404S = [
    pytest.param(NGINX_404, "text/html", id="nginx-page"),
    pytest.param("404 page not found\n", "text/plain; charset=utf-8", id="bare-text"),
]
#: A model each API style's simulated create takes.
STYLE_MODELS = {
    "contents_generations": MODEL,
    "video_generations": MODEL,
    "openai_videos": "sora-2",
    "dashscope": "wan2.5-t2v-preview",
    "runway": "gen4.5",
    "gemini_veo": "veo-3.1-generate-preview",
}


def operator_log(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The operator's log lines: structlog prints them outside a task run, standard logging records them."""
    return capsys.readouterr().out.splitlines() + [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize(("body", "content_type"), PROXY_404S)
def test_a_proxy_404_while_a_retry_looks_up_its_generation_is_retried_not_taken_as_gone(
    sim, videogen_connection, body, content_type
):
    video_task_id = sim.add_task(queued_seconds=0, running_seconds=0)
    store = FakeStateStore()
    store.values[GenerateVideoOperator.state_store_key] = video_task_id
    sim.add_fault(kind="http_error", target="query", status=404, body=body, content_type=content_type)
    result = operator().execute(context(store))
    assert result["id"] == video_task_id and result["status"] == "succeeded"
    assert sim.requests(target="create") == []


@pytest.mark.parametrize(("body", "content_type"), PROXY_404S)
def test_a_proxy_404_that_outlasts_the_retries_fails_the_try_without_submitting_again(
    sim, videogen_connection, body, content_type
):
    video_task_id = sim.add_task(queued_seconds=600)
    store = FakeStateStore()
    store.values[GenerateVideoOperator.state_store_key] = video_task_id
    sim.add_fault(kind="http_error", target="query", status=404, body=body, content_type=content_type, times=0)
    with pytest.raises(VideoGenTransientError, match="not submitting again") as caught:
        operator().execute(context(store))
    assert video_task_id in str(caught.value) and "HTTP 404" in str(caught.value)
    assert not isinstance(caught.value, AirflowFailException)  # Airflow's next try looks again
    assert sim.requests(target="create") == []
    assert len(sim.requests(target="query", task_id=video_task_id)) == FAST.max_attempts
    assert store.values[GenerateVideoOperator.state_store_key] == video_task_id


@pytest.mark.parametrize(
    ("api_style", "shape"),
    [(style, "gateway") for style in sorted(STYLE_MODELS)] + [("video_generations", "documented")],
)
def test_the_apis_own_not_found_means_gone_and_a_warning_names_the_recent_generation(
    sim, videogen_connection, caplog, capsys, api_style, shape
):
    sim.configure(video_generations_shape=shape)
    conn_id = videogen_connection(conn_id="vg_style", api_style=api_style)
    gone = STYLES[api_style].probe_task_id  # an id of the style's own format that the service does not know
    store = FakeStateStore()
    store.values[GenerateVideoOperator.state_store_key] = gone
    with caplog.at_level(logging.WARNING):
        new_id = operator(videogen_conn_id=conn_id, model=STYLE_MODELS[api_style], wait_for_completion=False).execute(
            context(store)
        )
    assert new_id != gone and recorded_id(store, GenerateVideoOperator.state_store_key) == new_id
    assert len(sim.requests(target="create")) == 1
    (warning,) = [line for line in operator_log(caplog, capsys) if "less than 7 days ago" in line]
    assert gone in warning


@pytest.mark.parametrize(
    "api_style",
    [
        "video_generations",  # gateways and Gemini have no cancel call
        "openai_videos",
        "gemini_veo",
        "contents_generations",  # a task already running cannot be cancelled
        "dashscope",
    ],
)
def test_a_kill_during_the_create_saves_the_record_first_so_the_next_try_does_not_pay_again(
    sim, videogen_connection, api_style
):
    conn_id = videogen_connection(conn_id="vg_style", api_style=api_style)
    sim.add_fault(kind="slow", target="create", delay=1.0)
    store = FakeStateStore()
    prompt = "a fox [sim:queued=0] [sim:running=0.5]"  # running as soon as it exists: past cancelling
    first_try = operator(videogen_conn_id=conn_id, model=STYLE_MODELS[api_style], prompt=prompt, timeout=30)
    first_context = context(store)
    worker, outcome = execute_in_a_worker(first_try, first_context)
    wait_until(lambda: sim.requests(target="create"))
    first_try.on_kill()  # the create has reached the service; its answer is held back
    worker.join(timeout=15)
    assert [type(e) for e in outcome] == [VideoGenError]

    retry = operator(videogen_conn_id=conn_id, model=STYLE_MODELS[api_style], prompt=prompt)
    result = retry.execute(context(store))
    assert len(sim.requests(target="create")) == 1
    assert result["id"] == first_context["ti"].xcom["video_task_id"] and result["status"] == "succeeded"


def test_a_kill_during_the_create_whose_id_cannot_be_saved_still_cancels_and_ends_the_task_for_good(
    sim, videogen_connection, monkeypatch
):
    monkeypatch.setattr("airflow_provider_videogen.operators.submit_once._SAVE_BACKOFF", 0)
    sim.add_fault(kind="slow", target="create", delay=1.0)
    ctx = context(FailingStateStore(failures=10))
    op = operator(prompt="a fox [sim:queued=600]", timeout=30)
    worker, outcome = execute_in_a_worker(op, ctx)
    wait_until(lambda: sim.requests(target="create"))
    op.on_kill()
    worker.join(timeout=15)
    assert [type(e) for e in outcome] == [VideoGenerationNotSavedError]  # no retry that would pay again
    assert sim.get_task(ctx["ti"].xcom["video_task_id"])["status"] == "cancelled"


@pytest.mark.parametrize("fault", ["truncate", "oversized", "no-id"])
def test_a_create_answer_lost_after_the_service_took_it_ends_the_task_for_good_without_paying_again(
    sim, videogen_connection, fault
):
    if fault == "no-id":
        sim.add_fault(kind="http_error", target="create", status=200, body={"status": "accepted"}, times=1)
    else:
        sim.add_fault(kind=fault, target="create", times=1)
    store = FakeStateStore()
    ctx = context(store)
    with pytest.raises(AirflowFailException, match="may have created the video task") as caught:
        operator(prompt=quick()).execute(ctx)
    message = str(caught.value)
    assert "without retries" in message and "task list" in message and "VideoTaskSensor" in message
    assert len(sim.requests(target="create")) == 1
    assert store.values == {}  # no id to save: the next try could only pay again, so there is none


# ---- the durable record itself ---------------------------------------------------------------


def test_the_variable_key_names_the_task_instance_and_stays_within_250_characters():
    from airflow_provider_videogen.generation_record import variable_key

    # Pinned: a key that changes between releases loses the records of retries in flight.
    assert variable_key("d", "manual__2026", "t", None) == (
        "videogen_generation.d.manual__2026.t.-1.a2593eb24e0b2908afccd9b31bc51e20"
    )
    assert variable_key("d", "r", "t", 3).startswith("videogen_generation.d.r.t.3.")
    long_key = variable_key("d" * 200, "r" * 200, "t", 0)
    assert len(long_key) <= 250 and long_key.startswith("videogen_generation.ddd")
    assert long_key != variable_key("d" * 200, "r" * 199 + "x", "t", 0)
    assert len(variable_key("d" * 250, "r" * 250, "t" * 250, 10**6)) <= 250


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("etl", "batch.video", "generate", None), ("etl.batch", "video", "generate", None)),
        (("etl", "video", "batch.generate", None), ("etl", "video.batch", "generate", None)),
        (("etl", "video", "clip.generate", 2), ("etl", "video.clip", "generate", 2)),
    ],
    ids=["dag-or-run", "run-or-task", "mapped-run-or-task"],
)
def test_task_instances_whose_names_join_alike_get_distinct_variable_keys(one, other):
    from airflow_provider_videogen.generation_record import variable_key

    assert variable_key(*one) != variable_key(*other)


def test_a_stale_or_unreadable_variable_record_is_not_used(monkeypatch):
    import json as json_module

    from airflow_provider_videogen.generation_record import VariableRecord

    values: dict[str, Any] = {}

    class FakeVariable:
        @staticmethod
        def get(key: str, default: Any = None) -> Any:
            return values.get(key, default)

    monkeypatch.setattr("airflow.sdk.Variable", FakeVariable)
    record = VariableRecord("k")
    assert record.get() is None
    values["k"] = json_module.dumps({"video_task_id": "cgt-1", "saved_at": time.time()})
    assert record.get() == "cgt-1"
    values["k"] = json_module.dumps({"video_task_id": "cgt-1", "saved_at": time.time() - 8 * 86400})
    assert record.get() is None
    values["k"] = "not json"
    assert record.get() is None


@pytest.mark.parametrize(
    ("airflow_version", "cryptography_version", "named"),
    [("3.1.8", "51.0.1", True), ("3.1.8", "50.0.2", False), ("3.2.2", "51.0.1", False), ("3.3.2", "52.0", False)],
)
def test_airflow_3_1_with_cryptography_51_is_named_as_why_variables_cannot_be_written(
    monkeypatch, airflow_version, cryptography_version, named
):
    from airflow_provider_videogen import generation_record

    versions = {"apache-airflow-core": airflow_version, "cryptography": cryptography_version}
    monkeypatch.setattr("importlib.metadata.version", versions.__getitem__)
    cause = generation_record.VariableRecord("k").why_not_saved()
    assert bool(cause) is named
    if named:
        assert "cryptography<51" in cause and "constraints" in cause


def test_a_variable_write_refused_by_the_fernet_incompatibility_ends_the_task_saying_why(
    sim, videogen_connection, monkeypatch
):
    from airflow_provider_videogen import generation_record

    class RefusingVariable:
        @staticmethod
        def get(key: str, default: Any = None) -> Any:
            return default

        @staticmethod
        def set(key: str, value: Any, description: str | None = None) -> None:
            raise RuntimeError("Server error: 500 Internal Server Error")

    monkeypatch.setattr("airflow.sdk.Variable", RefusingVariable)
    monkeypatch.setattr(generation_record, "fernet_incompatibility", lambda: "cryptography 51 meets Airflow 3.1")
    monkeypatch.setattr("airflow_provider_videogen.operators.submit_once._SAVE_BACKOFF", 0)
    ti = FakeTaskInstance()
    ti.dag_id, ti.run_id, ti.task_id = "d", "r", "generate"  # type: ignore[attr-defined]
    with pytest.raises(AirflowFailException, match="could not be saved") as caught:
        operator(prompt="a fox [sim:queued=600]").execute({"ti": ti})
    assert "Why the write fails: cryptography 51 meets Airflow 3.1" in str(caught.value)
    assert len(sim.requests(target="create")) == 1


class TryInstance(FakeTaskInstance):
    def __init__(self, try_number: int, max_tries: int) -> None:
        super().__init__()
        self.try_number, self.max_tries = try_number, max_tries


@pytest.mark.parametrize(
    ("try_number", "max_tries", "error", "retried"),
    [
        (1, 1, VideoGenTransientError("x"), True),
        (2, 1, VideoGenTransientError("x"), False),
        (1, 3, AirflowFailException("x"), False),
    ],
)
def test_whether_a_failed_try_is_retried(try_number, max_tries, error, retried):
    from airflow_provider_videogen.operators.submit_once import _will_retry

    assert _will_retry({"ti": TryInstance(try_number, max_tries)}, error) is retried  # type: ignore[arg-type]


def test_the_worker_wait_caps_a_poll_hint_like_the_trigger(videogen_connection, monkeypatch):
    from airflow_provider_videogen.client import PollAnswer
    from airflow_provider_videogen.operators import generate as operators
    from airflow_provider_videogen.retry import POLL_SCHEDULE
    from airflow_provider_videogen.video_task import VideoTask, VideoTaskStatus

    videogen_connection()
    sleeps: list[float] = []
    monkeypatch.setattr(operators.time, "sleep", sleeps.append)
    answers = iter(
        [
            PollAnswer(VideoTask("cgt-1", VideoTaskStatus.RUNNING), 1e9),
            PollAnswer(VideoTask("cgt-1", VideoTaskStatus.SUCCEEDED, video_url="https://files/v.mp4"), None),
        ]
    )
    op = operator(poll_interval=1.0)
    monkeypatch.setattr(op.hook, "poll_answer", lambda video_task_id: next(answers))
    monkeypatch.setattr(op, "_reconnect_or_submit", lambda ctx: ("cgt-1", None))
    op.execute(context())
    assert sleeps == [POLL_SCHEDULE.max_retry_after] == [VideoTaskTrigger.max_retry_after]


# ---- cost ----

COST_MODELS = {**STYLE_MODELS, "fal": "fal-ai/matrix-model"}
#: The styles whose answers report the video's seconds (the others' cost per second is an estimate).
REPORTS_SECONDS = {"contents_generations", "video_generations", "openai_videos", "dashscope"}


def priced_connection(videogen_connection, api_style: str, model: str, **price: Any) -> str:
    return videogen_connection(conn_id="vg_priced", api_style=api_style, prices={model: {**price, "currency": "USD"}})


@pytest.mark.parametrize("api_style", sorted(COST_MODELS))
def test_every_style_prices_a_generation_per_second_from_the_seconds_reported_else_asked(
    sim, videogen_connection, caplog, capsys, api_style
):
    model = COST_MODELS[api_style]
    conn_id = priced_connection(videogen_connection, api_style, model, per_second="0.05")
    with caplog.at_level(logging.INFO):
        result = operator(
            videogen_conn_id=conn_id, model=model, prompt=quick(), generation_params={"duration": 8}
        ).execute(context())
    basis = "priced" if api_style in REPORTS_SECONDS else "estimated"
    assert result["cost"] == {
        "amount": "0.4",
        "currency": "USD",
        "basis": basis,
        "computed": f"8 s {'reported' if basis == 'priced' else 'asked'} x 0.05 USD per second (price {model!r})",
    }
    (line,) = [line for line in operator_log(caplog, capsys) if f"Video task {result['id']} cost" in line]
    assert "0.4 USD" in line and basis in line


@pytest.mark.parametrize("api_style", sorted(COST_MODELS))
def test_every_style_prices_a_generation_per_video(sim, videogen_connection, api_style):
    model = COST_MODELS[api_style]
    conn_id = priced_connection(videogen_connection, api_style, model, per_video="0.35")
    result = operator(videogen_conn_id=conn_id, model=model, prompt=quick()).execute(context())
    assert (result["cost"]["amount"], result["cost"]["basis"]) == ("0.35", "priced")


@pytest.mark.parametrize("api_style", ["contents_generations", "video_generations"])
def test_contents_generations_are_priced_by_the_tokens_the_service_reported(sim, videogen_connection, api_style):
    conn_id = priced_connection(videogen_connection, api_style, "doubao-seedance-*", per_million_tokens="2.5")
    result = operator(
        videogen_conn_id=conn_id, prompt=quick(), generation_params={"duration": 5, "resolution": "720p"}
    ).execute(context())
    tokens = result["usage"]["completion_tokens"]  # a gateway passes the upstream task's usage on
    assert result["cost"]["basis"] == "priced"
    assert Decimal(result["cost"]["amount"]) == Decimal(tokens) * Decimal("2.5") / 1_000_000
    assert f"{tokens} tokens reported" in result["cost"]["computed"]


def test_without_prices_the_cost_is_none_and_the_log_says_it_is_not_known(sim, videogen_connection, caplog, capsys):
    with caplog.at_level(logging.INFO):
        result = operator(prompt=quick()).execute(context())
    assert result["cost"] is None
    assert any(
        "its cost is not known (the connection has no prices extra)" in line for line in operator_log(caplog, capsys)
    )


def test_a_price_the_answer_gives_nothing_to_count_for_leaves_the_cost_unknown_and_says_why(
    sim, videogen_connection, caplog, capsys
):
    conn_id = priced_connection(videogen_connection, "openai_videos", "sora-2", per_million_tokens="2.5")
    with caplog.at_level(logging.INFO):
        result = operator(videogen_conn_id=conn_id, model="sora-2", prompt=quick()).execute(context())
    assert result["cost"] is None
    assert any(
        "its cost is not known (the service reported nothing its price counts, 2.5 USD per million tokens" in line
        for line in operator_log(caplog, capsys)
    )


@pytest.mark.parametrize(
    ("prices", "generation_params", "named"),
    [
        ({MODEL: {"per_second": "0.2", "currency": "USD"}}, {"duration": 10}, "estimated cost, 2 USD (10 s x 0.2 USD"),
        ({"veo-*": {"per_video": "1", "currency": "USD"}}, {"duration": 5}, "no price for model"),
        ({MODEL: {"per_second": "0.2", "currency": "USD"}}, {}, "set generation_params duration"),
        (None, {"duration": 5}, "no price for model"),
    ],
)
def test_max_cost_refuses_before_anything_is_paid(sim, videogen_connection, prices, generation_params, named):
    conn_id = videogen_connection(conn_id="vg_capped", **({"prices": prices} if prices else {}))
    op = operator(videogen_conn_id=conn_id, prompt=quick(), generation_params=generation_params, max_cost="1.50")
    with pytest.raises(VideoGenerationOverBudgetError) as caught:
        op.execute(context())
    assert isinstance(caught.value, AirflowFailException)  # not retried: a retry estimates the same
    assert named in str(caught.value) and "max_cost=1.50" in str(caught.value)
    assert sim.requests(target="create") == []


def test_max_cost_lets_a_generation_within_the_cap_through(sim, videogen_connection, caplog, capsys):
    conn_id = videogen_connection(conn_id="vg_capped", prices={MODEL: {"per_second": "0.2", "currency": "USD"}})
    with caplog.at_level(logging.INFO):
        result = operator(
            videogen_conn_id=conn_id, prompt=quick(), generation_params={"duration": 5}, max_cost=1
        ).execute(context())
    assert result["cost"]["amount"] == "1"  # 5 s reported x 0.2
    assert len(sim.requests(target="create")) == 1
    assert any(
        "Estimated cost 1 USD" in line and "within max_cost=1 USD" in line for line in operator_log(caplog, capsys)
    )


@pytest.mark.parametrize("max_cost", [-1, "cheap", float("nan"), True])
def test_a_bad_max_cost_is_refused_when_the_dag_is_parsed(max_cost):
    with pytest.raises(VideoGenConfigurationError, match="max_cost must be an amount"):
        operator(max_cost=max_cost)
