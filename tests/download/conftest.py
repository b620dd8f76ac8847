"""Fixtures of the download tests."""

from __future__ import annotations

from tests.download.file_hosts import no_leftover_threads  # noqa: F401 (an autouse fixture)
