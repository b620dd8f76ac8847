"""Names that moved between the Airflow versions this provider supports (3.1 and newer)."""

from __future__ import annotations

try:  # Airflow 3.2+
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow 3.1
    from airflow.configuration import conf  # type: ignore[no-redef]

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
