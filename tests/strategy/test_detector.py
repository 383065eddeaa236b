"""Detector math with hand-computed expectations: the round-trip threshold, the structural baseline,
sizing from the stale level, oracle direction and de-duplication."""

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
    observe_oracle,
    threshold_for,
    worst_price,
)
from hip3.strategy.entry import take_size

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110001)
TSLA_SPEC = MarketSpec(TSLA, sz_decimals=2)
PLATINUM = MarketKey("xyz", "PLATINUM", 110030)
PLATINUM_SPEC = MarketSpec(PLATINUM, sz_decimals=4)

#: Direction filter and baseline warm-up off, so single tests look at one rule at a time.
PLAIN = DetectorParams(oracle_direction_filter=False, baseline_warmup_secs=0, min_edge_bps=1)
#: The taker fee the tests' market pays (bps per fill).
FEE = D(2)
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
        ms,
        DetectorMarketState(),
        spec,
        params,
        now,
        max_notional=cap,
        taker_fee_bps=FEE,
        threshold_override=(overrides or {}).get(spec.key.coin),
    )[0]


# ---------------------------------------------------------------------------------------------
# Edges and thresholds


def test_edges_in_bps() -> None:
    buy, sell = edges(state("100", "99.5", "99.7"))
    assert buy == D(30)  # (100 − 99.7) / 100 × 10⁴
    assert sell == D(-50)  # (99.5 − 100) / 100 × 10⁴
    assert edges(state("100", None, "99.7")) == (None, None)
    assert edges(state("0", "99.5", "99.7")) == (None, None)


def test_threshold_is_the_round_trip_measured_on_the_market() -> None:
    # Book 99.98 / 100.02: half-spread 2 bps. Fees 2 in + 2 out, exit cost 2, margin 1 = 7 bps.
    th = threshold_for(state("100", "99.98", "100.02"), DetectorMarketState(), PLAIN, taker_fee_bps=FEE)
    assert (th.fees_bps, th.exit_cost_bps, th.margin_bps, th.total_bps) == (D(4), D(2), D(1), D(7))
    assert th.describe() == "fees 2+2 + exit cost 2 + margin 1 = 7 bps"
    # A half-spread under the floor counts as the floor; the session calendar scales the whole.
    tight = threshold_for(
        state("100", "99.999", "100.001"),
        DetectorMarketState(),
        PLAIN,
        taker_fee_bps=FEE,
        session_multiplier=D(2),
    )
    assert tight.exit_cost_bps == PLAIN.min_exit_cost_bps == D(1) and tight.total_bps == D(12)
    override = threshold_for(
        state("100", "99.98", "100.02"), DetectorMarketState(), PLAIN, taker_fee_bps=FEE, override_bps=D(25)
    )
    assert override.total_bps == D(25)


def test_exit_cost_is_the_measured_half_spread_once_caught_up() -> None:
    ds = DetectorMarketState()
    for t in range(10):  # a caught-up book, 4 bps half-spread, for 10 s
        ds = observe_oracle(state("100", "99.96", "100.04", changed_at=0.0), ds, PLAIN, float(t))
    # A dislocated book (oracle above the ask) is not sampled: the exit cost stays the caught-up one.
    ds = observe_oracle(state("100.5", "99.99", "100.01", changed_at=10.0), ds, PLAIN, 10.0)
    th = threshold_for(state("100.5", "99.99", "100.01"), ds, PLAIN, taker_fee_bps=FEE)
    assert th.exit_cost_bps == D(4)


def test_ask_30_bps_below_oracle_gives_a_buy_signal_with_its_threshold_parts() -> None:
    signal = check(state("100.00", "99.69", "99.70"), now=7.5)
    assert signal is not None
    assert signal.side is Side.BUY and signal.market == TSLA
    assert signal.raw_edge_bps == D(30) and signal.edge_bps == D(30)
    assert signal.threshold_detail.startswith("fees 2+2 + exit cost 1 + margin 1 = 6")
    assert signal.threshold_bps == D(6) and signal.net_edge_bps == D(24)
    assert signal.oracle_px == D(100)
    assert signal.best_px == D("99.70") and signal.best_sz == D(30)
    assert signal.created_at == 7.5
    # The IOC may not go past the price where the round trip (5 bps: fees and exit) still pays.
    assert signal.worst_px == D(100) * (1 - D(5) / 10_000)


