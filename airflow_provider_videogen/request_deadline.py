"""The deadline of one sync request: a watchdog that cuts the request's connections once its time is up.

``requests`` applies its timeout to each socket read, so a server that trickles a body a few bytes a
second could hold a worker for as long as it liked. :func:`~airflow_provider_videogen.transport.send`
runs each request under a :func:`deadline`; the connections the request opens :func:`watch` it, and at
the deadline their sockets are shut down. The transport's name for the error stays importable from
:mod:`~airflow_provider_videogen.transport`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from urllib3.connection import HTTPConnection

__all__ = ["Deadline", "RequestDeadlineExceeded", "deadline", "watch"]


class RequestDeadlineExceeded(requests.exceptions.ReadTimeout):
    """The whole request (connect, headers and body) took longer than its timeout."""


class Deadline:
    """Shuts down the sockets of the connections one request used once its time is up."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, connection: HTTPConnection) -> None:
        """Shut ``connection``'s socket down at the deadline; refuse it if the deadline has passed already."""
        with self._lock:
            if self.expired:
                raise RequestDeadlineExceeded("the deadline passed before the request was sent")
            self._connections.append(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                # shutdown (unlike close) wakes a recv() blocked in another thread.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Run the block as this thread's request, whose connections :func:`watch` a deadline ``seconds`` away."""
    current = Deadline(seconds)
    previous = getattr(_current, "deadline", None)
    _current.deadline = current
    current._timer.start()
    try:
        yield current
    finally:
        current._timer.cancel()
        _current.deadline = previous


def watch(connection: HTTPConnection) -> None:
    """Let the deadline of this thread's request (if one runs) watch ``connection``, about to send it."""
    current: Deadline | None = getattr(_current, "deadline", None)
    if current is not None:
        current.watch(connection)
