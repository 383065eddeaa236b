"""The loopback server: HTTP /info and /exchange, WS protocol (greeting, acks, pong, post, errors)."""

from __future__ import annotations

import json

import attrs
import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from hip3.sim.config import SimConfig
from hip3.sim.server import Sim, open_sim

from .helpers import TSLA, SdkClient, recv_json, send_json, wait_for

PREFIX = "Failed to deserialize the JSON body into the target type: "


async def test_http_bad_input_is_422_and_server_survives(sim: Sim) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        for url, content in [
            (sim.info_url, b"{not json"),
            (sim.exchange_url, b"\xff\xfe"),
            (sim.info_url, b'{"type":"nope"}'),
            (sim.info_url, b"[1,2]"),
            (
                sim.exchange_url,
                b'{"action":{"type":"order","orders":[{"a":"x"}],"grouping":"na"},"nonce":1,"signature":{}}',
            ),
        ]:
            reply = await http.post(url, content=content, headers={"content-type": "application/json"})
            assert reply.status_code == 422, (content, reply.text)
            assert reply.text.startswith(PREFIX)
        assert (await http.post(sim.base_url + "/nope", json={})).status_code == 404
        assert (await http.get(sim.info_url)).status_code == 405
        ok = await http.post(sim.info_url, json={"type": "meta", "dex": "xyz"})
    assert ok.status_code == 200 and ok.json()["universe"][0]["name"] == "xyz:TSLA"


async def test_info_over_http(sim: Sim) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        dexes = (await http.post(sim.info_url, json={"type": "perpDexs"})).json()
        book = (await http.post(sim.info_url, json={"type": "l2Book", "coin": "xyz:TSLA"})).json()
        mids = (await http.post(sim.info_url, json={"type": "allMids", "dex": "xyz"})).json()
    assert dexes[0] is None and dexes[1]["name"] == "xyz"
    assert book["coin"] == "xyz:TSLA" and isinstance(book["time"], int)
    assert book["levels"][1][:3] == [
        {"px": "100.1", "sz": "0.5", "n": 1},
        {"px": "100.2", "sz": "1.0", "n": 1},
        {"px": "100.3", "sz": "2.0", "n": 1},
    ]
    assert set(mids) == {"xyz:TSLA", "xyz:NVDA", "xyz:GOLD", "xyz:SILVER", "xyz:PLATINUM", "xyz:HOOD"}


async def test_ws_greeting_ping_subscribe_ack_and_errors(sim: Sim) -> None:
    async with open_websocket_url(sim.ws_url) as ws:
        assert await ws.get_message() == "Websocket connection established."
        await send_json(ws, {"method": "ping"})
        assert await recv_json(ws) == {"channel": "pong"}
        sub = {"type": "l2Book", "coin": "xyz:TSLA"}
        await send_json(ws, {"method": "subscribe", "subscription": sub})
        ack = await recv_json(ws)
        assert ack == {
            "channel": "subscriptionResponse",
            "data": {"method": "subscribe", "subscription": {**sub, "nSigFigs": None, "mantissa": None}},
        }
        snapshot = await recv_json(ws)
        assert snapshot["channel"] == "l2Book" and snapshot["data"]["levels"][0][0]["px"] == "100.0"
        await send_json(ws, {"method": "subscribe", "subscription": sub})
        err = await wait_for(ws, lambda m: m.get("channel") == "error")
        assert err["data"] == 'Already subscribed: {"type":"l2Book","coin":"xyz:TSLA"}'
        await send_json(ws, {"method": "unsubscribe", "subscription": sub})
        await wait_for(
            ws, lambda m: m.get("channel") == "subscriptionResponse" and m["data"]["method"] == "unsubscribe"
        )
        await send_json(ws, {"method": "unsubscribe", "subscription": sub})
        err = await wait_for(ws, lambda m: m.get("channel") == "error")
        assert err["data"].startswith("Already unsubscribed: ")
        await ws.send_message("{oops")
        err = await wait_for(ws, lambda m: m.get("channel") == "error")
        assert err["data"] == "Error parsing JSON into valid websocket request: {oops"
        await send_json(ws, {"method": "subscribe", "subscription": {"type": "candles", "coin": "xyz:TSLA"}})
        err = await wait_for(ws, lambda m: m.get("channel") == "error")
        assert err["data"].startswith("Error parsing JSON into valid websocket request: ")
        await send_json(ws, {"method": "post", "request": {"type": "info"}})  # no id
        err = await wait_for(ws, lambda m: m.get("channel") == "error")
        assert err["data"].startswith("Error parsing JSON into valid websocket request: ")
        # still alive
        await send_json(ws, {"method": "ping"})
        assert await wait_for(ws, lambda m: m.get("channel") == "pong") == {"channel": "pong"}


