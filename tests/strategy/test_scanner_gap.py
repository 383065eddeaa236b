"""The scanner hands each market's measured structural gap to the exits (and nothing before it is measured)."""

from __future__ import annotations

from decimal import Decimal

from hip3.core import MarketKey, MarketSpec
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import MarketCells
from hip3.strategy.detector import DetectorParams
from hip3.strategy.gates import GateParams
from hip3.strategy.scanner import SignalScanner

HOOD = MarketKey("xyz", "HOOD", 120005)
OTHER = MarketKey("xyz", "OTHER", 120009)
SPECS = {HOOD: MarketSpec(HOOD, sz_decimals=3, max_leverage=10)}
D = Decimal


def test_the_structural_gap_is_offered_once_warmed_up() -> None:
    scanner = SignalScanner(
        SPECS, DetectorParams(baseline_warmup_secs=5.0), GateParams(), max_notional=D(100)
    )
    cells = MarketCells(SPECS)
    book = Bbo("xyz:HOOD", 1, BookLevel(D("100.28"), D(5), 1), BookLevel(D("100.32"), D(5), 1))
    seen = []
    for second in range(12):
        now = 1000.0 + second
        oracle = D("100.001") if second % 2 else D(100)
        cells.update_bbo(HOOD, book, now)
        cells.update_ctx(HOOD, AssetCtx("xyz:HOOD", oracle, oracle, D("100.30"), D(5), D(0)), now)
        scanner.scan(cells, {HOOD}, now)
        seen.append(scanner.structural_gap_bps(HOOD, now))
    # The first update (second 1) starts the clock; 5 s later the gap is offered: ~30 bps above.
    assert seen[:6] == [None] * 6
    assert all(g is not None and abs(g - 30) < D("0.2") for g in seen[6:])
    assert scanner.structural_gap_bps(OTHER, 1011.0) is None
    off = SignalScanner(SPECS, DetectorParams(baseline_warmup_secs=0), GateParams(), max_notional=D(100))
    assert off.structural_gap_bps(HOOD, 1011.0) is None  # the baseline is off: exits use the oracle
