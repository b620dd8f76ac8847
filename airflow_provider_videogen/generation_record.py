"""Where a try of ``GenerateVideoOperator`` keeps the id of the generation it submitted.

A generation costs money, and a task's retry (after a worker crash, a lost trigger event, a passing
fault) must reconnect to the generation the earlier try submitted instead of paying for another. That
needs a record that outlives the try and the worker:

- Airflow 3.3+: the task's ``task_state_store`` (kept for 7 days; Airflow removes it itself).
- Airflow 3.1 and 3.2: an Airflow Variable keyed by dag id, run id, task id and map index (and a hash
  of them, so that no two task instances share one), written right after the create call answered,
  read at the start of each try, and deleted when the task ends (it succeeded, or it failed with no
  retry to follow). A Variable is the most robust record those versions offer a task: it lives in
  the metadata database (not on the worker, which may be gone), a task writes and reads it through
  the same execution API it already uses, and it is not cleared between tries, as the task's XComs are.

Beside the id the record keeps the *request fingerprint* (:func:`request_fingerprint`): a try whose
request differs from the recorded one (the DAG's prompt or parameters changed before a clear) does
not take the old video for the new request. Before the create call a try writes an *intent* (the
fingerprint and the time, no id yet): a worker killed between the create's answer and the id's write
leaves it, and the next try looks for the generation it may have paid for before paying again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_videogen.generation_request import Upload

log = logging.getLogger(__name__)

RETENTION = timedelta(days=7)
"""How long a record is used: video tasks stay queryable for 7 days, a later retry cannot reconnect anyway."""

_VARIABLE_PREFIX = "videogen_generation"
_MAX_VARIABLE_KEY = 250


@dataclass(frozen=True)
class Recorded:
    """What an earlier try of the task left in its record.

    :param video_task_id: the generation it submitted; ``None`` for an intent whose create never
        answered (or whose worker died before the id was kept).
    :param request: the fingerprint of the request it sent; ``None`` in a record written by a release
        that kept none.
    :param intent_at: when it was about to send the create call (unix seconds); ``None`` once the id is kept.
    """

    video_task_id: str | None
    request: str | None = None
    intent_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the value kept in the record (``saved_at``: when, so that a stale Variable is never used)."""
        value: dict[str, Any] = {"saved_at": round(time.time(), 3)}
        if self.video_task_id is not None:
            value["video_task_id"] = self.video_task_id
        if self.request is not None:
            value["request"] = self.request
        if self.intent_at is not None:
            value["intent_at"] = round(self.intent_at, 3)
        return value

    @classmethod
    def from_json(cls, value: Any) -> Recorded | None:
        """Read a kept value: an id alone (a record of the previous release), or :meth:`to_json`'s object."""
        if isinstance(value, str):
            return cls(value) if value else None
        if not isinstance(value, Mapping):
            return None
        video_task_id, request, intent_at = value.get("video_task_id"), value.get("request"), value.get("intent_at")
        video_task_id = video_task_id if isinstance(video_task_id, str) and video_task_id else None
        request = request if isinstance(request, str) and request else None
        if not isinstance(intent_at, (int, float)) or isinstance(intent_at, bool):
            intent_at = None
        if video_task_id is None and (request is None or intent_at is None):
            return None
        return cls(video_task_id, request, None if video_task_id is not None or intent_at is None else float(intent_at))


class GenerationRecord:
    """The id of the generation this task submitted, kept where the next try of the task finds it.

    :param where: where the record is kept, for log lines and error messages.
    """

    where: str = ""

    def read(self) -> Recorded | None:
        """Return what an earlier try kept (an id, or an intent), or ``None``."""
        raise NotImplementedError

    def write(self, recorded: Recorded) -> None:
        """Keep ``recorded`` (raise if it could not be kept)."""
        raise NotImplementedError

    def get(self) -> str | None:
        """Return the id an earlier try saved, or ``None``."""
        recorded = self.read()
        return recorded.video_task_id if recorded is not None else None

    def save(self, video_task_id: str, request: str | None = None) -> None:
        """Keep the id, and the fingerprint of the request that made it (raise if it could not be kept)."""
        self.write(Recorded(video_task_id, request))

    def save_intent(self, request: str, at: float) -> None:
        """Say, before the create call, that a generation for ``request`` is about to be paid for."""
        self.write(Recorded(None, request, at))

    def drop_intent(self) -> None:
        """Remove an intent that no generation answers (the create was refused or never sent; never raises)."""
        self.forget()

    def forget(self) -> None:
        """Drop the record once the task has ended (never raises)."""

    def why_not_saved(self) -> str:
        """Return a known cause of failing writes on this installation, and its remedy; ``""`` where none is known."""
        return ""


