"""What Airflow's connection UI asks of the hook: the form's fields (before Airflow 3.2) and the Test button."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_videogen.client import ApiRequest
from airflow_provider_videogen.exceptions import (
    VideoGenAuthError,
    VideoGenError,
    VideoGenTransientError,
    VideoTaskNotFoundError,
)
from airflow_provider_videogen.retry import RetryPolicy

if TYPE_CHECKING:
    from airflow_provider_videogen.client import VideoGenClient
    from airflow_provider_videogen.settings import VideoGenConnectionSettings

__all__ = ["form_widgets", "probe", "test", "ui_field_behaviour"]

# A connection test asks once: its answer is about the connection, not a fault to wait out.
_ONCE = RetryPolicy(max_attempts=1)


def form_widgets() -> dict[str, Any]:
    """Extra fields of the connection form (Airflow 3.1 reads these; 3.2+ reads conn-fields from the provider info)."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import StringField
    from wtforms.validators import any_of

    from airflow_provider_videogen import get_provider_info

    fields = get_provider_info()["connection-types"][0]["conn-fields"]
    widgets: dict[str, Any] = {}
    for name, definition in fields.items():
        schema = definition["schema"]
        widgets[name] = StringField(
            lazy_gettext(definition["label"]),
            widget=BS3TextFieldWidget(),
            description=definition["description"],
            validators=[any_of(schema["enum"])] if "enum" in schema else [],
            default=schema.get("default"),
        )
    return widgets


def ui_field_behaviour() -> dict[str, Any]:
    """Hidden and relabelled standard fields of the connection form, for Airflow versions before 3.2."""
    from airflow_provider_videogen import get_provider_info

    behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
    return {
        "hidden_fields": behaviour["hidden-fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }


def test(client: VideoGenClient, resolve: Callable[[], VideoGenConnectionSettings]) -> tuple[bool, str]:
    """Answer the Test button: resolve the connection and :func:`probe` it; one that cannot be resolved fails.

    :param client: sends the request.
    :param resolve: returns the connection's settings, or raises the error that says what is wrong with it.
    """
    try:
        settings = resolve()
    except VideoGenError as error:
        return False, str(error)
    return probe(client, settings)


def probe(client: VideoGenClient, settings: VideoGenConnectionSettings) -> tuple[bool, str]:
    """Make one cheap authenticated request and say whether the key and the URL work.

    :param client: sends the request.
    :param settings: the connection to test.
    """
    try:
        probe = settings.style.probe_task_id
        url = settings.task_url(probe)
        client.send(ApiRequest("GET", url, "test the connection with", settings, probe, policy=_ONCE))
    except VideoTaskNotFoundError as error:
        return _probe_not_found_result(settings, error)
    except VideoGenAuthError as error:
        return False, (
            f"The service at {settings.base_url} refused the API key (HTTP {error.http_status}): "
            f"check the key, and that it belongs to this data center or gateway. {error.api_message or ''}"
        ).strip()
    except VideoGenTransientError as error:
        if error.http_status is None:
            from airflow_provider_videogen.unreachable import unreachable_message

            return False, unreachable_message(settings.base_url, settings.timeout, error)
        return False, f"Could not get an answer from {settings.base_url}: {error} Check the base URL."
    except VideoGenError as error:
        return False, str(error)
    return True, f"Connected to {settings.base_url} ({settings.api_style})."


def _probe_not_found_result(settings: VideoGenConnectionSettings, error: VideoTaskNotFoundError) -> tuple[bool, str]:
    if error.api_code or error.api_message:
        return True, (
            f"Connected to {settings.base_url} ({settings.api_style}): the API key was accepted "
            "(a lookup of a test task id answered 'not found', as expected)."
        )
    return False, (
        f"{settings.base_url} answered HTTP 404 without an API error at "
        f"{settings.task_url(settings.style.probe_task_id)}: "
        "the host does not serve this API there. Check the base URL, path_prefix and api_style."
    )
