"""
``make demo``: generate a video against the bundled simulator, end to end, on an embedded Airflow.

Starts the simulator in its own process, points a ``videogen`` connection at it, and runs the
example DAG with ``airflow dags test`` on a throwaway SQLite Airflow home under ``.demo/``. Ends by
printing where the MP4 landed, its size and sha256, and the video's metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
DAG_ID = "videogen_generate_and_fetch"
API_KEY = "demo-key"


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    videos = DEMO / "videos"
    videos.mkdir(parents=True)
    env = os.environ.copy()
    env.update(
        {
            "AIRFLOW_HOME": str(DEMO / "airflow-home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PYTHONWARNINGS": "ignore",
        }
    )
    os.environ.update(env)
    from airflow_provider_videogen.testing import SimulatorProcess

    step("Starting the video generation simulator")
    with SimulatorProcess(api_key=API_KEY, queued_seconds=2, running_seconds=4, video_size=3_000_000) as sim:
        print(f"    simulator listening on {sim.base_url}")
        env["AIRFLOW_CONN_VIDEOGEN_DEFAULT"] = json.dumps(
            {"conn_type": "videogen", "host": sim.base_url, "password": API_KEY}
        )
        step("Preparing an embedded Airflow (SQLite)")
        airflow(env, "db", "migrate")
        providers = airflow(env, "providers", "list", capture=True)
        line = next((ln for ln in providers.splitlines() if "airflow-provider-videogen" in ln), "")
        print(f"    provider registered: {' '.join(line.split())}")
        step(f"Running the example DAG '{DAG_ID}' with `airflow dags test`")
        conf = {"destination": videos.as_uri() + "/", "prompt": "A paper boat drifting down a rainy street, cinematic"}
        airflow(env, "dags", "test", DAG_ID, "--conf", json.dumps(conf))
        landed = sorted(videos.glob("*.mp4"))
        if not landed:
            print("The DAG finished but no video landed; see the log above.", file=sys.stderr)
            return 1
        report(landed[0], sim.get_task(landed[0].stem))
    return 0


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def airflow(env: dict[str, str], *args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        text=True,
        capture_output=capture,
        check=False,
    )
    if result.returncode != 0:
        if capture:
            print(result.stdout, result.stderr, file=sys.stderr)
        raise SystemExit(f"`airflow {' '.join(args)}` failed with exit code {result.returncode}")
    return result.stdout or ""


def report(video: Path, simulated: dict) -> None:
    from airflow_provider_videogen.video_download import RECORD_SUFFIX

    digest = hashlib.sha256()
    with video.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    metadata = video.with_suffix(".json")
    step("Done: the generated video landed in object storage (here the local file system)")
    print(f"    video file : {video}")
    print(f"    size       : {video.stat().st_size:,} bytes")
    print(f"    sha256     : {digest.hexdigest()}")
    print(f"    matches what the service served: {digest.hexdigest() == simulated.get('video_sha256')}")
    frame = video.with_suffix(".png")
    if frame.exists():
        print(f"    last frame : {frame} ({frame.stat().st_size:,} bytes)")
    records = sorted(video.parent.glob(f"{video.stem}.*{RECORD_SUFFIX}"))
    if records:
        print(f"    integrity  : {', '.join(r.name for r in records)} (size and sha256: a rerun downloads nothing)")
    if metadata.exists():
        print(f"    metadata   : {metadata} (what was generated)")
        print("    " + json.dumps(json.loads(metadata.read_text()), indent=2).replace("\n", "\n    "))


if __name__ == "__main__":
    sys.exit(main())
