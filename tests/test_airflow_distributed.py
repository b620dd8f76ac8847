"""``make distributed``'s launcher: the same preset connections as ``make airflow``."""

from __future__ import annotations

import json

from scripts.airflow_distributed import preset_connection_env
from scripts.airflow_local import preset_connections


def test_make_distributed_defines_the_same_preset_connections_as_make_airflow():
    env = preset_connection_env("http://127.0.0.1:9000", "key-1")
    presets = preset_connections("http://127.0.0.1:9000", "key-1")
    assert set(env) == {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in presets}
    for conn_id, conn in presets.items():
        defined = json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
        assert (defined["host"], defined["password"]) == ("http://127.0.0.1:9000", "key-1")
        assert defined["extra"]["api_style"] == json.loads(conn["extra"])["api_style"]


def test_the_scale_page_names_every_connection_make_distributed_defines_with_its_style():
    from pathlib import Path

    from scripts.airflow_local import PRESETS

    page = (Path(__file__).resolve().parent.parent / "docs" / "scale.md").read_text()
    section = " ".join(page.split("### `make distributed`", 1)[1].split("\n### ", 1)[0].split())
    for preset in PRESETS:
        assert f"`{preset.conn_id}` (`{preset.api_style}`)" in section, preset


def test_sigterm_or_a_closed_terminal_stops_make_distributed_as_ctrl_c_does(monkeypatch, capsys, tmp_path):
    # `kill <pid>` or closing the terminal must stop the deployment as Ctrl+C does: the services run in
    # sessions of their own and would outlive the launcher, with the database left behind.
    import contextlib
    import os
    import signal

    import airflow_provider_videogen.testing as testing
    import tests.e2e.distributed as distributed
    from scripts import airflow_distributed

    stopped: list[str] = []

    @contextlib.contextmanager
    def simulator(**kwargs):
        try:
            yield type("Sim", (), {"base_url": "http://127.0.0.1:9", "api_key": "k"})()
        finally:
            stopped.append("simulator")

    @contextlib.contextmanager
    def running(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the deployment runs
            yield None
        finally:
            stopped.append("deployment")

    monkeypatch.setattr(testing, "SimulatorProcess", simulator)
    monkeypatch.setattr(distributed, "running", running)
    monkeypatch.setattr(airflow_distributed, "HOME", tmp_path / "home")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert airflow_distributed.main() == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped == ["deployment", "simulator"]
    assert signal.getsignal(signal.SIGTERM) == previous
    assert "Stopped" in capsys.readouterr().out
