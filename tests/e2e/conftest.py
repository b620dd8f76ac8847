"""Fixtures of the end-to-end suite: the simulator in its own process and a real Airflow deployment.

One deployment (scheduler, triggerer, dag-processor, api-server on SQLite with LocalExecutor) serves
the whole session, with the DAGs of ``tests/e2e/dags`` and the repo's ``example_dags``;
``start_deployment`` starts more (other DAG folders, connections or settings).
When a test fails, the tail of every running service's output is added to its report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import AirflowDeployment, DeploymentError

E2E_DAGS = Path(__file__).resolve().parent / "dags"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
API_KEY = "sim-e2e-key-4b1d"

_started: list[AirflowDeployment] = []

StartDeployment = Callable[..., AirflowDeployment]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    if report.failed and report.when in ("setup", "call"):
        for deployment in _started:
            report.sections.append((f"Airflow services ({deployment.home.name})", deployment.diagnostics()))
    return report


@pytest.fixture(scope="session")
def e2e_simulator() -> Iterator[SimulatorProcess]:
    """The simulator in its own process, shared by every deployment of the session."""
    with SimulatorProcess(api_key=API_KEY, queued_seconds=0.5, running_seconds=0.5, video_size=300_000) as sim:
        yield sim


@pytest.fixture(scope="session")
def start_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartDeployment]:
    """Start a deployment in a fresh home; every one is stopped at the end of the session.

    ``start_deployment([dags folders], env={"AIRFLOW_CONN_...": ...}, config={"core": {...}})``
    """
    created: list[AirflowDeployment] = []

    def start(
        dags_folders: Sequence[Path] = (E2E_DAGS,),
        *,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        name: str = "airflow",
    ) -> AirflowDeployment:
        home = tmp_path_factory.mktemp(name)
        deployment = AirflowDeployment(home, dags_folders, env=env, config=config, service_env=service_env)
        created.append(deployment)
        try:
            deployment.migrate()
            deployment.start()
        except BaseException as error:
            deployment.stop()
            raise DeploymentError(f"The deployment did not start: {error}\n{deployment.diagnostics()}") from error
        _started.append(deployment)
        return deployment

    try:
        yield start
    finally:
        for deployment in created:
            if deployment in _started:
                _started.remove(deployment)
            deployment.stop()


@pytest.fixture(scope="session")
def _e2e_deployment(start_deployment: StartDeployment, e2e_simulator: SimulatorProcess) -> AirflowDeployment:
    return start_deployment(
        [E2E_DAGS, EXAMPLE_DAGS],
        env={
            **e2e_simulator.conn_env("videogen_default"),
            **e2e_simulator.conn_env("videogen_gateway", api_style="video_generations"),
        },
        # asyncio then names the coroutine behind each blocked step of the triggerer's event loop.
        service_env={"triggerer": {"PYTHONASYNCIODEBUG": "1"}},
        name="e2e-airflow",
    )


@pytest.fixture
def airflow(_e2e_deployment: AirflowDeployment) -> AirflowDeployment:
    """The session's deployment, with every service running (a test may have stopped one)."""
    deployment = _e2e_deployment
    restarted = [name for name in deployment.processes if not deployment.running(name)]
    for name in restarted:
        deployment.start_service(name)
    if restarted:
        deployment.wait_until_healthy()
    return deployment


@pytest.fixture
def sim(e2e_simulator: SimulatorProcess) -> SimulatorProcess:
    """The session's simulator (not reset: tests tell their tasks apart by id)."""
    return e2e_simulator
