"""Apache Airflow provider for AI video generation services."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-videogen"

DOCS_URL: str | None = None
"""Where the documentation site (``docs/``, ``make docs``) is published, ending in ``/``; ``None`` until it is.

The connection form's help links into it; unpublished, it names the page in the repository instead.
"""


def _docs_link(page: str, anchor: str) -> str:
    """Return the address of a section of a docs page (``page`` without ``.md``), for help texts."""
    return f"{DOCS_URL}{page}/#{anchor}" if DOCS_URL else f"docs/{page}.md#{anchor}"


def _data_centers() -> dict[str, Any]:
    """Every style's data centers by name, in the registry's order (names shared by styles appear once)."""
    from airflow_provider_videogen.styles import STYLES

    return {center.name: center for style in STYLES.values() for center in style.data_centers}


def __getattr__(name: str) -> Any:
    """Return the connection form's choices, read from the styles' registry when first asked for.

    ``API_STYLE_CHOICES``/``API_STYLE_LABELS``; ``DATA_CENTER_CHOICES``/``DATA_CENTER_LABELS`` (what the
    dropdowns show for each choice on Airflow 3.2+; 3.1 shows the values).
    """
    if name in ("API_STYLE_CHOICES", "API_STYLE_LABELS"):
        from airflow_provider_videogen.styles import STYLES

        return list(STYLES) if name == "API_STYLE_CHOICES" else {key: style.label for key, style in STYLES.items()}
    if name == "DATA_CENTER_CHOICES":
        return list(_data_centers())
    if name == "DATA_CENTER_LABELS":
        return {key: center.label for key, center in _data_centers().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's providers manager (``apache_airflow_provider`` entry point)."""
    from airflow_provider_videogen.styles import STYLES

    centers = _data_centers()
    return {
        "package-name": PACKAGE_NAME,
        "name": "VideoGen",
        "description": "Submit, wait for and land AI video generations (Seedance on RongCloud and Ark, "
        "new-api and LiteLLM gateways, DashScope Wan, Runway, Gemini Veo, the fal.ai queue, Replicate).",
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
                        "data_center": "empty: the style's first (beijing for contents_generations)",
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
                        # A short hint: every style's centers (with their URLs) are a table in the docs,
                        # not a block under the field.
                        "description": "Where the API key belongs (empty: the style's first; a base URL wins). "
                        f"Each style's: {_docs_link('connection', 'data-centers')}",
                        "schema": {
                            "type": ["string", "null"],
                            "enum": list(centers),
                            "values_display": {name: center.label for name, center in centers.items()},
                            # No default: the styles have different data centers (empty: the style's first).
                            "default": None,
                        },
                    },
                    "api_style": {
                        "label": "API style",
                        "description": "The API the service speaks. Each style's services, fields and an example: "
                        f"{_docs_link('connection', 'api-styles')}",
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
                    **_style_option_fields(STYLES),
                    "coalesce_polls": {
                        "label": "Share polls between waiting tasks",
                        "description": "Tasks waiting in one triggerer share their polls of this connection: one "
                        "list call a poll interval answers up to 500 waiting tasks where the API style has one "
                        "(contents generations; a host that refuses it is polled task by task), else tasks "
                        "waiting on the same id share one poll. On by default; off: each task polls on its own.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "prices": {
                        "label": "Prices",
                        "description": "Your prices per model, as JSON, for the cost of each video and max_cost: e.g. "
                        '{"doubao-seedance-*": {"per_million_tokens": 2.5, "currency": "USD"}}. '
                        f"See {_docs_link('cost', 'prices')}",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }


def _style_option_fields(styles: dict[str, Any]) -> dict[str, Any]:
    """Return the connection form's fields for the extras single styles read (``runway_version``...)."""
    return {
        option.name: {
            "label": option.label,
            "description": option.description,
            "schema": {"type": ["string", "null"], "default": option.default},
        }
        for style in styles.values()
        for option in style.options
    }
