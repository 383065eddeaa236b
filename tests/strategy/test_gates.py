"""Market gates: each one reachable and blocking, in order, failing closed; the EWMA stays clean."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from hip3.core import MarketKey
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import MarketCells, MarketState
from hip3.strategy.gates import GATE_ORDER, GateLog, GateParams, GateState, GateVerdict, evaluate_gates

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110001)
NOW = 100.0
#: Every gate on, including the two that are off by default (bbo age, mark-mid), so each is reachable.
P = GateParams(max_bbo_age_ms=2000, max_mark_mid_divergence_bps=50, time_regression_hold_secs=30)
DEFAULTS = GateParams()


def market(
    *,
    bid: str | None = "99.95",
    ask: str | None = "100.05",
    mark: str = "100",
    oi: str = "10",
    bbo_age: float | None = 0.5,
    ctx_age: float | None = 1.0,
    regressed_ago: float | None = None,
    regression_ms: int = 1000,
    time: int = 1,
) -> MarketState:
    book = Bbo(
        coin="xyz:TSLA",
        time=time,
        bid=BookLevel(D(bid), D(1), 1) if bid is not None else None,
        ask=BookLevel(D(ask), D(1), 1) if ask is not None else None,
    )
    context = AssetCtx(
        coin="xyz:TSLA", oracle_px=D(mark), mark_px=D(mark), mid_px=None, open_interest=D(oi), funding=D(0)
    )
    return MarketState(
        market=TSLA,
        bbo=book if bbo_age is not None else None,
        bbo_at=NOW - bbo_age if bbo_age is not None else None,
        ctx=context if ctx_age is not None else None,
        ctx_at=NOW - ctx_age if ctx_age is not None else None,
        time_regressed_at=NOW - regressed_ago if regressed_ago is not None else None,
        time_regression_ms=regression_ms,
    )


def gate(
    ms: MarketState,
    gs: GateState | None = None,
    params: GateParams = P,
    *,
    oi_cap: Decimal | None = None,
    halted: bool = False,
    params_changed: bool = False,
    now: float = NOW,
    session_block: str | None = None,
    max_edge_bps: Decimal | None = None,
    warming_up: str | None = None,
) -> tuple[GateVerdict, GateState]:
    return evaluate_gates(
        ms,
        gs or GateState(),
        params,
        oi_cap=oi_cap,
        halted=halted,
        params_changed=params_changed,
        now=now,
        session_block=session_block,
        max_edge_bps=max_edge_bps,
        warming_up=warming_up,
    )


def test_fresh_sane_market_passes() -> None:
    verdict, _ = gate(market())
    assert verdict == GateVerdict(ok=True)


# ---------------------------------------------------------------------------------------------
# 1. bbo_age


def test_no_bbo_blocks() -> None:
    verdict, _ = gate(market(bbo_age=None))
    assert not verdict.ok and verdict.gate == "bbo_age"


def test_stale_bbo_blocks_with_the_age_in_the_detail() -> None:
    verdict, _ = gate(market(bbo_age=2.5))
    assert verdict == GateVerdict(ok=False, gate="bbo_age", detail="2500 ms > 2000 ms")
    assert gate(market(bbo_age=2.0))[0].ok  # at the limit is fine


def test_bbo_age_off() -> None:
    assert gate(market(bbo_age=60.0), params=attrs.evolve(P, max_bbo_age_ms=0))[0].ok


# ---------------------------------------------------------------------------------------------
# 2. ctx_age


def test_no_ctx_blocks() -> None:
    verdict, _ = gate(market(ctx_age=None))
    assert not verdict.ok and verdict.gate == "ctx_age"


def test_stale_ctx_blocks() -> None:
    verdict, _ = gate(market(ctx_age=8.001))
    assert verdict.gate == "ctx_age" and verdict.detail == "8001 ms > 8000 ms"
    assert gate(market(ctx_age=7.9))[0].ok


def test_ctx_age_off() -> None:
    assert gate(market(ctx_age=600.0), params=attrs.evolve(P, max_ctx_age_ms=0))[0].ok


# ---------------------------------------------------------------------------------------------
# 3. time_regression


def test_time_regression_blocks_for_the_hold_period() -> None:
    verdict, _ = gate(market(regressed_ago=10.0))
    assert verdict.gate == "time_regression"
    assert gate(market(regressed_ago=30.0))[0].ok  # 30 s of monotonic data since
    assert gate(market(regressed_ago=10.0), params=attrs.evolve(P, time_regression_hold_secs=0))[0].ok


def test_time_regression_from_the_cells() -> None:
    cells = MarketCells([TSLA])
    ms = market()
    assert ms.bbo is not None and ms.ctx is not None
    cells.update_ctx(TSLA, ms.ctx, NOW)
    cells.update_bbo(TSLA, attrs.evolve(ms.bbo, time=2000), NOW)
    cells.update_bbo(TSLA, attrs.evolve(ms.bbo, time=1500), NOW + 1)  # exchange clock went back
    verdict, _ = gate(cells.get(TSLA), now=NOW + 1.5)
    assert verdict.gate == "time_regression"
    for t in range(2, 40):  # steady forward data
        cells.update_bbo(TSLA, attrs.evolve(ms.bbo, time=1500 + t), NOW + t)
        cells.update_ctx(TSLA, ms.ctx, NOW + t)
    assert gate(cells.get(TSLA), now=NOW + 39)[0].ok


# ---------------------------------------------------------------------------------------------
# 4. mark_mid


def test_mark_far_from_mid_blocks() -> None:
    # mid 100.6, mark 100: |100 − 100.6| / 100.6 × 10⁴ = 59.6 bps > 50
    verdict, _ = gate(market(bid="100.55", ask="100.65"))
    assert verdict.gate == "mark_mid"
    assert "59.6 bps > 50 bps" in verdict.detail
    # mid 100.4: 39.8 bps
    assert gate(market(bid="100.35", ask="100.45"))[0].ok


@pytest.mark.parametrize(("bid", "ask", "why"), [(None, "100", "no bid"), ("100", None, "no ask")])
def test_one_sided_book_blocks_at_mark_mid(bid: str | None, ask: str | None, why: str) -> None:
    verdict, _ = gate(market(bid=bid, ask=ask))
    assert verdict.gate == "mark_mid" and verdict.detail == why


def test_crossed_book_blocks_at_mark_mid() -> None:
    verdict, _ = gate(market(bid="100.1", ask="100.0"))
    assert verdict.gate == "mark_mid" and "crossed" in verdict.detail


def test_mark_mid_off_lets_divergence_through() -> None:
    assert gate(market(bid="101.95", ask="102.05"), params=attrs.evolve(P, max_mark_mid_divergence_bps=0))[
        0
    ].ok


def test_mark_mid_off_one_sided_book_still_blocks_and_is_not_sampled() -> None:
    params = attrs.evolve(P, max_mark_mid_divergence_bps=0)
    verdict, gs = gate(market(bid=None), params=params)
    assert verdict.gate == "spread_shock" and verdict.detail == "no bid"
    assert gs == GateState()  # never fed into the EWMA: a one-sided book has no mid to sample


# ---------------------------------------------------------------------------------------------
# 5. spread_shock


def warmed(spread_bid: str = "99.95", spread_ask: str = "100.05", n: int = 20) -> GateState:
    """n samples of the same spread, each a distinct book (received at a distinct time)."""
    gs = GateState()
    for i in range(n):
        ms = attrs.evolve(market(bid=spread_bid, ask=spread_ask), bbo_at=NOW - 1 + i * 0.01)
        verdict, gs = gate(ms, gs)
        assert verdict.ok
    return gs


def test_first_sample_seeds_the_ewma_and_then_it_averages() -> None:
    _, gs = gate(market())  # spread 0.1 / 100 = 10 bps
    assert gs.spread_ewma == D(10) and gs.samples == 1
    _, gs = gate(attrs.evolve(market(bid="99.9", ask="100.1"), bbo_at=NOW - 0.1), gs)  # 20 bps
    assert gs.spread_ewma == D("10.5")  # 0.05 × 20 + 0.95 × 10
    assert gs.samples == 2


def test_spread_shock_blocks_after_warmup() -> None:
    gs = warmed()  # EWMA 10 bps, 20 samples
    assert gs.spread_ewma == D(10) and gs.samples == 20
    # spread 0.31 / 100 = 31 bps > 3 × 10
    verdict, after = gate(market(bid="99.845", ask="100.155"), gs)
    assert verdict.gate == "spread_shock"
    assert "31.0 bps > 3 × average 10.0 bps" in verdict.detail
    assert after.samples == 21  # the shocked book still joins the average
    verdict, _ = gate(market(bid="99.855", ask="100.145"), gs)  # 29 bps
    assert verdict.ok


def test_no_spread_shock_before_min_samples() -> None:
    gs = warmed(n=19)
    assert gate(market(bid="99.5", ask="100.5"), gs)[0].ok  # 100 bps but only 19 samples


def test_spread_shock_off() -> None:
    gs = warmed()
    params = attrs.evolve(P, spread_shock_multiplier=0)
    assert gate(market(bid="99.5", ask="100.5"), gs, params)[0].ok


def test_stale_or_blocked_books_never_reach_the_ewma() -> None:
    gs = warmed()
    # a 1000 bps spread arriving with each earlier gate blocking
    for ms in (
        market(bid="95", ask="105", bbo_age=5.0),  # stale bbo
        market(bid="95", ask="105", ctx_age=20.0),  # stale ctx
        market(bid="95", ask="105", regressed_ago=1.0),  # time regression
        market(bid="95", ask="105", mark="110"),  # mark far from mid
    ):
        verdict, after = gate(ms, gs)
        assert not verdict.ok and verdict.gate != "spread_shock"
        assert after == gs


def test_the_same_book_is_sampled_once() -> None:
    ms = market()
    _, gs = gate(ms)
    _, again = gate(ms, gs)  # e.g. a ctx-only update re-evaluates the same book
    assert again.samples == 1


def test_a_shocked_book_stays_blocked_when_re_evaluated() -> None:
    gs = warmed()
    shocked = market(bid="99.5", ask="100.5")
    verdict, gs = gate(shocked, gs)
    assert verdict.gate == "spread_shock"
    verdict, _ = gate(attrs.evolve(shocked, ctx_at=NOW), gs)  # ctx update, same book
    assert verdict.gate == "spread_shock"


def test_one_ewma_per_market() -> None:
    wide_market_state = warmed("99.5", "100.5")  # a structurally wide market: 100 bps
    tight_market_state = warmed()  # 10 bps
    # 90 bps is normal for the wide market and a shock for the tight one
    assert gate(market(bid="99.55", ask="100.45"), wide_market_state)[0].ok
    assert gate(market(bid="99.55", ask="100.45"), tight_market_state)[0].gate == "spread_shock"


# ---------------------------------------------------------------------------------------------
# 6. oi_cap, 7. param_change, 8. halt


def test_oi_cap() -> None:
    # OI 10 × mark 100 = $1000
    assert gate(market(), oi_cap=D(1000))[0].gate == "oi_cap"  # 1000 >= 0.95 × 1000
    assert gate(market(oi="9.5"), oi_cap=D(1000))[0].gate == "oi_cap"  # 950 >= 950
    assert gate(market(oi="9.4"), oi_cap=D(1000))[0].ok
    assert gate(market(), oi_cap=None)[0].ok  # unknown cap


def test_oi_cap_without_context_blocks() -> None:
    params = attrs.evolve(P, max_ctx_age_ms=0, max_mark_mid_divergence_bps=0)
    assert gate(market(ctx_age=None), params=params, oi_cap=D(10**6))[0].gate == "oi_cap"


def test_param_change_blocks() -> None:
    assert gate(market(), params_changed=True)[0].gate == "param_change"


def test_halt_blocks() -> None:
    assert gate(market(), halted=True)[0].gate == "halt"


def test_first_block_wins_in_order() -> None:
    verdict, _ = gate(
        market(bbo_age=5.0, ctx_age=20.0, regressed_ago=1.0, bid="90", ask="110"),
        oi_cap=D(1),
        halted=True,
        params_changed=True,
    )
    assert verdict.gate == GATE_ORDER[0]
    assert gate(market(), oi_cap=D(1), halted=True, params_changed=True)[0].gate == "oi_cap"
    assert gate(market(), halted=True, params_changed=True)[0].gate == "param_change"


def test_params_validation() -> None:
    with pytest.raises(ValueError, match="spread_ewma_alpha"):
        GateParams(spread_ewma_alpha=0)
    with pytest.raises(ValueError, match="max_bbo_age_ms"):
        GateParams(max_bbo_age_ms=-1)
    assert GateParams(max_mark_mid_divergence_bps=50.5).max_mark_mid_divergence_bps == D("50.5")


# ---------------------------------------------------------------------------------------------
# GateLog


def test_gate_log_reports_transitions_only() -> None:
    log = GateLog()
    ok = GateVerdict(ok=True)
    stale = GateVerdict(ok=False, gate="bbo_age", detail="2500 ms > 2000 ms")
    assert log.observe(TSLA, ok, 0.0) is None
    assert log.observe(TSLA, stale, 1.0) == "market xyz:TSLA blocked by bbo_age: 2500 ms > 2000 ms"
    for t in range(2, 100):
        assert log.observe(TSLA, attrs.evolve(stale, detail=f"{t} ms"), float(t)) is None
    assert log.blocked_markets() == {TSLA: "bbo_age"}
    line = log.observe(TSLA, GateVerdict(ok=False, gate="halt", detail="trading halted"), 100.0)
    assert line == "market xyz:TSLA now blocked by halt: trading halted"
    assert log.observe(TSLA, ok, 121.0) == "market xyz:TSLA unblocked after 120.0 s (was halt)"
    assert log.observe(TSLA, ok, 122.0) is None
    assert log.blocked_markets() == {}


# ---------------------------------------------------------------------------------------------
# The defaults: gates that catch broken data, not a lagging book


def test_defaults_let_a_lagging_book_through() -> None:
    # The book has not changed for 5 s and its mid is 60 bps under the mark (which follows the
    # oracle): exactly the dislocation the strategy trades, so the default gates let it pass.
    verdict, _ = gate(market(bid="99.35", ask="99.45", mark="100", bbo_age=5.0), params=DEFAULTS)
    assert verdict.ok, verdict
    assert DEFAULTS.max_bbo_age_ms == 0 and DEFAULTS.max_mark_mid_divergence_bps == 0


def test_defaults_still_refuse_broken_books() -> None:
    for ms, why in (
        (market(bid=None), "no bid"),
        (market(bid="100.1", ask="100"), "crossed"),
        (market(bbo_age=None), "no bbo"),
    ):
        verdict, _ = gate(ms, params=DEFAULTS)
        assert not verdict.ok and why in verdict.detail


def test_small_time_regression_is_ignored_and_a_real_one_holds_briefly() -> None:
    assert gate(market(regressed_ago=0.5, regression_ms=1), params=DEFAULTS)[0].ok  # 1 ms: noise
    held = gate(market(regressed_ago=0.5, regression_ms=5000), params=DEFAULTS)[0]
    assert held.gate == "time_regression"
    assert gate(market(regressed_ago=2.5, regression_ms=5000), params=DEFAULTS)[0].ok  # 2 s hold, not 30


def test_time_regression_magnitude_from_the_cells() -> None:
    cells = MarketCells([TSLA])
    ms = market()
    assert ms.bbo is not None
    cells.update_bbo(TSLA, attrs.evolve(ms.bbo, time=2000), NOW)
    cells.update_bbo(TSLA, attrs.evolve(ms.bbo, time=1999), NOW + 0.1)
    assert cells.get(TSLA).time_regression_ms == 1


def test_session_block() -> None:
    verdict, _ = gate(market(), params=DEFAULTS, session_block="xyz weekend")
    assert verdict.gate == "session" and "xyz weekend" in verdict.detail


def test_oracle_unchanged_for_too_long_blocks() -> None:
    stale = attrs.evolve(market(), oracle_changed_at=NOW - 61)
    verdict, _ = gate(stale, params=DEFAULTS)
    assert verdict.gate == "oracle_stale" and "61 s" in verdict.detail
    assert gate(attrs.evolve(market(), oracle_changed_at=NOW - 59), params=DEFAULTS)[0].ok
    assert gate(stale, params=attrs.evolve(DEFAULTS, max_oracle_unchanged_secs=0))[0].ok  # 0 = off


def test_oracle_sanity_blocks_by_default_and_per_market_ceiling() -> None:
    absurd = market(bid="99.99", ask="100", mark="150")  # oracle = mark = 150 over a book at 100
    verdict, _ = gate(absurd, params=DEFAULTS)
    assert verdict.gate == "oracle_sanity" and "oracle not trusted" in verdict.detail
    # A 30 bps lag passes the default ceiling but not a market's own 20 bps one.
    lag = market(bid="99.69", ask="99.70", mark="100")
    assert gate(lag, params=DEFAULTS)[0].ok
    assert gate(lag, params=DEFAULTS, max_edge_bps=D(20))[0].gate == "oracle_sanity"


def test_baseline_warm_up_blocks_last() -> None:
    verdict, _ = gate(market(), params=DEFAULTS, warming_up="measuring the book-oracle gap (3 of 20 s)")
    assert verdict.gate == "baseline" and "3 of 20 s" in verdict.detail
