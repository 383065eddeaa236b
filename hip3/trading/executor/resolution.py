"""Settling orders whose outcome is unknown (DESIGN.md rule 6): ask, never send again.

A post that got no usable answer, an unmodelled status, or a reservation nobody is settling (found
by the periodic sweep) is resolved here: orderStatus by cloid with a backoff until a final answer,
then the order's fills from userFillsByTime (paged: one answer holds at most 2000 fills of the
whole account) for the tracker. Past the deadline the fills found so
far are handed over and the order is abandoned: its reservation stays counted until a resync
settles it. The order is never re-signed or re-sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import trio
from attrs import frozen

from hip3.core import Cloid, MarketKey
from hip3.hyperliquid.events import Fill, OrderStatusResult
from hip3.hyperliquid.fills_window import FillsWindow, fetch_fills_window
from hip3.trading.edge import fill_reports, order_status_report
from hip3.trading.reports import LIVE_STATUSES, FillReport, OrderNotFound, OrderReport

log = logging.getLogger(__name__)

#: How long the executor remembers what it sent, for chasing stale reservations.
SENT_MEMORY_SECS = 6 * 3600.0
#: How far before the post the fill catch-up window starts (exchange vs local clock skew).
FILL_WINDOW_MARGIN_MS = 60_000
#: After an entry's expiresAfter, how long until "unknownOid" is taken as final (clock skew, block time).
EXPIRY_MARGIN_SECS = 1.0
#: orderStatus word for a reduce-only order refused because there was no position to reduce.
REDUCE_ONLY_REJECTED = "reduceOnlyRejected"


@frozen
class SentOrder:
    """What the executor sent, as much as resolving it later needs."""

    cloid: Cloid
    market: MarketKey | None  # None: found by the sweep, not sent by this executor
    reduce_only: bool  # a flatten: its outcome counts for the hard stop
    sent_ms: int  # wall-clock ms when it was sent (the fill query window starts before it)
    expires_at: float | None = None  # trio time its expiresAfter passes (None: never expires)


class ResolvingTracker(Protocol):
    async def order_resolved(self, report: OrderReport | OrderNotFound) -> None: ...

    async def report_fills(self, fills: tuple[FillReport, ...]) -> None: ...

    async def stale_reservations(self, older_than: float) -> list[Cloid]: ...

    async def abandon(self, cloid: Cloid, reason: str) -> None: ...


class OrderInfo(Protocol):
    """The info client as resolution sees it."""

    async def order_status(self, user: str, oid_or_cloid: int | str) -> OrderStatusResult: ...

    async def user_fills_by_time(self, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]: ...


class FlattenOutcomes(Protocol):
    def record_flatten_failure(self, market: MarketKey, reason: str) -> object: ...

    def record_flatten_success(self, market: MarketKey) -> object: ...


@frozen
class ResolveTiming:
    resolve_timeout_secs: float
    post_timeout_secs: float
    poll_initial_secs: float
    poll_max_secs: float
    unknown_oid_grace_secs: float


class Resolver:
    """Resolves unknown outcomes; remembers what was sent so a stale flatten keeps its market and flag."""

    def __init__(
        self,
        *,
        tracker: ResolvingTracker,
        info: OrderInfo | None,
        user: str,
        hard_stop: FlattenOutcomes,
        timing: ResolveTiming,
        now_ms: Callable[[], int],
        on_resolved: Callable[[], None],
        on_abandoned: Callable[[], None],
        on_missing_position: Callable[[MarketKey, str], bool] | None = None,
    ) -> None:
        self.tracker = tracker
        self.info = info
        self.user = user
        self.hard_stop = hard_stop
        self.timing = timing
        self.now_ms = now_ms
        self.on_resolved = on_resolved
        self.on_abandoned = on_abandoned
        self.on_missing_position = on_missing_position
        self.resolving: set[Cloid] = set()
        # Forgotten by age (SENT_MEMORY_SECS), never cleared at once.
        self.sent: dict[Cloid, SentOrder] = {}

    def remember(self, order: SentOrder) -> None:
        self.sent[order.cloid] = order

    def start(self, nursery: trio.Nursery, order: SentOrder, *, from_sweep: bool = False) -> None:
        if order.cloid in self.resolving:
            return
        self.resolving.add(order.cloid)
        nursery.start_soon(self._resolve, order, from_sweep)

    async def sweep(self, nursery: trio.Nursery, in_flight: set[Cloid]) -> None:
        """Chase reservations nobody is resolving (a post task that died, fills that never came)."""
        older_than = self.timing.resolve_timeout_secs + self.timing.post_timeout_secs
        horizon_ms = self.now_ms() - int(SENT_MEMORY_SECS * 1000)
        for old in [c for c, s in self.sent.items() if s.sent_ms < horizon_ms]:
            del self.sent[old]
        for cloid in await self.tracker.stale_reservations(older_than):
            if cloid in self.resolving or cloid in in_flight:
                continue
            log.warning("stale reservation %s: resolving by orderStatus", cloid)
            # An order this executor sent keeps its market and flatten flag, so the hard stop still
            # counts a flatten's outcome; an unknown one gets a generous fill window.
            order = self.sent.get(cloid) or SentOrder(
                cloid, None, reduce_only=False, sent_ms=self.now_ms() - int(older_than * 1000)
            )
            self.start(nursery, order, from_sweep=True)

    async def _resolve(self, order: SentOrder, from_sweep: bool) -> None:
        try:
            await self._poll_until_final(order, from_sweep)
        except Exception:
            log.exception("order %s: resolution failed; the stale sweep will retry", order.cloid)
        finally:
            self.resolving.discard(order.cloid)

    async def _poll_until_final(self, order: SentOrder, from_sweep: bool) -> None:
        """Poll orderStatus by cloid until a final answer; past the deadline, feed fills and give up."""
        start = trio.current_time()
        deadline = start + self.timing.resolve_timeout_secs
        delay = self.timing.poll_initial_secs
        # Once an entry's expiresAfter has passed (plus a margin for the two clocks) the exchange
        # can no longer execute it: "unknownOid" is final then, even within the grace.
        certain_at = None if order.expires_at is None else order.expires_at + EXPIRY_MARGIN_SECS
        while trio.current_time() < deadline:
            status = await self._query_status(order.cloid, deadline)
            # Right after a lost post the order may still be on its way to a block: "unknownOid"
            # means "never executed" only once the grace has passed. A reservation found by the
            # stale sweep was posted long ago: no grace needed.
            now = trio.current_time()
            unknown_is_final = (
                from_sweep
                or now - start >= self.timing.unknown_oid_grace_secs
                or (certain_at is not None and now >= certain_at)
            )
            if status is not None and (
                (status.known and status.status not in LIVE_STATUSES)
                or (not status.known and unknown_is_final)
            ):
                await self._resolved(order, status)
                if from_sweep and order.cloid in await self.tracker.stale_reservations(0.0):
                    # Resolved before, and still open: the fills never came. Stop blocking the market.
                    await self._abandon(order, "final but its fills never arrived")
                return
            wait = min(delay, deadline - trio.current_time())
            if certain_at is not None and trio.current_time() < certain_at:
                wait = min(wait, certain_at - trio.current_time())  # ask again as soon as it is certain
            await trio.sleep(max(0.0, wait))
            delay = min(delay * 2, self.timing.poll_max_secs)
        await self.feed_fills(order)
        await self._abandon(order, f"unresolved after {self.timing.resolve_timeout_secs:g} s")

    async def _resolved(self, order: SentOrder, status: OrderStatusResult) -> None:
        report = order_status_report(order.cloid, status)
        if report is not None:
            await self.tracker.order_resolved(report)
        self.on_resolved()
        what = status.status if status.known else "unknownOid (never executed)"
        log.info("order %s resolved: %s", order.cloid, what)
        filled = status.known and (
            status.status == "filled"
            or (status.orig_sz is not None and status.sz is not None and status.orig_sz > status.sz)
        )
        if filled:
            # The tracker needs the fills themselves (size and price); the stream may be down.
            await self.feed_fills(order)
        if order.reduce_only and order.market is not None:
            if filled:
                self.hard_stop.record_flatten_success(order.market)
            elif not (
                status.status == REDUCE_ONLY_REJECTED
                and self.on_missing_position is not None
                and self.on_missing_position(order.market, f"resolved {what}")
            ):
                self.hard_stop.record_flatten_failure(order.market, f"resolved {what}")

    async def _query_status(self, cloid: Cloid, deadline: float) -> OrderStatusResult | None:
        if self.info is None:
            return None
        try:
            with trio.move_on_after(max(0.0, deadline - trio.current_time())):
                return await self.info.order_status(self.user, str(cloid))
        except Exception as exc:
            log.warning("orderStatus for %s failed: %s", cloid, exc)
        return None

    async def feed_fills(self, order: SentOrder) -> FillsWindow | None:
        """Hand this order's fills from userFillsByTime to the tracker (trade-id de-duplication makes it safe).

        The window from just before the post is paged through (other orders of the account may
        have filled thousands of times in it). Returns the walk (None without an info client);
        an incomplete one leaves the order's fills unknown, not absent: what was found is handed
        over and the rest must come from the stream or a resync.
        """
        if self.info is None:
            return None
        info = self.info

        async def page(since: int) -> list[Fill]:
            return await info.user_fills_by_time(self.user, since)

        window = await fetch_fills_window(
            page,
            order.sent_ms - FILL_WINDOW_MARGIN_MS,
            page_timeout_secs=max(1.0, self.timing.post_timeout_secs * 2),
        )
        mine = tuple(f for f in window.fills if f.cloid == order.cloid)
        if mine:
            try:
                await self.tracker.report_fills(fill_reports(mine))
            except Exception as exc:
                log.warning("order %s: fills found by userFillsByTime not handed over: %s", order.cloid, exc)
            else:
                log.info(
                    "order %s: %d fills found by userFillsByTime (%d pages)",
                    order.cloid,
                    len(mine),
                    window.pages,
                )
        if not window.complete:
            log.warning(
                "order %s: userFillsByTime lookup incomplete (%s); its fills stay unknown beyond the %d found",
                order.cloid,
                window.why_incomplete,
                len(mine),
            )
        return window

    async def _abandon(self, order: SentOrder, reason: str) -> None:
        log.error(
            "order %s abandoned: %s; its reservation stays counted until a resync after this settles it",
            order.cloid,
            reason,
        )
        await self.tracker.abandon(order.cloid, reason)
        self.on_abandoned()
        if order.reduce_only and order.market is not None:
            self.hard_stop.record_flatten_failure(order.market, reason)
