"""Progress lines of a download: bytes, percent and rate, every few seconds, through a callback in fsspec's shape."""

from __future__ import annotations

import time

from airflow_provider_videogen.download._types import log


class ProgressLog:
    """Log how far one download attempt got (bytes, percent, rate) every ``interval`` seconds, and never sooner.

    Shaped like fsspec's ``Callback`` (``set_size``, ``absolute_update``), so a copy reports its
    progress without knowing where it goes.

    :param what: the file, as messages name it ("video", "last frame").
    :param interval: seconds between two lines; a download done sooner logs none.
    :param start: bytes already there when the attempt starts (a resumed attempt).
    """

    def __init__(self, what: str, interval: float, *, start: int = 0) -> None:
        self.what = what
        self.size: int | None = None
        self.interval = interval
        self.started = self.last = time.monotonic()
        self.first_bytes = start  # the rate counts this attempt's bytes only

    def set_size(self, size: int | None) -> None:
        """Take the file's whole size, when the host tells it."""
        self.size = size

    def absolute_update(self, value: int) -> None:
        """``value`` bytes of the file are written: log a line if the interval has passed."""
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        rate = (value - self.first_bytes) / max(now - self.started, 1e-6)
        share = f" of {_mib(self.size)} ({100 * value / self.size:.0f}%)" if self.size else ""
        log.info("Downloading the %s: %s%s at %s/s.", self.what, _mib(value), share, _mib(rate))


def _mib(size: float) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
