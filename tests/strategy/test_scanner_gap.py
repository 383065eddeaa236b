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


def test_a_session_where_the_oracle_follows_the_book_does_not_become_the_baseline() -> None:
    # HOOD-like: the book sits 30 bps above the external oracle. From 12:00 to 12:30 the deployer
    # prices the oracle internally (it follows the book: no gap) and the calendar blocks entries.
    # When the external oracle is back, the book is still 30 bps above it: that is the market's
    # structure, not a 28 bps sell edge. The half hour of "no gap" must not have become the baseline.
    from datetime import UTC, datetime, timedelta

    from hip3.strategy.sessions import SessionCalendar, SessionWindow

    window = SessionWindow(name="internal pricing", start="12:00", end="12:30", action="block")
    start = datetime(2026, 6, 2, 11, 50, tzinfo=UTC)  # a Tuesday
    clock = [start]
    scanner = SignalScanner(
        SPECS,
        DetectorParams(baseline_warmup_secs=5.0),
        GateParams(),
        max_notional=D(100),
        calendar=SessionCalendar([window]),
        wall_clock=lambda: clock[0],
    )
    cells = MarketCells(SPECS)
    book = Bbo("xyz:HOOD", 1, BookLevel(D("100.28"), D(5), 1), BookLevel(D("100.32"), D(5), 1))
    signals = []
    for second in range(45 * 60):
        clock[0] = start + timedelta(seconds=second)
        internal = window.is_open(clock[0])
        oracle = D("100.30") if internal else D(100)
        oracle += D("0.001") * (second % 2)  # a new oracle every second
        now = 1000.0 + second
        cells.update_bbo(HOOD, book, now)
        cells.update_ctx(HOOD, AssetCtx("xyz:HOOD", oracle, oracle, D("100.30"), D(5), D(0)), now)
        signals += [(clock[0], s) for s in scanner.scan(cells, {HOOD}, now)]
    assert signals == []
    gap = scanner.structural_gap_bps(HOOD, 1000.0 + 45 * 60)
    assert gap is not None and abs(gap - 30) < D("0.2")


def test_the_edge_ceiling_bounds_the_edge_measured_from_where_the_book_settles() -> None:
    # The book lives 30 bps above the oracle; then its ask falls to 30 bps *below* the oracle (which
    # just rose): 30 bps of raw edge, but 60 bps below where this book settles, and 60 bps is what
    # the entry would bet on. With a 50 bps ceiling that is an oracle (or a book) not to be trusted.
    scanner = SignalScanner(
        SPECS, DetectorParams(baseline_warmup_secs=5.0), GateParams(max_edge_bps=D(50)), max_notional=D(100)
    )
    cells = MarketCells(SPECS)
    book = Bbo("xyz:HOOD", 1, BookLevel(D("100.28"), D(5), 1), BookLevel(D("100.32"), D(5), 1))
    for second in range(12):
        now = 1000.0 + second
        oracle = D("100.001") if second % 2 else D(100)
        cells.update_bbo(HOOD, book, now)
        cells.update_ctx(HOOD, AssetCtx("xyz:HOOD", oracle, oracle, D("100.30"), D(5), D(0)), now)
        assert scanner.scan(cells, {HOOD}, now) == []
    gap = scanner.structural_gap_bps(HOOD, 1011.0)
    assert gap is not None and abs(gap - 30) < D("0.2")
    crashed = Bbo("xyz:HOOD", 2, BookLevel(D("99.68"), D(5), 1), BookLevel(D("99.73"), D(5), 1))
    cells.update_bbo(HOOD, crashed, 1012.0)
    cells.update_ctx(HOOD, AssetCtx("xyz:HOOD", D("100.03"), D("100.03"), D("100.30"), D(5), D(0)), 1012.0)
    assert scanner.scan(cells, {HOOD}, 1012.0) == []
    assert scanner.gate_log.blocked_markets() == {HOOD: "oracle_sanity"}


def test_an_oracle_the_sanity_bound_distrusts_does_not_become_the_baseline() -> None:
    # A quiet book on its oracle for 100 s; then the deployer publishes an oracle 3 % low for 200 s
    # (the mark stays with the book, so the sanity bound blocks: oracle not trusted). When the
    # oracle is right again the book is where it always was. Sampled, the wrong oracle would be
    # two thirds of the window: a +300 bps "structural gap", and the book sitting on the oracle a
    # 300 bps buy edge (under this market's 500 bps ceiling).
    scanner = SignalScanner(
        SPECS,
        DetectorParams(baseline_warmup_secs=5.0),
        GateParams(max_edge_bps=D(500), max_oracle_mark_bps=D(200)),
        max_notional=D(100),
    )
    cells = MarketCells(SPECS)
    book = Bbo("xyz:HOOD", 1, BookLevel(D("99.98"), D(5), 1), BookLevel(D("100.02"), D(5), 1))
    signals = []
    for second in range(320):
        now = 1000.0 + second
        oracle = D(97) if 100 <= second < 300 else D(100)
        oracle += D("0.001") * (second % 2)
        cells.update_bbo(HOOD, book, now)
        cells.update_ctx(HOOD, AssetCtx("xyz:HOOD", oracle, D(100), D(100), D(5), D(0)), now)
        signals += scanner.scan(cells, {HOOD}, now)
    assert signals == []
    gap = scanner.structural_gap_bps(HOOD, 1320.0)
    assert gap is not None and abs(gap) < 1
