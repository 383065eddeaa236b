"""After a crash: find out what became of the orders the previous run may have had in flight.

The journal holds a row for every order written before it was sent (write-ahead). At startup,
after orphaned resting orders are cancelled and before positions are read from the exchange,
every recent order without a final outcome is looked up by its cloid (orderStatus), never sent
again: a final status settles it; "unknownOid" settles it as never executed once enough time
has passed since it was written that it can no longer be on its way. Orders that filled have
their fills fetched (userFillsByTime); the realized PnL and fees of those the journal does not
hold yet go to the hard stop's daily loss, on disk, and only then into the journal
(`count_then_journal`). Only then are positions adopted, so they include whatever those orders did.

If an order cannot be settled within the time allowed (the exchange does not answer), the start
fails (exit 1, systemd retries) rather than trading with an order of unknown fate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol

import attrs
import trio

from hip3.clock import wall_clock_ms
from hip3.hyperliquid.events import Fill, OrderStatusResult
from hip3.hyperliquid.fills_window import fetch_fills_window
from hip3.service.journal import LIVE_ORDER_STATUSES, Journal, SentOrder

log = logging.getLogger(__name__)

#: Orders written this long before the previous run's newest one were settled by that run (its
#: own resolution takes a minute at most) or show in the positions a restart adopts anyway.
IN_DOUBT_WINDOW_MS = 10 * 60_000
#: The fill query starts this long before the oldest order in doubt (exchange vs local clock).
FILL_WINDOW_MARGIN_MS = 60_000


class OrderLookup(Protocol):
    async def order_status(self, user: str, oid_or_cloid: int | str) -> OrderStatusResult: ...

    async def user_fills_by_time(self, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]: ...


class PnlSink(Protocol):
    def record_pnl(self, realized: Decimal, fees: Decimal, day: date, now: float | None = None) -> bool: ...

    def flush(self) -> None: ...


@attrs.frozen
class Recovered:
    in_doubt: int
    resolved: dict[str, str]  # cloid -> final status ("unknownOid": never executed)
    new_fills: list[Fill]
    # Orders whose fills could not all be looked up (userFillsByTime failed or had more pages than
    # allowed): their PnL may be missing from the daily loss.
    fills_unknown: tuple[str, ...] = ()


class RecoveryFailed(Exception):
    """Some orders in doubt could not be settled; the message names them."""


async def settle_orders_in_doubt(
    journal: Journal,
    info: OrderLookup,
    user: str,
    *,
    grace_ms: int,
    timeout_secs: float,
    poll_secs: float = 0.5,
    now_ms: Callable[[], int] = wall_clock_ms,
) -> Recovered:
    """Settle every order the journal has in doubt; raises `RecoveryFailed` past `timeout_secs`."""
    doubt = journal.orders_in_doubt(IN_DOUBT_WINDOW_MS)
    if not doubt:
        return Recovered(0, {}, [])
    log.warning(
        "%d orders of the previous run may have been in flight: %s",
        len(doubt),
        ", ".join(f"{o.cloid} ({o.market} {o.side} {o.size}, {o.reason})" for o in doubt),
    )
    open_ = {o.cloid: o for o in doubt}
    resolved: dict[str, str] = {}
    filled: list[SentOrder] = []
    with trio.move_on_after(timeout_secs):
        while open_:
            for cloid, order in list(open_.items()):
                status = await _status(info, user, cloid)
                if status is None:
                    continue
                final = _final_status(status, order, now_ms(), grace_ms)
                if final is None:
                    continue
                resolved[cloid] = final
                del open_[cloid]
                if (
                    status.known
                    and status.orig_sz is not None
                    and status.sz is not None
                    and status.orig_sz > status.sz
                ):
                    filled.append(order)
                elif final == "filled":
                    filled.append(order)
            if open_:
                await trio.sleep(poll_secs)
    for cloid, status_text in resolved.items():
        journal.add_order_event(cloid, status_text, final=True, source="recovery")
    if open_:
        raise RecoveryFailed(
            f"{len(open_)} orders of the previous run could not be settled within {timeout_secs:g} s "
            f"(orderStatus gave no final answer): {', '.join(sorted(open_))}"
        )
    new_fills, fills_unknown = await _fetch_fills(journal, info, user, filled) if filled else ([], ())
    for cloid, status_text in resolved.items():
        log.info("order %s of the previous run: %s", cloid, _describe(status_text))
    return Recovered(len(doubt), resolved, new_fills, fills_unknown)


def _describe(status: str) -> str:
    return "never executed (unknown to the exchange)" if status == "unknownOid" else status


def _final_status(status: OrderStatusResult, order: SentOrder, now: int, grace_ms: int) -> str | None:
    if status.known:
        if status.status is None or status.status in LIVE_ORDER_STATUSES:
            return None  # still open: the orphan cancel will end it; ask again
        return status.status
    # Unknown right after it was written: it may still be on its way (kill -9 leaves the socket's
    # buffered bytes to the kernel). Unknown after the grace: it never reached the exchange.
    return "unknownOid" if now - order.sent_ms >= grace_ms else None


async def _status(info: OrderLookup, user: str, cloid: str) -> OrderStatusResult | None:
    try:
        return await info.order_status(user, cloid)
    except Exception as exc:  # a failed query is no answer; asked again until the deadline
        log.warning("orderStatus for %s failed: %s", cloid, exc)
        return None


async def _fetch_fills(
    journal: Journal, info: OrderLookup, user: str, orders: list[SentOrder]
) -> tuple[list[Fill], tuple[str, ...]]:
    """The fills of `orders` the journal does not hold yet (not journaled here: see
    `count_then_journal`); and the cloids whose fills may be missing from them."""
    cloids = {o.cloid for o in orders}
    since = min(o.sent_ms for o in orders) - FILL_WINDOW_MARGIN_MS

    async def page(start_ms: int) -> list[Fill]:
        return await info.user_fills_by_time(user, start_ms)

    window = await fetch_fills_window(page, since)
    mine = [f for f in window.fills if f.cloid is not None and str(f.cloid) in cloids]
    unknown: tuple[str, ...] = ()
    if not window.complete:
        # Positions are still adopted from the exchange; only the journal's copy and the daily
        # loss miss what was not seen, and the userFills snapshot after subscribing fills the
        # journal in. Unknown, not "no fill": the restart record says so.
        unknown = tuple(sorted(cloids))
        log.warning(
            "userFillsByTime after restart incomplete (%s): fills of %s beyond the %d found are unknown",
            window.why_incomplete,
            ", ".join(unknown),
            len(mine),
        )
    return journal.fills_not_journaled(mine), unknown


def count_then_journal(
    fills: list[Fill], hard_stop: PnlSink, journal: Journal | None, now: float | None = None
) -> None:
    """Count fills no run has counted yet into the day's loss, put it on disk, and only then
    journal them. A start skips fills the journal holds, so the other order would lose them for
    good to a kill between the two; this one at worst counts them twice. Flushes even without
    fills, so whatever else the caller changed in the hard-stop state is on disk too."""
    if fills:
        realized = sum((f.closed_pnl for f in fills), Decimal(0))
        fees = sum((f.fee for f in fills), Decimal(0))
        day = datetime.fromtimestamp(max(f.time for f in fills) / 1000, UTC).date()
        hard_stop.record_pnl(realized, fees, day, now)
    hard_stop.flush()
    if journal is not None and fills:
        journal.add_fills(fills)
