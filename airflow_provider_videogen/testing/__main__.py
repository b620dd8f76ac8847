"""``python -m airflow_provider_videogen.testing``: run the simulator (same options as ``...testing.simulator``)."""

from __future__ import annotations

import sys

from airflow_provider_videogen.testing.simulator import main

if __name__ == "__main__":
    sys.exit(main())
