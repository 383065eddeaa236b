"""The scanner applies the session calendar: a block window blocks entries (logged once), a scale
window raises the threshold (logged on each change), at the wall time the scanner is given."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hip3.core import MarketKey, MarketSpec
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import MarketCells
from hip3.strategy.detector import DetectorParams
from hip3.strategy.fees import FeeTable
from hip3.strategy.gates import GateParams
from hip3.strategy.scanner import SignalScanner
from hip3.strategy.sessions import XYZ_WEEKEND, SessionCalendar, SessionWindow

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110000)
SPECS = {TSLA: MarketSpec(TSLA, sz_decimals=3)}
US_OPEN = SessionWindow(
    name="US open",
    start="09:30",
    end="10:30",
    time_zone="America/New_York",
    days=("Mon", "Tue", "Wed", "Thu", "Fri"),
    action="scale",
    threshold_multiplier=D(2),
)


def scanner(clock: list[datetime]) -> SignalScanner:
    return SignalScanner(
        SPECS,
        DetectorParams(
            baseline_warmup_secs=0, oracle_direction_filter=False, signal_dedup=False, min_edge_bps=1
        ),
        GateParams(),
        max_notional=D(100),
        fees=FeeTable(SPECS, overrides={TSLA: D(2)}),
        calendar=SessionCalendar([XYZ_WEEKEND, US_OPEN]),
        wall_clock=lambda: clock[0],
    )


def feed(cells: MarketCells, oracle: str, now: float) -> None:
    # A 15 bps dislocation: ask 99.85 under an oracle of 100 (book 0.5 bp half-spread).
    cells.update_bbo(
        TSLA,
        Bbo(TSLA.name, int(now * 1000), BookLevel(D("99.84"), D(5), 1), BookLevel(D("99.85"), D(5), 1)),
        now,
    )
    cells.update_ctx(TSLA, AssetCtx(TSLA.name, D(oracle), D(oracle), None, D(0), D(0)), now)


def test_scale_and_block_windows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = [datetime(2026, 7, 15, 12, 0, tzinfo=UTC)]  # Wednesday 08:00 New York: no session
    sc, cells = scanner(clock), MarketCells([TSLA])
    feed(cells, "100", 1.0)
    [plain] = sc.scan(cells, {TSLA}, 1.0)
    assert plain.threshold_bps == D(6)  # fees 2+2, exit cost 1, margin 1
    clock[0] = datetime(2026, 7, 15, 13, 45, tzinfo=UTC)  # 09:45 New York: US open, × 2
    feed(cells, "100", 2.0)
    [scaled] = sc.scan(cells, {TSLA}, 2.0)
    assert scaled.threshold_bps == D(12) and "× 2 session" in scaled.threshold_detail
    assert "entry threshold × 2 (US open)" in caplog.text
    clock[0] = datetime(2026, 7, 15, 15, 0, tzinfo=UTC)
    feed(cells, "100", 3.0)
    assert sc.scan(cells, {TSLA}, 3.0)[0].threshold_bps == D(6)
    assert "entry threshold back to normal (US open ended)" in caplog.text
    # Saturday: the xyz weekend blocks entries, logged once however often the market is looked at.
    clock[0] = datetime(2026, 7, 18, 12, 0, tzinfo=UTC)
    for t in (4.0, 5.0, 6.0):
        feed(cells, "100", t)
        assert sc.scan(cells, {TSLA}, t) == []
    assert caplog.text.count("blocked by session: xyz weekend") == 1
    clock[0] = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)  # Monday: unblocked, logged
    feed(cells, "100", 7.0)
    assert len(sc.scan(cells, {TSLA}, 7.0)) == 1
    assert "unblocked" in caplog.text
