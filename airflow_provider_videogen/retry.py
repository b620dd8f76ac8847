"""How transient faults are retried: the policy, the backoff, and the service's ``Retry-After``."""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenacity import RetryCallState, retry_if_exception, stop_after_attempt
from tenacity import stop_before_delay as _stop_before_delay

from airflow_provider_videogen import _arguments

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses with which a server says "not now": another attempt may succeed."""


@dataclass(frozen=True)
class RetryPolicy:
    """How transient faults are retried.

    :param max_attempts: attempts in all, the first included (1 disables retries).
    :param max_seconds: give up rather than start a wait that would end later than this many
        seconds after the first attempt.
    :param initial_wait: first backoff in seconds; it doubles each attempt.
    :param max_wait: longest single backoff in seconds.
    :param max_retry_after: longest ``Retry-After`` the hook will honour, in seconds.
    """

    max_attempts: int = 5
    max_seconds: float = 120.0
    initial_wait: float = 1.0
    max_wait: float = 30.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        # Refused when written: a policy of 0.5 attempts or an infinite wait would show only on a fault.
        # (Frozen: the checked values are set through object.__setattr__.)
        checked = {
            "max_attempts": _arguments.whole_number("max_attempts", self.max_attempts),
            "max_seconds": _arguments.seconds("max_seconds", self.max_seconds),
            "initial_wait": _arguments.seconds("initial_wait", self.initial_wait, zero_ok=True),
            "max_wait": _arguments.seconds("max_wait", self.max_wait, zero_ok=True),
            "max_retry_after": _arguments.seconds("max_retry_after", self.max_retry_after, zero_ok=True),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def next_wait(
        self,
        failures: int = 0,
        *,
        retry_after: float | None = None,
        poll_hint: float | None = None,
        interval: float | None = None,
        jitter: float = 0.0,
    ) -> float:
        """Seconds until the next poll or attempt: the one rule every caller that waits asks.

        No I/O and no clock: the answer depends on the arguments (and the random jitter) alone.

        A poller (``interval`` given: the trigger, the worker-mode wait) waits one interval after a
        good poll, or the service's ``poll_hint`` if that is longer; after ``failures`` failed polls in
        a row, the interval doubled per failure up to ``max_wait`` (never below the interval), and at
        least the service's ``Retry-After``. A random fraction of the wait up to ``jitter`` is added.

        A retry of one call (no ``interval``) waits the ``Retry-After`` when the service sent one, else
        ``initial_wait`` doubled per failure up to ``max_wait``, drawn between half and all of it.

        Either way a hint of the service (``Retry-After``, poll hint) counts up to ``max_retry_after``;
        one that is not a finite number counts as none.

        :param failures: failed polls or attempts in a row (0: the last poll was good).
        :param retry_after: the ``Retry-After`` of the last failure, in seconds.
        :param poll_hint: the seconds the service asked a poller to wait after a good poll.
        :param interval: a poller's seconds between two polls; ``None`` for a retry of one call.
        :param jitter: a poller's largest random fraction of the wait added to it.
        """
        if interval is None:
            return self._retry_wait(failures, retry_after)
        return self._poll_wait(interval, failures, retry_after, poll_hint, jitter)

    def _retry_wait(self, failures: int, retry_after: float | None) -> float:
        """Return a call's wait before its next attempt: the ``Retry-After`` (capped), else the drawn backoff."""
        if retry_after is not None and math.isfinite(retry_after):
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_wait, self.initial_wait * 2 ** max(failures - 1, 0))
        return random.uniform(ceiling / 2, ceiling)

    def _poll_wait(
        self, interval: float, failures: int, retry_after: float | None, poll_hint: float | None, jitter: float
    ) -> float:
        """Return a poller's wait: the interval (doubled per failure), at least the service's hint, plus jitter."""
        if failures:
            wait, hint = min(interval * 2.0 ** (failures - 1), max(interval, self.max_wait)), retry_after
        else:
            wait, hint = interval, poll_hint
        if hint is not None and math.isfinite(hint):
            wait = max(wait, min(hint, self.max_retry_after))
        return wait * (1.0 + random.uniform(0.0, jitter))

    def wait_seconds(self, retry_state: RetryCallState) -> float:
        """Seconds to sleep before the next attempt (tenacity's ``wait``); see :meth:`next_wait`."""
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return self.next_wait(retry_state.attempt_number, retry_after=getattr(error, "retry_after", None))

    def wait_after(self, failures: int, retry_after: float | None) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row; see :meth:`next_wait`."""
        return self.next_wait(failures, retry_after=retry_after)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts, with no ``Retry-After``; see :meth:`next_wait`."""
        return self.next_wait(failures)


#: When waiting triggers and worker-mode waits poll again: after failed polls the interval doubles
#: up to 300 s; a ``Retry-After`` or poll hint of the service is honoured up to 600 s.
POLL_SCHEDULE = RetryPolicy(max_wait=300.0, max_retry_after=600.0)


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header (seconds or an HTTP date) as seconds from now.

    ``None`` when absent or unreadable: a negative number, ``nan``, ``inf`` or anything that is
    neither a number nor an HTTP date is treated as no hint at all (the caller backs off as usual),
    never as a wait. A date in the past reads as 0. Huge values are returned as they are: each
    caller caps them (:meth:`RetryPolicy.next_wait`).
    """
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def parse_poll_after_ms(value: str | None) -> float | None:
    """Read a poll hint in milliseconds (``openai-poll-after-ms``) as seconds; ``None`` if absent or unreadable."""
    if not value or not value.strip():
        return None
    try:
        milliseconds = float(value)
    except ValueError:
        return None
    return milliseconds / 1000.0 if math.isfinite(milliseconds) and milliseconds >= 0 else None


def retry_kwargs(policy: RetryPolicy, retry_if: Callable[[BaseException], bool] | None, logger: Any) -> dict[str, Any]:
    """Return tenacity's arguments for ``policy``.

    What is retried (``retry_if``, by default transient errors), how long it waits, and a warning on
    ``logger`` before each new attempt.
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "Attempt %d of %d failed (%s); retrying in %.1f s.",
            state.attempt_number,
            policy.max_attempts,
            error,
            state.upcoming_sleep,
        )

    return {
        "stop": stop_after_attempt(policy.max_attempts) | _stop_before_delay(policy.max_seconds),
        "wait": policy.wait_seconds,
        "retry": retry_if_exception(retry_if or _is_transient),
        "before_sleep": before_sleep,
        "reraise": True,
    }


def _is_transient(error: BaseException) -> bool:
    from airflow_provider_videogen.exceptions import VideoGenTransientError  # not at import: see styles.base

    return isinstance(error, VideoGenTransientError)
