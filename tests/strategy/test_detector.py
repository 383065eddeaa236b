"""Detector math with hand-computed expectations (reference/original-system.md §3)."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.core import MarketKey, MarketSpec, Side
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import MarketState
from hip3.strategy.detector import (
    DetectorMarketState,
    DetectorParams,
    OracleTracker,
    edges,
    evaluate,
    liquidity_factor,
    observe_oracle,
    size_for,
    threshold_for,
)

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110001)
TSLA_SPEC = MarketSpec(TSLA, sz_decimals=2)
PLATINUM = MarketKey("xyz", "PLATINUM", 110030)
PLATINUM_SPEC = MarketSpec(PLATINUM, sz_decimals=4)

#: Direction filter off, so single tests look at one rule at a time.
PLAIN = DetectorParams(oracle_direction_filter=False)
#: A per-market cap too big to matter unless a test sets its own.
BIG_CAP = D(100_000)


def state(
    oracle: str,
    bid: str | None,
    ask: str | None,
    *,
    bid_sz: str = "30",
    ask_sz: str = "30",
    market: MarketKey = TSLA,
    changed_at: float | None = 0.0,
) -> MarketState:
    return MarketState(
        market=market,
        bbo=Bbo(
            coin=market.name,
            time=1,
            bid=BookLevel(D(bid), D(bid_sz), 1) if bid is not None else None,
            ask=BookLevel(D(ask), D(ask_sz), 1) if ask is not None else None,
        ),
        bbo_at=0.0,
        ctx=AssetCtx(
            coin=market.name,
            oracle_px=D(oracle),
            mark_px=D(oracle),
            mid_px=None,
            open_interest=D(0),
            funding=D(0),
        ),
        ctx_at=0.0,
        oracle_changed_at=changed_at,
    )


def check(
    ms: MarketState,
    params: DetectorParams = PLAIN,
    spec: MarketSpec = TSLA_SPEC,
    now: float = 0.0,
    *,
    cap: Decimal = BIG_CAP,
    overrides: dict[str, Decimal] | None = None,
):
    return evaluate(
        ms, DetectorMarketState(), spec, params, now, max_notional=cap, threshold_overrides=overrides or {}
    )[0]


# ---------------------------------------------------------------------------------------------
# Edges and thresholds


def test_edges_in_bps() -> None:
    buy, sell = edges(state("100", "99.5", "99.7"))
    assert buy == D(30)  # (100 − 99.7) / 100 × 10⁴
    assert sell == D(-50)  # (99.5 − 100) / 100 × 10⁴
    assert edges(state("100", None, "99.7")) == (None, None)
    assert edges(state("0", "99.5", "99.7")) == (None, None)


def test_default_threshold_is_fee_times_multiplier_plus_slippage_plus_min_edge() -> None:
    assert threshold_for("TSLA", DetectorParams()) == D(16)  # 4.5 × 2 + 2 + 5
    assert threshold_for("TSLA", DetectorParams(taker_fee_bps=3, hip3_fee_multiplier=1)) == D(10)


def test_override_replaces_the_fee_based_threshold() -> None:
    overrides = {"TSLA": D(40), "GOLD": D(10)}
    assert threshold_for("TSLA", DetectorParams(), overrides) == D(40)
    assert threshold_for("GOLD", DetectorParams(), overrides) == D(10)  # below the fee-based 16: replaces
    assert threshold_for("NVDA", DetectorParams(), overrides) == D(16)


def test_ask_30_bps_below_oracle_gives_a_buy_signal() -> None:
    signal = check(state("100.00", "99.50", "99.70"), now=7.5)
    assert signal is not None
    assert signal.side is Side.BUY
    assert signal.market == TSLA
    assert signal.raw_edge_bps == D(30)
    assert signal.threshold_bps == D(16)
    assert signal.net_edge_bps == D(14)
    assert signal.oracle_px == D(100)
    assert signal.best_px == D("99.70") and signal.best_sz == D(30)
    assert signal.created_at == 7.5


def test_ask_10_bps_below_oracle_gives_nothing() -> None:
    assert check(state("100.00", "99.50", "99.90")) is None


def test_edge_exactly_at_threshold_signals() -> None:
    signal = check(state("100.00", "99.50", "99.84"))  # 16 bps
    assert signal is not None and signal.raw_edge_bps == D(16)
    assert check(state("100.00", "99.50", "99.85")) is None  # 15 bps


def test_override_40_blocks_a_30_bps_edge_and_override_10_admits_12() -> None:
    assert check(state("100", "99.5", "99.7"), overrides={"TSLA": D(40)}) is None
    assert check(state("100", "99.5", "99.88")) is None  # 12 bps < 16
    signal = check(state("100", "99.5", "99.88"), overrides={"TSLA": D(10)})
    assert signal is not None and signal.threshold_bps == D(10)


def test_bid_30_bps_above_oracle_gives_a_sell_signal() -> None:
    signal = check(state("100.00", "100.30", "100.50"))
    assert signal is not None
    assert signal.side is Side.SELL
    assert signal.raw_edge_bps == D(30)
    assert signal.best_px == D("100.30")


@pytest.mark.parametrize(
    ("bid", "ask", "oracle"),
    [
        (None, "99.7", "100"),  # no bid
        ("99.5", None, "100"),  # no ask
        ("99.8", "99.7", "100"),  # crossed
        ("99.7", "99.7", "100"),  # locked
        ("99.5", "99.7", "0"),  # no oracle
    ],
)
def test_invalid_book_or_oracle_gives_nothing(bid: str | None, ask: str | None, oracle: str) -> None:
    assert check(state(oracle, bid, ask)) is None


def test_zero_size_level_is_invalid() -> None:
    assert check(state("100", "99.5", "99.7", ask_sz="0")) is None


def test_max_entry_spread() -> None:
    ms = state("100", "99.0", "99.7")  # spread 0.7 / 99.35 × 10⁴ ≈ 70.5 bps, buy edge 30
    assert check(ms, attrs.evolve(PLAIN, max_entry_spread_bps=50)) is None
    assert check(ms, attrs.evolve(PLAIN, max_entry_spread_bps=80)) is not None
    assert check(ms, attrs.evolve(PLAIN, max_entry_spread_bps=0)) is not None  # 0 = off


# ---------------------------------------------------------------------------------------------
# Dedup


def test_one_signal_per_side_and_oracle_value() -> None:
    ds = DetectorMarketState()
    first, ds = evaluate(state("100", "99.5", "99.7"), ds, TSLA_SPEC, PLAIN, 0.0, max_notional=BIG_CAP)
    assert first is not None
    again, ds = evaluate(
        state("100", "99.5", "99.6"), ds, TSLA_SPEC, PLAIN, 0.1, max_notional=BIG_CAP
    )  # same oracle, bigger edge
    assert again is None
    sell, ds = evaluate(
        state("100", "100.3", "100.5"), ds, TSLA_SPEC, PLAIN, 0.2, max_notional=BIG_CAP
    )  # other side: own dedup
    assert sell is not None and sell.side is Side.SELL
    moved, ds = evaluate(
        state("100.01", "99.5", "99.7"), ds, TSLA_SPEC, PLAIN, 0.3, max_notional=BIG_CAP
    )  # new oracle value
    assert moved is not None and moved.side is Side.BUY


def test_dedup_off_repeats() -> None:
    params = attrs.evolve(PLAIN, signal_dedup=False)
    ds = DetectorMarketState()
    first, ds = evaluate(state("100", "99.5", "99.7"), ds, TSLA_SPEC, params, 0.0, max_notional=BIG_CAP)
    again, ds = evaluate(state("100", "99.5", "99.7"), ds, TSLA_SPEC, params, 0.1, max_notional=BIG_CAP)
    assert first is not None and again is not None


def test_dedup_is_recorded_only_when_a_signal_is_emitted() -> None:
    ds = DetectorMarketState()
    none, ds = evaluate(
        state("100", "99.5", "99.9"), ds, TSLA_SPEC, PLAIN, 0.0, max_notional=BIG_CAP
    )  # 10 bps: no signal
    assert none is None and ds.last_buy_oracle is None
    later, ds = evaluate(
        state("100", "99.5", "99.7"), ds, TSLA_SPEC, PLAIN, 0.1, max_notional=BIG_CAP
    )  # same oracle, now 30 bps
    assert later is not None


# ---------------------------------------------------------------------------------------------
# Oracle direction


def test_tracker_counts_moves_of_at_least_the_minimum() -> None:
    t = OracleTracker()
    t = t.observe(D("100.00"), 0.0, D(2))
    assert t.consecutive(True, 0.0, 10) == 0
    t = t.observe(D("100.05"), 1.0, D(2))  # +5 bps
    t = t.observe(D("100.10"), 2.0, D(2))  # +5 bps
    assert t.consecutive(True, 2.0, 10) == 2
    assert t.consecutive(False, 2.0, 10) == 0
    t = t.observe(D("100.11"), 3.0, D(2))  # +1 bps: below the minimum, counts unchanged
    assert t.consecutive(True, 3.0, 10) == 2
    t = t.observe(D("100.05"), 4.0, D(2))  # −6 bps: the rising run is over
    assert t.consecutive(True, 4.0, 10) == 0
    assert t.consecutive(False, 4.0, 10) == 1


def test_tracker_slow_drift_never_counts() -> None:
    t = OracleTracker().observe(D(100), 0.0, D(2))
    px = D(100)
    for i in range(1, 11):
        px += D("0.01")  # +1 bps each vs the previous value; +10 bps in total
        t = t.observe(px, float(i), D(2))
    assert t.consecutive(True, 10.0, 60) == 0


def test_tracker_window_forgets_old_moves() -> None:
    t = OracleTracker().observe(D(100), 0.0, D(2))
    t = t.observe(D("100.05"), 1.0, D(2), window_secs=10)
    t = t.observe(D("100.10"), 8.0, D(2), window_secs=10)
    assert t.consecutive(True, 8.0, 10) == 2
    assert t.consecutive(True, 11.5, 10) == 1  # the move at t=1 is 10.5 s old
    assert t.consecutive(True, 18.5, 10) == 0
    assert t.consecutive(True, 18.5, 0) == 2  # window 0 = no window


def feed(seq: list[tuple[float, str]], params: DetectorParams, ds: DetectorMarketState | None = None):
    """Evaluate a sequence of oracle values on a quiet book (no edge) to build up direction state."""
    ds = ds or DetectorMarketState()
    for t, oracle in seq:
        _, ds = evaluate(
            state(oracle, "90", "110", changed_at=t), ds, TSLA_SPEC, params, t, max_notional=BIG_CAP
        )
    return ds


DIRECTIONAL = attrs.evolve(PLAIN, oracle_direction_filter=True, min_consecutive_oracle_moves=2)


def test_buy_needs_two_rising_moves_within_the_window() -> None:
    ds = feed([(0.0, "99.90"), (1.0, "99.95")], DIRECTIONAL)  # one rise of 5 bps
    signal, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=2.0), ds, TSLA_SPEC, DIRECTIONAL, 2.0, max_notional=BIG_CAP
    )
    assert signal is not None and signal.side is Side.BUY  # second rise happened in this update

    ds = feed([(0.0, "99.95")], DIRECTIONAL)  # only one rise once 100.00 arrives
    signal, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=2.0), ds, TSLA_SPEC, DIRECTIONAL, 2.0, max_notional=BIG_CAP
    )
    assert signal is None


def test_rises_older_than_the_window_do_not_count() -> None:
    ds = feed([(0.0, "99.90"), (1.0, "99.95")], DIRECTIONAL)
    signal, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=12.0),
        ds,
        TSLA_SPEC,
        DIRECTIONAL,
        12.0,
        max_notional=BIG_CAP,
    )
    assert signal is None  # the rise at t=1 is 11 s old with a 10 s window


def test_sell_needs_falling_moves_and_buy_is_blocked_by_them() -> None:
    ds = feed([(0.0, "100.10"), (1.0, "100.05")], DIRECTIONAL)
    sell, _ = evaluate(
        state("100.00", "100.3", "100.5", changed_at=2.0),
        ds,
        TSLA_SPEC,
        DIRECTIONAL,
        2.0,
        max_notional=BIG_CAP,
    )
    assert sell is not None and sell.side is Side.SELL
    buy, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=2.0), ds, TSLA_SPEC, DIRECTIONAL, 2.0, max_notional=BIG_CAP
    )
    assert buy is None  # the oracle is falling: an ask below it is not a stale ask


def test_an_opposite_move_resets_the_run() -> None:
    ds = feed([(0.0, "99.80"), (1.0, "99.85"), (2.0, "99.90"), (3.0, "99.80")], DIRECTIONAL)
    signal, _ = evaluate(
        state("99.85", "99.5", "99.55", changed_at=4.0), ds, TSLA_SPEC, DIRECTIONAL, 4.0, max_notional=BIG_CAP
    )
    assert signal is None  # one rise since the fall


def test_direction_filter_with_zero_min_moves_still_needs_one_rise() -> None:
    params = attrs.evolve(DIRECTIONAL, min_consecutive_oracle_moves=0)
    assert (
        evaluate(
            state("100", "99.5", "99.7"), DetectorMarketState(), TSLA_SPEC, params, 0.0, max_notional=BIG_CAP
        )[0]
        is None
    )
    ds = feed([(0.0, "99.90")], params)
    signal, _ = evaluate(
        state("100", "99.5", "99.7", changed_at=1.0), ds, TSLA_SPEC, params, 1.0, max_notional=BIG_CAP
    )
    assert signal is not None


# ---------------------------------------------------------------------------------------------
# Sizing (§3.6)


def test_liquidity_factor_interpolates() -> None:
    p = DetectorParams()
    assert liquidity_factor(D(500), p) == 0
    assert liquidity_factor(D(400), p) == 0
    assert liquidity_factor(D(2750), p) == D("0.5")  # (2750 − 500) / (5000 − 500)
    assert liquidity_factor(D(5000), p) == 1
    assert liquidity_factor(D(9000), p) == 1


def test_alpha_size_scaled_by_liquidity() -> None:
    # book 27.5 @ 100 = $2750 ⇒ LF 0.5; 0.10 × 0.5 × 27.5 = 1.375 ⇒ floored to 1.37
    assert size_for(D(100), D("27.5"), D(100), TSLA_SPEC, PLAIN, BIG_CAP) == D("1.37")
    # book 100 @ 100 = $10000 ⇒ LF 1; 0.10 × 100 = 10
    assert size_for(D(100), D(100), D(100), TSLA_SPEC, PLAIN, BIG_CAP) == D(10)


def test_size_capped_at_99_percent_of_max_notional_over_mid() -> None:
    # alpha size 10 (as above) but 50 × 0.99 / 99.6 = 0.49698… ⇒ 0.49
    assert size_for(D("99.7"), D(100), D("99.6"), TSLA_SPEC, PLAIN, D(50)) == D("0.49")


def test_no_liquidity_no_size() -> None:
    assert size_for(D(100), D(5), D(100), TSLA_SPEC, PLAIN, BIG_CAP) == 0  # $500 is not above the minimum
    assert check(state("100", "99.5", "99.7", ask_sz="5")) is None  # 99.7 × 5 = $498.5


def test_small_size_raised_to_min_order_notional() -> None:
    # book 5.1 @ 100 = $510 ⇒ LF 10/4500; alpha size 0.00113 < 11 / 100 = 0.11 ⇒ 0.11
    assert size_for(D(100), D("5.1"), D(100), TSLA_SPEC, PLAIN, BIG_CAP) == D("0.11")


def test_min_order_boost_never_exceeds_the_book() -> None:
    params = attrs.evolve(PLAIN, min_order_notional=D(600))
    # book 5.5 @ 100 = $550; the boost would want 6, the book shows 5.5
    assert size_for(D(100), D("5.5"), D(100), TSLA_SPEC, params, BIG_CAP) == D("5.5")


def test_cap_wins_over_min_order_boost() -> None:
    # boost to 0.11, cap 10 × 0.99 / 100 = 0.099 ⇒ 0.09
    assert size_for(D(100), D("5.1"), D(100), TSLA_SPEC, PLAIN, D(10)) == D("0.09")


def test_size_below_one_lot_floors_to_zero_and_gives_no_signal() -> None:
    """A size under the market's lot must not become a zero-size order."""
    ms = state("1010", "999", "1000", ask_sz="0.505", market=PLATINUM)
    # a $5 cap at ~1000: 5 × 0.99 / 999.5 = 0.00495… ⇒ below the 0.01 lot of szDecimals 2 ⇒ 0
    coarse = MarketSpec(PLATINUM, sz_decimals=2)
    assert size_for(D(1000), D("0.505"), D("999.5"), coarse, PLAIN, D(5)) == 0
    assert check(ms, PLAIN, coarse, cap=D(5)) is None
    # with the $11 minimum the order is 11 / 999.5 = 0.011005… ⇒ 0.011 (szDecimals 4)
    signal = check(ms, PLAIN, PLATINUM_SPEC)
    assert signal is not None and signal.suggested_size == D("0.011")
    # with the wrong szDecimals (2) the same order is 0.01
    assert check(ms, PLAIN, MarketSpec(PLATINUM, sz_decimals=2)).suggested_size == D("0.01")  # type: ignore[union-attr]


