"""The simulator over HTTPS: a CA made at start, trusted by the hook through the usual CA-bundle settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_videogen.exceptions import VideoGenTransientError
from airflow_provider_videogen.hooks.videogen import RetryPolicy, VideoGenHook
from airflow_provider_videogen.testing import VideoGenSimulator

API_KEY = "tls-test-key"

# Both HTTP clients of the hook, in a fresh process: aiohttp reads SSL_CERT_FILE when it is imported.
_CLIENT = """
import asyncio, json, sys
from airflow_provider_videogen.hooks.videogen import VideoGenHook

task_id = sys.argv[1]
hook = VideoGenHook("videogen_tls")
sync_task = hook.get_task(task_id)

async def main():
    async with VideoGenHook("videogen_tls") as a, VideoGenHook("videogen_tls") as b:
        return await asyncio.gather(a.aget_task(task_id), b.apoll_task(task_id))

async_task, polled = asyncio.run(main())
print(json.dumps([sync_task.status.value, async_task.status.value, polled.status.value]))
"""


@pytest.fixture(scope="module")
def tls_sim() -> Iterator[VideoGenSimulator]:
    with VideoGenSimulator(tls=True, api_key=API_KEY, queued_seconds=600) as server:
        yield server


def connection(sim: VideoGenSimulator) -> str:
    return json.dumps({"conn_type": "videogen", "host": sim.base_url, "password": API_KEY, "extra": {}})


def test_the_simulator_serves_https_with_a_ca_of_its_own(tls_sim):
    assert tls_sim.base_url.startswith("https://127.0.0.1:")
    assert tls_sim.ca_file is not None and "BEGIN CERTIFICATE" in Path(tls_sim.ca_file).read_text()
    task_id = tls_sim.add_task()  # the control API over HTTPS, trusting that CA
    assert tls_sim.get_task(task_id)["video_url"].startswith(tls_sim.base_url)


def test_the_hook_trusts_it_through_the_ca_bundle_settings(tls_sim):
    task_id = tls_sim.add_task()
    env = {**os.environ, **tls_sim.ca_env(), "AIRFLOW_CONN_VIDEOGEN_TLS": connection(tls_sim)}
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT, task_id], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["queued", "queued", "queued"]
    # A GET each for the sync and the async read, the list call for the shared poll: all over HTTPS.
    assert (len(tls_sim.requests(target="query")), len(tls_sim.requests(target="list"))) == (2, 1)


def test_without_the_ca_the_certificate_is_refused(tls_sim, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOGEN_TLS", connection(tls_sim))
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    hook = VideoGenHook("videogen_tls", retry_policy=RetryPolicy(max_attempts=1))
    with pytest.raises(VideoGenTransientError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        hook.get_task(tls_sim.add_task())
