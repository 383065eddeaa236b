"""Second review: WebSocket post replies whose outcome is not known must not free a reservation."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import trio
import trio.testing

from hip3.core import Cloid, MarketKey, Price, Side, Size
from hip3.hyperliquid.parse import ParseStats
from hip3.hyperliquid.ws import open_ws_session
from hip3.trading.edge import post_outcome
from hip3.trading.messages import ReserveDenied, ReserveGranted, ReserveRequest
from hip3.trading.tracker import Tracker
from tests.fakes.ws import FakeWsServer

TSLA = MarketKey("xyz", "TSLA", 110001)


def entry() -> ReserveRequest:
    return ReserveRequest(
        Cloid.random(), TSLA, Side.BUY, Size(Decimal(1)), Price(Decimal(10)), False, "entry"
    )


async def test_a_server_error_reply_to_an_order_post_keeps_the_reservation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """R3: `{"type":"error"}` post replies mirror the HTTP status (hyperliquid.md §7.5). Over HTTP a
    non-200 is "outcome unknown" (info.py:208-209 -> transport PostUnknown); over WS the same answer
    becomes PostError (ws.py:225-226), which the tracker treats as "refused, nothing filled"
    (book.py:289-292): the reservation is freed while the order may have been executed."""
    tracker = Tracker(
        {TSLA.name: TSLA},
        max_notional_per_market=Decimal(15),
        max_total_notional=Decimal(1000),
        max_concurrent_positions=3,
    )
    first = entry()
    decision, _ = tracker.reserve(first, 0.0)
    assert isinstance(decision, ReserveGranted)

    server = FakeWsServer()
    results: list[Any] = []
    async with (
        open_ws_session(
            "ws://fake/ws", connect=server.connect, rng=random.Random(1), stats=ParseStats()
        ) as ws,
        trio.open_nursery() as nursery,
    ):
        conn = await server.accept()
        await ws.wait_connected()

        async def post() -> None:
            results.append(await ws.post_action({"nonce": 1}))

        nursery.start_soon(post)
        req = await conn.receive()
        reply = {"type": "error", "payload": "504 Gateway Timeout"}
        await conn.send({"channel": "post", "data": {"id": req["id"], "response": reply}})

    tracker.apply_post_result(first.cloid, post_outcome(results[0]), 1.0)
    # The $10 order may be filled at the exchange: a second $10 order in the market would break the $15 cap.
    second, _ = tracker.reserve(entry(), 2.0)
    assert isinstance(second, ReserveDenied)
