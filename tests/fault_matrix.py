"""The fault matrix's cells, drivers and invariants (the test module is ``test_fault_matrix.py``).

A cell is one API style x one operation x one fault the simulator injects x where the fault lands.
Each operation is driven as a user drives it (the operators' ``execute`` with a fake context, the
trigger's ``run()``, the hook's ``cancel_task`` and ``test_connection``); what it left behind (errors,
XCom, events, return values, log lines, files) is an :class:`Outcome`, and the invariants are checked
on that and on the simulator's request log, never on a particular message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from airflow_provider_videogen._compat import AirflowFailException
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.videogen import FetchVideoOperator, GenerateVideoOperator
from airflow_provider_videogen.styles import STYLES
from airflow_provider_videogen.triggers.videogen import VideoTaskTrigger
from airflow_provider_videogen.video_download import RECORD_SUFFIX
from tests.task_context import FakeStateStore, FakeTaskInstance

# "/" so that a JSON writer's "\/" differs from the key, "+" and "=" so that URL and base64 encodings do.
KEY = "mx/k3y+7f3a9c=Qw"
OTHER_KEY = "mx/other+k3y=Zz"
REQUEST_TIMEOUT = 1.0
FAST = RetryPolicy(max_attempts=2, initial_wait=0.01, max_wait=0.02)
# The models the services know; the simulator takes any, but the Gemini route puts it in the path.
MODEL = "matrix-model"
# fal's models are endpoint ids, "owner/app" and an optional path, Replicate's "owner/name"; the others take MODEL.
MODELS = {"fal": "fal-ai/matrix-model", "replicate": "matrix/matrix-model"}
#: The aws connection a style that borrows a cloud connection's credentials (bedrock_video) signs with.
AWS_CONN_ID = "matrix_aws"
#: The Google connection vertex_veo borrows: a service-account key whose token endpoint is the simulator's.
GCP_CONN_ID = "matrix_google"
# Finished by the first look: the answer a fault changes is the one the operator returns.
QUICK = "a fox [sim:queued=0] [sim:running=0]"
SLOW = "a fox [sim:queued=600]"
# A killed worker process stops; a killed try in a thread goes on waiting: its deadline ends it soon.
KILLED_TRY_SECONDS = 1.5

OPERATIONS = ("create", "query", "list", "cancel", "download", "connection_test")
POSITIONS = ("first", "retry", "kill")

# ---- the faults ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fault:
    """One fault the simulator can inject: its name in cell ids and its ``add_fault`` arguments."""

    name: str
    kind: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def status(self) -> int | None:
        """The HTTP status the fault answers with, if it is an error answer."""
        status = dict(self.options).get("status")
        if self.kind in ("http_error", "empty_body", "malformed_body") and isinstance(status, int):
            return status
        return None

    def add(self, sim: Any, target: str, **more: Any) -> None:
        """Queue it in the simulator for ``target``."""
        sim.add_fault(self.kind, target, **{**dict(self.options), **more})


def _http(status: int) -> list[Fault]:
    # With the service's own API error body, and with a proxy's bare text (no API error).
    return [
        Fault(f"{status}-api", "http_error", (("status", status), ("retry_after", "0"))),
        Fault(
            f"{status}-bare",
            "http_error",
            (
                ("status", status),
                ("body", f"{status} page not found" if status == 404 else f"{status} error"),
                ("content_type", "text/plain"),
            ),
        ),
    ]


HTTP_STATUSES = (400, 401, 403, 404, 408, 409, 413, 414, 429, 431, 500, 502, 503, 504)
FAULTS: tuple[Fault, ...] = (
    *[fault for status in HTTP_STATUSES for fault in _http(status)],
    Fault("html-200", "malformed_body"),
    Fault("html-404", "malformed_body", (("status", 404),)),
    Fault("html-502", "malformed_body", (("status", 502),)),
    Fault("empty-200", "empty_body"),
    Fault("empty-503", "empty_body", (("status", 503),)),
    Fault("reset", "reset"),
    Fault("timeout", "slow", (("delay", REQUEST_TIMEOUT * 1.5),)),
    Fault("trickle", "trickle", (("delay", 0.01),)),
    Fault("truncate", "truncate"),
    Fault("oversized", "oversized"),
    Fault("duplicate", "duplicate"),
    Fault("echo-raw", "echo_key", (("escape", "raw"),)),
    Fault("echo-slash", "echo_key", (("escape", "slash"),)),
    Fault("echo-unicode", "echo_key", (("escape", "unicode"),)),
    Fault("cookie", "cookie"),
    Fault("redirect", "redirect"),
    Fault("expired", "expired"),
)  # fmt: skip

# What a file host can do wrong (it is not an API: no JSON answer to echo into, pad or repeat).
_DOWNLOAD_KINDS = {"http_error", "malformed_body", "empty_body", "reset", "slow", "truncate", "redirect", "expired"}


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell of the matrix."""

    style: str
    operation: str
    fault: Fault
    position: str

    @property
    def id(self) -> str:
        """The cell's pytest id."""
        return f"{self.style}-{self.operation}-{self.fault.name}-{self.position}"


