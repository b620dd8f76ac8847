"""What the api-server shows of the provider: the ``videogen`` connection type and its form."""

from __future__ import annotations

from typing import Any

import pytest

from .deployment import AirflowDeployment

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
    assert {"data_center", "api_style", "path_prefix", "timeout"} <= set(extra)
    assert extra["api_style"]["schema"]["enum"] == ["contents_generations", "video_generations"]
    assert extra["api_style"]["value"] == "contents_generations"
    assert extra["data_center"]["schema"]["enum"] == ["beijing", "north_america"]


def test_the_provider_is_listed_by_the_public_api(airflow: AirflowDeployment) -> None:
    providers = airflow.api("GET", "/api/v2/providers", query={"limit": 1000})["providers"]
    [videogen] = [p for p in providers if p["package_name"] == "airflow-provider-videogen"]
    assert videogen["version"]
