"""The ``videogen`` connection type as Airflow's connection form sees it, on every supported version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from airflow import __version__ as airflow_version

from airflow_provider_videogen.styles import STYLES

AIRFLOW_VERSION = tuple(int(part) for part in airflow_version.split(".")[:2])
#: Every data center of the registry's styles by name, once each, in the registry's order (styles share some).
DATA_CENTERS = {center.name: center for style in STYLES.values() for center in style.data_centers}
CONNECTION_PAGE = Path(__file__).resolve().parent.parent / "docs" / "connection.md"


@pytest.fixture(scope="module")
def videogen_form():
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    forms = {meta.connection_type: meta for meta in HookMetaService.hook_meta_data()}
    assert "videogen" in forms, "the provider's connection type is not registered"
    return forms["videogen"]


def schema_of(field) -> dict:
    data = field if isinstance(field, dict) else field.dump()
    return data["schema"]


def test_the_form_names_the_hook(videogen_form):
    assert videogen_form.hook_class_name == "airflow_provider_videogen.hooks.videogen.VideoGenHook"
    assert videogen_form.hook_name == "VideoGen"


def test_password_is_relabelled_api_key_and_unused_fields_are_hidden(videogen_form):
    fields = videogen_form.standard_fields
    assert fields.password.title == "API key"
    assert fields.host.title == "Base URL (optional)"
    assert fields.login.hidden and fields.port.hidden and fields.url_schema.hidden


@pytest.mark.parametrize(
    ("name", "choices", "default"),
    [
        # Empty by default: each style has its own data centers, and an empty one picks the style's first.
        ("data_center", list(DATA_CENTERS), None),
        ("api_style", list(STYLES), "contents_generations"),
    ],
)
def test_dropdowns_offer_the_choices(videogen_form, name, choices, default):
    field = videogen_form.extra_fields[name]
    assert schema_of(field)["enum"] == choices
    data = field if isinstance(field, dict) else field.dump()
    assert data["value"] == default


def test_optional_fields_are_offered_with_the_retry_budget(videogen_form):
    assert {"path_prefix", "timeout", "max_attempts", "max_retry_seconds"} <= set(videogen_form.extra_fields)


def test_the_runway_version_is_offered_with_its_documented_default(videogen_form):
    field = videogen_form.extra_fields["runway_version"]
    data = field if isinstance(field, dict) else field.dump()
    assert data["value"] == "2024-11-06"


@pytest.mark.skipif(AIRFLOW_VERSION < (3, 2), reason="Airflow 3.1 builds the form from widgets, without labels")
@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("data_center", {name: center.label for name, center in DATA_CENTERS.items()}),
        ("api_style", {name: style.label for name, style in STYLES.items()}),
    ],
)
def test_dropdown_choices_have_readable_labels(videogen_form, name, labels):
    schema = schema_of(videogen_form.extra_fields[name])
    assert schema["values_display"] == labels
    assert set(labels) == set(schema["enum"])


def heading_anchors(markdown: str) -> set[str]:
    """The anchors MkDocs gives the page's headings (lower case, punctuation dropped, spaces as dashes)."""
    titles = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", title).strip().lower()) for title in titles}


@pytest.mark.parametrize(("name", "anchor"), [("data_center", "data-centers"), ("api_style", "api-styles")])
def test_the_help_under_data_center_and_api_style_is_a_short_hint_linking_to_its_section_of_the_docs(
    videogen_form, name, anchor
):
    field = videogen_form.extra_fields[name]
    description = (field if isinstance(field, dict) else field.dump())["description"]
    # One line under the field, not a block listing every option of every style.
    assert len(description) <= 160 and "\n" not in description, description
    assert description.endswith(f"connection.md#{anchor}") or description.endswith(f"connection/#{anchor}")
    assert anchor in heading_anchors(CONNECTION_PAGE.read_text())


def test_prices_are_offered_as_json_text_with_a_link_to_the_cost_page(videogen_form):
    field = videogen_form.extra_fields["prices"]
    description = (field if isinstance(field, dict) else field.dump())["description"]
    assert '"per_million_tokens"' in description and "max_cost" in description
    assert description.endswith("cost.md#prices") or description.endswith("cost/#prices")
    assert "prices" in heading_anchors((CONNECTION_PAGE.parent / "cost.md").read_text())
