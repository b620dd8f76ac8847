"""What the tests serve on loopback: the simulator's key, and small HTTP servers of their own for
faults the simulator does not produce."""

from __future__ import annotations

import http.server
import threading
from typing import Any

API_KEY = "sim-test-key-7f3a9c"
"""The key the suite's simulator accepts (the plugin's ``videogen_simulator``, see ``conftest.py``)."""


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that logs nothing."""

    def log_message(self, *args: Any) -> None:
        pass


class LoopbackServer:
    """Run ``handler`` in a threaded HTTP server on 127.0.0.1 for the duration of a ``with`` block."""

    def __init__(self, handler: Any) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
