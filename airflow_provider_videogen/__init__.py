"""Apache Airflow provider for AI video generation services."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-videogen"

DATA_CENTER_CHOICES = ["beijing", "north_america"]
# What the connection form's dropdowns show for each choice (Airflow 3.2+; 3.1 shows the values).
DATA_CENTER_LABELS = {
    "beijing": "Beijing (ai.rong-api.com)",
    "north_america": "North America (ai.us-light-api.com)",
}


def __getattr__(name: str) -> Any:
    """``API_STYLE_CHOICES`` and ``API_STYLE_LABELS``, read from the styles' registry when first asked for."""
    if name in ("API_STYLE_CHOICES", "API_STYLE_LABELS"):
        from airflow_provider_videogen.styles import STYLES

        return list(STYLES) if name == "API_STYLE_CHOICES" else {key: style.label for key, style in STYLES.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's providers manager (``apache_airflow_provider`` entry point)."""
    from airflow_provider_videogen.styles import STYLES

    style_descriptions = " ".join(f"{style.label} ({name}): {style.description}." for name, style in STYLES.items())
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
                        "description": style_descriptions,
                        "schema": {
                            "type": ["string", "null"],
                            "enum": list(STYLES),
                            "values_display": {name: style.label for name, style in STYLES.items()},
                            "default": next(iter(STYLES)),
                        },
                    },
                    "path_prefix": {
                        "label": "Path prefix",
                        "description": "Path before the API routes. Default: "
                        + ", ".join(f"{style.default_path_prefix} for {name}" for name, style in STYLES.items())
                        + " (Ark itself: /api/v3).",
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
                    "allow_private_file_hosts": {
                        "label": "Allow private file hosts",
                        "description": "Let video downloads reach loopback, private and link-local addresses "
                        "(a file host on your own network). Off by default: such file URLs are refused.",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                },
            }
        ],
    }
