"""Test helpers: an HTTP simulator of the video-generation APIs, and ways to run it.

``process_tree`` stops a service started in a session of its own (an Airflow component, say)
together with everything it started.

Importing this package is cheap: the helpers load on first use, so that
``python -m airflow_provider_videogen.testing.simulator`` runs the server module only once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_videogen.testing._media import video_bytes, video_sha256
    from airflow_provider_videogen.testing.harness import (
        SimulatorControlError,
        SimulatorProcess,
        VideoGenSimulator,
    )
    from airflow_provider_videogen.testing.simulator import SimulatorConfig, create_app

__all__ = [
    "SimulatorConfig",
    "SimulatorControlError",
    "SimulatorProcess",
    "VideoGenSimulator",
    "create_app",
    "video_bytes",
    "video_sha256",
]

_EXPORTS = {
    "SimulatorConfig": "airflow_provider_videogen.testing.simulator",
    "create_app": "airflow_provider_videogen.testing.simulator",
    "SimulatorControlError": "airflow_provider_videogen.testing.harness",
    "SimulatorProcess": "airflow_provider_videogen.testing.harness",
    "VideoGenSimulator": "airflow_provider_videogen.testing.harness",
    "video_bytes": "airflow_provider_videogen.testing._media",
    "video_sha256": "airflow_provider_videogen.testing._media",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
