"""The feed task: WebSocket events in; latest-value market cells and tracker events out.

Market data (bbo, activeAssetCtx) are states: they overwrite a per-market cell and wake the
detector. User events (fills, order updates) are events: they go to the tracker in order and are
never dropped. After a reconnect the fills missed while disconnected are fetched with
userFillsByTime before the user streams count as ready; the userFills snapshot never rebuilds
positions (the tracker ignores snapshots).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import trio

from hip3.clock import wall_clock_ms
from hip3.core import MarketKey
from hip3.hyperliquid.events import AssetCtx, Bbo, Fill, OrderUpdates, SubscriptionAck, UserFills
from hip3.hyperliquid.ws import Connected, Disconnected
from hip3.market.cells import MarketCells
from hip3.market.ready import ReadyState
from hip3.trading.edge import fill_reports, order_reports
from hip3.trading.reports import FillReport, OrderReport

log = logging.getLogger(__name__)

#: How far before the disconnect the catch-up query reaches back; overlap is harmless (tid dedup).
CATCH_UP_MARGIN_MS = 60_000
#: userFillsByTime returns at most this many fills per call; only the 10,000 newest are reachable.
FILLS_PAGE_SIZE = 2000
MAX_CATCH_UP_PAGES = 6


class UserEventSink(Protocol):
    """The tracker as the feed sees it: user events arrive converted to the bot's own reports."""

    async def report_fills(self, fills: tuple[FillReport, ...]) -> None: ...

    async def report_orders(self, reports: tuple[OrderReport, ...]) -> None: ...


FetchFills = Callable[[int], Awaitable[list[Fill]]]


def market_subscriptions(markets: Mapping[str, MarketKey]) -> list[dict[str, Any]]:
    subs: list[dict[str, Any]] = []
    for name in sorted(markets):
        subs.append({"type": "bbo", "coin": name})
        subs.append({"type": "activeAssetCtx", "coin": name})
    return subs


def user_subscriptions(user: str) -> list[dict[str, Any]]:
    return [{"type": "userFills", "user": user.lower()}, {"type": "orderUpdates", "user": user.lower()}]


