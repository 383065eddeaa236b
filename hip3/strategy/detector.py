"""The dislocation detector: pure functions from one market's latest data to an optional `Signal`.

A buy signal means the best ask sits below the oracle by more than the all-in cost threshold
(a stale ask after the oracle rose); a sell signal means the best bid sits above it. The math
follows reference/original-system.md §3 (edges §3.2, threshold §3.3, filters §3.5, size §3.6);
the seed's optional extras (adaptive threshold, baseline, confidence, sessions) are left out.

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

from hip3.core import MIN_OPEN_NOTIONAL, MarketSpec, Side, Size
from hip3.market.cells import BPS, MarketState, is_valid_bbo
from hip3.params import (
    Bps,
    CountOrOff,
    Fraction,
    Ge,
    NonNegativeUsd,
    Secs,
    Usd,
    Warn,
    must_be_lt,
    param,
    parameters,
)
from hip3.trading.messages import Signal

#: Size is capped a little under the notional limit: the tracker values orders at the limit
#: price and the executor may move it by the slippage bound.
NOTIONAL_CAP_BUFFER = Decimal("0.99")
#: No per-coin threshold overrides.
NO_OVERRIDES: Mapping[str, Decimal] = MappingProxyType({})
#: Bound on the oracle moves remembered per market (only the current run within the window counts).
MAX_REMEMBERED_MOVES = 64


@frozen(field_transformer=parameters("detector"))
class DetectorParams:
    """`[detector]`: the entry threshold, sizing and the oracle filters."""

    taker_fee_bps: Annotated[
        Decimal, Ge(1, "no fee tier of the exchange charges less than about 1.4 bps base taker")
    ] = param(Decimal("4.5"), "base-tier taker fee (bps) before the HIP-3 multiplier")
    # The exchange's multiplier is (scale + max(scale, 1)) x 0.1 in growth mode: 0.1 at the least, never 0.
    hip3_fee_multiplier: Annotated[
        Decimal,
        Ge(Decimal("0.1"), "the exchange's HIP-3 multiplier is 0.1 at the least (growth mode, scale 0)"),
    ] = param(Decimal(2), "HIP-3 markets charge this multiple of the base taker fee")
    slippage_bps: Bps = param(Decimal(2), "expected slippage, a threshold component")
    min_edge_bps: Annotated[
        Decimal, Ge(0), Warn(lambda v: v == 0, "no edge is required beyond fees and slippage")
    ] = param(Decimal(5), "edge required on top of fees and slippage")
    sizing_alpha: Fraction = param(Decimal("0.10"), "order size as a fraction of the touched level")
    min_book_notional: NonNegativeUsd = param(
        Decimal(500), "no signal at or below this touched notional (USD)"
    )
    normal_book_notional: Usd = param(Decimal(5000), "full size at or above this touched notional (USD)")
    min_order_notional: Annotated[Decimal, Ge(MIN_OPEN_NOTIONAL)] = param(
        Decimal(11), "smallest order sent (USD)"
    )
    oracle_direction_filter: bool = param(True, "buy only after the oracle rose (sell after it fell)")
    oracle_window_secs: Secs = param(10.0, "window for counting oracle moves")
    min_consecutive_oracle_moves: CountOrOff = param(2, "same-direction oracle moves required (0 = none)")
    min_oracle_move_bps: Bps = param(Decimal(2), "smaller oracle changes are not moves")
    signal_dedup: bool = param(True, "one signal per market, side and oracle price")
    max_entry_spread_bps: Bps = param(Decimal(0), "no entry when the spread is wider (0 = off)")

    @property
    def effective_taker_fee_bps(self) -> Decimal:
        """The taker fee a HIP-3 fill actually pays: base tier x the HIP-3 multiplier."""
        return self.taker_fee_bps * self.hip3_fee_multiplier

    def problems(self) -> list[str]:
        return list(
            must_be_lt(
                "detector.min_book_notional",
                self.min_book_notional,
                "detector.normal_book_notional",
                self.normal_book_notional,
            )
        )


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
    """Per-market detector memory: oracle direction and the oracle of the last signal per side (dedup)."""

    oracle: OracleTracker = OracleTracker()
    last_buy_oracle: Decimal | None = None
    last_sell_oracle: Decimal | None = None

    def last_signal_oracle(self, side: Side) -> Decimal | None:
        return self.last_buy_oracle if side is Side.BUY else self.last_sell_oracle

    def with_signal(self, side: Side, oracle: Decimal) -> DetectorMarketState:
        if side is Side.BUY:
            return attrs.evolve(self, last_buy_oracle=oracle)
        return attrs.evolve(self, last_sell_oracle=oracle)


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


def threshold_for(
    coin: str, params: DetectorParams, overrides: Mapping[str, Decimal] = NO_OVERRIDES
) -> Decimal:
    """All-in threshold (bps): the market's override if configured (`markets.threshold_bps`), else
    fee × HIP-3 multiplier + slippage + edge."""
    override = overrides.get(coin)
    if override is not None:
        return override
    return params.taker_fee_bps * params.hip3_fee_multiplier + params.slippage_bps + params.min_edge_bps


def liquidity_factor(book_notional: Decimal, params: DetectorParams) -> Decimal:
    """0 at or below min_book_notional, 1 at or above normal_book_notional, linear between."""
    if book_notional <= params.min_book_notional:
        return Decimal(0)
    if book_notional >= params.normal_book_notional:
        return Decimal(1)
    return (book_notional - params.min_book_notional) / (
        params.normal_book_notional - params.min_book_notional
    )


def size_for(
    book_px: Decimal,
    book_sz: Decimal,
    mid: Decimal,
    spec: MarketSpec,
    params: DetectorParams,
    max_notional: Decimal,
) -> Size:
    """Order size for taking `book_sz` at `book_px` (§3.6), floored to the lot; 0 means "don't trade".

    alpha share of the touched level, scaled by book liquidity; capped at the per-market notional
    (with a 1 % buffer); raised to the minimum order notional when below it, but never beyond what
    the book shows; the cap always wins.
    """
    if mid <= 0 or book_px <= 0 or book_sz <= 0:
        return Size(Decimal(0))
    lf = liquidity_factor(book_sz * book_px, params)
    if lf <= 0:
        return Size(Decimal(0))
    size = params.sizing_alpha * lf * book_sz
    min_size = params.min_order_notional / mid
    if size < min_size:
        size = min(min_size, book_sz)
    max_size = max_notional * NOTIONAL_CAP_BUFFER / mid
    size = min(size, max_size)
    return spec.round_size(size)


def _side_signal(
    side: Side,
    edge: Decimal,
    ms: MarketState,
    dstate: DetectorMarketState,
    spec: MarketSpec,
    params: DetectorParams,
    threshold: Decimal,
    max_notional: Decimal,
    now: float,
) -> Signal | None:
    assert ms.ctx is not None and ms.bbo is not None and ms.bbo.bid is not None and ms.bbo.ask is not None
    oracle = ms.ctx.oracle_px
    if edge <= 0 or edge < threshold:
        return None
    if params.signal_dedup and dstate.last_signal_oracle(side) == oracle:
        return None
    if params.oracle_direction_filter:
        needed = max(1, params.min_consecutive_oracle_moves)
        moves = dstate.oracle.consecutive(side is Side.BUY, now, params.oracle_window_secs)
        if moves < needed:
            return None
    level = ms.bbo.ask if side is Side.BUY else ms.bbo.bid
    mid = ms.mid
    assert mid is not None
    size = size_for(level.px, level.sz, mid, spec, params, max_notional)
    if size <= 0:
        return None
    return Signal(
        market=spec.key,
        side=side,
        raw_edge_bps=edge,
        threshold_bps=threshold,
        oracle_px=oracle,
        best_px=level.px,
        best_sz=level.sz,
        suggested_size=size,
        created_at=now,
    )


def observe_oracle(
    ms: MarketState, dstate: DetectorMarketState, params: DetectorParams, now: float
) -> DetectorMarketState:
    """Feed the market's current oracle to the direction tracker (`evaluate` does this itself).

    Call it for markets the gates block too, so oracle moves made while blocked still count once
    the market is unblocked. Seeing the same oracle value again changes nothing.
    """
    if ms.ctx is None or ms.ctx.oracle_px <= 0:
        return dstate
    at = ms.oracle_changed_at if ms.oracle_changed_at is not None else now
    tracker = dstate.oracle.observe(
        ms.ctx.oracle_px, at, params.min_oracle_move_bps, params.oracle_window_secs
    )
    return dstate if tracker is dstate.oracle else attrs.evolve(dstate, oracle=tracker)


def evaluate(
    ms: MarketState,
    dstate: DetectorMarketState,
    spec: MarketSpec,
    params: DetectorParams,
    now: float,
    *,
    max_notional: Decimal,
    threshold_overrides: Mapping[str, Decimal] = NO_OVERRIDES,
) -> tuple[Signal | None, DetectorMarketState]:
    """One look at one market: the signal it warrants now (if any) and the detector's new state.

    `max_notional` is the per-market cap (`position.max_notional_per_market`); `threshold_overrides`
    the per-coin thresholds of `markets.threshold_bps`.

    Buy is evaluated first; sell only when there is no buy signal.
    """
    dstate = observe_oracle(ms, dstate, params, now)
    buy_edge, sell_edge = edges(ms)
    if buy_edge is None or sell_edge is None:
        return None, dstate
    if params.max_entry_spread_bps > 0:
        spread = ms.spread_bps
        if spread is None or spread > params.max_entry_spread_bps:
            return None, dstate
    threshold = threshold_for(spec.key.coin, params, threshold_overrides)
    for side, edge in ((Side.BUY, buy_edge), (Side.SELL, sell_edge)):
        signal = _side_signal(side, edge, ms, dstate, spec, params, threshold, max_notional, now)
        if signal is not None:
            return signal, dstate.with_signal(side, signal.oracle_px)
    return None, dstate
