"""A market whose evaluation raises is blocked and logged; the other markets and the bot go on.

The numbers here bypass parsing on purpose (parsing refuses them now): whatever slips through to
the gates or the detector must cost one market, never the detector task and the root nursery.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
import trio
import trio.testing

from hip3.core import MarketKey, MarketSpec
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import MarketCells
from hip3.strategy.detector import DetectorParams
from hip3.strategy.gates import GateParams
from hip3.strategy.scanner import EVALUATION_ERROR, SignalScanner, run_detector
from hip3.trading.messages import Signal

TSLA = MarketKey("xyz", "TSLA", 120001)
GOLD = MarketKey("xyz", "GOLD", 120003)
SPECS = {
    TSLA: MarketSpec(TSLA, sz_decimals=3, max_leverage=10, only_isolated=True),
    GOLD: MarketSpec(GOLD, sz_decimals=4, max_leverage=20, only_isolated=True),
}
D = Decimal
#: The oracle-mark sanity bound would refuse the absurd mark before anything raises; with it off
#: and the mark-mid gate on, the mark reaches arithmetic that raises (what these tests need).
DETECTOR = DetectorParams(baseline_warmup_secs=0)
GATES = GateParams(max_oracle_mark_bps=0, max_mark_mid_divergence_bps=50)


def quote(cells: MarketCells, market: MarketKey, mark: Decimal, now: float) -> None:
    cells.update_bbo(
        market, Bbo(market.name, 1, BookLevel(D(100), D(5), 1), BookLevel(D("100.02"), D(5), 1)), now
    )
    cells.update_ctx(market, AssetCtx(market.name, D(100), mark, D("100.01"), D(5), D(0)), now)


def test_an_evaluation_that_raises_blocks_only_its_market(caplog: pytest.LogCaptureFixture) -> None:
    scanner = SignalScanner(SPECS, DETECTOR, GATES, max_notional=Decimal(50))
    cells = MarketCells(SPECS)
    quote(cells, TSLA, D("9e999999"), 100.0)
    quote(cells, GOLD, D(100), 100.0)
    with caplog.at_level(logging.WARNING):
        assert scanner.scan(cells, set(SPECS), 100.0) == []
        scanner.scan(cells, {TSLA}, 100.1)  # still bad: no second log line
    assert scanner.gate_log.blocked_markets() == {TSLA: EVALUATION_ERROR}
    assert scanner.stats.blocked[EVALUATION_ERROR] == 2
    assert caplog.text.count(f"market {TSLA} blocked by {EVALUATION_ERROR}") == 1
    # sane data again: the market is evaluated normally
    quote(cells, TSLA, D(100), 100.2)
    scanner.scan(cells, {TSLA}, 100.2)
    assert scanner.gate_log.blocked_markets() == {}


async def test_the_detector_task_survives_an_absurd_mark(autojump_clock: trio.testing.MockClock) -> None:
    scanner = SignalScanner(SPECS, DETECTOR, GATES, max_notional=Decimal(50))
    cells = MarketCells(SPECS)
    send, recv = trio.open_memory_channel[Signal](4)
    async with trio.open_nursery() as nursery:
        await nursery.start(run_detector, cells, scanner, send)
        quote(cells, TSLA, D("9e999999"), trio.current_time())
        await trio.sleep(1)
        quote(cells, GOLD, D(100), trio.current_time())
        await trio.sleep(1)
        assert scanner.stats.evaluations >= 2  # GOLD was evaluated after TSLA raised
        assert scanner.gate_log.blocked_markets() == {TSLA: EVALUATION_ERROR}
        nursery.cancel_scope.cancel()
    recv.close()
