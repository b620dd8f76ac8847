"""Shared fixtures: a throwaway Airflow home, the simulator, and ``videogen`` connections pointing at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Airflow reads its home when first imported: point it at a throwaway folder before any test imports it.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="videogen-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(AIRFLOW_HOME / "dags")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

if TYPE_CHECKING:
    from airflow_provider_videogen.testing import VideoGenSimulator

API_KEY = "sim-test-key-7f3a9c"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the SQLite metadata database once per test run (for ``dag.test()``)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def load_dag_file(airflow_db: Path) -> Callable[[Path], Any]:
    """
    Place a DAG file in the DAGs folder and import it; returns the module (its ``dag`` runs with ``dag.test()``).

    ``dag.test()`` serializes the DAG from its file, so the file must sit in the DAGs folder.
    """
    import importlib.util
    import shutil

    from airflow.configuration import conf

    def load(source: Path) -> Any:
        dags_folder = Path(conf.get("core", "dags_folder"))
        dags_folder.mkdir(parents=True, exist_ok=True)
        path = dags_folder / source.name
        shutil.copyfile(source, path)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def simulator() -> Iterator[VideoGenSimulator]:
    """One simulator for the whole run; use ``sim`` in tests to get it freshly reset."""
    from airflow_provider_videogen.testing import VideoGenSimulator

    with VideoGenSimulator(api_key=API_KEY, queued_seconds=0.2, running_seconds=0.3, video_size=200_000) as server:
        yield server


@pytest.fixture
def sim(simulator: VideoGenSimulator) -> Iterator[VideoGenSimulator]:
    """The simulator with no tasks, faults or logged requests."""
    from airflow_provider_videogen.shared_polls import SharedPolls

    simulator.reset()
    yield simulator
    # What hosts refused (the list call, long URLs) is remembered for the process: not from one test to the next.
    SharedPolls.refused.clear()
    SharedPolls.url_limited.clear()


ConnectionFactory = Callable[..., str]


@pytest.fixture
def videogen_connection(sim: VideoGenSimulator, monkeypatch: pytest.MonkeyPatch) -> ConnectionFactory:
    """
    Define a ``videogen`` connection to the simulator as an ``AIRFLOW_CONN_*`` variable.

    Call it with ``conn_id``, ``api_style`` and any other extras; it returns the connection id.
    """

    def define(
        conn_id: str = "videogen_default",
        api_style: str = "contents_generations",
        api_key: str = API_KEY,
        host: str | None = None,
        **extra: object,
    ) -> str:
        extra = {"api_style": api_style, **extra}
        conn = {"conn_type": "videogen", "host": host or sim.base_url, "password": api_key, "extra": extra}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    define()
    return define