def test_signal_size_is_on_the_lot() -> None:
    signal = check(state("100.00", "99.50", "99.70"), cap=D(50))
    assert signal is not None
    # ask 30 @ 99.7 = $2991 ⇒ LF 0.5536, alpha 1.66; cap 50 × 0.99 / 99.6 = 0.49698 ⇒ 0.49
    assert signal.suggested_size == D("0.49")
    assert TSLA_SPEC.is_valid_size(signal.suggested_size)


# ---------------------------------------------------------------------------------------------
# Parameters


def test_params_accept_config_values() -> None:
    params = DetectorParams(taker_fee_bps=4.5, sizing_alpha=0.1, min_book_notional="500")  # type: ignore[arg-type]
    assert params.taker_fee_bps == D("4.5")
    assert params.sizing_alpha == D("0.1")
    assert params.min_book_notional == D(500)


def test_params_reject_bad_values_naming_the_key() -> None:
    with pytest.raises(ValueError, match="min_book_notional"):
        DetectorParams(min_book_notional=5000, normal_book_notional=500)
    with pytest.raises(ValueError, match="taker_fee_bps"):
        DetectorParams(taker_fee_bps=-1)
    with pytest.raises(ValueError, match="expected a number"):
        DetectorParams(slippage_bps="abc")
    with pytest.raises(ValueError, match=r"detector.min_order_notional: must be >= 10"):
        DetectorParams(min_order_notional=5)


