"""The feed routes events: market data to cells, user events to the tracker, readiness on the way."""

from decimal import Decimal

import trio
import trio.testing

from hip3.core import Cloid, Side
from hip3.hyperliquid.events import (
    Bbo,
    Fill,
    OrderUpdate,
    OrderUpdates,
    SubscriptionAck,
    UserFills,
)
from hip3.hyperliquid.ws import Connected, Disconnected
from hip3.market.cells import MarketCells
from hip3.market.feed import Feed, market_subscriptions, user_subscriptions
from hip3.market.ready import ReadyState
from hip3.trading.edge import fill_reports, order_reports
from hip3.trading.reports import FillReport, OrderReport
from tests.builders import TSLA, USER, bbo, ctx

MARKETS = {"xyz:TSLA": TSLA}


def fill(tid: int, time_ms: int = 1_000) -> Fill:
    return Fill(
        coin="xyz:TSLA",
        px=Decimal("100.5"),
        sz=Decimal("0.1"),
        side=Side.BUY,
        time=time_ms,
        start_position=Decimal(0),
        dir="Open Long",
        closed_pnl=Decimal(0),
        hash="0x" + "00" * 32,
        oid=7,
        crossed=True,
        fee=Decimal("0.01"),
        tid=tid,
        cloid=Cloid("0x" + "11" * 16),
    )


class Sink:
    def __init__(self) -> None:
        self.fills: list[tuple[FillReport, ...]] = []
        self.updates: list[tuple[OrderReport, ...]] = []

    async def report_fills(self, fills: tuple[FillReport, ...]) -> None:
        self.fills.append(fills)

    async def report_orders(self, reports: tuple[OrderReport, ...]) -> None:
        self.updates.append(reports)


def make_feed(fetch=None):  # type: ignore[no-untyped-def]
    cells = MarketCells([TSLA])
    ready = ReadyState([TSLA], trading=True)
    ready.on_positions_synced()
    sink = Sink()
    feed = Feed(
        cells, MARKETS, ready, user=USER, sink=sink, fetch_fills_since=fetch, now_ms=lambda: 50_000_000
    )
    return feed, cells, ready, sink


async def connect_and_fill_in(feed: Feed, nursery: trio.Nursery) -> None:
    await feed.handle(Connected(), nursery)
    await feed.handle(bbo(), nursery)
    await feed.handle(ctx(), nursery)
    await feed.handle(SubscriptionAck("subscribe", {"type": "userFills", "user": USER}), nursery)
    await feed.handle(SubscriptionAck("subscribe", {"type": "orderUpdates", "user": USER}), nursery)


async def test_market_data_goes_to_cells_and_user_events_to_the_tracker() -> None:
    feed, cells, ready, sink = make_feed()
    async with trio.open_nursery() as nursery:
        await connect_and_fill_in(feed, nursery)
        assert ready.is_ready, ready.why_not()
        assert cells.get(TSLA).bbo == bbo()
        assert cells.get(TSLA).ctx == ctx()
        await feed.handle(Bbo("xyz:OTHER", 1, None, None), nursery)
        assert feed.unknown_coins == 1
        live = UserFills(USER, False, (fill(1),))
        await feed.handle(live, nursery)
        update = OrderUpdates(
            (
                OrderUpdate(
                    "xyz:TSLA",
                    Side.BUY,
                    Decimal(1),
                    Decimal(0),
                    7,
                    1,
                    Decimal(1),
                    "filled",
                    2,
                    Cloid.random(),
                ),
            )
        )
        await feed.handle(update, nursery)
        # converted at the edge: the tracker sees the bot's own reports
        assert sink.fills == [fill_reports(live)] and sink.updates == [order_reports(update)]
        assert sink.updates[0][0].filled_sz == Decimal(1)


async def test_the_userfills_snapshot_never_reaches_the_tracker() -> None:
    feed, _, _, sink = make_feed()
    async with trio.open_nursery() as nursery:
        await feed.handle(UserFills(USER, True, (fill(1), fill(2))), nursery)
    assert sink.fills == []
    assert feed.ignored_snapshots == 1


