"""Checks of numeric arguments: finite, in range and of the right type, with the argument named when not.

One set of rules for the operators, the sensor, the trigger, the retry policy and the connection
extras, applied where the value is written (a DAG file, a connection), before any request: a value
found wrong only after the create call has paid for a generation nobody then waits for.

``True`` is not 1 second, ``0.5`` attempts are not silently 0, and ``"3.9"`` is not read as 3. Text
is read as a number only where text is what arrives (connection extras, rendered templates:
``text_ok``); elsewhere a string is a mistake (the argument is not templated).

This module must not import Airflow: the API styles and the retry policy, which use it, are read
while Airflow itself is still being imported.
"""

from __future__ import annotations

import math
import numbers
from datetime import timedelta
from typing import Any, Final

#: The longest duration any argument may give, in seconds: a year. No service keeps a task or its
#: video for more than days, so a longer wait or interval is a slip (a unit, ``1e15``), and every
#: deadline computed from it stays a date that can be written down.
MAX_SECONDS: Final = 365 * 24 * 3600.0
#: The latest deadline, in seconds since the epoch: 9999-12-31T23:59:59Z, the last a ``datetime`` can show.
MAX_EPOCH_SECONDS: Final = 253_402_300_799.0


def seconds(name: str, value: Any, *, zero_ok: bool = False, text_ok: bool = False) -> float:
    """Return a duration (a number of seconds or a ``timedelta``) as seconds; raise ``ValueError`` naming ``name``.

    :param name: the argument or extra, as the user wrote it.
    :param value: the value given.
    :param zero_ok: accept 0 (else the duration must be greater than 0).
    :param text_ok: accept a number written as text (``"12.5"``).
    """
    lowest = "0 or more" if zero_ok else "greater than 0"
    expected = f"a number of seconds {lowest} and at most {MAX_SECONDS:.0f} (a year)"
    number = value.total_seconds() if isinstance(value, timedelta) else _finite(name, value, expected, text_ok)
    if not (number >= 0 if zero_ok else number > 0) or number > MAX_SECONDS:
        raise ValueError(_wrong(name, value, expected))
    return number


def epoch_seconds(name: str, value: Any) -> float:
    """Return a deadline given as seconds since the epoch (``time.time()``); raise ``ValueError`` naming ``name``."""
    expected = f"seconds since the epoch, as time.time() gives, from 0 to {MAX_EPOCH_SECONDS:.0f} (year 9999)"
    number = _finite(name, value, expected, text_ok=False)
    if not 0 <= number <= MAX_EPOCH_SECONDS:
        raise ValueError(_wrong(name, value, expected))
    return number


def whole_number(name: str, value: Any, *, minimum: int | None = 1, text_ok: bool = False) -> int:
    """Return a count (attempts, bytes, pixels...) as an ``int``; raise ``ValueError`` naming ``name``.

    A fraction is refused, never truncated; ``3.0`` is 3.

    :param name: the argument or extra, as the user wrote it.
    :param value: the value given.
    :param minimum: the smallest value accepted, or ``None`` for any whole number.
    :param text_ok: accept a number written as text (``"3"``).
    """
    expected = "a whole number" + (f" of at least {minimum}" if minimum is not None else "")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    else:
        real = _finite(name, value, expected, text_ok)
        if not real.is_integer():
            raise ValueError(_wrong(name, value, expected))
        number = int(real)
    if minimum is not None and number < minimum:
        raise ValueError(_wrong(name, value, expected))
    return number


def _finite(name: str, value: Any, expected: str, text_ok: bool) -> float:
    """Read ``value`` as a finite float, or raise ``ValueError`` saying what ``name`` must be."""
    # bool is a number to Python, but True meaning 1 second or 1 attempt is always a mistake.
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            number = math.inf
    elif isinstance(value, str) and text_ok:
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(_wrong(name, value, expected)) from None
    elif isinstance(value, str):
        raise ValueError(_wrong(name, value, expected, f" (text): {name} is not templated, so pass a number"))
    else:
        raise ValueError(_wrong(name, value, expected, f" (a {type(value).__name__})"))
    if not math.isfinite(number):
        raise ValueError(_wrong(name, value, expected))
    return number


def _wrong(name: str, value: Any, expected: str, why: str = "") -> str:
    return f"{name} must be {expected}; got {value!r}{why}."
