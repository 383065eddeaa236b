"""Money-path races between the feed's reconnect catch-up, the tracker's fill memory and resync.

Each test states what the exchange holds (worked out by hand from the fills it made) and checks that
the tracker ends up holding the same once everything has settled.
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import trio
import trio.testing

from hip3.core import Cloid, MarketKey, Price, Side, Size
from hip3.hyperliquid.events import (
    AssetPosition,
    ClearinghouseState,
    Fill,
    UserFills,
)
from hip3.hyperliquid.ws import Connected, Disconnected
from hip3.market.cells import MarketCells
from hip3.market.feed import Feed
from hip3.market.ready import ReadyState
from hip3.trading.edge import account_snapshot, fill_reports
from hip3.trading.exits import ExitParams, ExitPlanner
from hip3.trading.messages import ReserveGranted, ReserveRequest
from hip3.trading.reports import FillReport, OrderReport, PostFilled, PostRefused
from hip3.trading.tracker import Tracker

TSLA = MarketKey("xyz", "TSLA", 110001)
USER = "0x" + "ab" * 20
HOUR = 3600.0
START_MS = 1_700_000_000_000


def make_tracker() -> Tracker:
    return Tracker(
        {TSLA.name: TSLA},
        max_notional_per_market=Decimal(100),
        max_total_notional=Decimal(1000),
        max_concurrent_positions=3,
    )


def fill(
    *,
    tid: int,
    time_ms: int,
    side: Side = Side.BUY,
    sz: str = "1",
    px: str = "10",
    cloid: Cloid | None = None,
) -> Fill:
    return Fill(
        coin=TSLA.name,
        px=Decimal(px),
        sz=Decimal(sz),
        side=side,
        time=time_ms,
        start_position=Decimal(0),
        dir="Open Long" if side is Side.BUY else "Close Long",
        closed_pnl=Decimal(0),
        hash="0x" + "cd" * 32,
        oid=77,
        crossed=True,
        fee=Decimal("0.01"),
        tid=tid,
        cloid=cloid,
    )


def long_state(size: str, px: str, time_ms: int) -> ClearinghouseState:
    return ClearinghouseState(
        positions=(
            AssetPosition(
                coin=TSLA.name,
                szi=Decimal(size),
                entry_px=Decimal(px),
                position_value=Decimal(size) * Decimal(px),
                unrealized_pnl=Decimal(0),
                leverage_type="isolated",
                leverage=3,
            ),
        ),
        account_value=Decimal(1000),
        total_margin_used=Decimal(0),
        withdrawable=Decimal(1000),
        time=time_ms,
    )


class Clocks:
    """The tracker's trio time and the exchange's wall clock, moved together."""

    def __init__(self) -> None:
        self.now = 0.0
        self.ms = START_MS

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.ms += int(seconds * 1000)


class TrackerSink:
    """Feed → Tracker directly (the tracker task is a thin loop around these same calls)."""

    def __init__(self, tracker: Tracker, clocks: Clocks) -> None:
        self.tracker = tracker
        self.clocks = clocks

    async def report_fills(self, fills: tuple[FillReport, ...]) -> None:
        self.tracker.apply_fills(fills, self.clocks.now)

    async def report_orders(self, reports: tuple[OrderReport, ...]) -> None:
        self.tracker.apply_order_reports(reports, self.clocks.now)


async def test_a_reconnect_hours_after_the_last_fill_does_not_replay_forgotten_fills() -> None:
    """A catch-up reaching back to the last fill ever seen would replay a fill whose tid and order the
    tracker forgot after fill_memory_secs (6 h): it starts from the disconnect instead."""
    tracker = make_tracker()
    clocks = Clocks()
    exchange_fills: list[Fill] = []  # what userFillsByTime answers from

    async def fills_since(since_ms: int) -> list[Fill]:
        return [f for f in exchange_fills if f.time >= since_ms]

    ready = ReadyState([TSLA], trading=True)
    ready.on_positions_synced()
    feed = Feed(
        MarketCells([TSLA]),
        {TSLA.name: TSLA},
        ready,
        user=USER,
        sink=TrackerSink(tracker, clocks),
        fetch_fills_since=fills_since,
        now_ms=lambda: clocks.ms,
    )
    async with trio.open_nursery() as nursery:
        await feed.handle(Connected(), nursery)

        # The bot buys 1 @ 10: reservation, post answer, then the stream's fill.
        cloid = Cloid.random()
        decision, _ = tracker.reserve(
            ReserveRequest(cloid, TSLA, Side.BUY, Size(Decimal(1)), Price(Decimal(10)), False, "entry"),
            clocks.now,
        )
        assert isinstance(decision, ReserveGranted)
        tracker.apply_post_result(cloid, PostFilled(Decimal(1), Decimal(10), 77), clocks.now)
        entry_fill = fill(tid=1, time_ms=clocks.ms, cloid=cloid)
        exchange_fills.append(entry_fill)
        await feed.handle(UserFills(user=USER, is_snapshot=False, fills=(entry_fill,)), nursery)
        assert tracker.position_size(TSLA) == Decimal(1)

        # Seven quiet hours (the position is held, e.g. it was opened by hand or the exits are off);
        # the tracker task evicts every minute.
        clocks.advance(7 * HOUR)
        tracker.evict(clocks.now)

        # The server drops the link (it does so periodically, hyperliquid.md §7.1); we reconnect at once.
        await feed.handle(Disconnected("server closed"), nursery)
        await feed.handle(Connected(), nursery)
        await trio.testing.wait_all_tasks_blocked()

    # The exchange made exactly one fill: long 1.
    assert tracker.position_size(TSLA) == Decimal(1)


async def test_a_reconnect_hours_after_a_round_trip_does_not_count_its_loss_and_fees_twice() -> None:
    """The same with the exits on: a replayed round trip nets to flat, but its loss and fees would be
    counted again, and both feed the daily-loss hard stop."""
    tracker = make_tracker()
    clocks = Clocks()
    exchange_fills: list[Fill] = []

    async def fills_since(since_ms: int) -> list[Fill]:
        return [f for f in exchange_fills if f.time >= since_ms]

    ready = ReadyState([TSLA], trading=True)
    ready.on_positions_synced()
    feed = Feed(
        MarketCells([TSLA]),
        {TSLA.name: TSLA},
        ready,
        user=USER,
        sink=TrackerSink(tracker, clocks),
        fetch_fills_since=fills_since,
        now_ms=lambda: clocks.ms,
    )
    async with trio.open_nursery() as nursery:
        await feed.handle(Connected(), nursery)
        buy = fill(tid=1, time_ms=clocks.ms, side=Side.BUY, sz="1", px="10")
        clocks.advance(20)  # the time stop
        sell = fill(tid=2, time_ms=clocks.ms, side=Side.SELL, sz="1", px="9")
        exchange_fills += [buy, sell]
        await feed.handle(UserFills(user=USER, is_snapshot=False, fills=(buy, sell)), nursery)
        assert tracker.position_size(TSLA) == 0
        clocks.advance(7 * HOUR)
        tracker.evict(clocks.now)
        await feed.handle(Disconnected("server closed"), nursery)
        await feed.handle(Connected(), nursery)
        await trio.testing.wait_all_tasks_blocked()

    # One round trip: bought 1 @ 10, sold 1 @ 9 -> -1; two fills of 0.01 fee each.
    assert (tracker.realized_pnl, tracker.fees) == (Decimal(-1), Decimal("0.02"))


def test_a_fill_already_in_a_resync_snapshot_is_not_applied_again() -> None:
    """A fill without a bot reservation (liquidation, ADL, manual trade) that the snapshot already
    contains, delivered by the stream just after the snapshot was applied, must not be applied again:
    the fence only covers fills that arrive before the snapshot, so the fill's time decides."""
    tracker = make_tracker()
    clocks = Clocks()
    # Startup: the account holds long 2 @ 10.
    tracker.apply_snapshot(
        tracker.begin_fetch(), account_snapshot(long_state("2", "10", clocks.ms)), clocks.now
    )
    assert tracker.position_size(TSLA) == Decimal(2)

    clocks.advance(60)
    # A partial liquidation sells 1 at the exchange (no cloid). clearinghouseState, fetched a moment
    # later, already shows long 1; the userFills push for it is a few hundred ms behind.
    liquidation = fill(tid=900, time_ms=clocks.ms, side=Side.SELL, sz="1", px="9")
    fence = tracker.begin_fetch()
    clocks.advance(0.1)
    tracker.apply_snapshot(fence, account_snapshot(long_state("1", "10", clocks.ms)), clocks.now)
    assert tracker.position_size(TSLA) == Decimal(1)  # corrected to the exchange
    clocks.advance(0.3)
    tracker.apply_fills(fill_reports([liquidation]), clocks.now)

    # The exchange holds long 1 (2 - 1). The tracker now says flat, so the market is free for a new
    # entry on top of the long 1 it does not see.
    assert tracker.position_size(TSLA) == Decimal(1)


