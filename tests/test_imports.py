"""Every public module imports first thing in a fresh process, before Airflow itself is imported.

Airflow's providers manager calls ``get_provider_info()`` while Airflow is still being imported; if
the provider's first import is what starts Airflow's, nothing the provider info reads may need
Airflow in turn (a circular import that only a fresh process shows).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "airflow_provider_videogen.exceptions",
    "airflow_provider_videogen.video_download",
    "airflow_provider_videogen.hooks.videogen",
    "airflow_provider_videogen.operators.videogen",
    "airflow_provider_videogen.sensors.videogen",
    "airflow_provider_videogen.triggers.videogen",
    "airflow_provider_videogen.styles",
    "airflow_provider_videogen.styles.openai_videos",
    "airflow_provider_videogen.generation_request",
    "airflow_provider_videogen.testing",
]


# Imported only when the OpenLineage provider asks an operator for its facets: never by importing the provider.
LINEAGE = "airflow_provider_videogen.lineage"


@pytest.mark.parametrize("module", MODULES)
def test_the_module_imports_first_in_a_fresh_process(module):
    code = f"import sys, {module}; assert {LINEAGE!r} not in sys.modules, 'OpenLineage support was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
