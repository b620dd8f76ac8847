"""``make airflow``'s launcher: the settings it passes, the ports it picks, its lock, what it prints."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_videogen.hooks.videogen import VideoGenConnectionSettings
from scripts import airflow_local
from scripts.airflow_local import (
    AlreadyRunningError,
    LauncherLock,
    Port,
    airflow_settings,
    choose_port,
    is_ready,
    launcher_environment,
    preset_connections,
    ready_banner,
    start_banner,
    ui_address,
)

URL_LINE = "    http://127.0.0.1:8080"


def listening_socket(port: int = 0) -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and the simulator do
    server.bind(("127.0.0.1", port))
    server.listen()
    return server


# ---- the settings passed to Airflow ----


def test_connection_testing_is_enabled(tmp_path):
    assert airflow_settings(tmp_path, "127.0.0.1", 8080)["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"


def test_the_ui_listens_on_loopback_by_default_and_tasks_reach_it_there(tmp_path):
    host, port = ui_address({})
    settings = airflow_settings(tmp_path, host, port.number)
    assert host == "127.0.0.1"
    assert settings["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert settings["AIRFLOW__API__PORT"] == str(port.number)
    assert settings["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{port.number}/execution/"


def test_the_ui_host_and_port_can_be_set_from_the_environment(tmp_path):
    host, port = ui_address({"AIRFLOW__API__HOST": "0.0.0.0", "AIRFLOW__API__PORT": "8111"})
    assert (host, port) == ("0.0.0.0", Port(8111, 8111))
    settings = airflow_settings(tmp_path, host, port.number)
    assert settings["AIRFLOW__API__HOST"] == "0.0.0.0"
    # Listening everywhere, it is still reached on loopback from this machine.
    assert settings["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8111/execution/"


def test_the_example_dags_are_deployed_unpaused_with_everyone_admin(tmp_path):
    settings = airflow_settings(tmp_path, "127.0.0.1", 8080)
    assert Path(settings["AIRFLOW__CORE__DAGS_FOLDER"]).name == "example_dags"
    assert settings["AIRFLOW_HOME"] == str(tmp_path)
    assert settings["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert settings["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert settings["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"


def test_preset_connections_in_the_environment_do_not_hide_the_database_ones(tmp_path):
    base = {
        "AIRFLOW_CONN_VIDEOGEN_DEFAULT": "{}",
        "AIRFLOW_CONN_VIDEOGEN_GATEWAY": "{}",
        "AIRFLOW_CONN_MINE": "{}",
        "PATH": "/usr/bin",
    }
    env = launcher_environment(base, airflow_settings(tmp_path, "127.0.0.1", 8080))
    assert "AIRFLOW_CONN_VIDEOGEN_DEFAULT" not in env and "AIRFLOW_CONN_VIDEOGEN_GATEWAY" not in env
    assert env["AIRFLOW_CONN_MINE"] == "{}"
    # standalone starts its components as `airflow ...`: this environment's comes first.
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


# ---- the preset connections ----


def test_preset_connections_are_importable_and_point_at_the_simulator(tmp_path):
    from airflow.secrets.local_filesystem import load_connections_dict

    path = tmp_path / "connections.json"
    path.write_text(json.dumps(preset_connections("http://127.0.0.1:9000", "key-1")))
    connections = load_connections_dict(str(path))
    assert set(connections) == {
        "videogen_default",
        "videogen_gateway",
        "videogen_openai",
        "videogen_gemini",
        "videogen_runway",
        "videogen_dashscope",
        "videogen_fal",
        "videogen_replicate",
        "videogen_priced",
    }
    styles = {}
    for conn_id, conn in connections.items():
        assert conn.conn_type == "videogen" and conn.description
        settings = VideoGenConnectionSettings.from_connection(conn, conn.extra_dejson)
        assert (settings.base_url, settings.api_key) == ("http://127.0.0.1:9000", "key-1")
        styles[conn_id] = settings.api_style
    assert styles == {
        "videogen_default": "contents_generations",
        "videogen_gateway": "video_generations",
        "videogen_openai": "openai_videos",
        "videogen_gemini": "gemini_veo",
        "videogen_runway": "runway",
        "videogen_dashscope": "dashscope",
        "videogen_fal": "fal",
        "videogen_replicate": "replicate",
        "videogen_priced": "contents_generations",
    }
    priced = VideoGenConnectionSettings.from_connection(
        connections["videogen_priced"], connections["videogen_priced"].extra_dejson
    )
    assert priced.prices.currency == "USD"  # the draft-then-final example's cost caps need prices


def example_dag_connections() -> set[str]:
    """The ``videogen_conn_id`` of every task of the example DAGs."""
    from tests.test_example_dags import EXAMPLES

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow before 3.2
        from airflow.models.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    return {
        task.videogen_conn_id for dag in bag.dags.values() for task in dag.tasks if hasattr(task, "videogen_conn_id")
    }


#: Connections of examples that borrow a cloud connection and write into the user's bucket: make airflow has
#: neither a cloud connection nor a bucket to give them (their examples parse there and run in the suite).
CLOUD_CONNECTIONS = {"videogen_bedrock", "videogen_vertex"}


def test_every_connection_an_example_dag_uses_is_a_preset_connection():
    used = example_dag_connections()
    assert {"videogen_default", "videogen_runway", "videogen_dashscope"} <= used
    assert used >= CLOUD_CONNECTIONS  # each exception is still an example's
    assert used - CLOUD_CONNECTIONS <= set(preset_connections("http://127.0.0.1:9000", "key-1"))


def test_the_ready_banner_lists_every_preset_connection_with_its_style():
    banner = ready_banner("http://127.0.0.1:8080", "127.0.0.1", "http://127.0.0.1:9000")
    for conn_id, conn in preset_connections("http://127.0.0.1:9000", "key-1").items():
        style = json.loads(conn["extra"])["api_style"]
        assert f"{conn_id} ({style})" in banner


def test_the_ready_banner_says_how_to_test_a_connection_you_saved_with_this_airflow_home():
    banner = ready_banner("http://127.0.0.1:8080", "127.0.0.1", "http://127.0.0.1:9000")
    assert f"AIRFLOW_HOME={airflow_local.HOME} " in banner
    assert "airflow connections test <your connection id>" in banner


def test_the_ready_banner_says_where_your_own_dags_go_and_how_soon_they_are_picked_up():
    banner = ready_banner("http://127.0.0.1:8080", "127.0.0.1", "http://127.0.0.1:9000")
    assert str(airflow_local.MY_DAGS) in banner
    assert f"within {airflow_local.DAGS_REFRESH_SECONDS} s" in banner


def test_your_dags_folder_is_watched_beside_the_examples_and_rescanned_within_seconds(tmp_path):
    settings = airflow_settings(tmp_path, "127.0.0.1", 8080)
    bundles = json.loads(settings["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    paths = {bundle["name"]: bundle["kwargs"]["path"] for bundle in bundles}
    # Not "example_dags": Airflow reserves that bundle name.
    assert paths == {
        "videogen-examples": str(airflow_local.REPO / "example_dags"),
        "my-dags": str(airflow_local.MY_DAGS),
    }
    for bundle in bundles:
        assert bundle["classpath"] == "airflow.dag_processing.bundles.local.LocalDagBundle"
        assert bundle["kwargs"]["refresh_interval"] <= 10


def test_preset_connections_hold_every_field_of_the_form_so_its_edit_view_shows_them():
    from airflow_provider_videogen import get_provider_info

    fields = set(get_provider_info()["connection-types"][0]["conn-fields"])
    for conn in preset_connections("http://127.0.0.1:9000", "key-1").values():
        assert set(json.loads(conn["extra"])) == fields


def test_preset_connections_have_port_0_which_the_test_button_sends(tmp_path):
    # Airflow 3.3's UI tests a stored connection with `port: Number(port)`, 0 for none.
    for conn in preset_connections("http://127.0.0.1:9000", "key-1").values():
        assert conn["port"] == 0


# ---- ports ----


def test_a_free_preferred_port_is_used():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert choose_port(free) == Port(free, free)
    assert not choose_port(free).moved


def test_a_taken_preferred_port_moves_to_a_free_one_and_says_so():
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        chosen = choose_port(port)
    assert chosen.preferred == port and chosen.number != port
    assert chosen.moved


def test_a_port_whose_last_connection_is_in_time_wait_is_still_free():
    # What a restart meets: the last run's server closed its connections first, so they linger in
    # TIME_WAIT on its port for a minute; servers can listen there again, and so the port is kept.
    with listening_socket() as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end goes to TIME_WAIT
        time.sleep(0.1)
        client.close()
    assert choose_port(port) == Port(port, port)


# ---- the lock ----


def test_a_second_launcher_is_refused_saying_where_the_first_runs(tmp_path):
    first = LauncherLock(tmp_path / "launcher.lock")
    first.acquire()
    first.record(ui_url="http://127.0.0.1:8080")
    try:
        with pytest.raises(AlreadyRunningError) as refused:
            LauncherLock(tmp_path / "launcher.lock").acquire()
    finally:
        first.release()
    message = str(refused.value)
    assert "already running" in message
    assert str(airflow_local.os.getpid()) in message and "http://127.0.0.1:8080" in message


def test_the_lock_is_free_again_once_released(tmp_path):
    with LauncherLock(tmp_path / "launcher.lock"):
        pass
    with LauncherLock(tmp_path / "launcher.lock") as again:
        assert again.read() == {}


@contextlib.contextmanager
def running(*command: str, **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """A process for the duration of the block, killed at its end."""
    process = subprocess.Popen(list(command), text=True, **popen)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_the_lock_is_free_once_its_holder_is_killed(tmp_path):
    path = tmp_path / "launcher.lock"
    hold = (
        "import pathlib, sys, time; from scripts.airflow_local import LauncherLock; "
        "lock = LauncherLock(pathlib.Path(sys.argv[1])); lock.acquire(); print('locked', flush=True); time.sleep(60)"
    )
    with running(sys.executable, "-c", hold, str(path), stdout=subprocess.PIPE, cwd=airflow_local.REPO) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(AlreadyRunningError):
            LauncherLock(path).acquire()
    LauncherLock(path).acquire()


def test_airflow_left_running_by_a_killed_launcher_is_refused_with_its_pids(tmp_path):
    # A launcher killed outright (SIGKILL) could not stop Airflow: its lock file still names it.
    path = tmp_path / "launcher.lock"
    sleeper = (sys.executable, "-c", "import time; time.sleep(60)", "airflow", "scheduler")
    with running(*sleeper, start_new_session=True) as leftover:
        path.write_text(json.dumps({"pid": 1, "airflow_pid": leftover.pid}))
        with pytest.raises(AlreadyRunningError) as refused:
            LauncherLock(path).acquire()
        assert f"pids {leftover.pid}." in str(refused.value)
        assert f"kill -INT {leftover.pid} (Airflow stops in order" in str(refused.value)
        assert f"kill -9 {leftover.pid}" in str(refused.value)
        # Refused again at the next start, for as long as they run.
        with pytest.raises(AlreadyRunningError):
            LauncherLock(path).acquire()
    LauncherLock(path).acquire()


# ---- what it prints ----


def test_the_ready_banner_puts_the_ui_url_on_a_line_of_its_own():
    banner = ready_banner("http://127.0.0.1:8080", "127.0.0.1", "http://127.0.0.1:9000")
    assert URL_LINE in banner.splitlines()
    assert "127.0.0.1 only" in banner
    assert "AIRFLOW__API__HOST=0.0.0.0 make airflow" in banner
    assert "videogen_default" in banner and "videogen_gateway" in banner
    assert "/tmp/videogen/videos/" in banner


def test_the_ready_banner_warns_when_the_ui_is_offered_to_the_network():
    banner = ready_banner("http://127.0.0.1:8080", "0.0.0.0", "http://127.0.0.1:9000")
    assert "WARNING: it listens on 0.0.0.0" in banner
    assert "127.0.0.1 only" not in banner


def test_the_start_banner_says_when_the_simulator_had_to_move():
    moved = start_banner("http://127.0.0.1:41234", Port(41234, 9000), "http://127.0.0.1:8080", Port(8080, 8080))
    assert "port 9000 is taken, so the simulator listens on port 41234" in moved
    kept = start_banner("http://127.0.0.1:9000", Port(9000, 9000), "http://127.0.0.1:8080", Port(8080, 8080))
    assert "taken" not in kept


@pytest.mark.parametrize(
    ("answer", "ready"),
    [
        (None, False),
        ({"metadatabase": {"status": "healthy"}}, False),
        (
            {
                "metadatabase": {"status": "healthy"},
                "scheduler": {"status": "healthy"},
                "triggerer": {"status": "healthy"},
                "dag_processor": {"status": "unhealthy"},
            },
            False,
        ),
        ({name: {"status": "healthy"} for name in airflow_local.HEALTH_COMPONENTS}, True),
    ],
)
def test_ready_only_when_the_ui_reports_every_component_healthy(answer, ready):
    assert is_ready(answer) is ready