def applicable(style: str, operation: str, fault: Fault, position: str) -> bool:
    """Whether the cell can happen: the style has the operation, the fault can reach it at that position."""
    api_style = STYLES[style]
    if operation == "download":
        # Bedrock writes the video into the user's bucket: nothing is downloaded from a file host.
        return fault.kind in _DOWNLOAD_KINDS and position != "kill" and api_style.uses_api_key
    if fault.kind == "expired":
        return False
    if fault.kind == "duplicate" and operation != "list":
        return False
    if operation == "list":
        return api_style.batch_query_size > 0 and position != "kill"
    if operation == "cancel":
        return api_style.can_cancel
    if operation == "connection_test":
        return position == "first"
    return True


def all_cells() -> list[Cell]:
    """Every applicable cell: the full product."""
    return [
        Cell(style, operation, fault, position)
        for style in STYLES
        for operation in OPERATIONS
        for fault in FAULTS
        for position in POSITIONS
        if applicable(style, operation, fault, position)
    ]


# Cells always in the sample: where the defects found from outside live (each must stay caught).
ALWAYS = (
    "contents_generations-query-404-bare-retry",
    "contents_generations-query-html-404-retry",
    "contents_generations-create-400-api-kill",
    "contents_generations-query-echo-slash-first",
    "contents_generations-query-echo-unicode-first",
    "contents_generations-list-cookie-first",
    "contents_generations-cancel-429-api-retry",
    "contents_generations-list-413-api-first",
    "contents_generations-list-431-bare-first",
    "contents_generations-list-414-api-first",
    "contents_generations-list-oversized-first",
    "contents_generations-list-duplicate-first",
)


def _pairs(cell: Cell) -> set[tuple[str, str]]:
    factors = {"s": cell.style, "o": cell.operation, "f": cell.fault.name, "p": cell.position}
    return {(f"{a}={factors[a]}", f"{b}={factors[b]}") for a, b in ("so", "sf", "sp", "of", "op", "fp")}


def sampled_cells(seed: int = 20260) -> list[Cell]:
    """A pairwise covering sample: every pair of (style, operation, fault, position) values that can meet
    meets in some cell (greedy, ties broken by ``seed``), plus :data:`ALWAYS`."""
    every = all_cells()
    random.Random(seed).shuffle(every)
    pairs = [_pairs(cell) for cell in every]
    chosen = {i for i, cell in enumerate(every) if cell.id in ALWAYS}
    uncovered = set().union(*pairs) - set().union(*(pairs[i] for i in chosen))
    candidates = range(len(every))
    while uncovered:
        best = max(candidates, key=lambda i: len(pairs[i] & uncovered))
        chosen.add(best)
        uncovered -= pairs[best]
        candidates = [i for i in candidates if not pairs[i].isdisjoint(uncovered)]
    return sorted((every[i] for i in chosen), key=lambda cell: cell.id)


def cells() -> list[Cell]:
    """The cells this run drives: the sample, or the full product with ``VIDEOGEN_FAULT_MATRIX=full``."""
    return all_cells() if os.environ.get("VIDEOGEN_FAULT_MATRIX") == "full" else sampled_cells()