def test_edge_below_the_round_trip_gives_nothing() -> None:
    assert check(state("100.00", "99.94", "99.95")) is None  # 5 bps < fees 4 + exit 1 + margin 1


def test_edge_exactly_at_threshold_signals() -> None:
    signal = check(state("100.00", "99.93", "99.94"))  # 6 bps = 2+2+1+1
    assert signal is not None and signal.edge_bps == D(6)


def test_growth_mode_fee_lets_a_small_dislocation_through() -> None:
    ms = state("100.00", "99.93", "99.94")  # 6 bps
    at_9 = evaluate(
        ms, DetectorMarketState(), TSLA_SPEC, PLAIN, 0.0, max_notional=BIG_CAP, taker_fee_bps=D(9)
    )
    at_09 = evaluate(
        ms, DetectorMarketState(), TSLA_SPEC, PLAIN, 0.0, max_notional=BIG_CAP, taker_fee_bps=D("0.9")
    )
    assert at_9[0] is None and at_09[0] is not None


def test_override_replaces_the_round_trip_threshold() -> None:
    assert check(state("100", "99.68", "99.7"), overrides={"TSLA": D(40)}) is None
    signal = check(state("100", "99.94", "99.95"), overrides={"TSLA": D(4)})
    assert signal is not None and signal.threshold_bps == D(4)
    assert signal.threshold_detail.startswith("override 4")


def test_bid_30_bps_above_oracle_gives_a_sell_signal() -> None:
    signal = check(state("100.00", "100.30", "100.31"))
    assert signal is not None
    assert signal.side is Side.SELL
    assert signal.raw_edge_bps == D(30)
    assert signal.best_px == D("100.30")
    assert signal.worst_px == D(100) * (1 + D(5) / 10_000)


# ---------------------------------------------------------------------------------------------
# The structural baseline


def test_a_persistent_gap_is_not_edge() -> None:
    # HOOD-like: the book sits 30 bps above the oracle all the time (bid +28, ask +32); the oracle
    # ticks between 100 and 100.001 (0.1 bp) every second.
    params = attrs.evolve(PLAIN, baseline_warmup_secs=20.0)
    ds = DetectorMarketState()
    after_warm_up = []
    for t in range(60):
        signal, ds = evaluate(
            state("100.001" if t % 2 else "100", "100.28", "100.32", changed_at=float(t)),
            ds,
            TSLA_SPEC,
            params,
            float(t),
            max_notional=BIG_CAP,
            taker_fee_bps=FEE,
        )
        if ds.warming_up(float(t), params) is None:
            after_warm_up.append(signal)
    assert len(after_warm_up) == 39 and all(s is None for s in after_warm_up)  # clock from t = 1
    assert ds.gap.value is not None and abs(ds.gap.value - D(30)) < D("0.1")
    # A real dislocation on top of the gap still trades, with the gap taken off the edge.
    signal, ds = evaluate(
        state("99.80", "100.28", "100.32", changed_at=60.0),
        ds,
        TSLA_SPEC,
        params,
        60.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
    )
    assert signal is not None and signal.side is Side.SELL
    assert round(signal.raw_edge_bps) == 48 and round(signal.structural_gap_bps) == 30
    assert round(signal.edge_bps) == 18


def test_without_the_baseline_the_gap_would_trade() -> None:
    # The same book with the baseline's warm-up off and nothing measured yet: a 28 bps "edge".
    signal = check(state("100", "100.28", "100.32"))
    assert signal is not None and signal.side is Side.SELL


def test_entries_wait_for_the_baseline_to_warm_up() -> None:
    params = attrs.evolve(PLAIN, baseline_warmup_secs=20.0)
    ds = observe_oracle(state("100", "99.98", "100.02"), DetectorMarketState(), params, 0.0)
    # The first oracle seen gives nothing to compare the book with; the first update starts the
    # clock. Until then the log must not say "0 of 20 s" for ever (a market whose oracle does not
    # move looks stuck at the start of a countdown): it says what it waits for.
    assert ds.warming_up(30.0, params) == (
        "measuring the book-oracle gap: waiting for the oracle to change (no sample yet; 20 s after the first)"
    )
    ds = observe_oracle(state("100.01", "99.98", "100.02"), ds, params, 0.0)
    assert ds.warming_up(5.0, params) == "measuring the book-oracle gap (1 of 3 samples; 5 of 20 s)"
    for t in (1.0, 2.0):  # two more oracle updates: enough samples, the clock still runs
        ds = observe_oracle(state(str(D("100.01") + D(t) / 1000), "99.98", "100.02"), ds, params, t)
    assert ds.warming_up(5.0, params) == "measuring the book-oracle gap (5 of 20 s)"
    assert ds.warming_up(20.0, params) is None
    assert ds.warming_up(5.0, PLAIN) is None  # 0 = off


