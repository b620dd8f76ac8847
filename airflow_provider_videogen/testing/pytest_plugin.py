"""Opt-in pytest plugin: a running VideoGen simulator for your tests.

Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["airflow_provider_videogen.testing.pytest_plugin"]

Fixtures:

- ``videogen_simulator``: a :class:`~airflow_provider_videogen.testing.VideoGenSimulator` serving on
  127.0.0.1 (one per test session), reset before each test (tasks, faults, request log, settings).
- ``videogen_conn_env``: sets ``AIRFLOW_CONN_VIDEOGEN_DEFAULT`` (contents-generations style) and
  ``AIRFLOW_CONN_VIDEOGEN_VIDEO`` (video-generations style) for the test, pointing at the simulator,
  and returns them as a dict.
- ``videogen_simulator_settings``: the simulator's settings (fast lifecycle by default); override it
  in your ``conftest.py`` to change them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_videogen.testing.harness import VideoGenSimulator


@pytest.fixture(scope="session")
def videogen_simulator_settings() -> dict[str, Any]:
    """Return the settings of the session's simulator (keyword arguments of ``VideoGenSimulator``)."""
    return {"queued_seconds": 0.1, "running_seconds": 0.2, "video_size": 262_144}


@pytest.fixture(scope="session")
def _videogen_simulator_server(videogen_simulator_settings: dict[str, Any]) -> Iterator[VideoGenSimulator]:
    with VideoGenSimulator(**videogen_simulator_settings) as simulator:
        yield simulator


@pytest.fixture
def videogen_simulator(_videogen_simulator_server: VideoGenSimulator) -> VideoGenSimulator:
    """Return the running simulator, reset for this test."""
    _videogen_simulator_server.reset()
    return _videogen_simulator_server


@pytest.fixture
def videogen_conn_env(videogen_simulator: VideoGenSimulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the ``videogen_default`` and ``videogen_video`` Airflow connections at the simulator."""
    env = {
        **videogen_simulator.conn_env("videogen_default", api_style="contents_generations"),
        **videogen_simulator.conn_env("videogen_video", api_style="video_generations"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