def flat_state(time_ms: int) -> ClearinghouseState:
    return ClearinghouseState(
        positions=(),
        account_value=Decimal(1000),
        total_margin_used=Decimal(0),
        withdrawable=Decimal(1000),
        time=time_ms,
    )


def test_a_phantom_position_is_corrected_although_its_flatten_keeps_being_retried() -> None:
    """The tracker holds long 1, the exchange is flat (the closing fill never reached us). The exits
    flatten it; the exchange refuses ("Reduce only order would increase position", benign); the exits
    retry with backoff. A refused flatten must not count as a position change, or the flat snapshot
    (believed only when two in a row agree) would never correct the phantom."""
    tracker = make_tracker()
    clocks = Clocks()
    tracker.apply_snapshot(
        tracker.begin_fetch(), account_snapshot(long_state("1", "10", clocks.ms)), clocks.now
    )
    planner = ExitPlanner(MarketCells([TSLA]), ExitParams())  # defaults: time stop 20 s, backoff 1..30 s
    step = 0.25  # ExitParams.check_interval_secs
    for tick in range(1, int(600 / step) + 1):
        clocks.advance(step)
        if tick % int(60 / step) == 0:  # position_resync_interval_secs = 60, exchange flat
            fence = tracker.begin_fetch()
            tracker.apply_snapshot(fence, account_snapshot(flat_state(clocks.ms)), clocks.now)
        for req in planner.step(tracker.view(), clocks.now):
            cloid = Cloid.random()
            decision, _ = tracker.reserve(
                ReserveRequest(
                    cloid, req.market, Side.SELL, Size(Decimal(1)), Price(Decimal("9.95")), True, "x"
                ),
                clocks.now,
            )
            if isinstance(decision, ReserveGranted):
                refusal = PostRefused("Reduce only order would increase position. asset=110001")
                tracker.apply_post_result(cloid, refusal, clocks.now)
    # Ten minutes, ten flat snapshots: the tracker should agree with the exchange by now.
    assert tracker.position_size(TSLA) == 0


