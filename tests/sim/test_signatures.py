"""The official SDK signs; the simulator, over real loopback HTTP and WS, recovers the signer."""

from __future__ import annotations

from decimal import Decimal

import attrs
import httpx
import trio
from trio_websocket import open_websocket_url

from hip3.sim.config import SimConfig
from hip3.sim.server import Sim, open_sim

from .helpers import TSLA, SdkClient, send_json, statuses, wait_for


def _fresh_nonce(sim: Sim) -> int:
    return sim.engine.now_ms()


async def test_sdk_signed_order_executes_over_http(sim: Sim) -> None:
    client = SdkClient()
    sim.engine.fund(client.address, 10000)
    body = client.order(TSLA, True, "100.2", "1.2", nonce=_fresh_nonce(sim))
    async with httpx.AsyncClient(timeout=5) as http:
        reply = await http.post(sim.exchange_url, json=body)
    assert reply.status_code == 200
    [status] = statuses(reply.json())
    assert status["filled"]["totalSz"] == "1.2"
    assert sim.engine.position(client.address, "TSLA") == Decimal("1.2")


async def test_sdk_signed_order_by_approved_agent(sim: Sim) -> None:
    master, agent = SdkClient(), SdkClient()
    sim.engine.fund(master.address, 10000)
    sim.engine.approve_agent(master.address, agent.address)
    body = agent.order(TSLA, False, "99.9", "1.5", nonce=_fresh_nonce(sim), cloid="0x" + "12" * 16)
    async with httpx.AsyncClient(timeout=5) as http:
        reply = await http.post(sim.exchange_url, json=body)
    [status] = statuses(reply.json())
    assert status["filled"] == {
        "totalSz": "1.5",
        "avgPx": status["filled"]["avgPx"],
        "oid": status["filled"]["oid"],
        "cloid": "0x" + "12" * 16,
    }
    assert sim.engine.position(master.address, "TSLA") == Decimal("-1.5")


async def test_unapproved_signer_is_refused(sim: Sim) -> None:
    master, stranger = SdkClient(), SdkClient()
    sim.engine.fund(master.address, 10000)
    body = stranger.order(TSLA, True, "100.2", "0.5", nonce=_fresh_nonce(sim))
    async with httpx.AsyncClient(timeout=5) as http:
        reply = await http.post(sim.exchange_url, json=body)
    assert reply.json() == {
        "status": "err",
        "response": f"User or API Wallet {stranger.address} does not exist.",
    }
    assert sim.engine.positions(master.address) == {}


async def test_mainnet_signature_is_refused_by_default_and_accepted_by_the_switch(config: SimConfig) -> None:
    """Testnet-signed actions by default; `is_mainnet = true` (`--mainnet-signatures`) flips it."""
    for mainnet_sim in (False, True):
        async with open_sim(attrs.evolve(config, is_mainnet=mainnet_sim)) as sim:
            client = SdkClient()
            sim.engine.fund(client.address, 10000)
            sim.engine.set_book("TSLA", bids=[("100", "1")], asks=[("100.1", "1")])
            sim.engine.set_oracle("TSLA", "100.1")
            async with httpx.AsyncClient(timeout=5) as http:
                for signed_mainnet in (True, False):
                    body = client.sign(
                        SdkClient.order_action(TSLA, True, "100.1", "0.1"),
                        nonce=sim.engine.now_ms() + int(signed_mainnet),
                        is_mainnet=signed_mainnet,
                    )
                    reply = (await http.post(sim.exchange_url, json=body)).json()
                    if signed_mainnet == mainnet_sim:
                        assert statuses(reply)[0]["filled"]["totalSz"] == "0.1"
                    else:  # the other domain recovers some other address
                        assert reply["status"] == "err" and "does not exist" in reply["response"]


async def test_sdk_signed_order_over_ws_post(sim: Sim) -> None:
    client = SdkClient()
    sim.engine.fund(client.address, 10000)
    body = client.order(TSLA, True, "99", "0.2", "Gtc", nonce=_fresh_nonce(sim))
    async with open_websocket_url(sim.ws_url) as ws:
        await send_json(ws, {"method": "post", "id": 7, "request": {"type": "action", "payload": body}})
        reply = await wait_for(ws, lambda m: m.get("channel") == "post")
    assert reply["data"]["id"] == 7
    response = reply["data"]["response"]
    assert response["type"] == "action"
    [status] = statuses(response["payload"])
    assert set(status) == {"resting"}
    assert [o.oid for o in sim.engine.open_orders(client.address)] == [status["resting"]["oid"]]


async def test_official_sdk_exchange_class_end_to_end(config: SimConfig) -> None:
    """The SDK builds, signs and posts the whole request itself (agent for a master, HIP-3 name).

    The SDK signs as testnet ("b") for any URL other than mainnet's: the simulator's default
    accepts that out of the box.
    """

    async with open_sim(config) as sim:
        await _sdk_trade(sim)


async def _sdk_trade(sim: Sim) -> None:
    from hyperliquid.exchange import Exchange
    from hyperliquid.info import Info

    sim.engine.set_oracle("TSLA", "100.1")
    sim.engine.set_book("TSLA", bids=[("100", "1")], asks=[("100.1", "0.5"), ("100.2", "1")])
    master, agent = SdkClient(), SdkClient()
    sim.engine.fund(master.address, 10000)
    sim.engine.approve_agent(master.address, agent.address)

    def trade() -> tuple[dict, dict, list]:
        exchange = Exchange(agent.wallet, sim.base_url, account_address=master.address, perp_dexs=["xyz"])
        opened = exchange.order("xyz:TSLA", True, 1.2, 100.2, {"limit": {"tif": "Ioc"}})
        resting = exchange.order("xyz:TSLA", False, 0.3, 105.0, {"limit": {"tif": "Gtc"}}, reduce_only=True)
        info = Info(sim.base_url, skip_ws=True, perp_dexs=["xyz"])
        return opened, resting, info.open_orders(master.address, dex="xyz")

    opened, resting, open_orders = await trio.to_thread.run_sync(trade)
    assert statuses(opened)[0]["filled"]["totalSz"] == "1.2"
    oid = statuses(resting)[0]["resting"]["oid"]
    assert [o["oid"] for o in open_orders] == [oid]
    assert sim.engine.position(master.address, "TSLA") == Decimal("1.2")
