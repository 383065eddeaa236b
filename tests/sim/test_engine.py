"""Matching, fills, accounts and every validation error string, against the engine directly.

Expected values are hand-computed from the fixed book in conftest (TSLA asks 100.1×0.5, 100.2×1,
100.3×2; bids 100×1, 99.9×2) and the HIP-3 fees: TSLA is in growth mode at scale 1, so tier 0
pays 0.045 % × 2 × 0.1 = 0.9 bp taker and 0.015 % × 2 × 0.1 = 0.3 bp maker.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from hip3.sim.engine import Engine
from hip3.sim.info import clearinghouse_state, handle_info
from hip3.sim.requests import BadRequest

from .helpers import NOW_MS, NVDA, TSLA, SdkClient, statuses


def test_ioc_buy_walks_two_levels_one_fill_per_level(engine: Engine, trader: SdkClient) -> None:
    response = engine.handle_exchange(trader.order(TSLA, True, "100.3", "1.2", cloid="0x" + "ab" * 16))
    [status] = statuses(response)
    filled = status["filled"]
    assert filled["totalSz"] == "1.2"
    assert Decimal(filled["avgPx"]) == pytest.approx(Decimal("120.19") / Decimal("1.2"), abs=Decimal("1e-8"))
    assert filled["cloid"] == "0x" + "ab" * 16
    f1, f2 = engine.fills(trader.address)
    assert (f1["px"], f1["sz"], f2["px"], f2["sz"]) == ("100.1", "0.5", "100.2", "0.7")
    assert f1["oid"] == f2["oid"] == filled["oid"]
    assert f1["hash"] == f2["hash"] and f1["time"] == f2["time"] == NOW_MS
    assert f1["tid"] != f2["tid"]
    assert (f1["startPosition"], f2["startPosition"]) == ("0.0", "0.5")
    assert f1["dir"] == f2["dir"] == "Open Long"
    assert f1["crossed"] is True and f1["side"] == "B" and f1["coin"] == "xyz:TSLA"
    # 50.05 × 0.9 bp = 0.0045045 (half-even → 0.004504), 70.14 × 0.9 bp = 0.0063126
    assert (f1["fee"], f2["fee"]) == ("0.004504", "0.006313")
    assert f1["cloid"] == "0x" + "ab" * 16 and f1["feeToken"] == "USDC"
    assert engine.position(trader.address, "TSLA") == Decimal("1.2")
    # the consumed levels are gone; the rest of 100.2 remains
    market = engine.market("TSLA")
    assert [(o.limit_px, o.sz) for o in market.asks] == [
        (Decimal("100.2"), Decimal("0.3")),
        (Decimal("100.3"), Decimal(2)),
    ]


def test_sell_through_position_flips_with_close_then_flip_dir(engine: Engine, trader: SdkClient) -> None:
    engine.handle_exchange(trader.order(TSLA, True, "100.3", "1.2"))
    engine.handle_exchange(trader.order(TSLA, False, "99.9", "2"))
    _, _, close, flip = engine.fills(trader.address)
    entry = Decimal("120.19") / Decimal("1.2")
    assert (close["px"], close["sz"], close["startPosition"], close["dir"]) == (
        "100.0",
        "1.0",
        "1.2",
        "Close Long",
    )
    assert (flip["px"], flip["sz"], flip["startPosition"], flip["dir"]) == (
        "99.9",
        "1.0",
        "0.2",
        "Long > Short",
    )
    assert Decimal(close["closedPnl"]) == ((Decimal(100) - entry) * 1).quantize(Decimal("0.000001"))
    assert Decimal(flip["closedPnl"]) == ((Decimal("99.9") - entry) * Decimal("0.2")).quantize(
        Decimal("0.000001")
    )
    assert engine.position(trader.address, "xyz:TSLA") == Decimal("-0.8")
    state = clearinghouse_state(engine, trader.address, True)
    [pos] = state["assetPositions"]
    assert pos["type"] == "oneWay"
    assert pos["position"]["szi"] == "-0.8" and pos["position"]["entryPx"] == "99.9"
    assert pos["position"]["leverage"] == {
        "type": "isolated",
        "value": 5,
        "rawUsd": pos["position"]["leverage"]["rawUsd"],
    }


def test_short_to_long_flip_dir(engine: Engine, trader: SdkClient) -> None:
    engine.handle_exchange(trader.order(TSLA, False, "100", "0.5"))
    engine.set_book("TSLA", bids=[("99", "1")], asks=[("100.1", "2")])
    engine.handle_exchange(trader.order(TSLA, True, "100.1", "1"))
    fills = engine.fills(trader.address)
    assert [(f["dir"], f["startPosition"], f["sz"]) for f in fills] == [
        ("Open Short", "0.0", "0.5"),
        ("Short > Long", "-0.5", "1.0"),  # a flip within one maker level is one fill
    ]
    assert Decimal(fills[1]["closedPnl"]) == Decimal("-0.05")  # (100 - 100.1) × 0.5
    assert engine.position(trader.address, "TSLA") == Decimal("0.5")


def test_fees_and_balance_after_round_trip(engine: Engine, trader: SdkClient) -> None:
    engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5"))
    engine.handle_exchange(trader.order(TSLA, False, "100", "0.5"))
    acct = engine.account(trader.address)
    assert acct is not None
    fee_in, fee_out = Decimal("0.004504"), Decimal("0.0045")  # 50.05, 50.00 × 0.9 bp
    assert acct.fees_paid == fee_in + fee_out
    assert acct.realized_pnl == Decimal("-0.05")
    assert acct.balance == Decimal(10000) - fee_in - fee_out - Decimal("0.05")
    assert engine.positions(trader.address) == {}
    assert clearinghouse_state(engine, trader.address, True)["assetPositions"] == []


def test_gtc_rests_then_fills_as_maker_when_makers_cross_it(engine: Engine, trader: SdkClient) -> None:
    [status] = statuses(engine.handle_exchange(trader.order(TSLA, True, "100.05", "0.2", "Gtc")))
    oid = status["resting"]["oid"]
    assert [o.oid for o in engine.open_orders(trader.address)] == [oid]
    # makers requote through the resting bid: it trades at its own price as maker (crossed false)
    engine.set_book("TSLA", bids=[("99.8", "1")], asks=[("100", "3")])
    [fill] = engine.fills(trader.address)
    assert (fill["px"], fill["sz"], fill["crossed"], fill["oid"]) == ("100.05", "0.2", False, oid)
    assert fill["fee"] == "0.0006"  # 20.01 × 0.3 bp = 0.0006003
    assert engine.order_status(trader.address, oid)["order"]["status"] == "filled"


def test_gtc_partial_fill_rests_remainder(engine: Engine, trader: SdkClient) -> None:
    [status] = statuses(engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.8", "Gtc")))
    assert "resting" in status
    [fill] = engine.fills(trader.address)
    assert fill["sz"] == "0.5"
    [order] = engine.open_orders(trader.address)
    assert (order.sz, order.orig_sz, order.limit_px) == (Decimal("0.3"), Decimal("0.8"), Decimal("100.1"))


def test_alo_rests_and_cancel_then_cancel_again(engine: Engine, trader: SdkClient) -> None:
    [status] = statuses(engine.handle_exchange(trader.order(TSLA, True, "99.5", "0.2", "Alo")))
    oid = status["resting"]["oid"]
    assert statuses(engine.handle_exchange(trader.cancel(TSLA, oid))) == ["success"]
    assert statuses(engine.handle_exchange(trader.cancel(TSLA, oid))) == [
        {"error": "Order was never placed, already canceled, or filled. asset=110000"}
    ]
    assert engine.order_status(trader.address, oid)["order"]["status"] == "canceled"


def test_cancel_by_cloid(engine: Engine, trader: SdkClient) -> None:
    cloid = "0x" + "0" * 31 + "7"
    engine.handle_exchange(trader.order(TSLA, False, "101", "0.2", "Gtc", cloid=cloid))
    action = {"type": "cancelByCloid", "cancels": [{"asset": TSLA, "cloid": cloid}]}
    assert statuses(engine.handle_exchange(trader.sign(action))) == ["success"]
    assert statuses(engine.handle_exchange(trader.sign(action))) == [
        {"error": "Order was never placed, already canceled, or filled. asset=110000"}
    ]
    status = engine.order_status(trader.address, cloid)
    assert status["order"]["status"] == "canceled" and status["order"]["order"]["cloid"] == cloid


def test_self_trade_cancels_resting_order(engine: Engine, trader: SdkClient) -> None:
    [resting] = statuses(engine.handle_exchange(trader.order(TSLA, False, "100.05", "0.2", "Gtc")))
    engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5"))
    assert (
        engine.order_status(trader.address, resting["resting"]["oid"])["order"]["status"]
        == "selfTradeCanceled"
    )
    [fill] = engine.fills(trader.address)
    assert fill["px"] == "100.1"  # traded with the maker, not with itself


@pytest.mark.parametrize(
    ("asset", "is_buy", "px", "sz", "tif", "expected"),
    [
        (
            TSLA,
            True,
            "100.155",
            "1",
            "Gtc",
            "Price must be divisible by tick size. asset=110000",
        ),  # 6 sig figs
        (
            TSLA,
            True,
            "10.1234",
            "1",
            "Gtc",
            "Price must be divisible by tick size. asset=110000",
        ),  # > 6-3 decimals
        (TSLA, True, "100.1", "0.0001", "Gtc", "Order has invalid size. asset=110000"),  # off the 0.001 lot
        (TSLA, True, "100.1", "0", "Gtc", "Order has zero size. asset=110000"),
        (TSLA, True, "100.1", "0.05", "Ioc", "Order must have minimum value of $10. asset=110000"),  # $5.005
        (
            TSLA,
            True,
            "99",
            "1",
            "Ioc",
            "Order could not immediately match against any resting orders. asset=110000",
        ),
        (
            TSLA,
            True,
            "100.1",
            "0.2",
            "Alo",
            "Post only order would have immediately matched, bbo was 100.0@100.1. asset=110000",
        ),
        (NVDA, True, "300", "5000", "Gtc", "Insufficient margin to place order. asset=110001"),
        (
            TSLA,
            True,
            "181",
            "1",
            "Gtc",
            "Order price cannot be more than 80% away from the reference price. asset=110000",
        ),
        (
            TSLA,
            False,
            "19.9",
            "1",
            "Gtc",
            "Order price cannot be more than 80% away from the reference price. asset=110000",
        ),
    ],
)
def test_order_errors(
    engine: Engine, trader: SdkClient, asset: int, is_buy: bool, px: str, sz: str, tif: str, expected: str
) -> None:
    # SDK float_to_wire keeps these strings as written; zero size goes out as "0"
    action = SdkClient.order_action(asset, is_buy, px, sz, tif)
    action["orders"][0]["p"], action["orders"][0]["s"] = px, sz
    assert statuses(engine.handle_exchange(trader.sign(action))) == [{"error": expected}]
    assert engine.positions(trader.address) == {}


def test_integer_price_is_always_on_grid(engine: Engine, trader: SdkClient) -> None:
    engine.fund(trader.address, 10**9)
    engine.set_oracle("GOLD", "123400")
    [status] = statuses(engine.handle_exchange(trader.order(110002, True, "123456", "0.001", "Gtc")))
    assert "resting" in status


def test_reduce_only_errors_and_shrink(engine: Engine, trader: SdkClient) -> None:
    no_position = engine.handle_exchange(trader.order(TSLA, False, "100", "0.5", reduce_only=True))
    assert statuses(no_position) == [{"error": "Reduce only order would increase position. asset=110000"}]
    engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5"))
    same_side = engine.handle_exchange(trader.order(TSLA, True, "100.2", "0.5", reduce_only=True))
    assert statuses(same_side) == [{"error": "Reduce only order would increase position. asset=110000"}]
    # larger than the position: shrunk to 0.5, never flips; a close below $10 is fine
    [status] = statuses(engine.handle_exchange(trader.order(TSLA, False, "99.9", "3", reduce_only=True)))
    assert status["filled"]["totalSz"] == "0.5"
    assert engine.positions(trader.address) == {}


def test_close_below_min_notional_is_allowed(engine: Engine, trader: SdkClient) -> None:
    engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5"))
    [status] = statuses(engine.handle_exchange(trader.order(TSLA, False, "100", "0.05")))
    assert status["filled"]["totalSz"] == "0.05"


def test_resting_reduce_only_canceled_when_flat(engine: Engine, trader: SdkClient) -> None:
    engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5"))
    [resting] = statuses(
        engine.handle_exchange(trader.order(TSLA, False, "105", "0.5", "Gtc", reduce_only=True))
    )
    engine.handle_exchange(trader.order(TSLA, False, "100", "0.5"))
    status = engine.order_status(trader.address, resting["resting"]["oid"])
    assert status["order"]["status"] == "reduceOnlyCanceled"


def test_margin_uses_leverage(engine: Engine) -> None:
    poor = SdkClient()
    engine.fund(poor.address, 20, leverage=5)
    # 0.3 × 100.3 = 30.09 → 6.02 margin at 5×: fine; 1.2 × 100.3 / 5 = 24.07 > 20: refused
    ok = statuses(engine.handle_exchange(poor.order(TSLA, True, "100.3", "0.3")))
    assert "filled" in ok[0]
    refused = statuses(engine.handle_exchange(poor.order(TSLA, True, "100.3", "1.2")))
    assert refused == [{"error": "Insufficient margin to place order. asset=110000"}]


def test_unknown_signer_refused(engine: Engine) -> None:
    stranger = SdkClient()
    response = engine.handle_exchange(stranger.order(TSLA, True, "100.1", "0.5"))
    assert response == {"status": "err", "response": f"User or API Wallet {stranger.address} does not exist."}


def test_agent_trades_for_master(engine: Engine) -> None:
    master, agent = SdkClient(), SdkClient()
    engine.fund(master.address, 1000)
    engine.approve_agent(master.address, agent.address)
    assert "filled" in statuses(engine.handle_exchange(agent.order(TSLA, True, "100.1", "0.5")))[0]
    assert engine.position(master.address, "TSLA") == Decimal("0.5")
    assert engine.positions(agent.address) == {}


def test_unfunded_master_must_deposit(engine: Engine) -> None:
    master = SdkClient()
    engine.fund(master.address, 0)
    response = engine.handle_exchange(master.order(TSLA, True, "100.1", "0.5"))
    assert response == {
        "status": "err",
        "response": f"Must deposit before performing actions. User: {master.address}",
    }


def test_vault_address_not_registered(engine: Engine, trader: SdkClient) -> None:
    vault = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
    response = engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5", vault=vault))
    assert response == {"status": "err", "response": f"Vault not registered: {vault}"}


def test_expired_action(engine: Engine, trader: SdkClient) -> None:
    response = engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5", expires_after=NOW_MS - 1))
    assert response == {"status": "err", "response": "Action already expired"}


def test_signature_over_other_action_is_other_signer(engine: Engine, trader: SdkClient) -> None:
    body = trader.order(TSLA, True, "100.1", "0.5")
    body["action"]["orders"][0]["s"] = "0.6"  # tampered after signing
    response = engine.handle_exchange(body)
    assert response["status"] == "err" and response["response"].startswith("User or API Wallet 0x")
    assert trader.address not in response["response"]


def test_key_order_of_received_json_does_not_matter(engine: Engine, trader: SdkClient) -> None:
    body = trader.order(TSLA, True, "100.1", "0.5")
    wire = body["action"]["orders"][0]
    body["action"]["orders"][0] = dict(reversed(list(wire.items())))
    body["action"] = dict(reversed(list(body["action"].items())))
    assert "filled" in statuses(engine.handle_exchange(body))[0]


def test_float_price_is_422(engine: Engine, trader: SdkClient) -> None:
    body = trader.order(TSLA, True, "100.1", "0.5")
    body["action"]["orders"][0]["p"] = 100.5
    with pytest.raises(BadRequest) as err:
        engine.handle_exchange(body)
    assert err.value.message == (
        "Failed to deserialize the JSON body into the target type: "
        "orders[0].p: invalid type: floating point `100.5`, expected a string"
    )


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"action": {"type": "order"}, "nonce": 1, "signature": {"r": "0x1", "s": "0x1", "v": 27}},
        {"action": {"type": "order", "orders": [], "grouping": "na"}, "nonce": "1", "signature": {}},
        {"action": {"type": "bogus"}, "nonce": 1, "signature": {"r": "0x1", "s": "0x1", "v": 27}},
        {"nonce": 1},
    ],
)
def test_malformed_bodies_are_422(engine: Engine, body: object) -> None:
    with pytest.raises(BadRequest) as err:
        engine.handle_exchange(body)
    assert err.value.message.startswith("Failed to deserialize the JSON body into the target type: ")


def test_order_updates_and_events(engine: Engine, trader: SdkClient) -> None:
    engine.take_events()
    engine.handle_exchange(trader.order(TSLA, True, "99.5", "0.2", "Gtc"))
    [event] = engine.take_events()
    assert event.channel == "orderUpdates" and event.key == trader.address
    [update] = event.data
    assert (
        update["status"] == "open" and update["order"]["origSz"] == "0.2" and update["order"]["side"] == "B"
    )
    engine.handle_exchange(trader.order(TSLA, True, "100.2", "0.6"))
    events = engine.take_events()
    assert sorted(e.channel for e in events) == ["orderUpdates", "trades", "userFills"]
    [filled] = [e for e in events if e.channel == "orderUpdates"]
    assert filled.data[0]["status"] == "filled" and filled.data[0]["order"]["sz"] == "0.0"


def test_schedule_cancel(engine: Engine, trader: SdkClient, clock: object) -> None:
    engine.handle_exchange(trader.order(TSLA, True, "99.5", "0.2", "Gtc"))
    too_early = engine.handle_exchange(trader.sign({"type": "scheduleCancel", "time": NOW_MS + 1000}))
    assert too_early["status"] == "err"
    ok = engine.handle_exchange(trader.sign({"type": "scheduleCancel", "time": NOW_MS + 10_000}))
    assert ok == {"status": "ok", "response": {"type": "default"}}
    engine.run_scheduled_cancels()
    assert len(engine.open_orders(trader.address)) == 1
    clock.now = NOW_MS + 10_000  # type: ignore[attr-defined]
    engine.run_scheduled_cancels()
    assert engine.open_orders(trader.address) == []


def test_update_leverage_and_noop(engine: Engine, trader: SdkClient) -> None:
    ok = engine.handle_exchange(
        trader.sign({"type": "updateLeverage", "asset": TSLA, "isCross": False, "leverage": 10})
    )
    assert ok == {"status": "ok", "response": {"type": "default"}}
    too_high = engine.handle_exchange(
        trader.sign({"type": "updateLeverage", "asset": TSLA, "isCross": False, "leverage": 11})
    )
    assert too_high == {"status": "err", "response": "Invalid leverage value"}
    assert engine.handle_exchange(trader.sign({"type": "noop"})) == {
        "status": "ok",
        "response": {"type": "default"},
    }


def test_halt_cancels_settles_and_refuses(engine: Engine, trader: SdkClient) -> None:
    engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5"))
    engine.handle_exchange(trader.order(TSLA, True, "99", "0.2", "Gtc"))
    engine.halt("TSLA")
    assert engine.positions(trader.address) == {} and engine.open_orders(trader.address) == []
    assert statuses(engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5"))) == [
        {"error": "Trading is halted."}  # the one capture of this error has no asset suffix
    ]
    engine.resume_trading("TSLA")
    engine.set_book("TSLA", bids=[("100", "1")], asks=[("100.1", "1")])
    [status] = statuses(engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5")))
    assert status["filled"]["totalSz"] == "0.5"


# ---------------------------------------------------------------------------------------------
# nonces (per signer: 100-highest window, time window)


def test_duplicate_nonce(engine: Engine, trader: SdkClient) -> None:
    body = trader.order(TSLA, True, "99", "0.2", "Gtc", nonce=NOW_MS)
    engine.handle_exchange(body)
    again = trader.order(TSLA, True, "98", "0.2", "Gtc", nonce=NOW_MS)
    assert engine.handle_exchange(again) == {
        "status": "err",
        "response": f"Invalid nonce: duplicate nonce {NOW_MS}",
    }


def test_nonce_time_window(engine: Engine, trader: SdkClient) -> None:
    low = NOW_MS - 2 * 86_400_000
    assert engine.handle_exchange(trader.sign({"type": "noop"}, nonce=low)) == {
        "status": "err",
        "response": f"Invalid nonce: nonce too low {low} < {low}",
    }
    high = NOW_MS + 86_400_000
    assert engine.handle_exchange(trader.sign({"type": "noop"}, nonce=high)) == {
        "status": "err",
        "response": f"Invalid nonce: nonce too high {high} > {high}",
    }
    assert engine.handle_exchange(trader.sign({"type": "noop"}, nonce=low + 1))["status"] == "ok"


def test_nonce_window_keeps_100_highest(engine: Engine, trader: SdkClient) -> None:
    for i in range(100):
        assert engine.handle_exchange(trader.sign({"type": "noop"}, nonce=NOW_MS + 10 + i))["status"] == "ok"
    # out of order but above the smallest kept: accepted (the window is a set, not a counter)
    assert engine.handle_exchange(trader.sign({"type": "noop"}, nonce=NOW_MS + 500))["status"] == "ok"
    # now the smallest kept is NOW_MS+11; NOW_MS+10 fell out and anything <= 11 is too low
    response = engine.handle_exchange(trader.sign({"type": "noop"}, nonce=NOW_MS + 5))
    assert response == {
        "status": "err",
        "response": f"Invalid nonce: nonce too low {NOW_MS + 5} < {NOW_MS + 11}",
    }


def test_nonces_are_per_signer(engine: Engine) -> None:
    master, agent = SdkClient(), SdkClient()
    engine.fund(master.address, 1000)
    engine.approve_agent(master.address, agent.address)
    assert engine.handle_exchange(master.sign({"type": "noop"}, nonce=NOW_MS))["status"] == "ok"
    assert engine.handle_exchange(agent.sign({"type": "noop"}, nonce=NOW_MS))["status"] == "ok"


# ---------------------------------------------------------------------------------------------
# info


def test_info_shapes(engine: Engine, trader: SdkClient) -> None:
    dexes = handle_info(engine, {"type": "perpDexs"})
    assert dexes[0] is None and dexes[1]["name"] == "xyz"
    meta = handle_info(engine, {"type": "meta", "dex": "xyz"})
    names = [u["name"] for u in meta["universe"]]
    assert names == ["xyz:TSLA", "xyz:NVDA", "xyz:GOLD", "xyz:SILVER", "xyz:PLATINUM", "xyz:HOOD"]
    assert meta["universe"][0]["szDecimals"] == 3
    meta_ctx = handle_info(engine, {"type": "metaAndAssetCtxs", "dex": "xyz"})
    assert meta_ctx[1][0]["oraclePx"] == "100.1" and len(meta_ctx[1]) == 6
    book = handle_info(engine, {"type": "l2Book", "coin": "xyz:TSLA"})
    assert book["levels"][0][0] == {"px": "100.0", "sz": "1.0", "n": 1}
    assert book["levels"][1][0] == {"px": "100.1", "sz": "0.5", "n": 1}
    assert handle_info(engine, {"type": "l2Book", "coin": "xyz:NOPE"}) is None
    assert handle_info(engine, {"type": "allMids", "dex": "xyz"})["xyz:TSLA"] == "100.05"
    empty = handle_info(engine, {"type": "clearinghouseState", "user": "0x" + "11" * 20, "dex": "xyz"})
    assert empty["assetPositions"] == [] and empty["marginSummary"]["accountValue"] == "0.0"
    engine.handle_exchange(trader.order(TSLA, True, "100.1", "0.5"))
    fills = handle_info(engine, {"type": "userFills", "user": trader.address})
    assert len(fills) == 1 and fills[0]["px"] == "100.1"
    by_time = handle_info(
        engine, {"type": "userFillsByTime", "user": trader.address, "startTime": NOW_MS + 1}
    )
    assert by_time == []
    assert handle_info(engine, {"type": "orderStatus", "user": trader.address, "oid": 1}) == {
        "status": "unknownOid"
    }
    with pytest.raises(BadRequest, match="unknown variant `bogus`"):
        handle_info(engine, {"type": "bogus"})
    with pytest.raises(BadRequest, match="user"):
        handle_info(engine, {"type": "clearinghouseState", "user": 5})


@pytest.mark.parametrize(
    ("px", "sz", "tif", "status"),
    [
        ("100.1", "0.05", "Ioc", "minTradeNtlRejected"),
        ("100.155", "1", "Gtc", "tickRejected"),
        ("99", "1", "Ioc", "iocCancelRejected"),
        ("100.2", "1", "Alo", "badAloPxRejected"),
        ("100.1", "500", "Gtc", "perpMarginRejected"),
    ],
)
def test_rejected_orders_are_recorded_with_history_status(
    engine: Engine, trader: SdkClient, px: str, sz: str, tif: str, status: str
) -> None:
    cloid = "0x" + "5a" * 16
    action = SdkClient.order_action(TSLA, True, px, sz, tif, cloid=cloid)
    action["orders"][0]["p"], action["orders"][0]["s"] = px, sz
    engine.take_events()
    assert "error" in statuses(engine.handle_exchange(trader.sign(action)))[0]
    answer = engine.order_status(trader.address, cloid)
    assert answer["status"] == "order" and answer["order"]["status"] == status
    [event] = engine.take_events()
    assert event.channel == "orderUpdates" and event.data[0]["status"] == status
    assert engine.open_orders(trader.address) == []


def test_expires_after_passed_is_refused_and_consumes_nothing(engine: Engine, trader: SdkClient) -> None:
    late = trader.order(TSLA, True, "100.1", "0.5", expires_after=NOW_MS - 1)
    assert engine.handle_exchange(late) == {"status": "err", "response": "Action already expired"}
    assert engine.positions(trader.address) == {}
    in_time = trader.order(TSLA, True, "100.1", "0.5", expires_after=NOW_MS + 2000)
    [status] = statuses(engine.handle_exchange(in_time))
    assert status["filled"]["totalSz"] == "0.5"
