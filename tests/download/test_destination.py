"""Destination rules and the paths they name (``download/destination.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

#: A fresh worker process checks a local destination (as a generation's submit does) and lands a
#: file there through the path the landing resolves, then reports which providers' filesystem
#: modules it imported: Airflow's registry imports every installed one the first time it is asked.
_LAND_LOCALLY = textwrap.dedent(
    """
    import json, sys
    from airflow_provider_videogen.download.destination import resolve_destination
    from airflow_provider_videogen.operators.landing_step import refuse_an_unusable_destination

    folder = sys.argv[1]
    for destination in (f"file://{folder}/", f"{folder}/", f"local://{folder}/"):
        refuse_an_unusable_destination(destination)
    path = resolve_destination(f"file://{folder}/", file_name="cgt-1.mp4")
    path.fs.pipe_file(path.path, b"video")
    print(json.dumps(sorted(name for name in sys.modules if name.startswith("airflow.providers.") and ".fs." in name)))
    """
)


def test_a_local_destination_is_checked_and_landed_without_loading_every_providers_filesystem(tmp_path: Path) -> None:
    # About half a second of CPU in every task process that lands a file (s3fs, gcsfs and their clients),
    # twice per video when the generation lands its own video (the check at submit, the landing).
    answer = subprocess.run(
        [sys.executable, "-c", _LAND_LOCALLY, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert (tmp_path / "cgt-1.mp4").read_bytes() == b"video"
    assert json.loads(answer.stdout.strip().splitlines()[-1]) == []