def test_worst_price_adds_the_structural_gap() -> None:
    assert worst_price(Side.SELL, D(100), D(5), D(30)) == D("100.35")
    assert worst_price(Side.BUY, D(100), D(5), D(30)) == D("99.95")  # a gap above does not help a buy
    assert worst_price(Side.BUY, D(100), D(5), D(-30)) == D("99.65")


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
    ms = state("100", "99.0", "99.5")  # spread 0.5 / 99.25 × 10⁴ ≈ 50.4 bps, buy edge 50
    assert check(ms, attrs.evolve(PLAIN, max_entry_spread_bps=40)) is None
    assert check(ms, attrs.evolve(PLAIN, max_entry_spread_bps=80)) is not None
    assert check(ms, attrs.evolve(PLAIN, max_entry_spread_bps=0)) is not None  # 0 = off


# ---------------------------------------------------------------------------------------------
# Dedup


def test_one_signal_per_side_and_oracle_value() -> None:
    ds = DetectorMarketState()
    first, ds = evaluate(
        state("100", "99.5", "99.7"), ds, TSLA_SPEC, PLAIN, 0.0, max_notional=BIG_CAP, taker_fee_bps=FEE
    )
    assert first is not None
    again, ds = evaluate(
        state("100", "99.5", "99.6"), ds, TSLA_SPEC, PLAIN, 0.1, max_notional=BIG_CAP, taker_fee_bps=FEE
    )  # same oracle, bigger edge
    assert again is None
    sell, ds = evaluate(
        state("100", "100.3", "100.5"), ds, TSLA_SPEC, PLAIN, 0.2, max_notional=BIG_CAP, taker_fee_bps=FEE
    )  # other side: own dedup
    assert sell is not None and sell.side is Side.SELL
    moved, ds = evaluate(
        state("100.01", "99.5", "99.7"), ds, TSLA_SPEC, PLAIN, 0.3, max_notional=BIG_CAP, taker_fee_bps=FEE
    )  # new oracle value
    assert moved is not None and moved.side is Side.BUY


def test_dedup_off_repeats() -> None:
    params = attrs.evolve(PLAIN, signal_dedup=False)
    ds = DetectorMarketState()
    first, ds = evaluate(
        state("100", "99.5", "99.7"), ds, TSLA_SPEC, params, 0.0, max_notional=BIG_CAP, taker_fee_bps=FEE
    )
    again, ds = evaluate(
        state("100", "99.5", "99.7"), ds, TSLA_SPEC, params, 0.1, max_notional=BIG_CAP, taker_fee_bps=FEE
    )
    assert first is not None and again is not None


def test_dedup_is_recorded_only_when_a_signal_is_emitted() -> None:
    ds = DetectorMarketState()
    none, ds = evaluate(
        state("100", "99.5", "99.9"), ds, TSLA_SPEC, PLAIN, 0.0, max_notional=BIG_CAP, taker_fee_bps=FEE
    )  # 10 bps: no signal
    assert none is None and ds.last_buy_oracle is None
    later, ds = evaluate(
        state("100", "99.5", "99.7"), ds, TSLA_SPEC, PLAIN, 0.1, max_notional=BIG_CAP, taker_fee_bps=FEE
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
        quiet = D(oracle)  # a caught-up book around it: 2 bps half-spread
        _, ds = evaluate(
            state(oracle, str(quiet - D("0.02")), str(quiet + D("0.02")), changed_at=t),
            ds,
            TSLA_SPEC,
            params,
            t,
            max_notional=BIG_CAP,
            taker_fee_bps=FEE,
        )
    return ds


DIRECTIONAL = attrs.evolve(PLAIN, oracle_direction_filter=True, min_consecutive_oracle_moves=2)


def test_buy_needs_two_rising_moves_within_the_window() -> None:
    ds = feed([(0.0, "99.90"), (1.0, "99.95")], DIRECTIONAL)  # one rise of 5 bps
    signal, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=2.0),
        ds,
        TSLA_SPEC,
        DIRECTIONAL,
        2.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
    )
    assert signal is not None and signal.side is Side.BUY  # second rise happened in this update

    ds = feed([(0.0, "99.95")], DIRECTIONAL)  # only one rise once 100.00 arrives
    signal, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=2.0),
        ds,
        TSLA_SPEC,
        DIRECTIONAL,
        2.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
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
        taker_fee_bps=FEE,
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
        taker_fee_bps=FEE,
    )
    assert sell is not None and sell.side is Side.SELL
    buy, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=2.0),
        ds,
        TSLA_SPEC,
        DIRECTIONAL,
        2.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
    )
    assert buy is None  # the oracle is falling: an ask below it is not a stale ask


