"""The ``videogen`` connection type as Airflow's connection form sees it, on every supported version."""

from __future__ import annotations

import pytest
from airflow import __version__ as airflow_version

AIRFLOW_VERSION = tuple(int(part) for part in airflow_version.split(".")[:2])


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
        ("data_center", ["beijing", "north_america", "intl", "us", "cn", "runway", "google", "fal"], None),
        (
            "api_style",
            ["contents_generations", "video_generations", "openai_videos", "dashscope", "runway", "gemini_veo", "fal"],
            "contents_generations",
        ),
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
        (
            "data_center",
            {
                "beijing": "Beijing (ai.rong-api.com)",
                "north_america": "North America (ai.us-light-api.com)",
                "intl": "DashScope Singapore (dashscope-intl.aliyuncs.com)",
                "us": "DashScope US, Virginia (dashscope-us.aliyuncs.com)",
                "cn": "DashScope Beijing (dashscope.aliyuncs.com)",
                "runway": "Runway (api.dev.runwayml.com)",
                "google": "Google (generativelanguage.googleapis.com)",
                "fal": "fal.ai (queue.fal.run)",
            },
        ),
        (
            "api_style",
            {
                "contents_generations": "Contents generations (RongCloud, Volcengine Ark, BytePlus)",
                "video_generations": "Video generations (new-api gateways)",
                "openai_videos": "OpenAI Videos shape (/v1/videos gateways)",
                "dashscope": "DashScope (Alibaba Cloud Model Studio, Wan)",
                "runway": "Runway API",
                "gemini_veo": "Gemini API Veo (Google)",
                "fal": "fal.ai queue",
            },
        ),
    ],
)
def test_dropdown_choices_have_readable_labels(videogen_form, name, labels):
    schema = schema_of(videogen_form.extra_fields[name])
    assert schema["values_display"] == labels
    assert set(labels) == set(schema["enum"])
