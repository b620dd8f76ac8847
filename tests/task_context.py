"""Airflow's task context as the operators see it, faked for tests that call ``execute`` directly."""

from __future__ import annotations

from typing import Any


class FakeTaskInstance:
    """The task instance of the context: what the operator pushes to XCom."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class FakeStateStore:
    """Stands in for Airflow 3.3's ``task_state_store``: it outlives one try, like the real one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def recorded_id(store: FakeStateStore, key: str = "video_task_id") -> Any:
    """The generation id kept in the store's record (an object with the id and the request's fingerprint)."""
    value = store.values.get(key)
    return value.get("video_task_id") if isinstance(value, dict) else value