def test_an_opposite_move_resets_the_run() -> None:
    ds = feed([(0.0, "99.80"), (1.0, "99.85"), (2.0, "99.90"), (3.0, "99.80")], DIRECTIONAL)
    signal, _ = evaluate(
        state("99.85", "99.5", "99.55", changed_at=4.0),
        ds,
        TSLA_SPEC,
        DIRECTIONAL,
        4.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
    )
    assert signal is None  # one rise since the fall


def test_direction_filter_with_zero_min_moves_still_needs_one_rise() -> None:
    params = attrs.evolve(DIRECTIONAL, min_consecutive_oracle_moves=0)
    assert (
        evaluate(
            state("100", "99.5", "99.7"),
            DetectorMarketState(),
            TSLA_SPEC,
            params,
            0.0,
            max_notional=BIG_CAP,
            taker_fee_bps=FEE,
        )[0]
        is None
    )
    ds = feed([(0.0, "99.90")], params)
    signal, _ = evaluate(
        state("100", "99.5", "99.7", changed_at=1.0),
        ds,
        TSLA_SPEC,
        params,
        1.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
    )
    assert signal is not None


# ---------------------------------------------------------------------------------------------
# Sizing: the stale level, up to the cap


def test_signal_takes_the_whole_stale_level() -> None:
    # A $199 level (2 @ 99.7) under a $100 cap: 100 × 0.99 / 99.7 = 0.99297 ⇒ 0.99 (lot 0.01).
    capped = check(state("100", "99.68", "99.70", ask_sz="2"), cap=D(100))
    assert capped is not None and capped.suggested_size == D("0.99")
    # A $99.7 level under a $500 cap: the whole level, not a fraction of it.
    whole = check(state("100", "99.68", "99.70", ask_sz="1"), cap=D(500))
    assert whole is not None and whole.suggested_size == D(1)


def test_min_book_rule_looks_at_the_level_taken() -> None:
    # The ask level is $49.85 (< $50); the bid side is thick, which does not matter for a buy.
    assert check(state("100", "99.68", "99.70", ask_sz="0.5", bid_sz="1000")) is None
    assert check(state("100", "99.68", "99.70", ask_sz="0.51")) is not None


def test_size_below_one_lot_floors_to_zero_and_gives_no_signal() -> None:
    """A size under the market's lot must not become a zero-size order."""
    ms = state("1010", "999", "1000", ask_sz="0.505", market=PLATINUM)
    coarse = MarketSpec(PLATINUM, sz_decimals=2)
    assert check(ms, PLAIN, coarse, cap=D(5)) is None  # $5 at 1000 is under one 0.01 lot
    signal = check(ms, PLAIN, PLATINUM_SPEC, cap=D(100))
    assert signal is not None and signal.suggested_size == D("0.099")


# ---------------------------------------------------------------------------------------------
# Parameters


def test_params_accept_config_values() -> None:
    params = DetectorParams(min_edge_bps=4.5, taker_fee_bps="0.9", min_book_notional="500")  # type: ignore[arg-type]
    assert params.min_edge_bps == D("4.5") and params.taker_fee_bps == D("0.9")
    assert params.min_book_notional == D(500)
    assert DetectorParams().taker_fee_bps is None  # from the exchange


def test_params_reject_bad_values_naming_the_key() -> None:
    with pytest.raises(ValueError, match="taker_fee_bps"):
        DetectorParams(taker_fee_bps=-1)
    with pytest.raises(ValueError, match="expected a number"):
        DetectorParams(min_edge_bps="abc")
    with pytest.raises(ValueError, match=r"detector.min_order_notional: must be >= 10"):
        DetectorParams(min_order_notional=5)


