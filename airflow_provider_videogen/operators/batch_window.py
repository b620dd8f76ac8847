"""The window a batch's creates go out in: generations in flight, creates per minute, and the back-off after a 429."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import TYPE_CHECKING

from airflow_provider_videogen.batch_record import IN_FLIGHT, INTENT
from airflow_provider_videogen.retry import POLL_SCHEDULE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_videogen.batch_record import BatchItemRecord
    from airflow_provider_videogen.styles import ApiStyle

#: Defaults where the connection's style publishes no limit.
DEFAULT_MAX_IN_FLIGHT = 10
DEFAULT_MAX_CREATES_PER_MINUTE = 60
# A wait for the next create shorter than this is slept on the worker: deferring costs more.
_SLEEP_RATHER_THAN_DEFER = 5.0


class BatchWindow:
    """How many creates a batch may send, and when: the window of one ``_advance`` of the operator.

    :param max_in_flight: most generations queued or running at once.
    :param max_creates_per_minute: most create calls in any ``rate_window`` seconds.
    :param rate_window: seconds the creates are counted in (60; a test may shorten it).
    :param paused_until: when the service's last 429 lets creates go out again, if it still holds.
    """

    def __init__(
        self, max_in_flight: int, max_creates_per_minute: int, rate_window: float, paused_until: float | None = None
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_creates_per_minute = max_creates_per_minute
        self.rate_window = rate_window
        self.paused_until = paused_until
        # 429s in a row: each one backs off longer; an answered create starts again from none.
        self._backoffs = 0
        # One round's count: kept up to date here rather than recounted from every entry before each create,
        # which would make a batch of thousands cost the square of its size.
        self._in_flight = 0
        self._recent: deque[float] = deque()

    @classmethod
    def for_style(
        cls,
        style: ApiStyle,
        max_in_flight: int | None,
        max_creates_per_minute: int | None,
        rate_window: float,
        paused_until: float | None,
    ) -> BatchWindow:
        """Return the window of a run: the limits asked for, else the style's published limits, else the defaults."""
        in_flight = max_in_flight or style.max_in_flight or DEFAULT_MAX_IN_FLIGHT
        per_minute = max_creates_per_minute or style.max_creates_per_minute or DEFAULT_MAX_CREATES_PER_MINUTE
        return cls(in_flight, per_minute, rate_window, paused_until)

    def next_create_at(self, entries: Sequence[BatchItemRecord], in_flight: int) -> float | None:
        """Return when the next create may go out; ``None`` when only a finished generation frees the window."""
        if in_flight >= self.max_in_flight:
            return None
        now = time.time()
        times = sorted(_create_times(entries, now - self.rate_window))
        per_window = self.max_creates_per_minute
        at = now if len(times) < per_window else times[len(times) - per_window] + self.rate_window
        return max(at, self.paused_until or 0.0)

    def slept_until_next_create(self, wake_at: float | None) -> bool:
        """Sleep here until ``wake_at``, when the next create may go out, if that is seconds away; say if it slept.

        :param wake_at: when the next create may go out (see :meth:`next_create_at`); ``None``: not before a
            finished generation frees the window (never slept on).
        """
        if wake_at is None or wake_at - time.time() > _SLEEP_RATHER_THAN_DEFER:
            return False
        time.sleep(max(wake_at - time.time(), 0.0))
        return True

    def resume_after(self, in_flight: int, pending: bool) -> int:
        """How many finished generations are worth a resume: a quarter of the window while items wait, else all."""
        if not pending:
            return max(in_flight, 1)
        return max(1, min(in_flight, math.ceil(self.max_in_flight / 4)))

    # ---- one round of creates ----

    def start_round(self, entries: Sequence[BatchItemRecord]) -> None:
        """Count what the entries hold in flight and the creates sent in the last ``rate_window``."""
        self._in_flight = sum(1 for e in entries if e.status in (IN_FLIGHT, INTENT))
        self._recent = deque(sorted(_create_times(entries, time.time() - self.rate_window)))

    def take(self, now: float) -> bool:
        """Take a place for a create sent at ``now``; ``False`` while paused, full, or at the create rate."""
        if self.paused_until is not None and now < self.paused_until:
            return False
        while self._recent and self._recent[0] <= now - self.rate_window:
            self._recent.popleft()
        if self._in_flight >= self.max_in_flight or len(self._recent) >= self.max_creates_per_minute:
            return False
        self._in_flight += 1
        self._recent.append(now)
        return True

    def free(self) -> None:
        """Give a taken place back: its create was refused or settled, no generation holds it."""
        self._in_flight -= 1

    def answered(self) -> None:
        """Note a create answered with its generation: the next 429 backs off from the start again."""
        self._backoffs = 0

    def back_off(self, retry_after: float | None) -> float:
        """Pause every create after a 429: free the refused create's place; return the seconds paused."""
        self._in_flight -= 1
        self._recent.pop()  # not taken: it does not count against the rate
        self._backoffs += 1
        wait = POLL_SCHEDULE.next_wait(self._backoffs, retry_after=retry_after, interval=1.0, jitter=0.1)
        self.paused_until = time.time() + wait
        return wait


def _create_times(entries: Sequence[BatchItemRecord], since: float) -> list[float]:
    """Return when the creates sent after ``since`` went out (an answered one: when it answered)."""
    return [t for e in entries if (t := e.created_at or e.intent_at or 0.0) > since]
