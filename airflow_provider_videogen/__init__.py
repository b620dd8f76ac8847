"""Apache Airflow provider for AI video generation services."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-videogen"

DATA_CENTER_CHOICES = ["beijing", "north_america"]
API_STYLE_CHOICES = ["contents_generations", "video_generations"]


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's providers manager (``apache_airflow_provider`` entry point)."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "VideoGen",
        "description": "Submit, wait for and land AI video generations "
        "(contents-generations and video-generations APIs).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "VideoGen",
                "external-doc-url": "https://pypi.org/project/airflow-provider-videogen/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "VideoGen",
                "python-modules": ["airflow_provider_videogen.hooks.videogen"],
            }
        ],
        "operators": [
            {
                "integration-name": "VideoGen",
                "python-modules": ["airflow_provider_videogen.operators.videogen"],
            }
        ],
        "sensors": [
            {
                "integration-name": "VideoGen",
                "python-modules": ["airflow_provider_videogen.sensors.videogen"],
            }
        ],
        "triggers": [
            {
                "integration-name": "VideoGen",
                "python-modules": ["airflow_provider_videogen.triggers.videogen"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_videogen.hooks.videogen.VideoGenHook",
                "hook-name": "VideoGen",
                "connection-type": "videogen",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"password": "API key", "host": "Base URL (optional)"},
                    "placeholders": {
                        "password": "the API key of the data center or gateway",
                        "host": "leave empty to use the data center's URL, e.g. http://127.0.0.1:9000",
                        "data_center": "beijing",
                        "api_style": "contents_generations",
                        "path_prefix": "/llm/v1 (contents_generations) or /v1 (video_generations)",
                        "timeout": "30",
                    },
                },
                "conn-fields": {
                    "data_center": {
                        "label": "Data center",
                        "description": "Where the API key belongs: beijing (https://ai.rong-api.com) or "
                        "north_america (https://ai.us-light-api.com). Ignored when a base URL is set.",
                        "schema": {"type": ["string", "null"], "enum": DATA_CENTER_CHOICES, "default": "beijing"},
                    },
                    "api_style": {
                        "label": "API style",
                        "description": "contents_generations (RongCloud / Ark: .../contents/generations/tasks) "
                        "or video_generations (new-api gateways: .../video/generations).",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": API_STYLE_CHOICES,
                            "default": "contents_generations",
                        },
                    },
                    "path_prefix": {
                        "label": "Path prefix",
                        "description": "Path before the API routes. Default /llm/v1 for contents_generations "
                        "and /v1 for video_generations (Ark itself: /api/v3).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "timeout": {
                        "label": "Request timeout (seconds)",
                        "description": "Seconds allowed for one HTTP request. Default 30.",
                        "schema": {"type": ["number", "null"]},
                    },
                },
            }
        ],
    }