async def test_ws_post_info_and_bad_post(sim: Sim) -> None:
    async with open_websocket_url(sim.ws_url) as ws:
        await send_json(
            ws,
            {
                "method": "post",
                "id": 3,
                "request": {"type": "info", "payload": {"type": "l2Book", "coin": "xyz:TSLA"}},
            },
        )
        reply = await wait_for(ws, lambda m: m.get("channel") == "post")
        assert reply["data"]["id"] == 3
        payload = reply["data"]["response"]
        assert payload["type"] == "info" and payload["payload"]["type"] == "l2Book"
        assert payload["payload"]["data"]["coin"] == "xyz:TSLA"
        await send_json(
            ws, {"method": "post", "id": 4, "request": {"type": "info", "payload": {"type": "bogus"}}}
        )
        reply = await wait_for(ws, lambda m: m.get("channel") == "post")
        assert reply["data"]["id"] == 4 and reply["data"]["response"]["type"] == "error"
        assert reply["data"]["response"]["payload"].startswith(PREFIX)
        await send_json(
            ws, {"method": "post", "id": 5, "request": {"type": "action", "payload": {"action": 1}}}
        )
        reply = await wait_for(ws, lambda m: m.get("channel") == "post")
        assert reply["data"]["id"] == 5 and reply["data"]["response"]["type"] == "error"


async def test_user_streams_snapshot_then_updates(sim: Sim) -> None:
    client = SdkClient()
    sim.engine.fund(client.address, 10000)
    sim.engine.handle_exchange(client.order(TSLA, True, "100.1", "0.2", nonce=sim.engine.now_ms()))
    async with open_websocket_url(sim.ws_url) as ws:
        await send_json(
            ws,
            {
                "method": "subscribe",
                "subscription": {"type": "userFills", "user": client.address.upper().replace("0X", "0x")},
            },
        )
        ack = await wait_for(ws, lambda m: m.get("channel") == "subscriptionResponse")
        assert ack["data"]["subscription"]["user"] == client.address
        snapshot = await wait_for(ws, lambda m: m.get("channel") == "userFills")
        assert snapshot["data"]["isSnapshot"] is True and len(snapshot["data"]["fills"]) == 1
        await send_json(
            ws, {"method": "subscribe", "subscription": {"type": "orderUpdates", "user": client.address}}
        )
        await wait_for(ws, lambda m: m.get("channel") == "subscriptionResponse")
        body = client.order(TSLA, True, "100.2", "0.5", nonce=sim.engine.now_ms() + 1)
        await send_json(ws, {"method": "post", "id": 1, "request": {"type": "action", "payload": body}})
        seen: list[str] = []
        fills_msg = None
        with trio.fail_after(2):
            while "userFills" not in seen or "orderUpdates" not in seen or "post" not in seen:
                msg = json.loads(await ws.get_message())
                seen.append(msg.get("channel"))
                if msg.get("channel") == "userFills":
                    fills_msg = msg
        assert seen.index("post") < seen.index("userFills")  # response before the user events
        assert fills_msg is not None and "isSnapshot" not in fills_msg["data"]
        assert [f["sz"] for f in fills_msg["data"]["fills"]] == ["0.3", "0.2"]  # 100.1 rest, then 100.2


