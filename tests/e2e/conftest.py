"""Fixtures of the end-to-end suite: the simulator in its own process and a real Airflow deployment.

One deployment (scheduler, triggerer, dag-processor, api-server on SQLite with LocalExecutor) serves
the whole session, with the DAGs of ``tests/e2e/dags`` and the repo's ``example_dags``;
``start_deployment`` starts more (other DAG folders, connections or settings).
When a test fails, the tail of every running service's output is added to its report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import AirflowDeployment
from .simulator_service import SimulatorService, running_simulators, simulator_service

if TYPE_CHECKING:
    from .distributed import DistributedDeployment

E2E_DAGS = Path(__file__).resolve().parent / "dags"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"

_started: list[AirflowDeployment] = []

StartDeployment = Callable[..., AirflowDeployment]


# What the distributed suite measured, printed at the end of the session.
_figures: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _figures:
        terminalreporter.section("videogen: figures of the distributed suite")
        for line in _figures:
            terminalreporter.write_line(line)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``figures(text)``: report a measured figure of this test at the end of the session."""
    return lambda text: _figures.append(f"{request.node.name}: {text}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if item.get_closest_marker("distributed") and report.when in ("setup", "call") and not report.skipped:
        _figures.append(f"{item.name}: {report.when} took {report.duration:.1f} s ({report.outcome})")
    if report.failed and report.when in ("setup", "call"):
        for simulator in running_simulators:
            report.sections.append(("VideoGen simulator", simulator.status()))
        for deployment in _started:
            report.sections.append((f"Airflow services ({deployment.home.name})", deployment.diagnostics()))
    return report


@pytest.fixture(scope="session")
def e2e_simulator() -> Iterator[SimulatorService]:
    """The simulator in its own process, shared by every SQLite deployment of the session."""
    with simulator_service() as service:
        yield service


@pytest.fixture(scope="session")
def start_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartDeployment]:
    """Start a deployment in a fresh home; every one is stopped at the end of the session.

    ``start_deployment([dags folders], env={"AIRFLOW_CONN_...": ...}, config={"core": {...}})``; other
    keyword arguments go to :class:`AirflowDeployment` (e.g. ``services``).
    """
    created: list[AirflowDeployment] = []

    def start(
        dags_folders: Sequence[Path] = (E2E_DAGS,),
        *,
        env: Mapping[str, str] | None = None,
        config: Mapping[str, Mapping[str, Any]] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        name: str = "airflow",
        **options: Any,
    ) -> AirflowDeployment:
        home = tmp_path_factory.mktemp(name)
        deployment = AirflowDeployment(home, dags_folders, env=env, config=config, service_env=service_env, **options)
        created.append(deployment)
        deployment.launch()
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
def _e2e_deployment(start_deployment: StartDeployment, e2e_simulator: SimulatorService) -> AirflowDeployment:
    simulator = e2e_simulator.alive()
    return start_deployment(
        [E2E_DAGS, EXAMPLE_DAGS],
        env={
            **simulator.conn_env("videogen_default"),
            **simulator.conn_env("videogen_gateway", api_style="video_generations"),
            **simulator.conn_env("videogen_openai", api_style="openai_videos"),
            **simulator.conn_env("videogen_fal", api_style="fal"),
            **simulator.conn_env("videogen_replicate", api_style="replicate"),
            # The draft-then-final example caps each step's cost: its connection has prices.
            "AIRFLOW_CONN_VIDEOGEN_PRICED": _with_prices(
                simulator.connection_json(), {"doubao-seedance-*": {"per_million_tokens": 2.5, "currency": "USD"}}
            ),
        },
        # As make airflow has it: the connection form's Test button works.
        config={"core": {"test_connection": "Enabled"}},
        # asyncio then names the coroutine behind each blocked step of the triggerer's event loop.
        service_env={"triggerer": {"PYTHONASYNCIODEBUG": "1"}},
        name="e2e-airflow",
    )


def _with_prices(connection_json: str, prices: Mapping[str, Any]) -> str:
    """Return the connection (JSON, as in ``AIRFLOW_CONN_...``) with a ``prices`` extra."""
    connection = json.loads(connection_json)
    connection["extra"]["prices"] = dict(prices)
    return json.dumps(connection)


@pytest.fixture
def airflow(_e2e_deployment: AirflowDeployment) -> AirflowDeployment:
    """The session's deployment, with every service running (a test may have stopped one)."""
    _e2e_deployment.revive()
    return _e2e_deployment


@pytest.fixture
def sim(e2e_simulator: SimulatorService) -> SimulatorProcess:
    """The session's simulator (not reset: tests tell their tasks apart by id)."""
    return e2e_simulator.alive()


# ---- the distributed deployment (marker ``distributed``) ----


@pytest.fixture(scope="session")
def distributed_simulator() -> Iterator[SimulatorService]:
    """The distributed suite's own simulator, with a request log long enough for hundreds of videos."""
    with simulator_service(request_log_size=500_000) as service:
        yield service


@pytest.fixture(scope="session")
def _distributed_deployment(
    tmp_path_factory: pytest.TempPathFactory, distributed_simulator: SimulatorService
) -> Iterator[DistributedDeployment]:
    if Version(airflow_version) < Version("3.3"):
        pytest.skip(
            "The distributed suite runs on the newest Airflow only (3.3+): it is slow, and its database "
            "test is about the task_state_store, which Airflow 3.3 brought."
        )
    from .distributed import running

    simulator = distributed_simulator.alive()
    with running(tmp_path_factory.mktemp("distributed-airflow"), [E2E_DAGS], env=simulator.conn_env()) as deployment:
        _started.append(deployment)
        try:
            yield deployment
        finally:
            _started.remove(deployment)


@pytest.fixture
def distributed(_distributed_deployment: DistributedDeployment) -> DistributedDeployment:
    """The distributed deployment (CeleryExecutor, PostgreSQL, Redis), every service running."""
    _distributed_deployment.revive()
    return _distributed_deployment


@pytest.fixture
def dsim(distributed_simulator: SimulatorService) -> SimulatorProcess:
    """The distributed deployment's simulator (not reset: tests tell their tasks apart by id)."""
    return distributed_simulator.alive()
