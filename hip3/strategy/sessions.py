"""Oracle sessions: a weekly calendar of named windows, in their own time zones, per dex or coin.

trade.xyz prices its oracle internally from Friday 20:00 to Sunday 20:00 US Eastern (and during
external-feed gaps): the oracle then follows the book, so "the book lags the oracle" means nothing
and entries are blocked (hyperliquid.md §11). Other windows scale the entry threshold instead (the
system this replaces doubled it around the US open after looking at its P&L by hour).

A window is either weekly — `start = "Fri 20:00"`, `end = "Sun 20:00"` — or daily on the listed
days — `start = "09:30"`, `end = "10:00"`, `days = ["Mon", …]` (a daily window may run past
midnight; it belongs to the day it starts on). Times are read in the window's `time_zone` through
`zoneinfo`, so daylight saving time is followed. Exits never look at sessions.

Pure: `SessionCalendar.at(when_utc)` returns the windows open at that instant; the caller reads
wall time from the one wall-clock seam.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import field, frozen

from hip3.core import MarketKey

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
_TIME_RE = re.compile(r"^(?:(?P<day>[A-Za-z]{3})\s+)?(?P<h>\d{1,2}):(?P<m>\d{2})$")

SessionAction = Literal["block", "scale"]


def _day_index(name: str) -> int:
    for i, day in enumerate(DAYS):
        if name.lower() == day.lower():
            return i
    raise ValueError(f"unknown day {name!r} (use {', '.join(DAYS)})")


def parse_time(text: str) -> tuple[int | None, int]:
    """ "Fri 20:00" → (4, 1200); "09:30" → (None, 570)."""
    match = _TIME_RE.match(text.strip())
    if match is None:
        raise ValueError(f'expected "HH:MM" or "Day HH:MM" (e.g. "Fri 20:00"), got {text!r}')
    hours, minutes = int(match["h"]), int(match["m"])
    if hours > 23 or minutes > 59:
        raise ValueError(f"not a time of day: {text!r}")
    day = _day_index(match["day"]) if match["day"] else None
    return day, hours * 60 + minutes


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'unknown time zone {name!r} (an IANA name like "America/New_York")') from None


@frozen
class SessionWindow:
    """One named window of the calendar (see the module docstring for `start`/`end`/`days`)."""

    name: str
    start: str
    end: str
    time_zone: str = "UTC"
    days: tuple[str, ...] = DAYS
    dex: str = ""  # markets of this dex only ("" = every dex)
    coins: tuple[str, ...] = ()  # these coins only (without the dex prefix; () = every coin)
    action: SessionAction = "block"
    threshold_multiplier: Decimal = Decimal(1)  # for action = "scale"
    # Minute-of-week spans [start, end) in the window's zone, computed from the strings above.
    spans: tuple[tuple[int, int], ...] = field(init=False)
    tz: ZoneInfo = field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "tz", zone(self.time_zone))
        start_day, start = parse_time(self.start)
        end_day, end = parse_time(self.end)
        if (start_day is None) != (end_day is None):
            raise ValueError(f"session {self.name!r}: start and end must both name a day, or neither")
        if self.action == "scale" and self.threshold_multiplier < 1:
            raise ValueError(f"session {self.name!r}: threshold_multiplier must be >= 1 (it raises the bar)")
        if self.action not in ("block", "scale"):
            raise ValueError(f'session {self.name!r}: action must be "block" or "scale", got {self.action!r}')
        spans: list[tuple[int, int]] = []
        if start_day is not None and end_day is not None:
            begin = start_day * MINUTES_PER_DAY + start
            length = (end_day * MINUTES_PER_DAY + end - begin) % MINUTES_PER_WEEK
            if length == 0:
                raise ValueError(f"session {self.name!r}: start and end are the same instant")
            spans.append((begin, begin + length))
        else:
            length = (end - start) % MINUTES_PER_DAY
            if length == 0:
                raise ValueError(f"session {self.name!r}: start and end are the same time")
            if not self.days:
                raise ValueError(f"session {self.name!r}: days must not be empty")
            for day in self.days:
                begin = _day_index(day) * MINUTES_PER_DAY + start
                spans.append((begin, begin + length))
        object.__setattr__(self, "spans", tuple(spans))

    def is_open(self, when_utc: datetime) -> bool:
        local = when_utc.astimezone(self.tz)
        minute = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
        # A span may run past the end of the week (Sun 22:00 → Mon 02:00): look one week back too.
        return any(b <= minute < e or b <= minute + MINUTES_PER_WEEK < e for b, e in self.spans)

    def applies_to(self, market: MarketKey) -> bool:
        if self.dex and market.dex != self.dex:
            return False
        return not self.coins or market.coin in self.coins


#: trade.xyz prices its oracle internally over the weekend (hyperliquid.md §11).
XYZ_WEEKEND = SessionWindow(
    name="xyz weekend (internal oracle)",
    start="Fri 20:00",
    end="Sun 20:00",
    time_zone="America/New_York",
    dex="xyz",
    action="block",
)


@frozen
class SessionVerdict:
    """What the calendar says for one market now: a block (its window's name) and the threshold factor."""

    blocked_by: str | None = None
    threshold_multiplier: Decimal = Decimal(1)
    scaled_by: tuple[str, ...] = ()


OPEN = SessionVerdict()


class SessionCalendar:
    def __init__(self, windows: Iterable[SessionWindow] = ()) -> None:
        self.windows: Sequence[SessionWindow] = tuple(windows)

    def open_windows(self, when_utc: datetime) -> tuple[SessionWindow, ...]:
        return tuple(w for w in self.windows if w.is_open(when_utc))

    def verdict(self, market: MarketKey, open_windows: Iterable[SessionWindow]) -> SessionVerdict:
        """Combine the open windows that apply to `market`: any block blocks; scale factors multiply."""
        blocked: str | None = None
        multiplier = Decimal(1)
        scaled: list[str] = []
        for w in open_windows:
            if not w.applies_to(market):
                continue
            if w.action == "block":
                blocked = blocked or w.name
            else:
                multiplier *= w.threshold_multiplier
                scaled.append(w.name)
        if blocked is None and not scaled:
            return OPEN
        return SessionVerdict(blocked_by=blocked, threshold_multiplier=multiplier, scaled_by=tuple(scaled))
