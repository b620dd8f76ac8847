"""What the style test modules share: a style's connection to the simulator, its hook, its tasks, its file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.operators.videogen import FetchVideoOperator
from airflow_provider_videogen.styles import STYLES, ApiStyle
from airflow_provider_videogen.testing import VideoGenSimulator

#: Retries quick enough for a test run.
FAST = RetryPolicy(max_attempts=3, initial_wait=0.01, max_wait=0.02)


@dataclass(frozen=True)
class StyleCase:
    """One API style under test against the simulator, over loopback.

    A style's test module names its case as ``CASE``; the ``style_connection`` fixture (this
    folder's conftest) defines the case's connection for each test that asks for it.

    :param api_style: the style's name in the registry (the connection's ``api_style``).
    :param conn_id: the id of the connection the module's tests use.
    """

    api_style: str
    conn_id: str

    @property
    def style(self) -> ApiStyle:
        """The style, from the registry."""
        return STYLES[self.api_style]

    def connect(self, videogen_connection: Any, **extra: Any) -> str:
        """Define the case's connection to the simulator (``videogen_connection``: the plugin's factory)."""
        return str(videogen_connection(conn_id=self.conn_id, api_style=self.api_style, **extra))

    def hook(self, policy: RetryPolicy = FAST) -> VideoGenHook:
        """A hook on the case's connection."""
        return VideoGenHook(self.conn_id, retry_policy=policy)

    def add(self, sim: VideoGenSimulator, **kwargs: Any) -> str:
        """Add a task of the style to the simulator, finished at once unless told otherwise; return its id."""
        return sim.add_task(style=self.api_style, **{"queued_seconds": 0, "running_seconds": 0, **kwargs})

    def fetch(self, **kwargs: Any) -> dict[str, Any]:
        """Land a task's files through ``FetchVideoOperator`` on the case's connection; return its XCom."""
        operator = FetchVideoOperator(task_id="fetch", videogen_conn_id=self.conn_id, http_retry_policy=FAST, **kwargs)
        return operator.execute(context={})  # type: ignore[arg-type]
