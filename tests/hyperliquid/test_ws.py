"""WsSession against an in-memory fake server, timed on trio's MockClock (autojump)."""

from __future__ import annotations

import inspect
import itertools
import random
from decimal import Decimal
from typing import Any

import pytest
import trio
import trio.testing

from hip3.core import Cloid, Price, Side, Size
from hip3.hyperliquid.events import (
    ActionErr,
    ActionOk,
    Bbo,
    ErrorMessage,
    PostError,
    Resting,
    SubscriptionAck,
)
from hip3.hyperliquid.parse import ParseStats
from hip3.hyperliquid.ws import (
    Connected,
    ConnectionLost,
    Disconnected,
    NotConnected,
    PostFailed,
    PostTimeout,
    WebsocketParams,
    open_ws_session,
    subscription_matches,
)
from hip3.trading.edge import post_outcome
from hip3.trading.messages import ReserveDenied, ReserveGranted, ReserveRequest
from hip3.trading.tracker import Tracker
from tests.builders import TSLA
from tests.fakes.ws import FakeClosed, FakeServerConn, FakeWsServer

URL = "ws://fake/ws"
USER = "0x0116A3D95994bcc7d6a84380ed6256fbb32cd25d"
BBO_SUB = {"type": "bbo", "coin": "xyz:TSLA"}
FILLS_SUB = {"type": "userFills", "user": USER}
GREETING = "Websocket connection established."


def session(server: FakeWsServer, **kwargs: Any) -> Any:
    kwargs.setdefault("rng", random.Random(7))
    kwargs.setdefault("stats", ParseStats())
    # Silence longer than the 45 s ping, so a quiet fake server sees pings before the client gives up.
    kwargs.setdefault("silence_timeout", 60.0)
    return open_ws_session(URL, connect=server.connect, **kwargs)


async def next_event(ws: Any, kind: type) -> Any:
    """Next event of this type (others are skipped), failing instead of hanging."""
    with trio.fail_after(600):
        while True:
            event = await ws.events.receive()
            if isinstance(event, kind):
                return event


def ack(sub: dict[str, Any]) -> dict[str, Any]:
    return {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": sub}}


def post_reply(post_id: int, kind: str, payload: Any) -> dict[str, Any]:
    return {"channel": "post", "data": {"id": post_id, "response": {"type": kind, "payload": payload}}}


RESTING = {"status": "ok", "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": 88383}}]}}}


# ---------------------------------------------------------------------------------------------
# subscription matching (pure)


