"""An HTTP simulator of the video-generation APIs the provider speaks, every style on one port.

Laid out the way moto lays out a service:

- :mod:`.config`: the settings (:class:`SimulatorConfig`; the command line is made from it);
- :mod:`.state`: tasks and their time-based lifecycle, queued faults, the request log;
- :mod:`.routes`: one module per API style (its paths, bodies, answers and errors) and their registry;
- :mod:`.files`: the file host (``/_files/``: signed, expiring URLs with ``Range``, no authentication);
- :mod:`.faults`: error answers, dropped connections, cut and slow bodies;
- :mod:`.control`: the control API under ``/_simulator/`` (no authentication, never in the request
  log) that tests use to add tasks, pin statuses, inject faults and read the request log;
- :mod:`.server`: the one handler that ties them together, the app, and the command line.

Any path prefix is accepted (``/llm/v1``, ``/api/v3``, ``/v1``...): routes match on their suffix.

Run it as a process with ``python -m airflow_provider_videogen.testing.simulator --port 0``; it prints
one line ``VideoGen simulator listening on http://HOST:PORT`` and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

from airflow_provider_videogen.testing.simulator.config import (
    FAULT_KINDS,
    FAULT_TARGETS,
    FINAL_STATUSES,
    SHAPES,
    SimulatorConfig,
)
from airflow_provider_videogen.testing.simulator.routes import STYLES
from airflow_provider_videogen.testing.simulator.server import (
    STATE_KEY,
    build_parser,
    create_app,
    format_base_url,
    main,
    start_server,
)
from airflow_provider_videogen.testing.simulator.state import SimulatorState

__all__ = [
    "FAULT_KINDS",
    "FAULT_TARGETS",
    "FINAL_STATUSES",
    "SHAPES",
    "STATE_KEY",
    "STYLES",
    "SimulatorConfig",
    "SimulatorState",
    "build_parser",
    "create_app",
    "format_base_url",
    "main",
    "start_server",
]