# ---- what a run leaves behind ----------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What one run of an operation produced, for the invariants."""

    errors: list[BaseException] = dataclasses.field(default_factory=list)
    values: list[Any] = dataclasses.field(default_factory=list)  # XCom, return values, events, extras, facets
    refusals: list[str] = dataclasses.field(default_factory=list)  # messages that end an operation unsuccessfully
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    wait_ends: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # (ended at, end_time)
    destination: Path | None = None
    # A wait whose only trouble was a fault that fired once must end with the task's own outcome.
    expected_wait_status: str | None = None
    #: host:port of the connection's API (where the key may go).
    api_origin: str = ""
    #: The generation whose video is landed (download cells).
    video_task_id: str = ""


class LogCapture(logging.Handler):
    """Keep every formatted log line of the run (all loggers, all levels)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(record.getMessage())
            if record.exc_info and record.exc_info[1] is not None:
                self.lines.append(repr(record.exc_info[1]))


@contextlib.contextmanager
def captured_logs() -> Iterator[LogCapture]:
    """Capture the log lines of every logger for the duration of the block."""
    capture = LogCapture()
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in ("airflow", "airflow.task"))]
    saved = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        for logger, level in saved:
            logger.removeHandler(capture)
            logger.setLevel(level)


def key_encodings(key: str) -> dict[str, str]:
    """The key as it can appear in text: raw, JSON-escaped, URL-encoded, base64."""
    forms = {
        "raw": key,
        "json \\/": key.replace("/", "\\/"),
        "json \\uXXXX": "".join(f"\\u{ord(c):04x}" for c in key),
        "url": quote(key, safe=""),
        "url+": quote_plus(key),
        "base64": base64.b64encode(key.encode()).decode(),
        "base64url": base64.urlsafe_b64encode(key.encode()).decode(),
        "basic": base64.b64encode(f":{key}".encode()).decode(),
        "repr": repr(key)[1:-1],
    }
    return {name: form for name, form in forms.items() if form}


def error_texts(error: BaseException) -> Iterator[str]:
    """An error's message, repr and arguments, and those of its causes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr(vars(current)) if hasattr(current, "__dict__") else ""
        current = current.__cause__ or current.__context__


def leaks(texts: list[str], key: str) -> list[str]:
    """The encodings of ``key`` found in ``texts`` and an excerpt of where."""
    found = []
    for name, form in key_encodings(key).items():
        for text in texts:
            at = text.find(form)
            if at >= 0:
                found.append(f"{name}: ...{text[max(0, at - 60) : at + len(form) + 20]}...")
                break
    return found


def dumped(value: Any) -> str:
    """A value as text, however it is made (dicts, lineage facets, exceptions)."""
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError):
        return repr(value)


# ---- Airflow's context, faked as tests/operators do -------------------------------------------


class FakeOutletEvents(dict):  # type: ignore[type-arg]
    """``context["outlet_events"]``: the extras the operator sets on its outlets' events."""

    class Event:
        def __init__(self) -> None:
            self.extra: dict[str, Any] = {}
            self.added: list[tuple[Any, dict[str, Any]]] = []

        def add(self, asset: Any, extra: dict[str, Any] | None = None) -> None:
            self.added.append((asset, extra or {}))

    def __missing__(self, key: Any) -> FakeOutletEvents.Event:
        event = self[key] = FakeOutletEvents.Event()
        return event


