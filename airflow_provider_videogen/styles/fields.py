"""Field helpers shared by the styles: checks of the request fields a style sends, tolerant readers of answers."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from airflow_provider_videogen._errors import refused

__all__ = [
    "epoch_seconds",
    "error_in_text",
    "flag",
    "integer",
    "mapping",
    "number",
    "one_image",
    "percent",
    "refuse_fields",
    "text",
    "whole_seconds",
]


def refuse_fields(request: Any, names: tuple[str, ...], style: str, instead: str) -> None:
    """Raise a clear error naming the request fields of ``names`` that are set, which ``style`` lacks."""
    unsupported = [name for name in names if getattr(request, name) is not None]
    if unsupported:
        raise refused(f"{', '.join(unsupported)} cannot be sent on {style}: {instead}")


def whole_seconds(duration: int | float, choices: str = "") -> int:
    """Return a request's ``duration`` as whole seconds; refuse a fraction or a length that is not positive."""
    seconds = float(duration)
    if not seconds.is_integer() or seconds <= 0:
        raise refused(f"duration must be a whole number of seconds{choices}, got {duration!r}.")
    return int(seconds)


def one_image(request: Any, style: str) -> str | None:
    """Return the URL of the request's only input image (``None`` without one); refuse more, or roles."""
    images = list(request.image_urls)
    if len(images) > 1:
        raise refused(f"The {style} API takes one input image here, got {len(images)}.")
    if not images:
        return None
    image = images[0]
    url = image if isinstance(image, str) else image.get("url") if isinstance(image, Mapping) else None
    if not isinstance(url, str) or not url.strip():
        raise refused(f"The input image must be a URL (or a data: URI), got {image!r}.")
    role = image.get("role") if isinstance(image, Mapping) else None
    if role not in (None, "first_frame"):
        raise refused(f"The {style} API takes the input image as the first frame; role {role!r} is not supported.")
    return url


def epoch_seconds(value: Any) -> int | None:
    """Return an ISO 8601 time (``2024-06-27T19:49:32.335Z``) as unix seconds, else ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp()) if moment.tzinfo is not None else None


# ---- readers of answer fields: tolerant of the types real services send --------------------------


def mapping(value: Any) -> Mapping[str, Any]:
    """Return the value if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def text(value: Any) -> str | None:
    """Return the value as a non-empty string (numbers included), else ``None``."""
    if value is None or isinstance(value, (dict, list)):
        return None
    shown = str(value)
    return shown if shown != "" else None


def number(value: Any) -> float | None:
    """Return the value as a finite float (numeric strings included), else ``None``."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def integer(value: Any) -> int | None:
    """Return the value as an int (truncated), else ``None``."""
    result = number(value)
    return int(result) if result is not None else None


def flag(value: Any) -> bool | None:
    """Return the value as a bool (``true``/``false`` strings included), else ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def percent(value: Any) -> int | None:
    """Return a progress percentage from ``50``, ``"50%"`` or ``"50"``."""
    if isinstance(value, str):
        value = value.strip().rstrip("%")
    return integer(value)


def error_in_text(reason: Any) -> tuple[str | None, str | None]:
    """Read an error that is sometimes an upstream error object as a JSON string: ``(code, message)``."""
    shown = text(reason)
    if not shown:
        return None, None
    try:
        decoded = json.loads(shown)
    except ValueError:
        return None, shown
    error = mapping(mapping(decoded).get("error")) or mapping(decoded)
    code, message = text(error.get("code")), text(error.get("message"))
    return code, message or shown
