"""The fixture the style test modules share (their cases are in ``style_cases``)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def style_connection(request: pytest.FixtureRequest, videogen_connection: Any) -> str:
    """Define the connection of the test module's style (its ``CASE``) to the simulator; return its id."""
    return str(request.module.CASE.connect(videogen_connection))