def borrowed_credentials(style: str, host: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the connection extras and environment of a style that borrows a cloud connection's credentials.

    The ``aws`` connection's secret key is the matrix's :data:`KEY`, so every promise about the key
    holds for the borrowed secret: in no log, error, XCom or event, never sent anywhere (SigV4 sends a
    signature). The Google connection's token is :data:`KEY` too (the simulator at ``host`` grants its
    key), so the same promises hold for it, but that it is sent, as Bearer, to the API's origin.
    Empty for a style that keeps its own key.
    """
    if STYLES[style].uses_api_key:
        return {}, {}
    if style == "vertex_veo":
        google = {"conn_type": "google_cloud_platform", "extra": {"keyfile_dict": json.dumps(_service_account(host))}}
        extras = {"api_key": "", "gcp_conn_id": GCP_CONN_ID, "project_id": "matrix-project", "location": "us-central1"}
        return extras, {f"AIRFLOW_CONN_{GCP_CONN_ID.upper()}": json.dumps(google)}
    aws = {"conn_type": "aws", "login": "AKIDMATRIX", "password": KEY, "extra": {"region_name": "us-east-1"}}
    extras = {
        "api_key": "",
        "aws_conn_id": AWS_CONN_ID,
        "region_name": "us-east-1",
        "bedrock_output_s3_uri": "s3://matrix-bucket/videos",
    }
    return extras, {f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": json.dumps(aws)}


def _service_account(host: str) -> dict[str, str]:
    """A service-account key (made once per process) whose token endpoint is the simulator at ``host``."""
    global _PRIVATE_KEY
    if _PRIVATE_KEY is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _PRIVATE_KEY = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return {
        "type": "service_account",
        "private_key": _PRIVATE_KEY,
        "client_email": "matrix@matrix-project.iam.gserviceaccount.com",
        "token_uri": f"{host}/token",
    }


_PRIVATE_KEY: str | None = None


def context(store: FakeStateStore) -> dict[str, Any]:
    """A try's context; the store is shared by the tries of one task instance."""
    return {"ti": KeyedTaskInstance(), "task_state_store": store, "outlet_events": FakeOutletEvents()}


class KeyedTaskInstance(FakeTaskInstance):
    """A task instance with its key, as Airflow's has it: the same for every try (a create's idempotency token
    is derived from it, so a retry's create is the same create)."""

    dag_id, task_id, run_id, map_index = "fault_matrix", "generate", "manual__1", -1


def context_values(ctx: dict[str, Any]) -> list[Any]:
    """What a try left in its context: XCom values and asset event extras."""
    values: list[Any] = list(ctx["ti"].xcom.values())
    for event in ctx["outlet_events"].values():
        values += [event.extra, *[extra for _asset, extra in event.added]]
    return values


def generate(conn_id: str, **kwargs: Any) -> GenerateVideoOperator:
    """The operator as a user writes it, waiting in the worker with quick polls."""
    defaults: dict[str, Any] = {
        "task_id": "generate",
        "model": MODELS.get(VideoGenHook(conn_id).settings.api_style, MODEL),
        "prompt": QUICK,
        "poll_interval": 0.05,
        "timeout": 8,
        "deferrable": False,
        "videogen_conn_id": conn_id,
        "http_retry_policy": FAST,
    }
    return GenerateVideoOperator(**{**defaults, **kwargs})


def rendered(operator: Any) -> dict[str, Any]:
    """The operator's template fields as they stand after the run."""
    return {name: getattr(operator, name, None) for name in operator.template_fields}


def run_try(operator: Any, ctx: dict[str, Any], outcome: Outcome) -> bool:
    """Run one try of an operator; return whether Airflow would retry it (it failed, not for good)."""
    try:
        outcome.values.append(operator.execute(ctx))
        return False
    except BaseException as error:
        outcome.errors.append(error)
        outcome.refusals.append(str(error))
        return not isinstance(error, AirflowFailException)
    finally:
        outcome.values += [*context_values(ctx), rendered(operator)]
        with contextlib.suppress(Exception):
            outcome.values.append(repr(operator.get_openlineage_facets_on_complete(None)))


def in_a_worker(operator: Any, ctx: dict[str, Any], outcome: Outcome) -> threading.Thread:
    """Start a try in a thread, as a worker runs it."""
    worker = threading.Thread(target=run_try, args=(operator, ctx, outcome), daemon=True)
    worker.start()
    return worker


def wait_until(condition: Callable[[], Any], seconds: float = 10) -> None:
    """Wait (a little at a time) until ``condition()`` holds or ``seconds`` pass."""
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.01)


def create_quietly(sim: Any, conn_id: str, prompt: str) -> str:
    """Create a generation through the operator (no fault in play) and return its id."""
    ctx = context(FakeStateStore())
    video_task_id: str = generate(conn_id, prompt=prompt, wait_for_completion=False).execute(ctx)
    sim.clear_requests()
    return video_task_id


def sim_id(video_task_id: str) -> str:
    """The simulator's id of a task (Gemini's operation names end with it)."""
    return video_task_id.rsplit("/", 1)[-1]


# ---- the operations ---------------------------------------------------------------------------