class StateStoreRecord(GenerationRecord):
    """The record in Airflow 3.3's ``task_state_store``, which Airflow expires itself after :data:`RETENTION`.

    It is not dropped when the task ends: a task cleared after it succeeded reconnects to the same
    generation rather than paying for a new one.

    :param store: the ``task_state_store`` of the task's context.
    :param key: the key the id is kept under.
    """

    where = "the task_state_store"

    def __init__(self, store: Any, key: str) -> None:
        self.store = store
        self.key = key

    def read(self) -> Recorded | None:
        """Return what an earlier try kept (an id alone where the previous release wrote it), or ``None``."""
        return Recorded.from_json(self.store.get(self.key))

    def write(self, recorded: Recorded) -> None:
        """Keep ``recorded`` for :data:`RETENTION` (one value: the id and its fingerprint are never apart)."""
        self.store.set(self.key, recorded.to_json(), retention=RETENTION)

    def drop_intent(self) -> None:
        """Delete the key, so that the next try submits without looking for a generation."""
        try:
            self.store.delete(self.key)
        except Exception as error:
            log.warning("Could not drop the intent in %s (%s).", self.where, error)


class VariableRecord(GenerationRecord):
    """The record as an Airflow Variable (Airflow 3.1 and 3.2), deleted when the task ends.

    :param key: the Variable's key (see :func:`variable_key`).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.where = f"the Airflow Variable {key!r}"

    def read(self) -> Recorded | None:
        """Return what an earlier try kept (within :data:`RETENTION`), or ``None``."""
        from airflow.sdk import Variable

        raw = Variable.get(self.key, default=None)
        if raw is None:
            return None
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
            saved_at = float(data["saved_at"])
        except (ValueError, TypeError, KeyError):
            log.warning("Ignoring the unreadable record %s.", self.where)
            return None
        if time.time() - saved_at > RETENTION.total_seconds():
            return None
        return Recorded.from_json(data)

    def write(self, recorded: Recorded) -> None:
        """Write the Variable (with the time, so that a stale record is never used)."""
        from airflow.sdk import Variable

        value = json.dumps(recorded.to_json())
        Variable.set(
            self.key,
            value,
            description="The generation a GenerateVideoOperator task submitted, so that its retries reconnect "
            "to it; deleted when the task ends.",
        )

    def why_not_saved(self) -> str:
        """Name Airflow 3.1 with cryptography 51+, which cannot encrypt any Variable, where that is installed."""
        return fernet_incompatibility()

    def forget(self) -> None:
        """Delete the Variable."""
        from airflow.sdk import Variable

        try:
            Variable.delete(self.key)
        except Exception as error:
            log.warning("Could not delete %s (%s); it is ignored after 7 days.", self.where, error)


def fernet_incompatibility() -> str:
    """Say why Variables cannot be written where Airflow 3.1 meets cryptography 51 or newer; ``""`` elsewhere.

    Airflow 3.1's ``get_fernet()`` sets an attribute on cryptography's ``MultiFernet``, which cryptography 51
    (a Rust type) refuses: with a fernet key set, as in every real deployment, the API server answers every
    Variable write with an error. Airflow 3.2 and newer wrap the ``MultiFernet`` and are not affected.
    """
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        airflow, cryptography = Version(version("apache-airflow-core")), Version(version("cryptography"))
    except (PackageNotFoundError, ValueError):
        return ""
    if airflow >= Version("3.2") or cryptography < Version("51"):
        return ""
    return (
        f"Airflow {airflow} cannot encrypt Variables with cryptography {cryptography} (its get_fernet() sets an "
        "attribute that cryptography 51 and newer refuse), so no Variable can be written while a fernet key is set. "
        "Install Airflow with its constraints file, which pins an older cryptography, or install "
        "'cryptography<51' beside it (in the API server's environment too), or upgrade to Airflow 3.2 or newer."
    )


def variable_key(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str:
    """Return the Variable key of one task instance's record: a readable prefix, then a hash of the ids.

    The ids joined with dots read well but are ambiguous (dag ``etl``, run ``batch.video`` and dag
    ``etl.batch``, run ``video`` join alike, and two task instances must never share a record), so
    the key ends with a hash of the ids themselves, which tells every task instance apart. The
    readable part is cut where the key would pass Airflow's 250 characters.
    """
    index = -1 if map_index is None else map_index
    identity = json.dumps([dag_id, run_id, task_id, index])
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    readable = f"{_VARIABLE_PREFIX}.{dag_id}.{run_id}.{task_id}.{index}"[: _MAX_VARIABLE_KEY - len(digest) - 1]
    return f"{readable}.{digest}"


def generation_record(context: Mapping[str, Any], key: str) -> GenerationRecord | None:
    """Return this task instance's record: the ``task_state_store`` where Airflow has one, else a Variable.

    ``None`` when neither can be had (a context without a task instance, as when ``execute`` is
    called outside Airflow): every try then submits a new generation.
    """
    store = context.get("task_state_store")  # Airflow 3.3+
    if store is not None:
        return StateStoreRecord(store, record_key(context, key))
    ti = context.get("ti")
    dag_id, run_id, task_id = (getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id"))
    if not (isinstance(dag_id, str) and isinstance(run_id, str) and isinstance(task_id, str)):
        return None
    return VariableRecord(variable_key(dag_id, run_id, task_id, getattr(ti, "map_index", None)))


def request_fingerprint(
    *,
    style: str,
    base_url: str,
    model: str,
    body: Any,
    uploads: Sequence[Upload] = (),
) -> str:
    """Return a hash of what a create call sends: the style, the base URL, the model, the body, the uploaded files.

    The body is hashed as canonical JSON (keys sorted), so that two bodies differing only in the order
    of their keys have one fingerprint; an uploaded file counts by its form field, name, type and the
    SHA-256 of its bytes. The API key is in no part of it (it travels in headers, which are not hashed).
    """
    files = [
        [upload.form_field, upload.filename, upload.content_type, hashlib.sha256(upload.data).hexdigest()]
        for upload in uploads
    ]
    canonical = json.dumps(
        {"style": style, "base_url": base_url.rstrip("/"), "model": model, "body": body, "uploads": files},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def record_key(context: Mapping[str, Any], key: str) -> str:
    """Return the record's ``task_state_store`` key for this run of the task: ``key``, and the loop pass in a loop.

    Airflow 3.4's Task Loops run the tasks of a loop once per pass; a pass's task instance shares the
    task's identity columns (dag, run, task, index) with mapping, and the ``dynamic_region`` row of the
    loop's execution tells the executions apart (the task instance's ``region_id``). A second pass must
    not reconnect to the first pass's video, so inside a loop the key names the pass: the task
    instance's index within the loop's execution. Feature-detected: a task instance without a
    ``region_id`` (Airflow before 3.4), or outside any loop or mapping (the nil UUID), keeps ``key``,
    so that the records of tries in flight across an upgrade are still found.
    """
    ti = context.get("ti")
    region = getattr(ti, "region_id", None)
    if region is None or str(region) == _NO_REGION:
        return key
    index = getattr(ti, "map_index", None)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        return key
    return f"{key}.pass-{index}"


# Airflow's ``region_id`` of a task instance outside any loop or mapping (its SENTINEL_REGION_ID).
_NO_REGION = "00000000-0000-0000-0000-000000000000"
