"""Latest-value market data: one cell per market that the feed overwrites and the detector reads.

BBO and asset-context updates are states, not events (DESIGN.md "Market data flows as latest
values"): a reader that falls behind sees the newest book and oracle, never a queue of stale ones.
`MarketCells.wait_changed` hands the reader the set of markets changed since it last looked.

Times (`bbo_at`, `ctx_at`, …) are trio clock readings passed in by the caller; exchange
timestamps (`Bbo.time`, ms) are data only, kept to notice the exchange clock going backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Protocol

import attrs
import trio
from attrs import frozen

from hip3.core import MarketKey
from hip3.hyperliquid.events import AssetCtx, Bbo

BPS = Decimal(10_000)


@frozen
class MarketConditions:
    """Facts about a market that come from outside the feed (discovery, periodic checks).

    A latest value like the market data: `hip3.market.checks` publishes a new one with
    `MarketCells.publish_conditions` and is the only writer; the detector task reads it.
    """

    oi_cap: Decimal | None = None  # USD notional; None: unknown (the oi_cap gate passes)
    halted: bool = False
    params_changed: bool = False  # latched: parameters changed since discovery


NO_CONDITIONS = MarketConditions()


@frozen
class MarketState:
    """Everything known about one market's data right now; all fields None means "no data".

    `mid` and `spread_bps` are derived from `bbo` once per book update (`with_bbo`); built
    directly, they are computed from the given `bbo`. Change `bbo` only through `with_bbo`.
    """

    market: MarketKey
    bbo: Bbo | None = None
    bbo_at: float | None = None  # trio time the bbo was received
    ctx: AssetCtx | None = None
    ctx_at: float | None = None  # trio time the asset context was received
    oracle_changed_at: float | None = None  # trio time the oracle *value* last changed
    last_exchange_time: int | None = None  # Bbo.time (exchange ms) of the newest bbo
    time_regressed_at: float | None = None  # trio time a bbo's exchange time went backwards
    time_regression_ms: int = 0  # by how much it went backwards then (ms)
    updates: int = 0
    mid: Decimal | None = attrs.field(
        default=attrs.Factory(lambda self: mid_px(self.bbo), takes_self=True)
    )  # (bid + ask) / 2 of a valid book, else None
    spread_bps: Decimal | None = attrs.field(
        default=attrs.Factory(lambda self: spread_of(self.bbo, self.mid), takes_self=True)
    )  # (ask − bid) / mid × 10⁴ of a valid book, else None

    @property
    def oracle_px(self) -> Decimal | None:
        return self.ctx.oracle_px if self.ctx is not None else None


class MarketStateLike(Protocol):
    """What the executor and exits read of a market: the newest book and asset context."""

    @property
    def bbo(self) -> Bbo | None: ...

    @property
    def ctx(self) -> AssetCtx | None: ...


class MarketSource(Protocol):
    def get(self, market: MarketKey) -> MarketStateLike: ...


def is_valid_bbo(bbo: Bbo | None) -> bool:
    """A tradeable book: both sides present, positive prices and sizes, bid strictly below ask."""
    if bbo is None or bbo.bid is None or bbo.ask is None:
        return False
    bid, ask = bbo.bid, bbo.ask
    return bid.px > 0 and ask.px > 0 and bid.sz > 0 and ask.sz > 0 and bid.px < ask.px


def bbo_problem(bbo: Bbo | None) -> str | None:
    """Why a book is not tradeable (for gate details), or None when it is."""
    if bbo is None:
        return "no bbo"
    if bbo.bid is None and bbo.ask is None:
        return "empty book"
    if bbo.bid is None:
        return "no bid"
    if bbo.ask is None:
        return "no ask"
    if bbo.bid.px <= 0 or bbo.ask.px <= 0 or bbo.bid.sz <= 0 or bbo.ask.sz <= 0:
        return "non-positive price or size"
    if bbo.bid.px >= bbo.ask.px:
        return f"crossed book (bid {bbo.bid.px} >= ask {bbo.ask.px})"
    return None


def mid_px(bbo: Bbo | None) -> Decimal | None:
    """(bid + ask) / 2 of a valid book, else None."""
    if bbo is None or not is_valid_bbo(bbo):
        return None
    assert bbo.bid is not None and bbo.ask is not None
    return (bbo.bid.px + bbo.ask.px) / 2


def spread_bps(bbo: Bbo | None) -> Decimal | None:
    """(ask − bid) / mid × 10⁴ of a valid book, else None (never infinity: a one-sided book has none)."""
    return spread_of(bbo, mid_px(bbo))


def spread_of(bbo: Bbo | None, mid: Decimal | None) -> Decimal | None:
    if mid is None or bbo is None or bbo.bid is None or bbo.ask is None:
        return None
    return (bbo.ask.px - bbo.bid.px) / mid * BPS


def with_bbo(state: MarketState, bbo: Bbo, now: float) -> MarketState:
    """The state after receiving `bbo` at trio time `now` (pure)."""
    regressed_at, regression_ms = state.time_regressed_at, state.time_regression_ms
    if state.last_exchange_time is not None and bbo.time < state.last_exchange_time:
        regressed_at, regression_ms = now, state.last_exchange_time - bbo.time
    # The new (earlier) exchange time becomes the baseline: later data is judged monotonic against it.
    mid = mid_px(bbo)
    # Built field by field rather than with attrs.evolve: this runs for every message, and evolve's
    # introspection costs about as much again (tests/market/test_cells_update.py keeps the list whole).
    return MarketState(
        market=state.market,
        bbo=bbo,
        bbo_at=now,
        ctx=state.ctx,
        ctx_at=state.ctx_at,
        oracle_changed_at=state.oracle_changed_at,
        last_exchange_time=bbo.time,
        time_regressed_at=regressed_at,
        time_regression_ms=regression_ms,
        updates=state.updates + 1,
        mid=mid,
        spread_bps=spread_of(bbo, mid),
    )


def with_ctx(state: MarketState, ctx: AssetCtx, now: float) -> MarketState:
    """The state after receiving `ctx` at trio time `now` (pure)."""
    oracle_changed_at = state.oracle_changed_at
    if state.ctx is None or state.ctx.oracle_px != ctx.oracle_px:
        oracle_changed_at = now
    return MarketState(
        market=state.market,
        bbo=state.bbo,
        bbo_at=state.bbo_at,
        ctx=ctx,
        ctx_at=now,
        oracle_changed_at=oracle_changed_at,
        last_exchange_time=state.last_exchange_time,
        time_regressed_at=state.time_regressed_at,
        time_regression_ms=state.time_regression_ms,
        updates=state.updates + 1,
        mid=state.mid,
        spread_bps=state.spread_bps,
    )


class MarketCells:
    """The latest `MarketState` and `MarketConditions` per market, read by one detector task.

    The feed writes the market data, the market checks the conditions; each cell has that one
    writer. Writers never block and never queue: an update overwrites the cell and marks the
    market changed. `wait_changed` returns every market changed since the previous call (at once
    if there are any), so a slow reader sees only the newest state of each market.
    """

    def __init__(
        self,
        markets: Iterable[MarketKey] = (),
        conditions: Mapping[MarketKey, MarketConditions] | None = None,
    ) -> None:
        self._states: dict[MarketKey, MarketState] = {m: MarketState(m) for m in markets}
        self._conditions: dict[MarketKey, MarketConditions] = dict(conditions or {})
        self._changed: set[MarketKey] = set()
        self._wakeup = trio.Event()

    def update_bbo(self, market: MarketKey, bbo: Bbo, now: float) -> None:
        self._states[market] = with_bbo(self.get(market), bbo, now)
        self._mark_changed(market)

    def update_ctx(self, market: MarketKey, ctx: AssetCtx, now: float) -> None:
        self._states[market] = with_ctx(self.get(market), ctx, now)
        self._mark_changed(market)

    def get(self, market: MarketKey) -> MarketState:
        """The market's latest state; a market never updated reads as "no data"."""
        state = self._states.get(market)
        return state if state is not None else MarketState(market)

    def conditions(self, market: MarketKey) -> MarketConditions:
        """The market's latest conditions; none published reads as "no cap, trading, unchanged"."""
        return self._conditions.get(market, NO_CONDITIONS)

    def publish_conditions(self, market: MarketKey, conditions: MarketConditions) -> None:
        """Replace the market's conditions; a change marks the market changed so the gates see it."""
        if self._conditions.get(market) == conditions:
            return
        self._conditions[market] = conditions
        self._mark_changed(market)

    def snapshot(self) -> Mapping[MarketKey, MarketState]:
        """A read-only copy of every cell (the states themselves are immutable)."""
        return MappingProxyType(dict(self._states))

    async def wait_changed(self) -> set[MarketKey]:
        """Markets changed since the last call; parks until the next update if there are none."""
        if self._changed:
            await trio.lowlevel.checkpoint()  # a trio async function always checkpoints
        while not self._changed:
            await self._wakeup.wait()
        changed = self._changed
        self._changed = set()
        self._wakeup = trio.Event()
        return changed

    def _mark_changed(self, market: MarketKey) -> None:
        self._changed.add(market)
        self._wakeup.set()
