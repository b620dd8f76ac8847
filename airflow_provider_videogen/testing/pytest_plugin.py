"""Opt-in pytest plugin: a running VideoGen simulator and ``videogen`` connections for your tests.

Enable it in your top-level ``conftest.py``::

    pytest_plugins = ["airflow_provider_videogen.testing.pytest_plugin"]

Fixtures:

- ``videogen_simulator``: a :class:`~airflow_provider_videogen.testing.VideoGenSimulator` serving on
  127.0.0.1, reset before each test (tasks, faults, request log, settings). One server runs per set
  of settings for the whole session.
- ``videogen_simulator_settings``: the simulator's settings (fields of
  :class:`~airflow_provider_videogen.testing.simulator.SimulatorConfig`; a fast lifecycle by
  default). Override it in your ``conftest.py``, or in one test module, to change them.
- ``videogen_connection``: a factory that defines a ``videogen`` connection to the simulator as an
  ``AIRFLOW_CONN_*`` variable for the test: ``videogen_connection(conn_id, api_style, **extra)``
  returns the connection id (``videogen_default``, contents-generations style, is defined already).
- ``videogen_conn_env``: sets ``AIRFLOW_CONN_VIDEOGEN_DEFAULT`` (contents-generations style) and
  ``AIRFLOW_CONN_VIDEOGEN_VIDEO`` (video-generations style) for the test and returns them as a dict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_videogen.testing.harness import VideoGenSimulator

ConnectionFactory = Callable[..., str]


@pytest.fixture(scope="session")
def videogen_simulator_settings() -> dict[str, Any]:
    """Return the settings of the simulator (keyword arguments of ``VideoGenSimulator``)."""
    return {"queued_seconds": 0.1, "running_seconds": 0.2, "video_size": 262_144}


@pytest.fixture(scope="session")
def _videogen_simulators() -> Iterator[dict[str, VideoGenSimulator]]:
    servers: dict[str, VideoGenSimulator] = {}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def videogen_simulator(
    _videogen_simulators: dict[str, VideoGenSimulator], videogen_simulator_settings: dict[str, Any]
) -> VideoGenSimulator:
    """Return the running simulator for these settings, reset for this test."""
    from airflow_provider_videogen.shared_polls import SharedPolls

    key = json.dumps(videogen_simulator_settings, sort_keys=True)
    server = _videogen_simulators.get(key)
    if server is None:
        server = _videogen_simulators[key] = VideoGenSimulator(**videogen_simulator_settings).start()
    server.reset()
    # What a host refused (the list call, long URLs) is remembered for the process: not from test to test.
    SharedPolls.forget_refusals()
    return server


@pytest.fixture
def videogen_connection(videogen_simulator: VideoGenSimulator, monkeypatch: pytest.MonkeyPatch) -> ConnectionFactory:
    """Return a factory of ``videogen`` connections to the simulator (``videogen_default`` is made now).

    Call it with ``conn_id``, ``api_style``, ``api_key`` (the simulator's by default), ``host`` (the
    simulator's by default) and any other extras; it returns the connection id.
    """

    def define(
        conn_id: str = "videogen_default",
        api_style: str = "contents_generations",
        api_key: str | None = None,
        host: str | None = None,
        **extra: object,
    ) -> str:
        conn = {
            "conn_type": "videogen",
            "host": host or videogen_simulator.base_url,
            "password": videogen_simulator.api_key if api_key is None else api_key,
            "extra": {"api_style": api_style, **extra},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    define()
    return define


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
