"""Foreign account activity the bot did not send: liquidation, a web-app close, another client's orders.

In-process (`sim.liquidate`, `sim.manual_close`, `sim.foreign_order`) and over `POST /control`
(for a simulator in its own process), each seen on the user's streams like any other fill.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from hip3.sim.config import SimConfig
from hip3.sim.foreign import LIQUIDATOR, OpError
from hip3.sim.ops import run_op
from hip3.sim.server import Sim, open_sim

from .helpers import TSLA, SdkClient, send_json, statuses, wait_for

D = Decimal


def _long(sim: Sim, size: str = "0.5") -> SdkClient:
    trader = SdkClient()
    sim.engine.fund(trader.address, 10000)
    body = trader.order(TSLA, True, "100.3", size, nonce=sim.engine.now_ms(), cloid="0x" + "aa" * 16)
    assert "filled" in statuses(sim.execute_action(body)[0])[0]
    return trader


async def test_liquidation_closes_without_cloid_and_is_streamed(sim: Sim) -> None:
    trader = _long(sim)
    sim.engine.update_mark("TSLA", D("99"))
    resting = trader.order(TSLA, False, "105", "0.2", "Gtc", nonce=sim.engine.now_ms() + 1, reduce_only=True)
    sim.execute_action(resting)
    async with open_websocket_url(sim.ws_url) as ws:
        for sub in (
            {"type": "userFills", "user": trader.address},
            {"type": "userEvents", "user": trader.address},
        ):
            await send_json(ws, {"method": "subscribe", "subscription": sub})
        await wait_for(ws, lambda m: m.get("channel") == "userFills" and m["data"].get("isSnapshot"))
        [fill] = sim.liquidate(trader.address, "TSLA")
        streamed = await wait_for(ws, lambda m: m.get("channel") == "userFills")
        event = await wait_for(ws, lambda m: m.get("channel") == "user" and "liquidation" in m["data"])
    assert "cloid" not in fill and fill["px"] == "99.0" and fill["sz"] == "0.5"
    assert fill["dir"] == "Close Long" and fill["startPosition"] == "0.5"
    assert fill["closedPnl"] == "-0.55"  # (99 - 100.1) × 0.5
    assert fill["liquidation"]["liquidatedUser"] == trader.address
    assert streamed["data"]["fills"] == [fill]
    assert event["data"]["liquidation"]["liquidated_user"] == trader.address
    assert event["data"]["liquidation"]["liquidator"] == LIQUIDATOR
    assert sim.engine.positions(trader.address) == {} and sim.engine.open_orders(trader.address) == []
    statuses_seen = [o.status for o in sim.engine.orders.values() if o.user == trader.address]
    assert "liquidatedCanceled" in statuses_seen


def test_nothing_to_liquidate_or_close_is_an_error(engine: Any, trader: SdkClient) -> None:
    from hip3.sim.foreign import liquidate, manual_close

    with pytest.raises(OpError, match="no position in xyz:TSLA"):
        liquidate(engine, trader.address, "TSLA")
    with pytest.raises(OpError, match="no position"):
        manual_close(engine, trader.address, "TSLA")
    with pytest.raises(OpError, match="no simulator account"):
        liquidate(engine, "0x" + "99" * 20, "TSLA")


async def test_manual_close_is_a_market_order_without_cloid(sim: Sim) -> None:
    trader = _long(sim, "1.2")  # 0.5 @ 100.1 + 0.7 @ 100.2
    status = sim.manual_close(trader.address, "TSLA", "0.2")  # the web app closes part
    assert status["filled"]["totalSz"] == "0.2" and "cloid" not in status["filled"]
    assert sim.engine.position(trader.address, "TSLA") == D("1.0")
    status = sim.manual_close(trader.address, "TSLA")
    assert status["filled"]["totalSz"] == "1.0"
    fills = sim.engine.fills(trader.address)
    assert [f.get("cloid") for f in fills[-2:]] == [None, None]
    assert all(f["dir"] == "Close Long" and f["crossed"] for f in fills[-2:])
    assert sim.engine.positions(trader.address) == {}


async def test_another_clients_order_has_its_own_cloid(config: SimConfig) -> None:
    cloids = []
    for _ in range(2):  # the injected cloids are deterministic for a seed
        async with open_sim(config) as sim:
            sim.engine.set_oracle("TSLA", "100.1")
            sim.engine.set_book("TSLA", bids=[("100", "5")], asks=[("100.1", "5")])
            trader = _long(sim)
            status = sim.foreign_order(trader.address, "TSLA", is_buy=True, sz="0.3")
            assert status["filled"]["totalSz"] == "0.3"
            cloid = status["filled"]["cloid"]
            assert cloid != "0x" + "aa" * 16 and len(cloid) == 34
            given = sim.foreign_order(
                trader.address, "TSLA", is_buy=True, sz="0.2", px="99", tif="Gtc", cloid="0x" + "cd" * 16
            )
            assert given["resting"]["cloid"] == "0x" + "cd" * 16
            assert sim.engine.position(trader.address, "TSLA") == D("0.8")  # the resting bid not filled
            cloids.append(cloid)
    assert cloids[0] == cloids[1]


async def test_control_endpoint_for_a_simulator_in_another_process(sim: Sim) -> None:
    trader = _long(sim)
    async with httpx.AsyncClient(timeout=5) as http:
        bad = await http.post(sim.base_url + "/control", json={"op": "explode"})
        assert bad.status_code == 400 and "op: expected one of liquidate" in bad.text
        missing = await http.post(sim.base_url + "/control", json={"op": "liquidate", "coin": "TSLA"})
        assert missing.status_code == 400 and "user: expected a string" in missing.text
        fault = await http.post(
            sim.base_url + "/control", json={"op": "fault", "name": "info_429_next", "value": 2}
        )
        assert fault.json() == {"status": "ok", "result": "ok"} and sim.faults.info_429_next == 2
        sim.faults.info_429_next = 0
        reply = await http.post(
            sim.base_url + "/control", json={"op": "liquidate", "user": trader.address, "coin": "xyz:TSLA"}
        )
        assert reply.status_code == 200
        [fill] = reply.json()["result"]
        assert "cloid" not in fill and fill["sz"] == "0.5"
        sim.engine.set_oracle("NVDA", "250")  # far above NVDA's book: a dislocation
        await trio.sleep(0.2)
        records = (await http.post(sim.base_url + "/control", json={"op": "dislocations"})).json()["result"]
    assert sim.engine.positions(trader.address) == {}
    assert any(r["coin"] == "xyz:NVDA" and r["closedMs"] is None and r["side"] == "B" for r in records)


async def test_run_op_in_process_checks_its_arguments(sim: Sim) -> None:
    with pytest.raises(OpError, match="expected a JSON object"):
        run_op(sim, [1])
    with pytest.raises(OpError, match="value: duplicate_user_fills expects true or false"):
        run_op(sim, {"op": "fault", "name": "duplicate_user_fills", "value": 3})
    with pytest.raises(OpError, match="unknown market 'NOPE'"):
        run_op(sim, {"op": "halt", "coin": "NOPE"})
