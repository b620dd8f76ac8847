"""The simulator as its routes and its file host see it: a protocol, so that they need not import the server.

The server (:class:`~airflow_provider_videogen.testing.simulator.server.Simulator`) imports the
routes and the file host to dispatch requests to them; they are handed the server and type it with
this protocol instead, which keeps the imports running one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web

    from airflow_provider_videogen.testing.simulator.faults import ErrorForStatus
    from airflow_provider_videogen.testing.simulator.records import Fault, LogEntry
    from airflow_provider_videogen.testing.simulator.state import SimulatorState

__all__ = ["Simulator"]


class Simulator(Protocol):
    """What a style's routes and the file host use of the server that dispatched a request to them."""

    #: The tasks, faults and request log.
    state: SimulatorState
    #: Set when the server shuts down (a paused answer gives up then).
    closing: asyncio.Event

    async def pause(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; return False when the server shuts down meanwhile."""
        ...

    async def apply_fault(
        self,
        request: web.Request,
        target: str,
        task_id: str | None,
        entry: LogEntry,
        error_for_status: ErrorForStatus,
        shaping: tuple[str, ...] = ...,
    ) -> tuple[web.StreamResponse | None, Fault | None]:
        """Take the queued fault for a request, if any, and apply it (see the server's ``apply_fault``)."""
        ...