class Feed:
    """Routes one WebSocket's events. Plain object so tests can drive it event by event."""

    def __init__(
        self,
        cells: MarketCells,
        markets: Mapping[str, MarketKey],
        ready: ReadyState,
        *,
        user: str | None = None,
        sink: UserEventSink | None = None,
        fetch_fills_since: FetchFills | None = None,
        now_ms: Callable[[], int] = wall_clock_ms,
        record: Callable[[UserFills | OrderUpdates], None] | None = None,
        on_history: Callable[[UserFills], None] | None = None,
    ) -> None:
        self.cells = cells
        self.markets = markets
        self.ready = ready
        self.user = user
        self.sink = sink
        self.fetch_fills_since = fetch_fills_since
        self.now_ms = now_ms
        # The journal's copy of the user events as the exchange sent them (snapshots included).
        self.record = record
        # Sees each userFills snapshot before the journal does (the startup's loss count).
        self.on_history = on_history
        self.connections = 0
        # Start of the oldest disconnection whose missed fills are not fetched yet.
        self.gap_start_ms: int | None = None
        self.ignored_snapshots = 0
        self.unknown_coins = 0

    def on_market_data(self, event: object) -> bool:
        """Write a bbo / asset context into its cell at once; False for every other event.

        The WebSocket reader calls this for each parsed event (`WsSession.route_market_data`), so
        market data never waits in a queue: a burst overwrites cells and the detector sees the
        newest values. Runs on the reader's step: no awaits, no logging on the per-message path.
        """
        cls = type(event)
        if cls is Bbo:
            assert isinstance(event, Bbo)
            market = self.markets.get(event.coin)
            if market is None:
                self.unknown_coins += 1
                return True
            self.cells.update_bbo(market, event, trio.current_time())
            self._ready_changed(self.ready.on_bbo(market))
            return True
        if cls is AssetCtx:
            assert isinstance(event, AssetCtx)
            market = self.markets.get(event.coin)
            if market is None:
                self.unknown_coins += 1
                return True
            self.cells.update_ctx(market, event, trio.current_time())
            self._ready_changed(self.ready.on_ctx(market))
            return True
        return False

    async def handle(self, event: object, nursery: trio.Nursery) -> None:
        if self.on_market_data(event):
            return
        match event:
            case UserFills(is_snapshot=True):
                # History, not news: positions come from clearinghouseState (startup) and resync.
                self.ignored_snapshots += 1
                if self.on_history is not None:
                    self.on_history(event)
                if self.record is not None:
                    self.record(event)
            case UserFills():
                if self.record is not None:
                    self.record(event)
                if self.sink is not None:
                    await self.sink.report_fills(fill_reports(event))
            case OrderUpdates():
                if self.record is not None:
                    self.record(event)
                if self.sink is not None:
                    reports = order_reports(event)
                    if reports:
                        await self.sink.report_orders(reports)
            case SubscriptionAck(method="subscribe", subscription=sub):
                self._ready_changed(self.ready.on_ack(str(sub.get("type"))))
            case Connected():
                self.connections += 1
                self._ready_changed(self.ready.on_connected())
                if self.connections == 1 or self.sink is None:
                    # Nothing can have been missed before the first connection: startup cancelled
                    # our orders and synced positions from clearinghouseState just before.
                    self._ready_changed(self.ready.on_caught_up())
                else:
                    nursery.start_soon(self._catch_up, self.connections)
            case Disconnected(reason=reason):
                if self.gap_start_ms is None:
                    self.gap_start_ms = self.now_ms()
                log.warning("websocket disconnected (%s): entries blocked until READY again", reason)
                self._ready_changed(self.ready.on_disconnected())
            case _:
                pass

    async def _catch_up(self, connection: int) -> None:
        """Fetch fills missed while disconnected; READY waits for the current connection's catch-up.

        A catch-up for an older connection still delivers its fills but cannot make a newer
        connection ready: its query ended before the newer gap began.
        """
        if self.fetch_fills_since is None or self.sink is None or self.user is None:
            self._ready_changed(self.ready.on_caught_up())
            return
        # From just before the link went down: the margin covers fills sent while the link was
        # already dead but not yet detected. Never from the last fill ever seen: that can be hours
        # old, older than the tracker's tid memory, and would replay forgotten fills.
        since = (self.gap_start_ms if self.gap_start_ms is not None else self.now_ms()) - CATCH_UP_MARGIN_MS
        fills = await self._fetch_all_since(since)
        if fills:
            log.info("catch-up after reconnect: %d fills since %d handed to the tracker", len(fills), since)
            if self.record is not None:
                # Journaled like stream fills, before the tracker counts them: a restart skips the
                # fills the journal holds as already counted.
                self.record(UserFills(self.user, False, tuple(fills)))
            await self.sink.report_fills(fill_reports(fills))
        if connection != self.connections:
            log.info(
                "catch-up for connection %d done; connection %d is still catching up",
                connection,
                self.connections,
            )
            return
        self.gap_start_ms = None
        self._ready_changed(self.ready.on_caught_up())

    async def _fetch_all_since(self, since: int) -> list[Fill]:
        """userFillsByTime answers at most a page of fills, oldest first: page until a short page.

        Pages overlap by one millisecond (several fills can share a time); the tracker drops
        repeated tids. A failed query is retried, never read as "nothing missed".
        """
        assert self.fetch_fills_since is not None
        fills: list[Fill] = []
        for _ in range(MAX_CATCH_UP_PAGES):
            page = await self._fetch_with_retry(since)
            fills.extend(page)
            if len(page) < FILLS_PAGE_SIZE:
                return fills
            newest = max(f.time for f in page)
            if newest <= since:  # a whole page within one millisecond: cannot page further
                break
            since = newest
        log.error(
            "fill catch-up stopped after %d pages; resync will repair what is missing", MAX_CATCH_UP_PAGES
        )
        return fills

    async def _fetch_with_retry(self, since: int) -> list[Fill]:
        assert self.fetch_fills_since is not None
        delay = 1.0
        while True:
            try:
                return await self.fetch_fills_since(since)
            except Exception as exc:  # a failed query must not read as "nothing missed"
                log.warning("fill catch-up failed (%s); retrying in %.0f s, entries stay blocked", exc, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _ready_changed(self, changed: bool) -> None:
        if changed:
            if self.ready.is_ready:
                log.info("READY: market data, user channels and positions are in sync")
            else:
                log.info("not ready: %s", self.ready.why_not())


async def run_feed(
    events: trio.MemoryReceiveChannel[Any],
    feed: Feed,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with trio.open_nursery() as nursery:
        task_status.started()
        async for event in events:
            await feed.handle(event, nursery)
        nursery.cancel_scope.cancel()
