"""Names that moved between the Airflow versions this provider supports (3.1 and newer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:  # Airflow 3.2+: the Task SDK owns the task exceptions
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # Airflow 3.1
    from airflow.exceptions import (  # type: ignore[no-redef,attr-defined]
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

__all__ = ["AirflowFailException", "AirflowSensorTimeout", "AirflowSkipException", "TaskDeferred", "conf"]

if TYPE_CHECKING:
    from airflow.sdk.configuration import conf


def __getattr__(name: str) -> Any:
    """``conf``, imported when first asked for.

    Not at import time: Airflow's providers manager reads ``get_provider_info()`` while
    ``airflow.configuration`` is still being set up, and what it imports must not need ``conf``.
    """
    if name != "conf":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:  # Airflow 3.2+
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf  # type: ignore[no-redef]
    return conf
