"""The one wall-clock seam: Unix milliseconds and the UTC trading day.

Durations, timeouts and ages are trio's clock (`trio.current_time()`), which tests drive with
`trio.testing.MockClock`. Wall-clock time is needed only where it is exchange data or read by
people: nonces and `expiresAfter`, fill catch-up windows, the hard stop's UTC day and latch time,
journal rows. All of those read it here, so a test sets it in one place (`use_wall_clock`,
`wall_clock_following_trio`) instead of patching each module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

import trio


def _system_ms() -> int:
    return time.time_ns() // 1_000_000


_source: Callable[[], int] = _system_ms


def wall_clock_ms() -> int:
    """Unix time in milliseconds."""
    return _source()


def utc_now() -> datetime:
    """The wall clock as an aware UTC datetime."""
    return datetime.fromtimestamp(wall_clock_ms() / 1000, UTC)


def utc_day() -> date:
    """The UTC trading day (the hard stop's daily loss resets when it changes)."""
    return utc_now().date()


@contextmanager
def use_wall_clock(source: Callable[[], int]) -> Iterator[None]:
    """Read the wall clock from `source` (Unix ms) inside the block; for tests and replays."""
    global _source
    previous = _source
    _source = source
    try:
        yield
    finally:
        _source = previous


def wall_clock_following_trio(start_ms: int) -> Callable[[], int]:
    """A wall clock that starts at `start_ms` and advances with trio's clock (call inside trio).

    With `trio.testing.MockClock` the wall clock then moves exactly as the test's time does.
    """
    origin = trio.current_time()
    return lambda: start_ms + int((trio.current_time() - origin) * 1000)