async def test_user_events_as_sent_go_to_the_journal_snapshots_included() -> None:
    feed, _, _, sink = make_feed()
    recorded: list[object] = []
    feed.record = recorded.append
    snapshot = UserFills(USER, True, (fill(1),))
    live = UserFills(USER, False, (fill(2),))
    updates = OrderUpdates(())
    async with trio.open_nursery() as nursery:
        for event in (snapshot, live, updates, bbo()):
            await feed.handle(event, nursery)
    assert recorded == [snapshot, live, updates]
    assert sink.fills == [fill_reports(live)]


async def test_reconnect_catches_up_missed_fills_before_ready(autojump_clock: object) -> None:
    asked: list[int] = []
    attempts = 0

    async def fetch(since: int) -> list[Fill]:
        nonlocal attempts
        attempts += 1
        asked.append(since)
        if attempts == 1:
            raise RuntimeError("info down")  # a failed query is retried, never read as "nothing missed"
        return [fill(9, time_ms=49_990_000)]

    feed, _, ready, sink = make_feed(fetch)
    async with trio.open_nursery() as nursery:
        await connect_and_fill_in(feed, nursery)
        assert ready.is_ready
        await feed.handle(Disconnected("test"), nursery)
        assert not ready.is_ready
        await connect_and_fill_in(feed, nursery)
        assert not ready.is_ready and "caught up" in ready.why_not()
        await trio.sleep(5)
    assert ready.is_ready
    assert attempts == 2
    assert asked[0] == 50_000_000 - 60_000  # from the disconnect, with a margin
    assert [f.trade_id.tid for m in sink.fills for f in m] == [9]


def test_subscriptions() -> None:
    assert market_subscriptions(MARKETS) == [
        {"type": "bbo", "coin": "xyz:TSLA"},
        {"type": "activeAssetCtx", "coin": "xyz:TSLA"},
    ]
    assert user_subscriptions(USER.upper().replace("0X", "0x")) == [
        {"type": "userFills", "user": USER},
        {"type": "orderUpdates", "user": USER},
    ]


async def test_a_catch_up_for_an_older_reconnect_does_not_make_a_newer_one_ready(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two drops in a row: the first reconnect's fill catch-up answering late says nothing about
    the second gap, so READY waits for the second catch-up."""
    releases = [trio.Event(), trio.Event()]
    calls = 0

    async def fetch(since: int) -> list[Fill]:
        nonlocal calls
        mine = releases[calls]
        calls += 1
        await mine.wait()
        return []

    feed, _, ready, _ = make_feed(fetch)
    async with trio.open_nursery() as nursery:
        await connect_and_fill_in(feed, nursery)  # first connection: nothing to catch up
        assert ready.is_ready
        await feed.handle(Disconnected("first drop"), nursery)
        await connect_and_fill_in(feed, nursery)  # catch-up #1 starts and hangs (slow info)
        await trio.sleep(1)
        await feed.handle(Disconnected("second drop"), nursery)
        await connect_and_fill_in(feed, nursery)  # catch-up #2 starts
        await trio.sleep(1)
        releases[0].set()  # the older query answers
        await trio.sleep(1)
        assert not ready.is_ready, "READY before the second disconnect's fills were caught up"
        releases[1].set()
        await trio.sleep(1)
        assert ready.is_ready
        nursery.cancel_scope.cancel()


async def test_fills_caught_up_after_a_reconnect_go_to_the_journal_before_the_tracker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The journal is what a restart takes as "seen and counted": fills the tracker learnt from a
    catch-up query must be in it too, not only the ones the stream delivered."""
    missed = [fill(5, 49_990_000), fill(6, 49_995_000)]
    order: list[str] = []

    async def fetch(since: int) -> list[Fill]:
        return missed

    feed, _, ready, sink = make_feed(fetch)
    recorded: list[UserFills | OrderUpdates] = []

    def record(event: UserFills | OrderUpdates) -> None:
        order.append("journal")
        recorded.append(event)

    async def report_fills(fills: tuple[FillReport, ...]) -> None:
        order.append("tracker")
        sink.fills.append(fills)

    feed.record = record
    sink.report_fills = report_fills  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await connect_and_fill_in(feed, nursery)
        await feed.handle(Disconnected("drop"), nursery)
        await connect_and_fill_in(feed, nursery)
        await trio.sleep(1)
        assert ready.is_ready
        nursery.cancel_scope.cancel()
    journaled = [f for e in recorded if isinstance(e, UserFills) for f in e.fills]
    assert journaled == missed
    assert order == ["journal", "tracker"]
