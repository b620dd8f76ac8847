"""Checks of the generate operators' own arguments: the numeric fields of ``generation_params``, the wait, ``max_cost``.

All are checked before the create call (the wait and ``max_cost`` when the DAG is parsed, the
rendered ``generation_params`` when the request is built): a value found wrong only after the create
has paid for a generation nobody then waits for. The general rules of numeric arguments are those of
:mod:`~airflow_provider_videogen._arguments`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_videogen import _arguments
from airflow_provider_videogen._errors import refused

# The numeric fields of a generation request, each with its check: a length in seconds, or a whole
# number (the seed may be negative: -1 asks for a random one).
_NUMERIC_GENERATION_PARAMS: dict[str, tuple[Callable[..., float], dict[str, Any]]] = {
    "duration": (_arguments.seconds, {}),
    "frames": (_arguments.whole_number, {}),
    "seed": (_arguments.whole_number, {"minimum": None}),
    "execution_expires_after": (_arguments.whole_number, {}),
    "width": (_arguments.whole_number, {}),
    "height": (_arguments.whole_number, {}),
    "fps": (_arguments.whole_number, {}),
}


def checked_generation_params(generation_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return ``generation_params`` with its numeric fields checked and read as numbers.

    A templated value arrives as text (``"{{ params.duration }}"`` renders ``"5"``), which is read as
    the number it spells; anything else that is not a proper number is refused, naming the field.
    """
    params = dict(generation_params or {})
    for name, (read, options) in _NUMERIC_GENERATION_PARAMS.items():
        value = params.get(name)
        if value is None:
            continue
        try:
            number = read(f"generation_params[{name!r}]", value, text_ok=True, **options)
        except ValueError as error:
            raise refused(str(error)) from None
        # A whole length goes out as an integer, as given (5, not 5.0: some services parse it into one).
        whole = isinstance(number, float) and number.is_integer() and not isinstance(value, float)
        params[name] = int(number) if whole else number
    return params


def read_wait_and_cap(
    poll_interval: float | None, timeout: float | timedelta | None, max_cost: float | Decimal | str | None
) -> tuple[float | None, float | None, Decimal | None]:
    """Read the ``poll_interval``, ``timeout`` and ``max_cost`` both generate operators take (``None`` stays ``None``).

    Checked when the DAG is parsed: a value found wrong only once the trigger is built would come
    after the create call, which has then paid for a generation nobody waits for. (None of them is
    a template field, so none can be a Jinja string.)
    """
    return (
        None if poll_interval is None else _arguments.seconds("poll_interval", poll_interval),
        None if timeout is None else _arguments.seconds("timeout", timeout),
        None if max_cost is None else read_max_cost(max_cost),
    )


def read_max_cost(value: Any) -> Decimal:
    """Read ``max_cost``: a number, or its text, that is finite and not negative (exactly, as a Decimal)."""
    try:
        cap = None if isinstance(value, bool) else Decimal(str(value).strip())
    except InvalidOperation:
        cap = None
    if cap is None or not cap.is_finite() or cap < 0:
        raise refused(
            f"max_cost must be an amount of 0 or more in the currency of the connection's prices extra, "
            f"such as 0.5 or '0.50'; got {value!r}."
        )
    return cap
