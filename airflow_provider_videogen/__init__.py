"""Apache Airflow provider for AI video generation services."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-videogen"

DATA_CENTER_CHOICES = ["beijing", "north_america"]
API_STYLE_CHOICES = ["contents_generations", "video_generations"]
# What the connection form's dropdowns show for each choice (Airflow 3.2+; 3.1 shows the values).
DATA_CENTER_LABELS = {
    "beijing": "Beijing (ai.rong-api.com)",
    "north_america": "North America (ai.us-light-api.com)",
}
API_STYLE_LABELS = {
    "contents_generations": "Contents generations (RongCloud, Volcengine Ark, BytePlus)",
    "video_generations": "Video generations (new-api gateways)",
}


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
                        "max_attempts": "5",
                        "max_retry_seconds": "120",
                    },
                },
                "conn-fields": {
                    "data_center": {
                        "label": "Data center",
                        "description": "Where the API key belongs: beijing (https://ai.rong-api.com) or "
                        "north_america (https://ai.us-light-api.com). Ignored when a base URL is set.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": DATA_CENTER_CHOICES,
                            "values_display": DATA_CENTER_LABELS,
                            "default": "beijing",
                        },
                    },
                    "api_style": {
                        "label": "API style",
                        "description": "Contents generations (contents_generations): RongCloud and Ark, "
                        ".../contents/generations/tasks. Video generations (video_generations): new-api "
                        "gateways, .../video/generations.",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": API_STYLE_CHOICES,
                            "values_display": API_STYLE_LABELS,
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
                    "max_attempts": {
                        "label": "Attempts per request",
                        "description": "Attempts in all (the first included) for transient faults such as "
                        "timeouts, 429 and 5xx. Default 5; 1 disables retries.",
                        "schema": {"type": ["integer", "null"], "minimum": 1},
                    },
                    "max_retry_seconds": {
                        "label": "Retry budget (seconds)",
                        "description": "No retry starts later than this many seconds after the first attempt. "
                        "Default 120.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                },
            }
        ],
    }
