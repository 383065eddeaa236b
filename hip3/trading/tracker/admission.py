"""Admission (DESIGN.md rule 2): may this order be reserved? A pure rule over the tracker's state.

Everything position-dependent is decided here, against positions *and* open reservations, so caps
hold including what is pending. The tracker records a granted reservation in the same step.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal

from attrs import frozen

from hip3.core import MarketKey, Size
from hip3.trading.messages import DenyReason, ReserveDecision, ReserveDenied, ReserveGranted, ReserveRequest
from hip3.trading.tracker.orders import TrackedOrder
from hip3.trading.tracker.positions import Position


@frozen
class Limits:
    max_notional_per_market: Decimal
    max_total_notional: Decimal
    max_concurrent_positions: int


@frozen
class Exposure:
    """What is held and pending, as admission needs it; built by the tracker for each request."""

    position: Position | None  # in the request's market
    open_here: Collection[TrackedOrder]  # open reservations in the request's market
    market_notional: Decimal  # position + pending entries in the request's market
    total_notional: Decimal  # position + pending entries in all markets
    busy_markets: int  # markets holding a position or an open entry


def decide(req: ReserveRequest, exposure: Exposure, limits: Limits) -> ReserveDecision:
    def deny(reason: DenyReason, detail: str = "") -> ReserveDenied:
        return ReserveDenied(cloid=req.cloid, reason=reason, detail=detail)

    market: MarketKey = req.market
    pos = exposure.position
    flattening = any(e.reduce_only for e in exposure.open_here)

    if req.reduce_only:
        if pos is None:
            return deny(DenyReason.NO_POSITION, f"no position in {market}")
        if pos.side is req.side:
            return deny(DenyReason.WRONG_SIDE, f"{req.side} would increase the {pos.side} position")
        if flattening:
            return deny(DenyReason.FLATTEN_IN_PROGRESS, f"a flatten of {market} is already open")
        return ReserveGranted(cloid=req.cloid, size=Size(min(req.size, abs(pos.size))))

    if flattening:
        return deny(DenyReason.FLATTEN_IN_PROGRESS, f"a flatten of {market} is open")
    if pos is not None:
        return deny(DenyReason.HAS_POSITION, f"{market} holds {pos.size}")
    if exposure.open_here:
        first = next(iter(exposure.open_here))
        return deny(DenyReason.PENDING_ORDER, f"order {first.cloid} is open in {market}")
    market_ntl = exposure.market_notional + req.notional
    if market_ntl > limits.max_notional_per_market:
        return deny(
            DenyReason.MARKET_NOTIONAL_CAP,
            f"{market} notional incl. pending {market_ntl} > {limits.max_notional_per_market}",
        )
    total_ntl = exposure.total_notional + req.notional
    if total_ntl > limits.max_total_notional:
        return deny(
            DenyReason.TOTAL_NOTIONAL_CAP,
            f"total notional incl. pending {total_ntl} > {limits.max_total_notional}",
        )
    if exposure.busy_markets + 1 > limits.max_concurrent_positions:
        return deny(
            DenyReason.MAX_CONCURRENT_POSITIONS,
            f"{exposure.busy_markets} markets busy, max {limits.max_concurrent_positions}",
        )
    return ReserveGranted(cloid=req.cloid, size=req.size)