async def test_market_streams(sim: Sim) -> None:
    async with open_websocket_url(sim.ws_url) as ws:
        for sub in (
            {"type": "bbo", "coin": "xyz:NVDA"},
            {"type": "activeAssetCtx", "coin": "xyz:NVDA"},
            {"type": "allMids", "dex": "xyz"},
        ):
            await send_json(ws, {"method": "subscribe", "subscription": sub})
        bbo = await wait_for(ws, lambda m: m.get("channel") == "bbo")
        assert bbo["data"]["coin"] == "xyz:NVDA" and len(bbo["data"]["bbo"]) == 2
        ctx = await wait_for(ws, lambda m: m.get("channel") == "activeAssetCtx")
        assert set(ctx["data"]["ctx"]) >= {
            "oraclePx",
            "markPx",
            "midPx",
            "funding",
            "openInterest",
            "impactPxs",
        }
        assert all(isinstance(ctx["data"]["ctx"][k], str) for k in ("oraclePx", "markPx", "funding"))
        mids = await wait_for(ws, lambda m: m.get("channel") == "allMids")
        assert "xyz:NVDA" in mids["data"]["mids"]
        # makers requote every 0.5 s with fresh sizes: more bbo updates follow
        await wait_for(ws, lambda m: m.get("channel") == "bbo", timeout=2)


async def test_ws_closes_after_client_silence(config: SimConfig) -> None:
    async with open_sim(attrs.evolve(config, ws_idle_timeout=0.3)) as sim:
        async with open_websocket_url(sim.ws_url) as ws:
            await ws.get_message()
            with trio.fail_after(2):
                try:
                    while True:
                        await ws.get_message()
                except ConnectionClosed:
                    pass


async def test_user_events_and_trades_channels(sim: Sim) -> None:
    client = SdkClient()
    sim.engine.fund(client.address, 10000)
    async with open_websocket_url(sim.ws_url) as ws:
        await send_json(
            ws, {"method": "subscribe", "subscription": {"type": "userEvents", "user": client.address}}
        )
        await send_json(ws, {"method": "subscribe", "subscription": {"type": "trades", "coin": "xyz:TSLA"}})
        for _ in range(2):
            await wait_for(ws, lambda m: m.get("channel") == "subscriptionResponse")
        body = client.order(TSLA, True, "100.2", "0.7", nonce=sim.engine.now_ms())
        await send_json(ws, {"method": "post", "id": 9, "request": {"type": "action", "payload": body}})
        user = await wait_for(ws, lambda m: m.get("channel") == "user")
        trades = await wait_for(ws, lambda m: m.get("channel") == "trades")
    assert [f["sz"] for f in user["data"]["fills"]] == ["0.5", "0.2"]
    assert [(t["px"], t["sz"], t["side"]) for t in trades["data"]] == [
        ("100.1", "0.5", "B"),
        ("100.2", "0.2", "B"),
    ]
    assert [t["tid"] for t in trades["data"]] == [f["tid"] for f in user["data"]["fills"]]
    assert trades["data"][0]["users"][0] == client.address


async def test_runtime_faults_are_private_to_the_sim(config: SimConfig) -> None:
    async with open_sim(config) as sim:
        sim.faults.info_429_next = 5
        sim.faults.stalled_markets.add("GOLD")
    assert config.faults.info_429_next == 0 and config.faults.stalled_markets == set()


async def test_unknown_coin_subscription_closes_the_socket(sim: Sim) -> None:
    """One unknown or miscased coin and the exchange drops the socket with every subscription on it."""
    for coin in ("xyz:NOPE", "XYZ:TSLA", "TSLA"):
        async with open_websocket_url(sim.ws_url) as ws:
            await ws.get_message()
            await send_json(ws, {"method": "subscribe", "subscription": {"type": "bbo", "coin": "xyz:NVDA"}})
            await wait_for(ws, lambda m: m.get("channel") == "bbo")
            await send_json(ws, {"method": "subscribe", "subscription": {"type": "l2Book", "coin": coin}})
            seen: list[str] = []
            with trio.fail_after(2):
                try:
                    while True:
                        seen.append(json.loads(await ws.get_message()).get("channel"))
                except ConnectionClosed:
                    pass
            assert "error" not in seen and "l2Book" not in seen
