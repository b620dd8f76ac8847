"""The fault matrix: every API style x every operation x every fault the simulator injects x where it lands.

Each cell drives one operation as a user would, with one fault queued in the simulator, and checks the
provider's promises afterwards, whatever the messages say:

- at most one create per task instance across its tries, unless the service said the earlier
  generation failed or does not exist;
- no cancel or delete reaches a task that had finished;
- the key, in any encoding, in no log line, error, XCom value, trigger event, asset event extra,
  lineage facet or rendered field, and never sent to another origin or with another key's cookies;
- nothing at the destination unless it is the whole, verified file, and no temporary file left;
- every wait ends with one event before ``end_time`` + one request timeout, and a fault that fires
  once (unless it refuses the key) does not end it;
- every refusal names the answer or the argument that caused it.

By default a covering sample runs (each operation x fault x position once, each style x operation x
position at least once); ``VIDEOGEN_FAULT_MATRIX=full`` runs the whole product. Run it alone with
``pytest -m fault_matrix``. A cell that finds a defect is a failing test: write the defect's own test
beside the code, fix it, and the cell passes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fault_matrix import (
    KEY,
    OTHER_KEY,
    REQUEST_TIMEOUT,
    Cell,
    Outcome,
    borrowed_credentials,
    captured_logs,
    cells,
    check,
    drive_cancel,
    drive_connection_test,
    drive_create,
    drive_download,
    drive_list,
    drive_query,
)

pytestmark = pytest.mark.fault_matrix


@pytest.fixture(scope="session")
def videogen_simulator_settings() -> dict[str, Any]:
    """A simulator whose key has the characters that JSON, URL and base64 encodings change."""
    return {"api_key": KEY, "queued_seconds": 0.2, "running_seconds": 0.3, "video_size": 64_000}


@pytest.mark.parametrize("cell", [pytest.param(cell, id=cell.id) for cell in cells()])
def test_the_promises_hold_whatever_the_service_answers(
    cell: Cell, sim, videogen_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Cookies are kept only for host names (not for IP addresses): the cookie cells use one.
    host = sim.base_url.replace("127.0.0.1", "localhost") if cell.fault.kind == "cookie" else sim.base_url
    settings = {"api_style": cell.style, "host": host, "timeout": REQUEST_TIMEOUT, "max_attempts": 2}
    extras, environment = borrowed_credentials(cell.style, host)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    conn_id = videogen_connection(conn_id="matrix", **settings, **extras)
    other_conn_id = videogen_connection(conn_id="matrix_other", api_key=OTHER_KEY, **settings)
    outcome = Outcome(api_origin=urlsplit(host).netloc)
    with captured_logs() as logs:
        if cell.operation == "create":
            drive_create(sim, cell, conn_id, outcome)
        elif cell.operation == "query":
            drive_query(sim, cell, conn_id, outcome)
        elif cell.operation == "list":
            drive_list(sim, cell, conn_id, outcome, other_conn_id)
        elif cell.operation == "cancel":
            drive_cancel(sim, cell, conn_id, outcome)
        elif cell.operation == "download":
            drive_download(sim, cell, conn_id, outcome, tmp_path / "videos")
        else:
            drive_connection_test(sim, cell, conn_id, outcome)
    broken = check(sim, cell, outcome, logs.lines)
    assert not broken, f"{cell.id}: " + "; ".join(broken)
