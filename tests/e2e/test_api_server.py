"""What the api-server shows of the provider: the ``videogen`` connection type, its form, and its Test button."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from airflow_provider_videogen import DATA_CENTER_CHOICES
from airflow_provider_videogen.styles import STYLES
from airflow_provider_videogen.testing import SimulatorProcess
from scripts.airflow_local import preset_connections, run_airflow_command

from .deployment import AirflowDeployment
from .simulator_service import API_KEY

pytestmark = pytest.mark.e2e


@pytest.fixture
def videogen_form(airflow: AirflowDeployment) -> dict[str, Any]:
    # What the UI's connection form is built from.
    forms = {form["connection_type"]: form for form in airflow.api("GET", "/ui/connections/hook_meta")}
    assert "videogen" in forms, sorted(forms)
    form: dict[str, Any] = forms["videogen"]
    return form


def test_api_server_lists_the_videogen_connection_type(videogen_form: dict[str, Any]) -> None:
    assert videogen_form["hook_class_name"] == "airflow_provider_videogen.hooks.videogen.VideoGenHook"
    assert videogen_form["hook_name"] == "VideoGen"


def test_the_connection_form_relabels_and_hides_standard_fields(videogen_form: dict[str, Any]) -> None:
    fields = videogen_form["standard_fields"]
    assert fields["password"]["title"] == "API key"
    assert fields["host"]["title"] == "Base URL (optional)"
    assert fields["login"]["hidden"] and fields["port"]["hidden"] and fields["url_schema"]["hidden"]


def test_the_connection_form_offers_the_custom_fields(videogen_form: dict[str, Any]) -> None:
    extra = videogen_form["extra_fields"]
    assert {"data_center", "api_style", "path_prefix", "timeout", "max_attempts", "max_retry_seconds"} <= set(extra)
    assert extra["api_style"]["schema"]["enum"] == list(STYLES)  # every style of the registry, in order
    assert extra["api_style"]["value"] == "contents_generations"
    assert extra["data_center"]["schema"]["enum"] == DATA_CENTER_CHOICES
    assert {"beijing", "north_america", "intl", "us", "cn"} <= set(DATA_CENTER_CHOICES)


def test_the_provider_is_listed_by_the_public_api(airflow: AirflowDeployment) -> None:
    providers = airflow.api("GET", "/api/v2/providers", query={"limit": 1000})["providers"]
    [videogen] = [p for p in providers if p["package_name"] == "airflow-provider-videogen"]
    assert videogen["version"]


# ---- testing a connection, as the UI and the README do it ----


def ui_test_button_body(connection: dict[str, Any]) -> dict[str, Any]:
    """What the connection list's Test button posts for a stored connection (Airflow 3.3's UI)."""
    return {
        "conn_type": connection["conn_type"],
        "connection_id": connection["connection_id"],
        "description": connection["description"] or "",
        "extra": connection["extra"] or "{}",
        "host": connection["host"] or "",
        "login": connection["login"] or "",
        "password": connection["password"] or "",  # "***": the UI never has the stored secret
        "port": connection["port"] or 0,  # `Number(connection.port)`: 0 for a connection without a port
        "schema": connection["schema"] or "",
    }


@pytest.fixture
def launcher_connections(airflow: AirflowDeployment, sim: SimulatorProcess, tmp_path) -> dict[str, str]:
    """make airflow's preset connections, written into the database as it does (under ids of their own)."""
    presets = {f"launcher_{conn_id}": conn for conn_id, conn in preset_connections(sim.base_url, API_KEY).items()}
    path = tmp_path / "connections.json"
    path.write_text(json.dumps(presets))
    run_airflow_command(airflow.env, "connections", "import", "--overwrite", str(path))
    return {conn_id: json.loads(conn["extra"])["api_style"] for conn_id, conn in presets.items()}


def test_make_airflows_connections_are_listed_and_pass_the_ui_test_button(
    airflow: AirflowDeployment, sim: SimulatorProcess, launcher_connections: dict[str, str]
) -> None:
    listed = {
        c["connection_id"]: c for c in airflow.api("GET", "/api/v2/connections", query={"limit": 1000})["connections"]
    }
    for conn_id, api_style in launcher_connections.items():
        answer = airflow.api("POST", "/api/v2/connections/test", ui_test_button_body(listed[conn_id]))
        assert answer["status"] is True, answer
        assert answer["message"].startswith(f"Connected to {sim.base_url} ({api_style})")


def test_a_connection_made_in_the_form_tests_through_the_rest_api_without_host_and_port(
    airflow: AirflowDeployment, sim: SimulatorProcess
) -> None:
    # Saved from the form, a connection has no port; the README's REST call names only its id and type.
    save_connection(airflow, "readme_own", host=sim.base_url, password=API_KEY)
    answer = airflow.api("POST", "/api/v2/connections/test", {"connection_id": "readme_own", "conn_type": "videogen"})
    assert answer["status"] is True, answer
    assert answer["message"].startswith(f"Connected to {sim.base_url}")


def test_a_connection_tests_from_the_command_line(airflow: AirflowDeployment, sim: SimulatorProcess) -> None:
    save_connection(airflow, "readme_cli", host=sim.base_url, password="sk-wrong")
    result = subprocess.run(
        [airflow.python, "-m", "airflow", "connections", "test", "readme_cli"],
        env=airflow.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # (Airflow 3.3 also exits with 1; 3.1 with 0.)
    assert "Connection failed!" in result.stdout, result.stdout + result.stderr
    assert "refused the API key" in result.stdout
    assert "sk-wrong" not in result.stdout + result.stderr


def save_connection(airflow: AirflowDeployment, conn_id: str, **fields: Any) -> None:
    """Store a ``videogen`` connection through the REST API (as the form does), replacing one of that id."""
    listed = airflow.api("GET", "/api/v2/connections", query={"limit": 1000})["connections"]
    if any(c["connection_id"] == conn_id for c in listed):
        airflow.api("DELETE", f"/api/v2/connections/{conn_id}")
    airflow.api("POST", "/api/v2/connections", {"connection_id": conn_id, "conn_type": "videogen", **fields})
