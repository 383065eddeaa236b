"""Market data from the WebSocket reader is conflated into cells; user events and post replies are not.

The session reads from an in-memory server whose frames are all buffered before the client looks
(a burst already in the socket). The feed is wired the way the app wires it: market data through
`WsSession.route_market_data`, everything else through `ws.events` and the feed task.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import trio
import trio.testing

from hip3.core import MarketKey
from hip3.hyperliquid.events import ActionErr, ActionOk
from hip3.hyperliquid.parse import ParseStats
from hip3.hyperliquid.ws import MAX_FRAMES_PER_STEP, open_ws_session
from hip3.market.cells import MarketCells
from hip3.market.feed import Feed, run_feed
from hip3.market.ready import ReadyState
from hip3.trading.reports import FillReport
from tests.fakes.ws import FakeServerConn, FakeWsServer

TSLA = MarketKey("xyz", "TSLA", 110001)
GOLD = MarketKey("xyz", "GOLD", 110002)
MARKETS = {"xyz:TSLA": TSLA, "xyz:GOLD": GOLD}
USER = "0x" + "ab" * 20


def bbo_frame(coin: str, n: int) -> dict[str, Any]:
    bid = Decimal(100) + Decimal(n) / 100
    return {
        "channel": "bbo",
        "data": {
            "coin": coin,
            "time": 1_000 + n,
            "bbo": [{"px": str(bid), "sz": "1", "n": 1}, {"px": str(bid + 1), "sz": "1", "n": 1}],
        },
    }


def fills_frame(first_tid: int, count: int) -> dict[str, Any]:
    fills = [
        {
            "coin": "xyz:TSLA",
            "px": "100.5",
            "sz": "0.1",
            "side": "B",
            "time": 1_000 + tid,
            "startPosition": "0",
            "dir": "Open Long",
            "closedPnl": "0",
            "hash": "0x" + "00" * 32,
            "oid": tid,
            "crossed": True,
            "fee": "0.01",
            "tid": tid,
        }
        for tid in range(first_tid, first_tid + count)
    ]
    return {"channel": "userFills", "data": {"user": USER, "isSnapshot": False, "fills": fills}}


class Sink:
    """The tracker as the feed sees it: reports, one tuple per userFills message."""

    def __init__(self) -> None:
        self.fills: list[tuple[FillReport, ...]] = []

    async def report_fills(self, fills: tuple[FillReport, ...]) -> None:
        self.fills.append(fills)

    async def report_orders(self, reports: Any) -> None:
        pass


class Rig:
    def __init__(self) -> None:
        self.server = FakeWsServer()
        self.cells = MarketCells(MARKETS.values())
        self.sink = Sink()
        self.feed = Feed(self.cells, MARKETS, ReadyState(MARKETS.values()), user=USER, sink=self.sink)

    def session(self) -> Any:
        return open_ws_session(
            "ws://fake/ws", connect=self.server.connect, rng=random.Random(7), stats=ParseStats()
        )

    async def start(self, ws: Any, nursery: trio.Nursery) -> FakeServerConn:
        ws.route_market_data(self.feed.on_market_data)
        await nursery.start(run_feed, ws.events, self.feed)
        conn = await self.server.accept()
        await ws.wait_connected()
        return conn


async def test_a_burst_reaches_the_reader_of_the_cells_once_with_the_newest_values(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rig = Rig()
    async with rig.session() as ws, trio.open_nursery() as nursery:
        conn = await rig.start(ws, nursery)
        # The whole burst is in the "socket" before the client reads any of it.
        for n in range(150):
            await conn.send(bbo_frame("xyz:TSLA", n))
            await conn.send(bbo_frame("xyz:GOLD", 1000 + n))
        changed = await rig.cells.wait_changed()
        assert changed == {TSLA, GOLD}  # one wake-up for 300 frames, not 300 evaluations
        tsla, gold = rig.cells.get(TSLA), rig.cells.get(GOLD)
        assert tsla.updates == 150 and gold.updates == 150  # every frame applied, none queued
        assert tsla.bbo is not None and tsla.bbo.bid is not None
        assert tsla.bbo.bid.px == Decimal("101.49")  # the newest value of the burst
        assert gold.bbo is not None and gold.bbo.time == 1_000 + 1_149
        with trio.move_on_after(5) as idle:
            await rig.cells.wait_changed()
        assert idle.cancelled_caught  # nothing left behind to evaluate
        nursery.cancel_scope.cancel()


async def test_user_events_inside_a_burst_all_arrive_in_order(autojump_clock: trio.testing.MockClock) -> None:
    rig = Rig()
    async with rig.session() as ws, trio.open_nursery() as nursery:
        conn = await rig.start(ws, nursery)
        tid = 1
        for n in range(400):
            await conn.send(bbo_frame("xyz:TSLA", n))
            if n % 40 == 0:
                await conn.send(fills_frame(tid, 3))
                tid += 3
        with trio.fail_after(60):
            while rig.cells.get(TSLA).updates < 400 or sum(len(m) for m in rig.sink.fills) < tid - 1:
                await trio.sleep(0.1)
        tids = [f.trade_id.tid for msg in rig.sink.fills for f in msg]
        assert tids == list(range(1, tid))  # none dropped, none repeated, in order
        nursery.cancel_scope.cancel()


async def test_a_post_reply_is_not_stuck_behind_the_market_data_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rig = Rig()
    tail = 3 * MAX_FRAMES_PER_STEP
    async with rig.session() as ws, trio.open_nursery() as nursery:
        conn = await rig.start(ws, nursery)
        result: list[Any] = []
        updates_when_answered: list[int] = []

        async def post() -> None:
            result.append(await ws.post_action({"action": {"type": "order"}, "nonce": 1}))
            updates_when_answered.append(rig.cells.get(TSLA).updates)

        nursery.start_soon(post)
        request = await conn.receive_kind("post")
        for n in range(50):
            await conn.send(bbo_frame("xyz:TSLA", n))
        payload = {"status": "err", "response": "Insufficient margin to place order."}
        reply = {
            "channel": "post",
            "data": {"id": request["id"], "response": {"type": "action", "payload": payload}},
        }
        await conn.send(reply)
        for n in range(50, 50 + tail):
            await conn.send(bbo_frame("xyz:TSLA", n))
        with trio.fail_after(60):
            while rig.cells.get(TSLA).updates < 50 + tail:
                await trio.sleep(0.1)
        assert len(result) == 1 and isinstance(result[0], ActionErr) and not isinstance(result[0], ActionOk)
        # The waiting post woke before the reader had worked through the data behind its reply.
        assert updates_when_answered[0] < 50 + tail
        nursery.cancel_scope.cancel()