def _prefix(sim: Any, target: str, position: str, **more: Any) -> None:
    """At position ``retry`` the fault meets a retry: first an answer every caller retries (a proxy's 503)."""
    if position == "retry":
        sim.add_fault("empty_body", target, status=503, **more)


def drive_create(sim: Any, cell: Cell, conn_id: str, outcome: Outcome) -> None:
    """The operator submits; the fault meets the create call. A failed try is retried, as Airflow would."""
    store = FakeStateStore()
    if cell.position == "kill":
        # The create's answer is held back and the task is killed meanwhile (not cancelling: the generation
        # is left to a retry); the fault meets the retry's first look at it. The retry sends the same request
        # as the killed try, as a real retry does: a changed request would rightly submit anew.
        sim.add_fault("slow", "create", delay=0.5)
        cell.fault.add(sim, "query")
        operator = generate(conn_id, timeout=KILLED_TRY_SECONDS, cancel_on_kill=False)
        worker = in_a_worker(operator, context(store), outcome)
        wait_until(lambda: sim.requests(target="create"))
        operator.on_kill()
        worker.join(15)
        retried = bool(outcome.errors) and not isinstance(outcome.errors[-1], AirflowFailException)
    else:
        _prefix(sim, "create", cell.position)
        cell.fault.add(sim, "create")
        retried = run_try(generate(conn_id), context(store), outcome)
    if retried:
        run_try(generate(conn_id), context(store), outcome)


def drive_query(sim: Any, cell: Cell, conn_id: str, outcome: Outcome) -> None:
    """The operator waits in the worker; the fault meets a query of the task."""
    store = FakeStateStore()
    if cell.position == "kill":
        operator = generate(conn_id, prompt=SLOW, timeout=KILLED_TRY_SECONDS)
        worker = in_a_worker(operator, context(store), outcome)
        wait_until(lambda: sim.requests(target="query"))
        cell.fault.add(sim, "query")  # the look-up the cancel makes first
        operator.on_kill()
        worker.join(15)
        return
    if cell.position == "retry":
        # The first try dies mid-wait (the queries keep failing); the retry's look-up of the saved id meets the fault.
        sim.add_fault("http_error", "query", status=503, times=FAST.max_attempts)
        run_try(generate(conn_id), context(store), outcome)
        outcome.errors.clear()
        outcome.refusals.clear()
    cell.fault.add(sim, "query")
    if run_try(generate(conn_id), context(store), outcome):
        run_try(generate(conn_id), context(store), outcome)


async def _wait_for(trigger: VideoTaskTrigger, outcome: Outcome) -> None:
    events = [event.payload async for event in trigger.run()]
    outcome.wait_ends.append((time.time(), trigger.end_time or 0.0))
    outcome.events += events
    outcome.values += events
    for payload in events:
        if payload.get("status") not in ("success",):
            outcome.refusals.append(str(payload.get("message")))
    if len(events) != 1:
        outcome.errors.append(AssertionError(f"the trigger fired {len(events)} events"))


def drive_list(sim: Any, cell: Cell, conn_id: str, outcome: Outcome, other_conn_id: str) -> None:
    """Two triggers wait, sharing their polls (one list call answers both); the fault meets a list answer."""
    # Finished at once, so that the answer the fault changes is a final one (and decides the wait); the
    # cookie cells keep them running a while, for the other key's requests to come meanwhile.
    running = 1.0 if cell.fault.kind == "cookie" else 0
    ids = [create_quietly(sim, conn_id, f"a fox [sim:queued=0] [sim:running={running}]") for _ in range(2)]
    _prefix(sim, "list", cell.position)
    cell.fault.add(sim, "list")
    end_time = time.time() + 6

    async def both() -> None:
        triggers = [VideoTaskTrigger(i, conn_id, poll_interval=0.1, end_time=end_time) for i in ids]
        waits = [_wait_for(trigger, outcome) for trigger in triggers]
        if cell.fault.kind == "cookie":
            # Another connection, with another key, waits in the same triggerer meanwhile (it is refused:
            # what matters is which cookies its requests carry).
            other = VideoTaskTrigger(ids[0], other_conn_id, poll_interval=0.4, end_time=end_time)
            waits.append(_wait_for(other, Outcome()))
        await asyncio.gather(*waits)

    asyncio.run(both())
    if cell.fault.status not in (401, 403):
        outcome.expected_wait_status = "success"


