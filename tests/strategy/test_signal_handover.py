"""The detector task hands a signal to the executor first; its log line follows a moment later."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
import trio
import trio.testing

from hip3.core import MarketKey, Side
from hip3.market.cells import MarketCells
from hip3.strategy.scanner import SIGNAL_LOG_DELAY_SECS, DetectorStats, run_detector
from hip3.trading.messages import Signal

TSLA = MarketKey("xyz", "TSLA", 120001)


class OneSignal:
    """Stands in for SignalScanner: the first scan finds a signal."""

    def __init__(self) -> None:
        self.stats = DetectorStats()
        self.signal = Signal(
            market=TSLA,
            side=Side.BUY,
            raw_edge_bps=Decimal(40),
            threshold_bps=Decimal(14),
            oracle_px=Decimal("433.88"),
            best_px=Decimal("432.23"),
            best_sz=Decimal("11.5"),
            suggested_size=Decimal("0.22"),
            created_at=0.0,
        )
        self.scans = 0

    def scan(self, cells: MarketCells, changed: set[MarketKey], now: float) -> list[Signal]:
        self.scans += 1
        return [self.signal] if self.scans == 1 else []


async def test_signal_reaches_the_executor_before_its_log_line(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hip3.strategy.scanner")
    cells = MarketCells([TSLA])
    scanner = OneSignal()
    send, receive = trio.open_memory_channel[Signal](4)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_detector, cells, scanner, send)  # type: ignore[arg-type]
        cells._mark_changed(TSLA)  # new data in the cell
        got = await receive.receive()
        assert got is scanner.signal
        assert not [r for r in caplog.records if "signal xyz:TSLA" in r.getMessage()]
        await trio.sleep(SIGNAL_LOG_DELAY_SECS)
        await trio.sleep(0.001)
        lines = [r.getMessage() for r in caplog.records if "signal xyz:TSLA" in r.getMessage()]
        assert len(lines) == 1 and "edge 40.0 bps" in lines[0]
        nursery.cancel_scope.cancel()


async def test_observation_mode_still_logs_every_signal(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hip3.strategy.scanner")
    cells = MarketCells([TSLA])
    scanner = OneSignal()
    seen: list[Signal] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_detector(
                cells, scanner, None, on_signal=seen.append, task_status=task_status
            )  # type: ignore[arg-type]
        )
        cells._mark_changed(TSLA)
        await trio.sleep(1)
        assert seen == [scanner.signal]
        assert len([r for r in caplog.records if "signal xyz:TSLA" in r.getMessage()]) == 1
        nursery.cancel_scope.cancel()
