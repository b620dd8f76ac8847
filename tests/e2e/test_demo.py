"""``make demo`` run whole, as a newcomer runs it: its own folder only, a playable clip, the steps shown."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_videogen.testing._media import clip_png, clip_video

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_make_demo_lands_the_playable_clip_shows_the_steps_and_leaves_make_airflows_home_alone(tmp_path):
    local_home = tmp_path / "airflow-local"
    local_home.mkdir()
    (local_home / "airflow.db").write_bytes(b"the connections and runs of make airflow")

    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (local_home / "airflow.db").read_bytes() == b"the connections and runs of make airflow"
    [video] = (tmp_path / "demo" / "videos").glob("*.mp4")
    assert video.read_bytes() == clip_video()
    assert video.with_suffix(".png").read_bytes() == clip_png()
    out = result.stdout
    # The provider's steps, as they happened, in order.
    steps = ["submitted", "deferred", "waiting", "polled", "finished", "landed", "verified   : yes"]
    positions = [out.find(f" {step} ") if " " not in step else out.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), out
    assert "the simulator's sample clip" in out
    assert hashlib.sha256(video.read_bytes()).hexdigest() in out
