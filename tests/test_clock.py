"""The one wall-clock seam: every wall-clock reader follows it, so a test sets time in one place."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import trio
import trio.testing

from hip3 import clock
from hip3.hyperliquid.signing import NonceManager
from hip3.trading.hardstop import HardStop, HardStopParams

#: 2025-11-13T23:59:59.500Z
LATE_EVENING_MS = 1_763_078_399_500


def test_wall_clock_ms_and_utc_day_follow_the_seam() -> None:
    with clock.use_wall_clock(lambda: LATE_EVENING_MS):
        assert clock.wall_clock_ms() == LATE_EVENING_MS
        assert clock.utc_day() == date(2025, 11, 13)
        assert clock.utc_now().isoformat() == "2025-11-13T23:59:59.500000+00:00"
    with clock.use_wall_clock(lambda: LATE_EVENING_MS + 500):
        assert clock.utc_day() == date(2025, 11, 14)  # the UTC trading day turned over


def test_nonces_and_the_hard_stop_read_the_seam(tmp_path: Path) -> None:
    with clock.use_wall_clock(lambda: LATE_EVENING_MS):
        assert NonceManager().next() == LATE_EVENING_MS
        stop = HardStop(HardStopParams(state_file=tmp_path / "hs.json"))
        stop.trigger("test")
    assert stop.latched_wall == "2025-11-13T23:59:59.500000+00:00"


async def test_a_wall_clock_that_follows_trio_moves_with_the_mock_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with clock.use_wall_clock(clock.wall_clock_following_trio(LATE_EVENING_MS)):
        await trio.sleep(0.25)
        assert clock.wall_clock_ms() == LATE_EVENING_MS + 250
        await trio.sleep(3600)
        assert clock.utc_day() == date(2025, 11, 14)
