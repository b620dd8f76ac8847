"""The end-to-end suite's simulator: its own process on a fixed port, started again if it dies."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from airflow_provider_videogen.testing import SimulatorProcess

from .deployment import free_port

API_KEY = "sim-e2e-key-4b1d"

running_simulators: list[SimulatorService] = []
"""The simulator services running now (a failing test's report says how each is)."""


class SimulatorService:
    """The session's simulator, in its own process on a fixed port.

    The deployment's connections name that port, so if the simulator dies (a test killed it, or it
    crashed) it is started again there, for the following tests; the failing test's report says how
    it ended.

    :param settings: settings of :class:`SimulatorProcess` besides the defaults set here.
    """

    def __init__(self, **settings: Any) -> None:
        self.port = free_port()
        self.settings = {"queued_seconds": 0.5, "running_seconds": 0.5, "video_size": 300_000, **settings}
        self.exit_codes: list[int | None] = []
        self.process = self._start()

    def _start(self) -> SimulatorProcess:
        return SimulatorProcess(api_key=API_KEY, port=self.port, **self.settings).start()

    def alive(self) -> SimulatorProcess:
        """The simulator, started again first if it has died."""
        if not self.process.running:
            self.exit_codes.append(self.process.stop())
            self.process = self._start()
        return self.process

    def status(self) -> str:
        state = "running" if self.process.running else "NOT RUNNING"
        text = f"simulator on port {self.port}: {state}"
        if self.exit_codes:
            text += f"; earlier processes exited with codes {self.exit_codes} (negative: killed by that signal)"
        return text

    def stop(self) -> None:
        self.process.stop()


@contextlib.contextmanager
def simulator_service(**settings: Any) -> Iterator[SimulatorService]:
    """A simulator service, stopped at the end; its state is reported when a test fails meanwhile."""
    service = SimulatorService(**settings)
    running_simulators.append(service)
    try:
        yield service
    finally:
        running_simulators.remove(service)
        service.stop()