async def test_the_catch_up_pages_through_user_fills_by_time() -> None:
    """userFillsByTime answers at most 2000 fills, oldest first, across every coin and dex of the
    account: the catch-up pages until a short page, or a gap with more fills would lose the newest."""
    tracker = make_tracker()
    clocks = Clocks()
    exchange_fills: list[Fill] = []

    async def fills_since(since_ms: int) -> list[Fill]:
        return sorted((f for f in exchange_fills if f.time >= since_ms), key=lambda f: f.time)[:2000]

    ready = ReadyState([TSLA], trading=True)
    ready.on_positions_synced()
    feed = Feed(
        MarketCells([TSLA]),
        {TSLA.name: TSLA},
        ready,
        user=USER,
        sink=TrackerSink(tracker, clocks),
        fetch_fills_since=fills_since,
        now_ms=lambda: clocks.ms,
    )
    async with trio.open_nursery() as nursery:
        await feed.handle(Connected(), nursery)
        await feed.handle(Disconnected("server closed"), nursery)
        # During a 30 s gap the account's other activity (another dex, another client) makes 2100 fills,
        # then a fill in our market arrives.
        for i in range(2100):
            clocks.advance(0.01)
            other = attrs.evolve(fill(tid=10_000 + i, time_ms=clocks.ms), coin="abc:OTHER")
            exchange_fills.append(other)
        clocks.advance(1)
        exchange_fills.append(fill(tid=5, time_ms=clocks.ms, sz="1", px="10"))
        clocks.advance(8)
        await feed.handle(Connected(), nursery)
        await trio.testing.wait_all_tasks_blocked()

    assert ready.caught_up
    assert tracker.position_size(TSLA) == Decimal(1)
