"""``python -m airflow_provider_videogen.testing.simulator``: serve the simulator (``--help`` for options)."""

from __future__ import annotations

import sys

from airflow_provider_videogen.testing.simulator.server import main

if __name__ == "__main__":
    sys.exit(main())
