"""The session calendar: weekly and daily windows in their own zones (DST followed), per dex/coin."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hip3.core import MarketKey
from hip3.strategy.sessions import XYZ_WEEKEND, SessionCalendar, SessionWindow, parse_time

TSLA = MarketKey("xyz", "TSLA", 110000)
OTHER = MarketKey("abc", "TSLA", 120000)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "blocked"),
    [
        # Summer (EDT = UTC-4): Fri 2026-07-10 20:00 ET = Sat 00:00 UTC; Sun 20:00 ET = Mon 00:00 UTC.
        (utc(2026, 7, 10, 23, 59), False),
        (utc(2026, 7, 11, 0, 0), True),
        (utc(2026, 7, 12, 12, 0), True),
        (utc(2026, 7, 12, 23, 59), True),
        (utc(2026, 7, 13, 0, 0), False),
        # Winter (EST = UTC-5): Fri 2026-12-04 20:00 ET = Sat 01:00 UTC.
        (utc(2026, 12, 5, 0, 30), False),
        (utc(2026, 12, 5, 1, 0), True),
        (utc(2026, 12, 7, 0, 59), True),
        (utc(2026, 12, 7, 1, 0), False),
        (utc(2026, 12, 2, 15, 0), False),  # a Wednesday
    ],
)
def test_xyz_weekend_follows_us_eastern_time(when: datetime, blocked: bool) -> None:
    assert XYZ_WEEKEND.is_open(when) is blocked


def test_weekend_applies_to_dex_xyz_only() -> None:
    cal = SessionCalendar([XYZ_WEEKEND])
    windows = cal.open_windows(utc(2026, 7, 11, 12, 0))
    assert cal.verdict(TSLA, windows).blocked_by == XYZ_WEEKEND.name
    assert cal.verdict(OTHER, windows).blocked_by is None


def test_daily_window_on_weekdays_scales_the_threshold() -> None:
    us_open = SessionWindow(
        name="US open",
        start="09:30",
        end="10:30",
        time_zone="America/New_York",
        days=("Mon", "Tue", "Wed", "Thu", "Fri"),
        action="scale",
        threshold_multiplier=Decimal(2),
    )
    cal = SessionCalendar([us_open, XYZ_WEEKEND])
    monday_open = utc(2026, 7, 13, 13, 45)  # 09:45 EDT
    verdict = cal.verdict(TSLA, cal.open_windows(monday_open))
    assert (verdict.blocked_by, verdict.threshold_multiplier, verdict.scaled_by) == (None, 2, ("US open",))
    assert cal.verdict(TSLA, cal.open_windows(utc(2026, 7, 13, 14, 30))).threshold_multiplier == 1
    assert cal.verdict(TSLA, cal.open_windows(utc(2026, 7, 11, 13, 45))).threshold_multiplier == 1  # Sat


def test_windows_that_run_past_midnight_and_past_the_end_of_the_week() -> None:
    night = SessionWindow(name="night", start="22:00", end="02:00", days=("Sun",))
    assert night.is_open(utc(2026, 7, 12, 23, 0))  # Sunday 23:00 UTC
    assert night.is_open(utc(2026, 7, 13, 1, 59))  # Monday 01:59: still Sunday's window
    assert not night.is_open(utc(2026, 7, 13, 2, 0))
    assert not night.is_open(utc(2026, 7, 13, 23, 0))  # Monday night: not a listed day
    weekly = SessionWindow(name="wrap", start="Sun 22:00", end="Mon 02:00")
    assert weekly.is_open(utc(2026, 7, 13, 1, 0)) and not weekly.is_open(utc(2026, 7, 13, 3, 0))


def test_coin_filter_and_several_scales_multiply() -> None:
    a = SessionWindow(name="a", start="00:00", end="23:59", action="scale", threshold_multiplier=Decimal(2))
    b = SessionWindow(
        name="b",
        start="00:00",
        end="23:59",
        coins=("TSLA",),
        action="scale",
        threshold_multiplier=Decimal("1.5"),
    )
    cal = SessionCalendar([a, b])
    windows = cal.open_windows(utc(2026, 7, 13, 12, 0))
    assert cal.verdict(TSLA, windows).threshold_multiplier == 3
    assert cal.verdict(MarketKey("xyz", "GOLD", 1), windows).threshold_multiplier == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "25:00", "end": "10:00"}, "not a time of day"),
        ({"start": "9.30", "end": "10:00"}, "expected"),
        ({"start": "Fri 20:00", "end": "20:00"}, "both name a day"),
        ({"start": "Xyz 20:00", "end": "Sun 20:00"}, "unknown day"),
        ({"start": "10:00", "end": "10:00"}, "same time"),
        ({"start": "10:00", "end": "11:00", "time_zone": "Mars/Olympus"}, "unknown time zone"),
        (
            {"start": "10:00", "end": "11:00", "action": "scale", "threshold_multiplier": Decimal("0.5")},
            ">= 1",
        ),
        ({"start": "10:00", "end": "11:00", "action": "nap"}, "block"),
    ],
)
def test_bad_windows_say_what_is_wrong(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SessionWindow(name="w", **kwargs)  # type: ignore[arg-type]


def test_parse_time() -> None:
    assert parse_time("Fri 20:00") == (4, 1200) and parse_time("09:30") == (None, 570)


@pytest.fixture
def no_system_zones() -> Iterator[None]:
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        yield
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


def test_zones_work_without_system_zone_data(no_system_zones: None) -> None:
    # The tzdata package is a dependency, so a host without /usr/share/zoneinfo still knows US Eastern.
    window = SessionWindow(name="w", start="Fri 20:00", end="Sun 20:00", time_zone="America/New_York")
    assert window.is_open(utc(2026, 7, 11, 0, 0)) and not window.is_open(utc(2026, 7, 10, 23, 59))


def test_sessions_in_the_config_file() -> None:
    from hip3.service.config import ConfigError, config_from_text, config_to_text

    assert config_from_text("").sessions == (XYZ_WEEKEND,)  # the default for dex xyz
    assert config_from_text("sessions = []\n").sessions == ()
    cfg = config_from_text(
        '[[sessions]]\nname = "US open"\nstart = "09:30"\nend = "10:30"\ndays = ["Mon", "Fri"]\n'
        'time_zone = "America/New_York"\naction = "scale"\nthreshold_multiplier = 2\n'
    )
    (window,) = cfg.sessions
    assert (window.action, window.threshold_multiplier, window.days) == ("scale", Decimal(2), ("Mon", "Fri"))
    assert config_from_text(config_to_text(cfg)) == cfg
    for bad, message in (
        ('[[sessions]]\nname = "x"\nstart = "25:00"\nend = "10:00"\n', "sessions[0]: not a time of day"),
        (
            '[[sessions]]\nname = "x"\nstart = "9:00"\nend = "10:00"\ntime_zone = "Mars/X"\n',
            "unknown time zone",
        ),
        (
            '[[sessions]]\nname = "x"\nstart = "9:00"\nend = "10:00"\nfoo = 1\n',
            "sessions[0].foo: unknown key",
        ),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            config_from_text(bad)
