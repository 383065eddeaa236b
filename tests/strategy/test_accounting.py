"""Edge accounting: one round trip per position, priced against the signal's and the exit's oracle."""

from __future__ import annotations

from decimal import Decimal

from hip3.core import MarketKey, Side
from hip3.strategy.accounting import EdgeLedger, signed_bps
from hip3.trading.messages import PositionClosed, PositionOpened, Signal

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110000)
GOLD = MarketKey("xyz", "GOLD", 110001)


def signal(market: MarketKey, side: Side, oracle: str, best: str, at: float) -> Signal:
    return Signal(
        market=market,
        side=side,
        raw_edge_bps=signed_bps(side, D(best), D(oracle)),
        threshold_bps=D("4.8"),
        oracle_px=D(oracle),
        best_px=D(best),
        best_sz=D(1),
        suggested_size=D("0.2"),
        created_at=at,
    )


def test_a_long_round_trip_is_priced_against_both_oracles() -> None:
    oracles = {TSLA: D("100.10")}
    ledger = EdgeLedger(oracle_of=oracles.get, taker_bps_of=lambda m: D("0.9"))
    ledger.on_signal(signal(TSLA, Side.BUY, "100.10", "100.00", at=1.0))
    ledger.on_opened(PositionOpened(TSLA, Side.BUY, D(1), D("100.00"), at=1.2))
    trip = ledger.on_closed(
        PositionClosed(TSLA, Side.BUY, D(1), D("100.00"), D("100.08"), D("0.08"), held_for=2.0, at=3.2)
    )
    assert trip.signal_edge_bps is not None and round(trip.signal_edge_bps, 2) == D("9.99")
    assert trip.entry_vs_oracle_bps == trip.signal_edge_bps  # filled at the price the signal saw
    assert trip.exit_vs_oracle_bps is not None and round(trip.exit_vs_oracle_bps, 2) == D("-2.00")
    assert trip.fees == D("200.08") * D("0.00009")  # 0.9 bp on both legs
    assert trip.net_pnl == D("0.08") - trip.fees and trip.held_secs == 2.0
    summary = ledger.summary()
    assert (summary.round_trips, summary.signals) == (1, 1)
    assert round(summary.bps_per_round_trip, 2) == round(trip.net_pnl / 100 * 10_000, 2)
    assert "1 round trips" in summary.describe() and "round trip xyz:TSLA" in trip.describe()


def test_a_short_and_a_position_without_a_signal() -> None:
    oracles: dict[MarketKey, Decimal] = {GOLD: D(4000)}
    ledger = EdgeLedger(oracle_of=oracles.get, taker_bps_of=lambda m: D(9))
    ledger.on_signal(signal(GOLD, Side.SELL, "4000", "4010", at=0.0))
    ledger.on_opened(PositionOpened(GOLD, Side.SELL, D("0.01"), D(4010), at=0.5))
    short = ledger.on_closed(
        PositionClosed(GOLD, Side.SELL, D("0.01"), D(4010), D(4001), D("0.09"), 1.0, 1.5)
    )
    assert short.entry_vs_oracle_bps == D(25) and short.exit_vs_oracle_bps == D("-2.5")
    # A signal on the other side, or a stale one, did not open the next position.
    ledger.on_signal(signal(GOLD, Side.BUY, "4000", "3990", at=2.0))
    ledger.on_opened(PositionOpened(GOLD, Side.SELL, D("0.01"), D(4010), at=2.5))
    unknown = ledger.on_closed(PositionClosed(GOLD, Side.SELL, D("0.01"), D(4010), D(4010), D(0), 1.0, 3.5))
    assert unknown.signal_edge_bps is None and unknown.entry_vs_oracle_bps is None
    assert unknown.net_pnl == -unknown.fees < 0
    assert ledger.summary().round_trips == 2


def test_round_trip_record_for_the_journal() -> None:
    ledger = EdgeLedger(oracle_of={TSLA: D("100.10")}.get, taker_bps_of=lambda m: D("0.9"))
    ledger.on_signal(signal(TSLA, Side.BUY, "100.10", "100.00", at=1.0))
    ledger.on_opened(PositionOpened(TSLA, Side.BUY, D(1), D("100.00"), at=1.2))
    trip = ledger.on_closed(
        PositionClosed(TSLA, Side.BUY, D(1), D("100.00"), D("100.08"), D("0.08"), held_for=2.0, at=3.2)
    )
    data = trip.record_data()
    assert data["side"] == "buy" and data["entry_px"] == "100.00" and data["exit_px"] == "100.08"
    assert D(str(data["net_pnl"])) == trip.net_pnl and data["held_secs"] == 2.0
    assert data["entry_oracle_px"] == "100.10" and data["exit_oracle_px"] == "100.10"
