"""Exchange events → the bot's own reports (`hip3.trading.reports`), at the edge of the trading layer.

The feed, the executor and the resync task call these; the tracker sees reports only.
"""

from __future__ import annotations

import logging

from hip3.core import Cloid
from hip3.hyperliquid.events import (
    ActionErr,
    ClearinghouseState,
    Fill,
    Filled,
    OrderError,
    OrderStatus,
    OrderStatusResult,
    OrderUpdate,
    OrderUpdates,
    PostError,
    Resting,
    StatusOther,
    StatusSuccess,
    UserFills,
)
from hip3.trading.reports import (
    AccountSnapshot,
    FillReport,
    OrderNotFound,
    OrderReport,
    PositionReport,
    PostFilled,
    PostOutcome,
    PostRefused,
    PostResting,
    PostUnknown,
    TradeId,
)

log = logging.getLogger(__name__)


def fill_report(fill: Fill) -> FillReport:
    return FillReport(
        trade_id=TradeId(fill.coin, fill.tid),
        cloid=fill.cloid,
        side=fill.side,
        px=fill.px,
        sz=fill.sz,
        fee=fill.fee,
        time_ms=fill.time,
        oid=fill.oid,
        closed_pnl=fill.closed_pnl,
    )


def fill_reports(fills: UserFills | list[Fill] | tuple[Fill, ...]) -> tuple[FillReport, ...]:
    """The fills of a userFills message; a snapshot (history, not news) yields none."""
    if isinstance(fills, UserFills):
        if fills.is_snapshot:
            return ()
        fills = fills.fills
    return tuple(fill_report(f) for f in fills)


def order_report(update: OrderUpdate) -> OrderReport | None:
    if update.cloid is None:
        return None  # not one of ours: the bot always sets a cloid
    return OrderReport(
        cloid=update.cloid,
        status=update.status,
        orig_sz=update.orig_sz,
        remaining_sz=update.sz,
        oid=update.oid,
    )


def order_reports(msg: OrderUpdates) -> tuple[OrderReport, ...]:
    return tuple(r for r in (order_report(u) for u in msg.updates) if r is not None)


def order_status_report(cloid: Cloid, status: OrderStatusResult) -> OrderReport | OrderNotFound | None:
    """An orderStatus answer for `cloid`; None when it lacks what a resolution needs."""
    if not status.known:
        return OrderNotFound(cloid)
    if status.status is None or status.orig_sz is None or status.sz is None:
        log.warning("orderStatus for %s lacks status/origSz/sz; order kept open: %r", cloid, status)
        return None
    return OrderReport(
        cloid=cloid, status=status.status, orig_sz=status.orig_sz, remaining_sz=status.sz, oid=status.oid
    )


def post_outcome(status: OrderStatus | ActionErr | PostError) -> PostOutcome:
    """The first order status of a post's answer (or the action's refusal) as a post outcome."""
    match status:
        case Filled(total_sz=total_sz, avg_px=avg_px, oid=oid):
            return PostFilled(total_sz=total_sz, avg_px=avg_px, oid=oid)
        case Resting(oid=oid):
            return PostResting(oid=oid)
        case OrderError(message=message) | ActionErr(message=message):
            return PostRefused(message)
        case PostError(message=message):
            # An error reply to a WS post mirrors an HTTP error status: the action may or may not
            # have reached the matching engine.
            return PostUnknown(f"post answered with an error: {message}")
        case StatusSuccess() | StatusOther():
            return PostUnknown(f"unexpected order status {status!r}")


def account_snapshot(state: ClearinghouseState) -> AccountSnapshot:
    positions = []
    for ap in state.positions:
        entry_px = ap.entry_px
        if (entry_px is None or entry_px <= 0) and ap.szi != 0:
            entry_px = abs(ap.position_value / ap.szi) if ap.position_value else None
        positions.append(PositionReport(coin=ap.coin, size=ap.szi, entry_px=entry_px))
    return AccountSnapshot(positions=tuple(positions), time_ms=state.time)
