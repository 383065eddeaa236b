"""Pure order terms: lot-floored size and a limit price on the exchange grid, or a reason to drop.

Entries: price = best price moved by at most `max_slippage_bps` in the paying direction, rounded
*towards* the book (a buy rounds down, a sell up) so the slippage bound always holds.
Flattens: price = touch moved by `flatten_slippage_bps` in the paying direction, rounded *away*
from the book (a sell rounds down, a buy up) so the order stays marketable.
"""

from __future__ import annotations

import enum
from decimal import Decimal

from attrs import frozen

from hip3.core import MIN_OPEN_NOTIONAL, MarketSpec, Price, Side, Size
from hip3.hyperliquid.events import AssetCtx, Bbo

BPS = Decimal(10_000)


class DropReason(enum.Enum):
    """Why an order was never reserved or sent; counted in `ExecutorStats.dropped`."""

    HARD_STOP = "hard_stop"
    NOT_READY = "not_ready"
    SHUTTING_DOWN = "shutting_down"
    UNKNOWN_MARKET = "unknown_market"
    BAD_PRICE = "bad_price"
    SIZE_ROUNDS_TO_ZERO = "size_rounds_to_zero"
    UNDER_MIN_NOTIONAL = "under_min_notional"
    RATE_LIMITED = "rate_limited"
    FLATTEN_NO_POSITION = "flatten_no_position"
    FLATTEN_NO_PRICE = "flatten_no_price"
    FLATTEN_DISCONNECTED = "flatten_disconnected"


@frozen
class OrderTerms:
    side: Side
    size: Size
    limit_px: Price

    @property
    def notional(self) -> Decimal:
        return self.size * self.limit_px


def entry_terms(
    spec: MarketSpec,
    side: Side,
    best_px: Decimal,
    suggested_size: Decimal,
    max_slippage_bps: Decimal,
    worst_px: Decimal | None = None,
) -> OrderTerms | DropReason:
    """Terms of an opening IOC, or why it must not be sent (checked before reserving, so a size that
    rounds to zero never holds a reservation).

    `worst_px` (from the signal) is the last price at which the round trip still pays: the limit
    never goes past it, so a pulled stale quote is not replaced by a fill that loses.
    """
    if best_px <= 0:
        return DropReason.BAD_PRICE
    size = spec.round_size(suggested_size)
    if size <= 0:
        return DropReason.SIZE_ROUNDS_TO_ZERO
    slip = max_slippage_bps / BPS
    if side is Side.BUY:
        raw = best_px * (1 + slip)
        if worst_px is not None:
            raw = max(best_px, min(raw, worst_px))
        limit = spec.round_price(raw, up=False)
    else:
        raw = best_px * (1 - slip)
        if worst_px is not None:
            raw = min(best_px, max(raw, worst_px))
        limit = spec.round_price(raw, up=True)
    # The fill can happen anywhere between the touch and the limit: the smaller notional must pass.
    if size * min(limit, best_px) < MIN_OPEN_NOTIONAL:
        return DropReason.UNDER_MIN_NOTIONAL
    return OrderTerms(side=side, size=size, limit_px=limit)


def flatten_reference_px(close_side: Side, bbo: Bbo | None, ctx: AssetCtx | None) -> Decimal | None:
    """The touch we cross (bid to sell, ask to buy); mark, then oracle, when that side is empty."""
    if bbo is not None:
        level = bbo.bid if close_side is Side.SELL else bbo.ask
        if level is not None and level.px > 0:
            return level.px
    if ctx is not None:
        for px in (ctx.mark_px, ctx.oracle_px):
            if px > 0:
                return px
    return None


def flatten_terms(
    spec: MarketSpec,
    position_size: Decimal,
    bbo: Bbo | None,
    ctx: AssetCtx | None,
    flatten_slippage_bps: Decimal,
) -> OrderTerms | DropReason:
    """Terms of a reduce-only IOC closing a signed position (no minimum notional for closes)."""
    if position_size == 0:
        return DropReason.FLATTEN_NO_POSITION
    close_side = Side.SELL if position_size > 0 else Side.BUY
    size = spec.round_size(abs(position_size))
    if size <= 0:
        return DropReason.SIZE_ROUNDS_TO_ZERO
    ref = flatten_reference_px(close_side, bbo, ctx)
    if ref is None:
        return DropReason.FLATTEN_NO_PRICE
    slip = flatten_slippage_bps / BPS
    if close_side is Side.SELL:
        raw = ref * (1 - slip)
        if raw <= 0:
            return DropReason.FLATTEN_NO_PRICE
        limit = spec.round_price(raw, up=False)
        if limit <= 0:
            return DropReason.FLATTEN_NO_PRICE
    else:
        limit = spec.round_price(ref * (1 + slip), up=True)
    return OrderTerms(side=close_side, size=size, limit_px=limit)