def drive_cancel(sim: Any, cell: Cell, conn_id: str, outcome: Outcome) -> None:
    """A queued generation is cancelled: by the hook, or by killing the operator waiting for it."""
    if cell.position == "kill":
        operator = generate(conn_id, prompt=SLOW, timeout=KILLED_TRY_SECONDS)
        worker = in_a_worker(operator, context(FakeStateStore()), outcome)
        wait_until(lambda: sim.requests(target="query"))
        cell.fault.add(sim, "cancel")
        operator.on_kill()
        worker.join(15)
        return
    video_task_id = create_quietly(sim, conn_id, SLOW)
    if cell.position == "retry":
        # The cancel is refused for the rate limit, and the generation finishes before the next attempt.
        sim.add_fault("http_error", "cancel", status=429, retry_after="0", then_status="succeeded",
                      task_id=sim_id(video_task_id))  # fmt: skip
    cell.fault.add(sim, "cancel")
    try:
        outcome.values.append(VideoGenHook(conn_id, retry_policy=FAST).cancel_task(video_task_id))
    except Exception as error:
        outcome.errors.append(error)
        outcome.refusals.append(str(error))


def drive_download(sim: Any, cell: Cell, conn_id: str, outcome: Outcome, destination: Path) -> None:
    """A succeeded video is landed in a folder; the fault meets the file host."""
    video_task_id = create_quietly(sim, conn_id, "a fox [sim:queued=0] [sim:running=0]")
    wait_until(lambda: sim.get_task(sim_id(video_task_id))["status"] == "succeeded")
    _prefix(sim, "download", cell.position)
    cell.fault.add(sim, "download")
    outcome.destination, outcome.video_task_id = destination, video_task_id
    operator = FetchVideoOperator(
        task_id="fetch",
        video_task_id=video_task_id,
        videogen_conn_id=conn_id,
        destination=str(destination) + "/",
        http_retry_policy=FAST,
    )
    run_try(operator, context(FakeStateStore()), outcome)


def drive_connection_test(sim: Any, cell: Cell, conn_id: str, outcome: Outcome) -> None:
    """The connection form's Test button; the fault meets its one look-up."""
    cell.fault.add(sim, "query")
    try:
        ok, message = VideoGenHook(conn_id).test_connection()
    except Exception as error:
        outcome.errors.append(error)
        return
    outcome.values.append(message)
    if not ok:
        outcome.refusals.append(message)


# ---- the invariants ---------------------------------------------------------------------------

# Words that say which answer ended an operation, for faults without an HTTP status.
_NAMES_THE_ANSWER: dict[str, tuple[str, ...]] = {
    "reset": ("connection", "reset", "closed", "aborted", "disconnect", "failed"),
    "slow": ("timed out", "timeout", "deadline", "did not answer"),
    "trickle": ("timed out", "timeout", "deadline", "did not answer"),
    "truncate": ("incomplete", "truncat", "payload", "ended", "cut", "not json", "connection", "fewer", "bytes"),
    "oversized": ("too large", "larger", "bytes", "size"),
    "redirect": ("redirect", "http 30", "location", "3"),
    "malformed_body": ("not json", "html", "body", "http"),
    "empty_body": ("empty", "http"),
    "expired": ("expired", "403"),
}


