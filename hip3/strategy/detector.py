"""The dislocation detector: pure functions from one market's latest data to an optional `Signal`.

A buy signal means the best ask sits below the oracle by more than the round trip costs (a stale
ask after the oracle rose); a sell signal means the best bid sits above it. The round trip
(`hip3.strategy.entry.Threshold`): the market's taker fee in and out (from the exchange,
`hip3.strategy.fees`), the expected cost of getting out (the market's typical half-spread once
its book has caught up, measured here, with a floor) and a margin, `min_edge_bps`. Edges are
measured against the market's structural book–oracle gap (a recent median, `entry.RecentMedian`),
not against zero, so a book that always sits away from the oracle is never "edge".

Everything here is pure: state goes in and the new state comes out, so the rules are tested
without an event loop. The detector task (`hip3.strategy.scanner`) owns the per-market state.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated

import attrs
from attrs import frozen

from hip3.core import MIN_OPEN_NOTIONAL, MarketSpec, Side
from hip3.market.cells import BPS, MarketState, is_valid_bbo
from hip3.params import (
    Bps,
    CountOrOff,
    Ge,
    NonNegativeUsd,
    Secs,
    SecsOrOff,
    Warn,
    param,
    parameters,
)
from hip3.strategy.entry import (
    MIN_MEDIAN_SAMPLES,
    ONE,
    RecentMedian,
    SlowAverage,
    Threshold,
    brackets,
    edge_above_baseline,
    half_spread_bps,
    signed_gap_bps,
    take_size,
)
from hip3.trading.messages import Signal

#: No per-coin overrides.
NO_OVERRIDES: Mapping[str, Decimal] = MappingProxyType({})
#: Bound on the oracle moves remembered per market (only the current run within the window counts).
MAX_REMEMBERED_MOVES = 64


@frozen(field_transformer=parameters("detector"))
class DetectorParams:
    """`[detector]`: the round-trip entry rule, the structural baseline, sizing and the oracle filters.

    Fees are not set here: each market's taker rate comes from the exchange (`userFees` × the
    asset's HIP-3 multiplier); `taker_fee_bps` only overrides it.
    """

    min_edge_bps: Annotated[
        Decimal,
        Ge(0),
        Warn(lambda v: v == 0, "no margin is required beyond the round trip's fees and exit cost"),
    ] = param(
        Decimal("0.5"), "margin required above the round trip (taker fee in and out + expected exit cost)"
    )
    taker_fee_bps: Bps | None = param(
        None,
        "taker fee for every market (bps per fill), overriding the exchange's; unset = from the exchange",
    )
    min_exit_cost_bps: Bps = param(
        Decimal(1), "floor of the expected exit cost (each market's measured half-spread once caught up)"
    )
    exit_cost_secs: Secs = param(60.0, "time constant of each market's half-spread average (s)")
    baseline_secs: Secs = param(
        300.0, "window of each market's book-oracle gap median (s; a sample per oracle update)"
    )
    baseline_warmup_secs: SecsOrOff = param(
        5.0,
        "no entries in a market until its gap median has watched it this long (s; 0 = no baseline at all)",
    )
    min_book_notional: NonNegativeUsd = param(
        Decimal(50), "no entry when the level taken shows less than this (USD)"
    )
    min_order_notional: Annotated[Decimal, Ge(MIN_OPEN_NOTIONAL)] = param(
        Decimal(11), "smallest order sent (USD)"
    )
    oracle_direction_filter: bool = param(True, "buy only after the oracle rose (sell after it fell)")
    oracle_window_secs: Secs = param(10.0, "window for counting oracle moves")
    min_consecutive_oracle_moves: CountOrOff = param(1, "same-direction oracle moves required (0 = none)")
    min_oracle_move_bps: Bps = param(Decimal(2), "smaller oracle changes are not moves")
    signal_dedup: bool = param(True, "one signal per market, side and oracle price")
    max_entry_spread_bps: Bps = param(Decimal(0), "no entry when the spread is wider (0 = off)")


# ---------------------------------------------------------------------------------------------
# Oracle direction


@frozen
class OracleTracker:
    """Consecutive oracle moves in one direction, each at least `min_oracle_move_bps`.

    A move is measured against the previous oracle value seen. A move the other way starts a
    new run (resetting the other direction's count); a change smaller than the minimum leaves
    the counts alone but becomes the new reference, so a slow drift never counts. Only moves
    inside the time window count towards `consecutive`.
    """

    last_px: Decimal | None = None
    direction: int = 0  # +1 rising run, -1 falling run, 0 no move yet
    move_times: tuple[float, ...] = ()  # when each move of the current run happened, oldest first

    def observe(
        self, px: Decimal, at: float, min_move_bps: Decimal, window_secs: float = 0.0
    ) -> OracleTracker:
        if px <= 0:
            return self
        if self.last_px is None:
            return attrs.evolve(self, last_px=px)
        if px == self.last_px:
            return self
        move_bps = (px - self.last_px) / self.last_px * BPS
        if abs(move_bps) < min_move_bps:
            return attrs.evolve(self, last_px=px)
        direction = 1 if move_bps > 0 else -1
        times = (*self.move_times, at) if direction == self.direction else (at,)
        if window_secs > 0:
            times = tuple(t for t in times if at - t <= window_secs)
        return OracleTracker(last_px=px, direction=direction, move_times=times[-MAX_REMEMBERED_MOVES:])

    def consecutive(self, rising: bool, now: float, window_secs: float) -> int:
        """Moves in the current run in that direction that happened within the window before `now`."""
        if self.direction != (1 if rising else -1):
            return 0
        if window_secs <= 0:
            return len(self.move_times)
        return sum(1 for t in self.move_times if now - t <= window_secs)


@frozen
class DetectorMarketState:
    """Per-market detector memory: oracle direction, the oracle of the last signal per side (dedup),
    the recent median of the book–oracle gap (structural baseline) and the slow average of the
    caught-up half-spread."""

    oracle: OracleTracker = OracleTracker()
    last_buy_oracle: Decimal | None = None
    last_sell_oracle: Decimal | None = None
    #: signed (mid − oracle) / oracle in bps, sampled as each oracle update arrives against the oracle
    #: it replaces (where the book settled, not how far it lags)
    gap: RecentMedian = attrs.field(factory=RecentMedian)
    half_spread: SlowAverage = attrs.field(
        factory=SlowAverage
    )  # bps, sampled while the book brackets fair value

    def last_signal_oracle(self, side: Side) -> Decimal | None:
        return self.last_buy_oracle if side is Side.BUY else self.last_sell_oracle

    def with_signal(self, side: Side, oracle: Decimal) -> DetectorMarketState:
        if side is Side.BUY:
            return attrs.evolve(self, last_buy_oracle=oracle)
        return attrs.evolve(self, last_sell_oracle=oracle)

    def baseline_bps(self, now: float, params: DetectorParams) -> Decimal | None:
        """The structural gap once warmed up; None before (the scanner blocks entries meanwhile)
        and when the baseline is off (`baseline_warmup_secs = 0`: edges against the oracle alone)."""
        if params.baseline_warmup_secs <= 0 or not self.gap.warmed(now, params.baseline_warmup_secs):
            return None
        return self.gap.value

    def warming_up(self, now: float, params: DetectorParams) -> str | None:
        """Why entries must still wait for the baseline, or None."""
        if params.baseline_warmup_secs <= 0 or self.gap.warmed(now, params.baseline_warmup_secs):
            return None
        if self.gap.started_at is None:
            return (
                "measuring the book-oracle gap: waiting for the oracle to change (no sample yet; "
                f"{params.baseline_warmup_secs:g} s after the first)"
            )
        if len(self.gap.samples) < MIN_MEDIAN_SAMPLES:
            return (
                f"measuring the book-oracle gap ({len(self.gap.samples)} of {MIN_MEDIAN_SAMPLES} samples; "
                f"{min(self.gap.age(now), params.baseline_warmup_secs):.0f} of {params.baseline_warmup_secs:g} s)"
            )
        return f"measuring the book-oracle gap ({self.gap.age(now):.0f} of {params.baseline_warmup_secs:g} s)"


# ---------------------------------------------------------------------------------------------
# Math


def edges(ms: MarketState) -> tuple[Decimal | None, Decimal | None]:
    """(buy edge, sell edge) in bps against the oracle; None where the book or oracle is unusable.

    buy = (oracle − best ask) / oracle × 10⁴; sell = (best bid − oracle) / oracle × 10⁴.
    """
    if ms.ctx is None or ms.ctx.oracle_px <= 0 or not is_valid_bbo(ms.bbo):
        return None, None
    assert ms.bbo is not None and ms.bbo.bid is not None and ms.bbo.ask is not None
    oracle = ms.ctx.oracle_px
    return (oracle - ms.bbo.ask.px) / oracle * BPS, (ms.bbo.bid.px - oracle) / oracle * BPS


def expected_exit_cost_bps(ms: MarketState, dstate: DetectorMarketState, params: DetectorParams) -> Decimal:
    """The market's typical half-spread once caught up (the current one until measured), floored."""
    measured = dstate.half_spread.value
    if measured is None and ms.bbo is not None and is_valid_bbo(ms.bbo):
        assert ms.bbo.bid is not None and ms.bbo.ask is not None
        measured = half_spread_bps(ms.bbo.bid.px, ms.bbo.ask.px)
    return max(params.min_exit_cost_bps, measured or Decimal(0))


def threshold_for(
    ms: MarketState,
    dstate: DetectorMarketState,
    params: DetectorParams,
    *,
    taker_fee_bps: Decimal,
    override_bps: Decimal | None = None,
    session_multiplier: Decimal = ONE,
) -> Threshold:
    """The round-trip threshold of this market now, with its parts."""
    return Threshold(
        entry_fee_bps=taker_fee_bps,
        exit_fee_bps=taker_fee_bps,
        exit_cost_bps=expected_exit_cost_bps(ms, dstate, params),
        margin_bps=params.min_edge_bps,
        session_multiplier=session_multiplier,
        override_bps=override_bps,
    )


def worst_price(
    side: Side, oracle: Decimal, break_even_bps: Decimal, baseline_bps: Decimal | None
) -> Decimal:
    """The last price at which taking still pays the round trip (the IOC limit never goes past it):
    the break-even distance from the oracle, widened by a structural gap that works against the
    trade (never narrowed by one that would help it, as `edge_above_baseline`)."""
    structural = Decimal(0)
    if baseline_bps is not None:
        structural = max(Decimal(0), baseline_bps if side is Side.SELL else -baseline_bps)
    if side is Side.BUY:
        return oracle * (1 - (break_even_bps + structural) / BPS)
    return oracle * (1 + (break_even_bps + structural) / BPS)


def _side_signal(
    side: Side,
    raw_edge: Decimal,
    ms: MarketState,
    dstate: DetectorMarketState,
    spec: MarketSpec,
    params: DetectorParams,
    threshold: Threshold,
    max_notional: Decimal,
    now: float,
) -> Signal | None:
    assert ms.ctx is not None and ms.bbo is not None and ms.bbo.bid is not None and ms.bbo.ask is not None
    oracle = ms.ctx.oracle_px
    baseline = dstate.baseline_bps(now, params)
    edge = edge_above_baseline(side, raw_edge, baseline)
    if edge <= 0 or edge < threshold.total_bps:
        return None
    if params.signal_dedup and dstate.last_signal_oracle(side) == oracle:
        return None
    if params.oracle_direction_filter:
        needed = max(1, params.min_consecutive_oracle_moves)
        moves = dstate.oracle.consecutive(side is Side.BUY, now, params.oracle_window_secs)
        if moves < needed:
            return None
    level = ms.bbo.ask if side is Side.BUY else ms.bbo.bid
    size = take_size(
        level.px,
        level.sz,
        spec,
        max_notional=max_notional,
        min_book_notional=params.min_book_notional,
        min_order_notional=params.min_order_notional,
    )
    if isinstance(size, str):
        return None
    break_even = (
        threshold.override_bps * threshold.session_multiplier
        if threshold.override_bps
        else threshold.cost_bps
    )
    return Signal(
        market=spec.key,
        side=side,
        raw_edge_bps=raw_edge,
        threshold_bps=threshold.total_bps,
        oracle_px=oracle,
        best_px=level.px,
        best_sz=level.sz,
        suggested_size=size,
        created_at=now,
        threshold_detail=threshold.describe(),
        structural_gap_bps=raw_edge - edge,
        worst_px=worst_price(side, oracle, break_even, baseline),
    )


def observe_oracle(
    ms: MarketState,
    dstate: DetectorMarketState,
    params: DetectorParams,
    now: float,
    *,
    sample_gap: bool = True,
) -> DetectorMarketState:
    """Feed the market's current data to the detector's memory (`evaluate` does this itself).

    The oracle's direction, the book–oracle gap and the caught-up half-spread. Call it for markets
    the gates block too, so history made while blocked still counts once the market is unblocked.
    `sample_gap` False: the book–oracle gap means nothing now (an oracle session in which the
    oracle follows the book) and is not sampled. Seeing the same data again at the same instant
    changes nothing.
    """
    if ms.ctx is None or ms.ctx.oracle_px <= 0:
        return dstate
    oracle = ms.ctx.oracle_px
    replaced = dstate.oracle.last_px
    at = ms.oracle_changed_at if ms.oracle_changed_at is not None else now
    tracker = dstate.oracle.observe(oracle, at, params.min_oracle_move_bps, params.oracle_window_secs)
    gap, half = dstate.gap, dstate.half_spread
    mid = ms.mid
    if mid is not None:
        assert ms.bbo is not None and ms.bbo.bid is not None and ms.bbo.ask is not None
        if sample_gap and replaced is not None and replaced > 0 and oracle != replaced:
            # One sample per oracle update: the book against the oracle it had until now, which it
            # has had time to follow. Against the new one it would measure the lag (the edge) and
            # call a trend "structural"; makers have not reacted to the new value yet.
            gap = gap.observe(signed_gap_bps(replaced, mid), now, params.baseline_secs)
        fair = oracle * (1 + (gap.value or Decimal(0)) / BPS)
        if brackets(ms.bbo.bid.px, ms.bbo.ask.px, fair):
            half = half.observe(half_spread_bps(ms.bbo.bid.px, ms.bbo.ask.px), now, params.exit_cost_secs)
    if tracker is dstate.oracle and gap is dstate.gap and half is dstate.half_spread:
        return dstate
    return attrs.evolve(dstate, oracle=tracker, gap=gap, half_spread=half)


def evaluate(
    ms: MarketState,
    dstate: DetectorMarketState,
    spec: MarketSpec,
    params: DetectorParams,
    now: float,
    *,
    max_notional: Decimal,
    taker_fee_bps: Decimal,
    threshold_override: Decimal | None = None,
    session_multiplier: Decimal = ONE,
) -> tuple[Signal | None, DetectorMarketState]:
    """One look at one market: the signal it warrants now (if any) and the detector's new state.

    `max_notional` is the per-market cap (`position.max_notional_per_market`); `taker_fee_bps` the
    market's taker fee; `threshold_override` its all-in `markets.threshold_bps` if configured;
    `session_multiplier` what the session calendar scales the threshold by now.

    Buy is evaluated first; sell only when there is no buy signal.
    """
    dstate = observe_oracle(ms, dstate, params, now)
    if dstate.warming_up(now, params) is not None:
        # The gates check this before the update; this update may just have restarted the warm-up.
        return None, dstate
    buy_edge, sell_edge = edges(ms)
    if buy_edge is None or sell_edge is None:
        return None, dstate
    if params.max_entry_spread_bps > 0:
        spread = ms.spread_bps
        if spread is None or spread > params.max_entry_spread_bps:
            return None, dstate
    threshold = threshold_for(
        ms,
        dstate,
        params,
        taker_fee_bps=taker_fee_bps,
        override_bps=threshold_override,
        session_multiplier=session_multiplier,
    )
    for side, edge in ((Side.BUY, buy_edge), (Side.SELL, sell_edge)):
        signal = _side_signal(side, edge, ms, dstate, spec, params, threshold, max_notional, now)
        if signal is not None:
            return signal, dstate.with_signal(side, signal.oracle_px)
    return None, dstate
