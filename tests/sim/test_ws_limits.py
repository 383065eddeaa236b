"""Hostile or slow WebSocket clients cannot grow the simulator: short error replies, outbound
queues bounded in bytes, a client that stops reading is disconnected."""

from __future__ import annotations

import json
from typing import Any

import attrs
import trio
from trio_websocket import open_websocket_url

from hip3.sim.config import SimConfig
from hip3.sim.server import open_sim

from .helpers import send_json, wait_for


async def test_error_reply_to_a_huge_invalid_frame_is_a_short_excerpt(config: SimConfig) -> None:
    async with open_sim(config) as sim, open_websocket_url(sim.ws_url, max_message_size=2**24) as ws:
        await ws.get_message()
        junk = "{" + "x" * 200_000
        await ws.send_message(junk)
        err = await wait_for(ws, lambda m: m.get("channel") == "error")
        assert len(err["data"]) < 400, len(err["data"])
        assert err["data"].startswith("Error parsing JSON into valid websocket request: {xxxx")
        huge_sub = {"type": "bbo", "coin": "xyz:TSLA", "pad": "y" * 100_000}
        await send_json(ws, {"method": "subscribe", "subscription": huge_sub})
        await wait_for(ws, lambda m: m.get("channel") == "subscriptionResponse")
        await send_json(ws, {"method": "subscribe", "subscription": huge_sub})  # already subscribed
        err = await wait_for(ws, lambda m: m.get("channel") == "error")
        assert err["data"].startswith("Already subscribed: ") and len(err["data"]) < 400


async def test_a_client_that_stops_reading_is_disconnected_and_its_queue_stays_bounded(
    config: SimConfig,
) -> None:
    limit = 1_000_000
    cfg = attrs.evolve(config, ws_max_queued_bytes=limit)
    async with open_sim(cfg) as sim:
        user = "0x" + "ab" * 20
        acct = sim.engine.fund(user, 100)
        fill: dict[str, Any] = {
            "coin": "xyz:TSLA",
            "px": "100.0",
            "sz": "1.0",
            "side": "B",
            "time": 1,
            "startPosition": "0.0",
            "dir": "Open Long",
            "closedPnl": "0.0",
            "hash": "0x" + "00" * 32,
            "oid": 1,
            "crossed": True,
            "fee": "0.0",
            "tid": 1,
            "feeToken": "USDC",
            "twapId": None,
        }
        acct.fills.extend([fill] * 2000)  # each userFills answer is ~600 kB
        peak = 0
        # the client sends requests but never reads: its reader stops, the socket buffers fill up
        async with open_websocket_url(sim.ws_url, message_queue_size=0, max_message_size=2**24) as ws:
            assert await ws.get_message() == "Websocket connection established."
            assert len(sim.hub.connections) == 1
            request = {
                "method": "post",
                "request": {"type": "info", "payload": {"type": "userFills", "user": user}},
            }
            sent = 0
            with trio.fail_after(20):
                while sim.hub.connections and sent < 2000:
                    await ws.send_message(json.dumps({**request, "id": sent}))
                    sent += 1
                    peak = max([peak, *(c.queued_bytes for c in sim.hub.connections)])
                    await trio.sleep(0.001)
                while sim.hub.connections:  # the server, not this client, ends the connection
                    peak = max([peak, *(c.queued_bytes for c in sim.hub.connections)])
                    await trio.sleep(0.01)
        assert 0 < peak <= limit and sent < 2000, (peak, sent)
        # the simulator keeps serving everyone else
        async with open_websocket_url(sim.ws_url) as other:
            assert await other.get_message() == "Websocket connection established."