def test_subscription_matches_subset_and_hex_case() -> None:
    l2 = {"type": "l2Book", "coin": "BTC"}
    assert subscription_matches(l2, {"type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None})
    assert not subscription_matches(l2, {"type": "l2Book", "coin": "ETH", "nSigFigs": None})
    assert not subscription_matches(
        {"type": "l2Book", "coin": "BTC", "nSigFigs": 5}, {"type": "l2Book", "coin": "BTC"}
    )
    assert subscription_matches(FILLS_SUB, {"type": "userFills", "user": USER.lower()})
    assert not subscription_matches(FILLS_SUB, {"type": "userFills", "user": "0x" + "0" * 40})
    assert not subscription_matches(BBO_SUB, {"type": "bbo", "coin": "XYZ:tsla"})  # coins are case-sensitive


# ---------------------------------------------------------------------------------------------
# connect, greeting, subscribe, ack


async def test_greeting_subscribe_and_ack_by_subset(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with session(server) as ws:
        conn = await server.accept()
        await conn.send(GREETING)
        assert await next_event(ws, Connected) == Connected()
        await ws.subscribe(BBO_SUB)
        await ws.subscribe(FILLS_SUB)
        assert await conn.receive() == {"method": "subscribe", "subscription": BBO_SUB}
        assert await conn.receive() == {"method": "subscribe", "subscription": FILLS_SUB}
        assert not ws.acked(BBO_SUB)
        # Echo normalized: extra null fields, lowercase address.
        await conn.send(ack({"type": "userFills", "user": USER.lower(), "aggregateByTime": None}))
        with trio.fail_after(1):
            await ws.wait_acked(FILLS_SUB)
        assert not ws.acked(BBO_SUB)
        await conn.send(ack({**BBO_SUB, "extra": None}))
        with trio.fail_after(1):
            await ws.wait_acked(BBO_SUB)
        forwarded = await next_event(ws, SubscriptionAck)
        assert forwarded.subscription["user"] == USER.lower()
        # Data flows through as typed events.
        await conn.send(
            {
                "channel": "bbo",
                "data": {"coin": "xyz:TSLA", "time": 5, "bbo": [None, {"px": "465.13", "sz": "1.5", "n": 2}]},
            }
        )
        bbo = await next_event(ws, Bbo)
        assert bbo.bid is None and bbo.ask is not None and bbo.ask.px == Decimal("465.13")
        assert ws.is_connected


async def test_subscribe_twice_sends_once(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with session(server) as ws:
        conn = await server.accept()
        await ws.wait_connected()
        await ws.subscribe(BBO_SUB)
        await ws.subscribe(dict(BBO_SUB))
        assert await conn.receive() == {"method": "subscribe", "subscription": BBO_SUB}
        with trio.move_on_after(30):
            extra = await conn.receive()
            pytest.fail(f"unexpected second message {extra}")


async def test_subscription_made_while_disconnected_is_sent_on_connect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeWsServer()
    server.refuse = 1
    stats = ParseStats()
    async with session(server, stats=stats) as ws:
        await trio.testing.wait_all_tasks_blocked()
        assert not ws.is_connected
        await ws.subscribe(BBO_SUB)  # remembered, not sent: no connection yet
        conn = await server.accept()
        assert await conn.receive() == {"method": "subscribe", "subscription": BBO_SUB}
        await conn.send(ack({"type": "bbo", "coin": "xyz:NVDA"}))  # an ack for something never asked
        await conn.send(ack(BBO_SUB))
        await ws.wait_acked(BBO_SUB)
        assert stats.counts["unmatched_ack"] == 1


# ---------------------------------------------------------------------------------------------
# heartbeat and silence


async def test_ping_after_45s_without_outbound_even_while_inbound_flows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeWsServer()
    async with session(server) as ws, trio.open_nursery() as nursery:
        conn = await server.accept()
        await ws.wait_connected()
        await ws.subscribe(BBO_SUB)
        await conn.receive()
        last_out = trio.current_time()

        async def chatter() -> None:  # inbound traffic every 5 s must not suppress the ping
            while True:
                await trio.sleep(5)
                await conn.send({"channel": "pong"})

        nursery.start_soon(chatter)
        ping = await conn.receive()
        assert ping == {"method": "ping"}
        assert trio.current_time() - last_out == pytest.approx(45.0)
        ping2 = await conn.receive()
        assert ping2 == {"method": "ping"}
        assert trio.current_time() - last_out == pytest.approx(90.0)
        assert ws.is_connected  # pongs and chatter kept it alive
        nursery.cancel_scope.cancel()


async def test_outbound_traffic_postpones_ping(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with session(server, silence_timeout=1000) as ws:
        conn = await server.accept()
        await ws.wait_connected()
        await trio.sleep(30)
        await ws.subscribe(BBO_SUB)  # outbound at t=30 resets the idle timer
        t_sub = trio.current_time()
        await conn.receive()
        assert await conn.receive() == {"method": "ping"}
        assert trio.current_time() - t_sub == pytest.approx(45.0)


async def test_silence_closes_and_reconnects_with_resubscription(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeWsServer()
    async with session(server, silence_timeout=60.0) as ws:
        first = await server.accept()
        await next_event(ws, Connected)
        t0 = trio.current_time()
        await ws.subscribe(BBO_SUB)
        await ws.subscribe(FILLS_SUB)
        await first.send(ack(BBO_SUB))
        await ws.wait_acked(BBO_SUB)
        # The server now goes silent (no pongs either).
        gone = await next_event(ws, Disconnected)
        assert "no inbound frame" in gone.reason
        assert trio.current_time() - t0 == pytest.approx(60.0)
        assert not ws.acked(BBO_SUB)  # acks belong to a connection
        second = await server.accept()
        await next_event(ws, Connected)
        resent = [await second.receive(), await second.receive()]
        assert resent == [
            {"method": "subscribe", "subscription": BBO_SUB},
            {"method": "subscribe", "subscription": FILLS_SUB},
        ]
        # The first connection saw a ping at 45 s and was closed by the client.
        messages = []
        with pytest.raises(FakeClosed):
            while True:
                messages.append(await first.receive())
        assert {"method": "ping"} in messages
        assert first.closed_by_client


# ---------------------------------------------------------------------------------------------
# reconnect backoff


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def keep_alive(conn: FakeServerConn, seconds: float) -> None:
    """Answer pings for `seconds`, then close from the server side."""
    with trio.move_on_after(seconds):
        while True:
            message = await conn.receive()
            if message == {"method": "ping"}:
                await conn.send({"channel": "pong"})
    await conn.close()


async def test_backoff_grows_then_resets_after_healthy_period(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    server.refuse = 4
    async with session(
        server, backoff_initial=0.5, backoff_max=30.0, healthy_after=60.0, silence_timeout=60.0
    ) as ws:
        conn = await server.accept()  # 5th attempt succeeds
        # Jitter multiplies the nominal delay by [0.5, 1): nominal 0.5, 1, 2, 4.
        for gap, nominal in zip(gaps(server.attempts), [0.5, 1.0, 2.0, 4.0], strict=True):
            assert nominal * 0.5 <= gap < nominal
        await ws.wait_connected()
        # A short-lived connection (5 s) does not reset the backoff: next nominal is 8 s.
        await keep_alive(conn, 5)
        conn = await server.accept()
        assert 4.0 <= server.attempts[-1] - server.attempts[-2] - 5 < 8.0
        # A connection that stays healthy for > 60 s resets it: back to nominal 0.5 s.
        await keep_alive(conn, 61)
        t_closed = trio.current_time()
        await server.accept()
        assert 0.25 <= server.attempts[-1] - t_closed < 0.5
        await ws.wait_connected()
        assert ws.connections == 3


async def test_backoff_is_capped(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    server.refuse = 12
    async with session(server, backoff_initial=0.5, backoff_max=4.0):
        await server.accept()
        assert max(gaps(server.attempts)) < 4.0
        assert gaps(server.attempts)[-1] >= 2.0


# ---------------------------------------------------------------------------------------------
# posts


async def test_posts_are_correlated_by_id(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with session(server) as ws, trio.open_nursery() as nursery:
        conn = await server.accept()
        await ws.wait_connected()
        results: dict[str, Any] = {}

        async def action() -> None:
            results["action"] = await ws.post_action({"action": {"type": "order"}, "nonce": 1})

        async def info() -> None:
            results["info"] = await ws.post_info({"type": "l2Book", "coin": "xyz:TSLA"})

        nursery.start_soon(action)
        first = await conn.receive()
        nursery.start_soon(info)
        second = await conn.receive()
        assert first == {
            "method": "post",
            "id": first["id"],
            "request": {"type": "action", "payload": {"action": {"type": "order"}, "nonce": 1}},
        }
        assert second["request"] == {"type": "info", "payload": {"type": "l2Book", "coin": "xyz:TSLA"}}
        assert second["id"] > first["id"]
        # Answer in reverse order; each caller must get its own reply.
        await conn.send(post_reply(second["id"], "info", {"type": "l2Book", "data": {"coin": "xyz:TSLA"}}))
        await conn.send(post_reply(first["id"], "action", RESTING))
    assert results["info"] == {"coin": "xyz:TSLA"}
    assert results["action"] == ActionOk(response_type="order", statuses=(Resting(oid=88383),))


async def test_post_error_reply_and_action_err(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with session(server) as ws, trio.open_nursery() as nursery:
        conn = await server.accept()
        await ws.wait_connected()
        results: list[Any] = []

        async def post() -> None:
            results.append(await ws.post_action({"nonce": 1}))

        nursery.start_soon(post)
        req = await conn.receive()
        await conn.send(post_reply(req["id"], "error", "400 Bad Request"))
        nursery.start_soon(post)
        req = await conn.receive()
        await conn.send(
            post_reply(req["id"], "action", {"status": "err", "response": "Invalid nonce: duplicate"})
        )
        nursery.start_soon(post)
        req = await conn.receive()
        # A post error on the error channel carrying the id fails that post.
        await conn.send({"channel": "error", "data": f"too many pending post requests id={req['id']}"})
    assert results == [
        PostError(message="400 Bad Request"),
        ActionErr(message="Invalid nonce: duplicate"),
        PostError(message=f"too many pending post requests id={req['id']}"),
    ]


async def test_post_timeout_is_never_resent(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    stats = ParseStats()
    async with session(server, post_timeout=10.0, stats=stats) as ws, trio.open_nursery() as nursery:
        conn = await server.accept()
        await ws.wait_connected()
        t0 = trio.current_time()
        with pytest.raises(PostTimeout):
            await ws.post_action({"nonce": 1})
        assert trio.current_time() - t0 == pytest.approx(10.0)
        # A late reply is counted and dropped; the link stays up.
        post = await conn.receive()
        await conn.send(post_reply(post["id"], "action", RESTING))
        nursery.start_soon(keep_alive, conn, 100)
        await trio.sleep(100)
        assert stats.counts["unmatched_post_reply"] == 1
        assert ws.connections == 1
        # The post went out exactly once.
        assert [m for _, m in conn.received if m.get("method") == "post"] == [post]


async def test_posts_fail_on_disconnect_then_not_connected(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with session(server) as ws, trio.open_nursery() as nursery:
        conn = await server.accept()
        await next_event(ws, Connected)
        failures: list[BaseException] = []

        async def post() -> None:
            try:
                await ws.post_action({"nonce": 1})
            except PostFailed as exc:
                failures.append(exc)

        nursery.start_soon(post)
        nursery.start_soon(post)
        await conn.receive()
        await conn.receive()
        t0 = trio.current_time()
        await conn.close()
        gone = await next_event(ws, Disconnected)
        assert "closed" in gone.reason
        await trio.testing.wait_all_tasks_blocked()
        assert len(failures) == 2 and all(isinstance(f, ConnectionLost) for f in failures)
        assert trio.current_time() - t0 < 1.0  # failed at once, not after post_timeout
        # Before the reconnect: raise at once, nothing sent.
        assert not ws.is_connected
        with pytest.raises(NotConnected):
            await ws.post_action({"nonce": 2})
        assert trio.current_time() - t0 < 1.0
        second = await server.accept()
        await next_event(ws, Connected)
        assert second.received == []


async def test_not_connected_raises_immediately(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    server.refuse_forever = True
    async with session(server) as ws:
        t0 = trio.current_time()
        with pytest.raises(NotConnected):
            await ws.post_info({"type": "allMids"})
        assert trio.current_time() == t0


async def test_posts_in_flight_are_bounded(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with session(server, max_posts_in_flight=2, post_timeout=100) as ws, trio.open_nursery() as nursery:
        conn = await server.accept()
        await ws.wait_connected()
        for _ in range(3):
            nursery.start_soon(ws.post_action, {"nonce": 1})
        a = await conn.receive()
        b = await conn.receive()
        with trio.move_on_after(20):
            await conn.receive()
            pytest.fail("a third post went out while two were in flight")
        await conn.send(post_reply(a["id"], "action", RESTING))
        c = await conn.receive()
        assert c["method"] == "post" and c["id"] > b["id"]
        await conn.send(post_reply(b["id"], "action", RESTING))
        await conn.send(post_reply(c["id"], "action", RESTING))


async def test_outbound_messages_per_minute_are_bounded(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with (
        session(server, max_messages_per_minute=3, silence_timeout=1000) as ws,
        trio.open_nursery() as n,
    ):
        conn = await server.accept()
        await ws.wait_connected()
        t0 = trio.current_time()
        for coin in ("A", "B", "C", "D", "E"):
            n.start_soon(ws.subscribe, {"type": "bbo", "coin": coin})
        for _ in range(5):
            await conn.receive()
        times = [t - t0 for t, _ in conn.received]
        assert times[:3] == [0.0, 0.0, 0.0]
        assert times[3] == pytest.approx(60.0) and times[4] == pytest.approx(60.0)
        n.cancel_scope.cancel()


async def test_malformed_frames_do_not_break_the_link(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    stats = ParseStats()
    async with session(server, stats=stats) as ws:
        conn = await server.accept()
        await next_event(ws, Connected)
        await conn.send("{not json")
        await conn.send({"channel": "mystery", "data": {}})
        await conn.send({"channel": "error", "data": "Invalid subscription: {}"})
        err = await next_event(ws, ErrorMessage)
        assert err.message == "Invalid subscription: {}"
        assert stats.counts["bad_json"] == 1 and stats.counts["unknown_channel"] == 1
        assert ws.is_connected and ws.connections == 1


async def test_closing_the_session_ends_the_event_stream(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeWsServer()
    async with session(server) as ws:
        conn = await server.accept()
        await next_event(ws, Connected)
    with pytest.raises(FakeClosed):
        while True:
            await conn.receive()
    assert conn.closed_by_client
    leftovers = [event async for event in ws.events]
    assert not any(isinstance(e, Disconnected) for e in leftovers)


# ---------------------------------------------------------------------------------------------
# a real trio-websocket server on loopback (real clock, bounded)


async def test_real_websocket_server_on_loopback() -> None:
    from trio_websocket import WebSocketRequest, serve_websocket

    seen: list[Any] = []

    async def handler(request: WebSocketRequest) -> None:
        import orjson

        conn = await request.accept()
        await conn.send_message(GREETING)
        for _ in range(2):
            message = orjson.loads(await conn.get_message())
            seen.append(message)
            if message["method"] == "subscribe":
                await conn.send_message(orjson.dumps(ack(message["subscription"])).decode())
            elif message["method"] == "post":
                await conn.send_message(orjson.dumps(post_reply(message["id"], "action", RESTING)).decode())
        await conn.get_message()  # wait for the client to close

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            port = server.port
            async with open_ws_session(f"ws://127.0.0.1:{port}/ws") as ws:
                await ws.wait_connected()
                await ws.subscribe(BBO_SUB)
                await ws.wait_acked(BBO_SUB)
                result = await ws.post_action({"nonce": 1})
                assert isinstance(result, ActionOk) and result.statuses == (Resting(oid=88383),)
            nursery.cancel_scope.cancel()
    assert seen[0] == {"method": "subscribe", "subscription": BBO_SUB}


async def test_a_server_error_reply_to_an_order_post_keeps_the_reservation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A `{"type": "error"}` post reply mirrors an HTTP status (hyperliquid.md §7.5): like a non-200
    over HTTP, the order's outcome is unknown, so the tracker must keep its reservation (the order
    may have executed) instead of treating it as refused."""
    tracker = Tracker(
        {TSLA.name: TSLA},
        max_notional_per_market=Decimal(15),
        max_total_notional=Decimal(1000),
        max_concurrent_positions=3,
    )

    def entry() -> ReserveRequest:
        return ReserveRequest(
            Cloid.random(), TSLA, Side.BUY, Size(Decimal(1)), Price(Decimal(10)), False, "entry"
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


def test_session_timing_defaults_are_the_websocket_parameters() -> None:
    # The timing parameters are declared once, in WebsocketParams; open_ws_session's defaults follow
    # them instead of repeating numbers that can drift from the config.
    defaults = {
        name: p.default for name, p in inspect.signature(open_ws_session.__wrapped__).parameters.items()
    }
    params = WebsocketParams()
    assert defaults["ping_after"] == params.ping_after_secs
    assert defaults["silence_timeout"] == params.silence_timeout_secs
    assert defaults["backoff_initial"] == params.reconnect_initial_secs
    assert defaults["backoff_max"] == params.reconnect_max_secs
    assert defaults["healthy_after"] == params.healthy_after_secs