def check(sim: Any, cell: Cell, outcome: Outcome, logs: list[str]) -> list[str]:
    """Return every invariant the run broke (empty: none)."""
    broken: list[str] = []
    log = sim.requests()
    # 1. At most one create per task instance, unless the service said the earlier one failed or is gone.
    # A create repeated with the same idempotency token answers the same generation (Bedrock): one paid.
    creates = list(
        {entry["task_id"]: entry for entry in log if entry["target"] == "create" and entry["task_id"]}.values()
    )
    if len(creates) > 1:
        ended = {
            entry["task_id"]
            for entry in creates[:-1]
            if sim.get_task(entry["task_id"])["status"] in ("failed", "cancelled", "expired")
        }
        # The fault met a look-up of the task (a query; or, after a kill during the create, the retry's look-up
        # of the saved id): the service itself said the earlier one does not exist.
        looked_up = cell.operation == "query" or (cell.operation == "create" and cell.position == "kill")
        if cell.fault.name == "404-api" and looked_up:
            ended.add(creates[0]["task_id"])
        if len(creates) - 1 > len(ended):
            broken.append(
                f"{len(creates)} generations created for one task instance: {[e['task_id'] for e in creates]}"
            )
    # 2. No cancel or delete reaches a task that had finished.
    for entry in log:
        if entry["target"] == "cancel" and entry["task_status"] in ("succeeded", "failed", "expired"):
            broken.append(f"a {entry['method']} reached task {entry['task_id']}, which was {entry['task_status']}")
    # 3. The key, in any encoding, nowhere the user or a log can see it; never to another origin.
    texts = [*logs, *outcome.refusals, *(dumped(value) for value in outcome.values)]
    texts += [text for error in outcome.errors for text in error_texts(error)]
    broken += [f"the key leaked ({where})" for where in leaks(texts, KEY)]
    for entry in log:
        sent = " ".join(str(v) for k, v in entry["headers"].items() if k.lower() != "host")
        if entry["headers"].get("Host") != outcome.api_origin and KEY in sent:
            broken.append(f"the key was sent to another origin ({entry['headers'].get('Host')}{entry['path']})")
    # ... nor a cookie that one key's answer set to a request made with another key.
    cookie_owners: set[str | None] = set()
    for entry in log:
        headers = {name.lower(): value for name, value in entry["headers"].items()}
        credential = headers.get("authorization") or headers.get("x-goog-api-key") or headers.get("x-api-key")
        if "videogen_sim_session=" in headers.get("cookie", "") and cookie_owners - {credential}:
            broken.append(f"a cookie set in answer to one key was sent with another key ({entry['path']})")
        if entry["fault"] == "cookie":
            cookie_owners.add(credential)
    # 4. Nothing at the destination unless it is the whole, verified file; no temporary file left.
    if outcome.destination is not None:
        broken += _destination_problems(sim, outcome.destination, outcome.video_task_id)
    # 5. Every wait ends with one event, before end_time + one request timeout.
    for ended_at, end_time in outcome.wait_ends:
        if end_time and ended_at > end_time + REQUEST_TIMEOUT + 0.5:
            broken.append(f"a wait ended {ended_at - end_time:.1f} s after its end_time")
    broken += [str(error) for error in outcome.errors if isinstance(error, AssertionError)]
    if outcome.expected_wait_status is not None:
        for event in outcome.events:
            if event.get("status") != outcome.expected_wait_status:
                broken.append(
                    f"a wait ended {event.get('status')} although only one answer was faulty: {event.get('message')}"
                )
    # 6. Every refusal names the answer (or the argument) that caused it.
    broken += [f"a refusal does not name its cause: {text!r}" for text in outcome.refusals if not _names(cell, text)]
    return broken


def _names(cell: Cell, text: str) -> bool:
    lowered = text.lower()
    if cell.position == "kill" and any(word in lowered for word in ("killed", "deadline", "cancelled")):
        return True  # the kill (or the deadline that ends a killed try) is the cause, and is named
    status = cell.fault.status
    if status is not None and str(status) in text:
        return True
    if "http " in lowered or "api error" in lowered:
        return True  # another answer in the run (e.g. the retry's) is named
    words = _NAMES_THE_ANSWER.get(cell.fault.kind, ())
    return any(word in lowered for word in words) or (not words and bool(text.strip()))


def _destination_problems(sim: Any, destination: Path, video_task_id: str) -> list[str]:
    if not destination.exists():
        return []
    problems = []
    for path in destination.rglob("*"):
        if path.is_dir():
            continue
        if path.name.endswith(RECORD_SUFFIX) and path.with_name(path.name[: -len(RECORD_SUFFIX)]).exists():
            continue  # the integrity record beside a landed file
        if path.suffix != ".mp4":
            problems.append(f"a temporary or stray file was left at the destination: {path.name}")
            continue
        task = sim.get_task(sim_id(video_task_id))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if path.stat().st_size != task["video_size"] or digest != task["video_sha256"]:
            problems.append(f"{path.name} is at the destination but is not the whole video ({path.stat().st_size} B)")
    return problems
