"""Feed finding: a catch-up started for an older reconnect marks a newer one as caught up."""

from __future__ import annotations

from decimal import Decimal

import trio
import trio.testing

from hip3.core import MarketKey
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel, Fill, OrderUpdates, SubscriptionAck, UserFills
from hip3.hyperliquid.ws import Connected, Disconnected
from hip3.market.cells import MarketCells
from hip3.market.feed import Feed
from hip3.market.ready import ReadyState

TSLA = MarketKey("xyz", "TSLA", 110001)
USER = "0x" + "ab" * 20


class Sink:
    async def user_fills(self, msg: UserFills) -> None:
        pass

    async def order_updates(self, msg: OrderUpdates) -> None:
        pass


async def reconnect(feed: Feed, nursery: trio.Nursery) -> None:
    """A connection with market data and both user acks: everything READY needs but the catch-up."""
    one = BookLevel(Decimal(1), Decimal(1), 1)
    await feed.handle(Connected(), nursery)
    await feed.handle(Bbo(TSLA.name, 1, one, BookLevel(Decimal(2), Decimal(1), 1)), nursery)
    await feed.handle(AssetCtx(TSLA.name, Decimal(1), Decimal(1), None, Decimal(0), Decimal(0)), nursery)
    for channel in ("userFills", "orderUpdates"):
        await feed.handle(SubscriptionAck("subscribe", {"type": channel, "user": USER}), nursery)


async def test_an_older_catch_up_does_not_make_a_newer_reconnect_ready(
    autojump_clock: trio.testing.MockClock,
) -> None:
    releases = [trio.Event(), trio.Event()]
    calls = 0

    async def fetch(since: int) -> list[Fill]:
        nonlocal calls
        mine = releases[calls]
        calls += 1
        await mine.wait()
        return []

    ready = ReadyState([TSLA], trading=True)
    ready.on_positions_synced()
    feed = Feed(
        MarketCells([TSLA]),
        {TSLA.name: TSLA},
        ready,
        user=USER,
        sink=Sink(),
        fetch_fills_since=fetch,
        now_ms=lambda: 50_000_000,
    )
    async with trio.open_nursery() as nursery:
        await reconnect(feed, nursery)  # first connection: nothing to catch up
        assert ready.is_ready
        await feed.handle(Disconnected("first drop"), nursery)
        await reconnect(feed, nursery)  # catch-up #1 starts and hangs (slow info)
        await trio.sleep(1)
        await feed.handle(Disconnected("second drop"), nursery)
        await reconnect(feed, nursery)  # catch-up #2 starts
        await trio.sleep(1)
        releases[0].set()  # the older query answers: it says nothing about the second gap
        await trio.sleep(1)
        assert not ready.is_ready, "READY before the second disconnect's fills were caught up"
        releases[1].set()
        await trio.sleep(1)
        assert ready.is_ready
        nursery.cancel_scope.cancel()
