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
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

RETENTION = timedelta(days=7)
"""How long a record is used: video tasks stay queryable for 7 days, a later retry cannot reconnect anyway."""

_VARIABLE_PREFIX = "videogen_generation"
_MAX_VARIABLE_KEY = 250


class GenerationRecord:
    """The id of the generation this task submitted, kept where the next try of the task finds it.

    :param where: where the record is kept, for log lines and error messages.
    """

    where: str = ""

    def get(self) -> str | None:
        """Return the id an earlier try saved, or ``None``."""
        raise NotImplementedError

    def save(self, video_task_id: str) -> None:
        """Keep the id (raise if it could not be kept)."""
        raise NotImplementedError

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

    def get(self) -> str | None:
        """Return the id an earlier try saved, or ``None``."""
        value = self.store.get(self.key)
        return value if isinstance(value, str) and value else None

    def save(self, video_task_id: str) -> None:
        """Keep the id for :data:`RETENTION`."""
        self.store.set(self.key, video_task_id, retention=RETENTION)


class VariableRecord(GenerationRecord):
    """The record as an Airflow Variable (Airflow 3.1 and 3.2), deleted when the task ends.

    :param key: the Variable's key (see :func:`variable_key`).
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.where = f"the Airflow Variable {key!r}"

    def get(self) -> str | None:
        """Return the id an earlier try saved (within :data:`RETENTION`), or ``None``."""
        from airflow.sdk import Variable

        raw = Variable.get(self.key, default=None)
        if raw is None:
            return None
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
            video_task_id, saved_at = data["video_task_id"], float(data["saved_at"])
        except (ValueError, TypeError, KeyError):
            log.warning("Ignoring the unreadable record %s.", self.where)
            return None
        if not isinstance(video_task_id, str) or time.time() - saved_at > RETENTION.total_seconds():
            return None
        return video_task_id

    def save(self, video_task_id: str) -> None:
        """Write the Variable (with the time, so that a stale record is never used)."""
        from airflow.sdk import Variable

        value = json.dumps({"video_task_id": video_task_id, "saved_at": round(time.time(), 3)})
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
        return StateStoreRecord(store, key)
    ti = context.get("ti")
    dag_id, run_id, task_id = (getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id"))
    if not (isinstance(dag_id, str) and isinstance(run_id, str) and isinstance(task_id, str)):
        return None
    return VariableRecord(variable_key(dag_id, run_id, task_id, getattr(ti, "map_index", None)))
