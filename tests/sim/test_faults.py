"""Every fault switch of `sim.faults`, flipped at run time, over real loopback connections."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs
import httpx
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from hip3.sim.config import SimConfig, load_sim_config
from hip3.sim.faults import MALFORMED_FRAME
from hip3.sim.server import Sim

from .helpers import TSLA, SdkClient, send_json, wait_for


def _funded(sim: Sim) -> SdkClient:
    client = SdkClient()
    sim.engine.fund(client.address, 10000)
    return client


async def _subscribe(ws: Any, sub: dict[str, Any]) -> None:
    await send_json(ws, {"method": "subscribe", "subscription": sub})
    await wait_for(ws, lambda m: m.get("channel") == "subscriptionResponse")


async def _channels_until(ws: Any, wanted: set[str], timeout: float = 2.0) -> list[dict[str, Any]]:
    """Frames (parsed) until every channel in `wanted` was seen."""
    out: list[dict[str, Any]] = []
    with trio.fail_after(timeout):
        while not wanted <= {m.get("channel") for m in out}:
            out.append(json.loads(await ws.get_message()))
    return out


async def _post_order(ws: Any, client: SdkClient, sim: Sim, post_id: int = 1) -> None:
    body = client.order(TSLA, True, "100.1", "0.2", nonce=sim.engine.now_ms() + post_id)
    await send_json(ws, {"method": "post", "id": post_id, "request": {"type": "action", "payload": body}})


def test_faults_load_from_config_and_unknown_key_is_named(tmp_path: Any) -> None:
    from hip3.sim.config import SimConfigError, _default_text

    path = tmp_path / "sim.toml"
    path.write_text(
        _default_text()
        .replace("duplicate_user_fills = false", "duplicate_user_fills = true")
        .replace("stalled_markets = []", 'stalled_markets = ["GOLD"]')
    )
    config = load_sim_config(path)
    assert config.faults.duplicate_user_fills is True and config.faults.stalled_markets == {"GOLD"}
    path.write_text(_default_text() + "\n[exchange2]\n")
    try:
        load_sim_config(path)
    except SimConfigError as exc:
        assert "exchange2" in str(exc)
    else:
        raise AssertionError("unknown table accepted")


async def test_duplicate_user_fills(sim: Sim) -> None:
    client = _funded(sim)
    sim.faults.duplicate_user_fills = True
    async with open_websocket_url(sim.ws_url) as ws:
        await _subscribe(ws, {"type": "userFills", "user": client.address})
        await wait_for(ws, lambda m: m.get("channel") == "userFills")  # snapshot
        await _post_order(ws, client, sim)
        first = await wait_for(ws, lambda m: m.get("channel") == "userFills")
        second = await wait_for(ws, lambda m: m.get("channel") == "userFills")
    assert first == second and first["data"]["fills"][0]["sz"] == "0.2"


async def test_fills_before_post_response(sim: Sim) -> None:
    client = _funded(sim)
    async with open_websocket_url(sim.ws_url) as ws:
        await _subscribe(ws, {"type": "userFills", "user": client.address})
        await wait_for(ws, lambda m: m.get("channel") == "userFills")
        await _post_order(ws, client, sim, 1)
        normal = [m.get("channel") for m in await _channels_until(ws, {"post", "userFills"})]
        assert normal.index("post") < normal.index("userFills")
        sim.faults.fills_before_response = True
        await _post_order(ws, client, sim, 2)
        faulty = [m.get("channel") for m in await _channels_until(ws, {"post", "userFills"})]
        assert faulty.index("userFills") < faulty.index("post")


async def test_delayed_post_response(sim: Sim) -> None:
    client = _funded(sim)
    sim.faults.post_response_delay = 0.4
    async with open_websocket_url(sim.ws_url) as ws:
        await _subscribe(ws, {"type": "userFills", "user": client.address})
        await wait_for(ws, lambda m: m.get("channel") == "userFills")
        start = trio.current_time()
        await _post_order(ws, client, sim)
        await wait_for(ws, lambda m: m.get("channel") == "userFills")
        assert trio.current_time() - start < 0.3  # the fill is streamed at once
        await wait_for(ws, lambda m: m.get("channel") == "post")
        assert trio.current_time() - start >= 0.4
    # over HTTP too
    async with httpx.AsyncClient(timeout=5) as http:
        start = trio.current_time()
        body = client.order(TSLA, True, "100.2", "0.2", nonce=sim.engine.now_ms() + 5)
        reply = await http.post(sim.exchange_url, json=body)
        assert reply.json()["status"] == "ok" and trio.current_time() - start >= 0.4


async def test_post_response_never_sent_but_order_executes(sim: Sim) -> None:
    client = _funded(sim)
    sim.faults.drop_post_responses = True
    async with open_websocket_url(sim.ws_url) as ws:
        await _post_order(ws, client, sim)
        with trio.move_on_after(0.5) as waited:
            await wait_for(ws, lambda m: m.get("channel") == "post", timeout=1)
        assert waited.cancelled_caught
    assert sim.engine.position(client.address, "TSLA") == Decimal("0.2")


async def _wait_closed(ws: Any, timeout: float) -> None:
    with trio.fail_after(timeout):
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed:
            return


async def test_disconnect_at_time(sim: Sim) -> None:
    async with open_websocket_url(sim.ws_url) as ws:
        await ws.get_message()
        sim.faults.disconnect_at = trio.current_time() - sim.start + 0.3
        await _wait_closed(ws, 2)


async def test_random_disconnects(sim: Sim) -> None:
    sim.faults.disconnect_rate = 6000.0  # per minute: certain within a tick or two
    async with open_websocket_url(sim.ws_url) as ws:
        await _wait_closed(ws, 2)


async def test_stale_clearinghouse_state(sim: Sim) -> None:
    client = _funded(sim)
    sim.faults.stale_clearinghouse_delay = 0.5
    async with httpx.AsyncClient(timeout=5) as http, trio.open_nursery() as nursery:
        answers: list[Any] = []

        async def ask() -> None:
            reply = await http.post(
                sim.info_url, json={"type": "clearinghouseState", "user": client.address, "dex": "xyz"}
            )
            answers.append((trio.current_time(), reply.json()))

        start = trio.current_time()
        nursery.start_soon(ask)
        await trio.sleep(0.2)
        sim.engine.handle_exchange(client.order(TSLA, True, "100.1", "0.2", nonce=sim.engine.now_ms()))
        assert sim.engine.position(client.address, "TSLA") == Decimal("0.2")
    [(at, state)] = answers
    assert at - start >= 0.5
    assert state["assetPositions"] == []  # computed before the fill, delivered after it


async def test_feed_stall_per_market(config: SimConfig) -> None:
    from hip3.sim.server import open_sim

    async with open_sim(config) as sim:
        sim.faults.stalled_markets = {"TSLA"}
        async with open_websocket_url(sim.ws_url) as ws:
            for coin in ("xyz:TSLA", "xyz:NVDA"):
                await _subscribe(ws, {"type": "bbo", "coin": coin})
            coins: list[str] = []
            with trio.move_on_after(1.5):
                while True:
                    msg = json.loads(await ws.get_message())
                    if msg.get("channel") == "bbo":
                        coins.append(msg["data"]["coin"])
            assert "xyz:NVDA" in coins and "xyz:TSLA" not in coins
            sim.faults.stalled_markets = set()
            await wait_for(ws, lambda m: m.get("channel") == "bbo" and m["data"]["coin"] == "xyz:TSLA")


async def test_timestamps_go_backwards(sim: Sim) -> None:
    async with open_websocket_url(sim.ws_url) as ws:
        await _subscribe(ws, {"type": "bbo", "coin": "xyz:NVDA"})
        before = await wait_for(ws, lambda m: m.get("channel") == "bbo")
        sim.faults.timestamps_backwards_ms = 60_000
        after = await wait_for(ws, lambda m: m.get("channel") == "bbo")
    assert after["data"]["time"] < before["data"]["time"]


async def test_malformed_frames(sim: Sim) -> None:
    sim.faults.malformed_frame_rate = 1.0
    async with open_websocket_url(sim.ws_url) as ws:
        await send_json(ws, {"method": "subscribe", "subscription": {"type": "bbo", "coin": "xyz:NVDA"}})
        with trio.fail_after(2):
            while (await ws.get_message()) != MALFORMED_FRAME:
                pass
        sim.faults.malformed_frame_rate = 0.0


async def test_info_429(sim: Sim) -> None:
    sim.faults.info_429_next = 2
    async with httpx.AsyncClient(timeout=5) as http:
        codes = [(await http.post(sim.info_url, json={"type": "perpDexs"})).status_code for _ in range(3)]
        assert codes == [429, 429, 200]
        sim.faults.info_429_rate = 1.0
        assert (await http.post(sim.info_url, json={"type": "perpDexs"})).status_code == 429
        sim.faults.info_429_rate = 0.0


def test_faults_object_is_shared_with_config() -> None:
    config = load_sim_config(None)
    faults = attrs.evolve(config.faults)
    faults.info_429_next = 3
    assert faults.take_info_429() and faults.info_429_next == 2


async def test_action_delay_lets_expires_after_pass(config: SimConfig, autojump_clock: Any) -> None:
    from hip3.sim.server import open_sim

    async with open_sim(attrs.evolve(config, start_time_ms=1_700_000_000_000)) as sim:
        sim.engine.set_oracle("TSLA", "100.1")
        sim.engine.set_book("TSLA", bids=[("100", "1")], asks=[("100.1", "1")])
        client = _funded(sim)
        sim.faults.action_delay = 1.0  # the path to the validators takes a second
        async with open_websocket_url(sim.ws_url) as ws:
            for post_id, expires_in in ((1, 500), (2, 3000)):
                now = sim.engine.now_ms()
                body = client.order(
                    TSLA, True, "100.1", "0.2", nonce=now + post_id, expires_after=now + expires_in
                )
                start = trio.current_time()
                await send_json(
                    ws, {"method": "post", "id": post_id, "request": {"type": "action", "payload": body}}
                )
                reply = await wait_for(ws, lambda m: m.get("channel") == "post", timeout=5)
                assert trio.current_time() - start >= 1.0
                payload = reply["data"]["response"]["payload"]
                if expires_in < 1000:
                    assert payload == {"status": "err", "response": "Action already expired"}
                else:
                    assert payload["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.2"
    assert sim.engine.position(client.address, "TSLA") == Decimal("0.2")