def test_oracle_moves_seen_while_gated_still_count() -> None:
    """The task feeds blocked markets' oracles through observe_oracle; evaluate then sees the run."""
    ds = DetectorMarketState()
    for t, oracle in [(0.0, "99.90"), (1.0, "99.95")]:
        ds = observe_oracle(state(oracle, "99.5", "99.7", changed_at=t), ds, DIRECTIONAL, t)
    assert ds.oracle.consecutive(True, 1.0, 10) == 1
    again = observe_oracle(state("99.95", "99.5", "99.7", changed_at=1.0), ds, DIRECTIONAL, 1.5)
    assert again.oracle is ds.oracle  # same value: no new move
    signal, _ = evaluate(
        state("100.00", "99.5", "99.7", changed_at=2.0),
        ds,
        TSLA_SPEC,
        DIRECTIONAL,
        2.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
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
    sz_decimals=st.integers(min_value=0, max_value=5),
    cap=st.decimals(min_value=Decimal(1), max_value=Decimal(10_000), places=2),
    min_order=st.decimals(min_value=Decimal(10), max_value=Decimal(50), places=2),
    min_book=st.decimals(min_value=Decimal(0), max_value=Decimal(500), places=2),
)
def test_size_is_legal_bounded_by_level_and_cap(
    book_px: Decimal, book_sz: Decimal, sz_decimals: int, cap: Decimal, min_order: Decimal, min_book: Decimal
) -> None:
    spec = MarketSpec(TSLA, sz_decimals=sz_decimals)
    size = take_size(
        book_px, book_sz, spec, max_notional=cap, min_book_notional=min_book, min_order_notional=min_order
    )
    if isinstance(size, str):
        return
    assert spec.is_valid_size(size)
    assert size <= book_sz  # never more than the stale level shows
    assert size * book_px <= cap * Decimal("0.99")  # the notional cap always wins
    assert size * book_px >= min_order and book_px * book_sz >= min_book


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
    assert signal.edge_bps >= signal.threshold_bps
    if signal.side is Side.BUY:
        assert signal.best_px == ask < oracle
    else:
        assert signal.best_px == bid > oracle


def _trend(params: DetectorParams, *, gap_bps: int, seconds: int = 60) -> tuple[DetectorMarketState, float]:
    """A market whose oracle rises 10 bps every 3 s and whose book follows one update late (the lag
    the strategy trades), sitting `gap_bps` above the oracle it has caught up to. Looked at twice a second."""
    ds = DetectorMarketState()
    oracle, caught_up, changed_at = D(100), D(100), 0.0
    t = 0.0
    while t < seconds:
        if t > 0 and t % 3 == 0:
            caught_up, oracle, changed_at = oracle, oracle * D("1.001"), t
        mid = caught_up * (1 + D(gap_bps) / 10_000)
        ms = state(str(oracle), str(mid * D("0.9998")), str(mid * D("1.0002")), changed_at=changed_at)
        ds = observe_oracle(ms, ds, params, t)
        t += 0.5
    return ds, t


@pytest.mark.parametrize("gap_bps", [0, 30])
def test_a_lagging_book_in_a_trend_is_not_a_structural_gap(gap_bps: int) -> None:
    # The book sits 10 bps below the oracle most of the time only because it lags a rising oracle:
    # that lag is the edge, not structure. The baseline is where the book settles against the
    # oracle it has had time to follow: 0 here, 30 bps on a HOOD-like book.
    params = attrs.evolve(PLAIN, baseline_warmup_secs=5.0)
    ds, t = _trend(params, gap_bps=gap_bps)
    assert ds.gap.value is not None and abs(ds.gap.value - gap_bps) < D("0.5")
    # So the next stale ask of the trend trades at its full edge: 12 bps against a 7 bps round trip.
    oracle = D(100) * D("1.001") ** 20
    ask = oracle * (1 - D(12) / 10_000)
    signal, _ = evaluate(
        state(str(oracle), str(ask * D("0.9996")), str(ask), changed_at=t),
        ds,
        TSLA_SPEC,
        params,
        t,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
    )
    assert signal is not None and signal.side is Side.BUY and round(signal.edge_bps) == 12


def test_oracle_spikes_the_book_ignores_do_not_move_the_baseline() -> None:
    # A quiet market (book on the oracle) whose oracle spikes 30 bps every fourth update and comes
    # back at the next; the makers never chase a spike. Each return compares the book with the spike
    # it replaces (−30 bps), but the book's settled place is still the oracle.
    params = attrs.evolve(PLAIN, baseline_warmup_secs=5.0)
    ds = DetectorMarketState()
    for update in range(40):
        oracle = D("100.3") if update % 4 == 3 else D("100") + D(update % 2) / 1000
        ms = state(str(oracle), "99.98", "100.02", changed_at=3.0 * update)
        ds = observe_oracle(ms, ds, params, 3.0 * update)
    assert ds.gap.value is not None and abs(ds.gap.value) < D("0.5")