def test_oracle_moves_seen_while_gated_still_count() -> None:
    """The task feeds blocked markets' oracles through observe_oracle; evaluate then sees the run."""
    ds = DetectorMarketState()
    for t, oracle in [(0.0, "99.90"), (1.0, "99.95")]:
        ds = observe_oracle(state(oracle, "90", "110", changed_at=t), ds, DIRECTIONAL, t)
    assert ds.oracle.consecutive(True, 1.0, 10) == 1
    again = observe_oracle(state("99.95", "90", "110", changed_at=1.0), ds, DIRECTIONAL, 1.5)
    assert again is ds  # same value: nothing new
    signal, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=2.0), ds, TSLA_SPEC, DIRECTIONAL, 2.0, max_notional=BIG_CAP
    )
    assert signal is not None


# ---------------------------------------------------------------------------------------------
# Properties


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=4)
sizes = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)


@settings(max_examples=300, deadline=None)
@given(
    book_px=prices,
    book_sz=sizes,
    mid_offset=st.decimals(min_value=Decimal("0.9"), max_value=Decimal("1.1"), places=3),
    sz_decimals=st.integers(min_value=0, max_value=5),
    cap=st.decimals(min_value=Decimal(1), max_value=Decimal(10_000), places=2),
    min_order=st.decimals(min_value=Decimal(10), max_value=Decimal(50), places=2),
)
def test_size_is_legal_bounded_by_book_and_cap(
    book_px: Decimal,
    book_sz: Decimal,
    mid_offset: Decimal,
    sz_decimals: int,
    cap: Decimal,
    min_order: Decimal,
) -> None:
    params = DetectorParams(min_order_notional=min_order)
    spec = MarketSpec(TSLA, sz_decimals=sz_decimals)
    mid = book_px * mid_offset
    size = size_for(book_px, book_sz, mid, spec, params, cap)
    assert size >= 0
    assert size <= book_sz  # never more than the book shows
    assert size * mid <= cap * Decimal("0.99")  # the notional cap always wins
    if size > 0:
        assert spec.is_valid_size(size)
        assert book_px * book_sz > params.min_book_notional  # liquidity factor was positive
    if book_px * book_sz <= params.min_book_notional:
        assert size == 0


@settings(max_examples=300, deadline=None)
@given(
    oracle=st.decimals(min_value=Decimal(1), max_value=Decimal(1000), places=2),
    bid_off=st.integers(min_value=-300, max_value=300),
    width=st.integers(min_value=1, max_value=300),
)
def test_any_signal_clears_its_threshold_on_the_right_side(oracle: Decimal, bid_off: int, width: int) -> None:
    bid = oracle * (1 + Decimal(bid_off) / 10_000)
    ask = bid * (1 + Decimal(width) / 10_000)
    ms = state(str(oracle), str(bid), str(ask), bid_sz="1000", ask_sz="1000")
    signal = check(ms)
    if signal is None:
        return
    assert signal.raw_edge_bps >= signal.threshold_bps == D(16)
    if signal.side is Side.BUY:
        assert signal.best_px == ask < oracle
    else:
        assert signal.best_px == bid > oracle