def watched_for_a_minute(bid: str, ask: str, params: DetectorParams) -> DetectorMarketState:
    """A book that stays at `bid` / `ask` for 60 s while the oracle ticks between 100 and 100.001."""
    ds = DetectorMarketState()
    for t in range(60):
        oracle = "100.001" if t % 2 else "100"
        ds = observe_oracle(state(oracle, bid, ask, changed_at=float(t)), ds, params, float(t))
    return ds


def test_after_a_stuck_oracle_the_baseline_warms_up_again_before_entries() -> None:
    # A quiet market (book on the oracle) measured for a minute; then the oracle feed sticks for
    # ten minutes (longer than the baseline window) while the book rises 80 bps, and the oracle
    # finally jumps to where the book already is. The first sample compares the book with the
    # stuck oracle (+80 bps): alone in the window it would make the baseline +80 and a book sitting
    # right on the oracle a 78 bps "buy edge". The gap must be measured again first.
    params = attrs.evolve(PLAIN, baseline_warmup_secs=5.0)
    ds = watched_for_a_minute("99.98", "100.02", params)
    assert ds.baseline_bps(60.0, params) is not None and abs(ds.baseline_bps(60.0, params) or 0) < 1
    for t in range(60, 660, 10):  # the book drifts up under an oracle that does not move
        ds = observe_oracle(state("100.001", "100.78", "100.82", changed_at=59.0), ds, params, float(t))
    signal, ds = evaluate(
        state("100.80", "100.78", "100.82", changed_at=660.0),
        ds,
        TSLA_SPEC,
        params,
        660.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
    )
    assert signal is None
    assert ds.warming_up(660.0, params) is not None


def test_the_warm_up_needs_three_samples_so_one_lagging_book_is_not_half_the_baseline() -> None:
    # The bot starts during a two-step oracle rise: at the second step the book still sits 40 bps
    # under the first (a lag sample, −40); at the next update it has caught up (0). Two samples in
    # 5 s: their median is their mean, −20 bps, and a bid 5 bps under the oracle would look like a
    # 15 bps sell edge. A median needs a third sample before one bad one stops counting.
    params = attrs.evolve(PLAIN, baseline_warmup_secs=5.0)
    ds = observe_oracle(state("100", "99.58", "99.62"), DetectorMarketState(), params, 0.0)
    ds = observe_oracle(state("100.3", "99.58", "99.62", changed_at=1.0), ds, params, 1.0)  # −40
    ds = observe_oracle(state("100.301", "100.28", "100.32", changed_at=4.0), ds, params, 4.0)  # 0
    assert ds.gap.value is not None and abs(ds.gap.value + 20) < 1
    assert ds.baseline_bps(6.0, params) is None
    assert ds.warming_up(6.0, params) == "measuring the book-oracle gap (2 of 3 samples; 5 of 5 s)"
    ds = observe_oracle(state("100.3", "100.28", "100.32", changed_at=7.0), ds, params, 7.0)  # 0
    assert ds.warming_up(7.0, params) is None
    baseline = ds.baseline_bps(7.0, params)
    assert baseline is not None and abs(baseline) < D("0.1")


def test_a_book_that_led_a_slow_oracle_is_not_bought_when_the_oracle_catches_up() -> None:
    # For a minute the book sits 30 bps above a slow oracle (it leads it: the baseline learns +30).
    # Then the oracle catches up in one step. The ask is now 2 bps above the oracle: "28 bps under
    # where the book has been sitting", but that place is gone; the gap is never added to an edge.
    params = attrs.evolve(PLAIN, baseline_warmup_secs=5.0)
    ds = watched_for_a_minute("100.28", "100.32", params)
    assert ds.gap.value is not None and abs(ds.gap.value - 30) < D("0.2")
    signal, _ = evaluate(
        state("100.30", "100.28", "100.32", changed_at=60.0),
        ds,
        TSLA_SPEC,
        params,
        60.0,
        max_notional=BIG_CAP,
        taker_fee_bps=FEE,
    )
    assert signal is None
