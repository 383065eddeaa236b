"""Parsing: recorded samples, every WS shape, malformed input (counted, never raised)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hip3.core import Cloid, Side
from hip3.hyperliquid.events import (
    ActionErr,
    ActionOk,
    AllMids,
    AssetCtx,
    Bbo,
    BookLevel,
    ErrorMessage,
    Filled,
    L2Book,
    OrderError,
    OrderUpdates,
    Pong,
    PostReply,
    Resting,
    StatusOther,
    StatusSuccess,
    SubscriptionAck,
    UserFills,
)
from hip3.hyperliquid.parse import (
    ParseError,
    ParseStats,
    parse_action_response,
    parse_clearinghouse_state,
    parse_fills,
    parse_meta,
    parse_meta_and_asset_ctxs,
    parse_open_orders,
    parse_order_status,
    parse_perp_dexs,
    parse_ws_frame,
)

# Recorded exchange responses (public info queries, 2023), kept in the repository so the suite
# runs from a bare clone.
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def frame(channel: str, data: Any) -> str:
    return json.dumps({"channel": channel, "data": data})


@pytest.fixture
def stats() -> ParseStats:
    return ParseStats()


# ---------------------------------------------------------------------------------------------
# recorded info samples


def test_clearinghouse_state_sample() -> None:
    raw = sample("info_clearinghouseState.json")
    state = parse_clearinghouse_state(raw)
    assert len(state.positions) == len(raw["assetPositions"]) == 12
    btc = state.positions[0]
    assert (btc.coin, btc.szi, btc.entry_px) == ("BTC", Decimal("-0.00785"), Decimal("26951.0"))
    assert (btc.leverage_type, btc.leverage) == ("cross", 20)
    assert btc.liquidation_px == Decimal("173198.69592357")
    assert state.positions[1].liquidation_px is None  # ETH: "liquidationPx": null
    assert state.account_value == Decimal("1182.312496")
    assert state.total_margin_used == Decimal("171.740766")
    assert state.withdrawable == Decimal("1010.57173")
    assert state.time is None  # the 2023 shape has no "time"
    for pos, item in zip(state.positions, raw["assetPositions"], strict=True):
        assert pos.szi == Decimal(item["position"]["szi"])


def test_open_orders_sample() -> None:
    raw = sample("info_openOrders_first10.json")
    orders = parse_open_orders(raw)
    assert len(orders) == 10
    first = orders[0]
    assert (first.coin, first.side, first.limit_px, first.sz, first.oid) == (
        "MATIC",
        Side.BUY,
        Decimal("1.0357"),
        Decimal("208.7"),
        62269971,
    )
    assert first.timestamp == 1679940217356 and first.orig_sz is None and first.cloid is None
    assert orders[1].side is Side.SELL


def test_user_fills_sample_requires_tid(stats: ParseStats) -> None:
    raw = sample("info_userFills_first12.json")
    # The 2023 capture predates `tid`; without it a fill cannot be de-duplicated, so it is skipped.
    assert parse_fills(raw, stats) == []
    assert stats.counts["bad_fill"] == 12
    with_tids = [{**f, "tid": 1000 + i} for i, f in enumerate(raw)]
    fills = parse_fills(with_tids, stats)
    assert len(fills) == 12
    assert fills[0].coin == "SUI" and fills[0].side is Side.SELL and fills[0].crossed
    assert fills[0].start_position == Decimal("4623.5") and fills[1].start_position == Decimal("4480.8")
    assert fills[1].sz == Decimal("3749.1") and fills[1].closed_pnl == Decimal("-14.771454")
    assert fills[0].hash == fills[1].hash and fills[0].oid == fills[1].oid == 189324432
    assert fills[0].cloid is None and fills[0].fee_token is None and fills[0].tid == 1000


def test_l2_book_sample_via_ws_frame(stats: ParseStats) -> None:
    raw = sample("info_l2Book_DYDX.json")
    [book] = parse_ws_frame(frame("l2Book", raw), stats)
    assert isinstance(book, L2Book) and book.coin == "DYDX"
    assert len(book.bids) == len(raw["levels"][0]) and len(book.asks) == len(raw["levels"][1])
    assert book.bids[0] == BookLevel(Decimal("2.111"), Decimal("134.4"), 1)
    assert book.asks[0] == BookLevel(Decimal("2.1124"), Decimal("352.3"), 2)
    assert book.time == raw["time"]
    assert stats.total == 0


def test_meta_sample() -> None:
    raw = sample("info_meta.json")
    meta = parse_meta(raw)
    assert len(meta.universe) == len(raw["universe"])
    assert (meta.universe[0].name, meta.universe[0].sz_decimals, meta.universe[0].max_leverage) == (
        "BTC",
        5,
        50,
    )
    assert meta.universe[12].name == "DOGE" and meta.universe[12].sz_decimals == 0
    assert not meta.universe[0].only_isolated and not meta.universe[0].is_delisted


def test_meta_hip3_fields() -> None:
    body = {
        "universe": [
            {
                "szDecimals": 3,
                "name": "xyz:TSLA",
                "maxLeverage": 10,
                "marginTableId": 10,
                "onlyIsolated": True,
                "marginMode": "strictIsolated",
                "growthMode": "enabled",
            },
            {
                "szDecimals": 2,
                "name": "xyz:OLD",
                "maxLeverage": 5,
                "isDelisted": True,
                "marginMode": "noCross",
            },
            {"szDecimals": 4, "name": "xyz:GOLD", "maxLeverage": 20, "marginMode": "normal"},
        ],
        "marginTables": [],
        "collateralToken": 0,
    }
    tsla, old, gold = parse_meta(body).universe
    assert tsla.only_isolated and not tsla.is_delisted
    assert old.only_isolated and old.is_delisted
    assert not gold.only_isolated and gold.sz_decimals == 4


def test_historical_orders_sample_as_order_status() -> None:
    # orderStatus wraps the same {order, status, statusTimestamp} element that historicalOrders lists.
    element = sample("info_historicalOrders.json")[0]
    result = parse_order_status({"status": "order", "order": element})
    assert result.known and result.status == "iocCancelRejected"
    assert (result.coin, result.side, result.limit_px) == ("TON", Side.BUY, Decimal("3.2502"))
    assert result.sz == result.orig_sz == Decimal("81.7")
    assert result.oid == 141682155424 and result.cloid is None and result.status_timestamp == 1755863118217


def test_order_status_unknown_oid_is_an_answer() -> None:
    assert parse_order_status({"status": "unknownOid"}).known is False


def test_order_status_with_cloid() -> None:
    body = {
        "status": "order",
        "order": {
            "order": {
                "coin": "xyz:TSLA",
                "side": "A",
                "limitPx": "465.13",
                "sz": "0.0",
                "oid": 7,
                "timestamp": 1,
                "origSz": "0.25",
                "cloid": "0x0000000000000000000000000000002A",
            },
            "status": "filled",
            "statusTimestamp": 2,
        },
    }
    result = parse_order_status(body)
    assert result.status == "filled" and result.sz == Decimal(0) and result.orig_sz == Decimal("0.25")
    assert result.cloid == Cloid("0x0000000000000000000000000000002a")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"status": "order"}, "orderStatus.order: missing"),
        ({"status": "weird"}, "orderStatus.status"),
        (
            {"status": "order", "order": {"status": "open", "order": {"coin": "X"}}},
            "orderStatus.order.order.side",
        ),
        ([], "orderStatus: expected an object"),
    ],
)
def test_order_status_malformed(body: Any, path: str) -> None:
    with pytest.raises(ParseError, match=path.replace(".", r"\.")):
        parse_order_status(body)


# ---------------------------------------------------------------------------------------------
# strict info parsers: a malformed body raises naming the path, never reads as "flat"


def test_clearinghouse_state_malformed_names_the_path() -> None:
    raw = sample("info_clearinghouseState.json")
    del raw["assetPositions"][3]["position"]["szi"]
    with pytest.raises(ParseError, match=r"clearinghouseState\.assetPositions\[3\]\.position\.szi: missing"):
        parse_clearinghouse_state(raw)
    raw = sample("info_clearinghouseState.json")
    raw["assetPositions"][0]["position"]["szi"] = 0.5  # a float is never money
    with pytest.raises(ParseError, match=r"assetPositions\[0\]\.position\.szi"):
        parse_clearinghouse_state(raw)
    with pytest.raises(ParseError, match=r"clearinghouseState\.assetPositions: missing"):
        parse_clearinghouse_state({"marginSummary": {}, "withdrawable": "0"})
    with pytest.raises(ParseError, match=r"clearinghouseState: expected an object, got null"):
        parse_clearinghouse_state(None)
    with pytest.raises(ParseError, match=r"marginSummary\.accountValue"):
        parse_clearinghouse_state({"assetPositions": [], "marginSummary": {}, "withdrawable": "0"})


def test_empty_account_is_flat_not_an_error() -> None:
    body = {
        "assetPositions": [],
        "marginSummary": {
            "accountValue": "0.0",
            "totalNtlPos": "0.0",
            "totalRawUsd": "0.0",
            "totalMarginUsed": "0.0",
        },
        "withdrawable": "0.0",
        "time": 1769594065851,
    }
    state = parse_clearinghouse_state(body)
    assert state.positions == () and state.account_value == 0 and state.time == 1769594065851


def test_open_orders_malformed() -> None:
    with pytest.raises(ParseError, match=r"openOrders: expected an array, got dict"):
        parse_open_orders({"error": "x"})
    with pytest.raises(ParseError, match=r"openOrders\[0\]\.side: side"):
        parse_open_orders([{"coin": "X", "side": "Z", "limitPx": "1", "sz": "1", "oid": 1, "timestamp": 1}])


def test_fills_body_must_be_an_array() -> None:
    with pytest.raises(ParseError, match="fills: expected an array"):
        parse_fills(None)


def test_meta_malformed() -> None:
    with pytest.raises(ParseError, match=r"meta\.universe\[1\]\.szDecimals: expected an integer"):
        parse_meta(
            {"universe": [{"name": "A", "szDecimals": 1, "maxLeverage": 3}, {"name": "B", "szDecimals": "2"}]}
        )


def test_perp_dexs_index_is_array_position() -> None:
    body = [
        None,
        {
            "name": "xyz",
            "fullName": "XYZ",
            "deployer": "0xabc",
            "assetToStreamingOiCap": [["xyz:AAA", "1.0"]],
        },
        {"name": "flx", "fullName": None, "deployer": "0xdef"},
    ]
    dexs = parse_perp_dexs(body)
    assert [(d.index, d.name) for d in dexs] == [(1, "xyz"), (2, "flx")]
    assert dexs[0].full_name == "XYZ" and dexs[1].full_name is None
    with pytest.raises(ParseError, match=r"perpDexs\[1\]\.name: missing"):
        parse_perp_dexs([None, {"fullName": "x"}])


def test_perp_dexs_oi_caps_keep_the_exchanges_coin_names(stats: ParseStats) -> None:
    # Mainnet lists "xyz:TSLA"; the docs' example (hyperliquid.md §4.1) lists bare "COIN1".
    body = [
        None,
        {"name": "test", "assetToStreamingOiCap": [["COIN1", "100000.0"], ["COIN2", "200000.0"]]},
        {"name": "xyz", "assetToStreamingOiCap": [["xyz:GOLD", "2500000.0"], ["xyz:TSLA", "1e6"]]},
        {"name": "flx"},
    ]
    dexs = parse_perp_dexs(body, stats)
    assert dexs[0].oi_caps == {"COIN1": Decimal("100000"), "COIN2": Decimal("200000")}
    assert dexs[1].oi_caps == {"xyz:GOLD": Decimal(2500000), "xyz:TSLA": Decimal(1000000)}
    assert all(isinstance(v, Decimal) for v in dexs[1].oi_caps.values())
    assert dexs[2].oi_caps == {}
    assert stats.total == 0


def test_perp_dexs_bad_oi_caps_are_skipped_and_counted(stats: ParseStats) -> None:
    body = [
        None,
        {
            "name": "xyz",
            "assetToStreamingOiCap": [
                ["xyz:A", "1.0"],
                ["xyz:B", "lots"],
                ["xyz:C"],
                ["xyz:D", 1.5],
                ["xyz:E", "-1"],
                [None, "1"],
                ["xyz:F", "NaN"],
            ],
        },
        {"name": "abc", "assetToStreamingOiCap": {"abc:A": "1"}},
    ]
    dexs = parse_perp_dexs(body, stats)
    assert dexs[0].oi_caps == {"xyz:A": Decimal(1)}
    assert dexs[1].oi_caps == {}
    assert stats.counts["bad_oi_cap"] == 7


def test_meta_and_asset_ctxs_aligns_contexts_with_universe() -> None:
    meta = {
        "universe": [
            {"name": "xyz:A", "szDecimals": 1, "maxLeverage": 5},
            {"name": "xyz:B", "szDecimals": 2, "maxLeverage": 5},
        ]
    }
    ctx = {
        "dayNtlVlm": "10",
        "funding": "0.0001",
        "impactPxs": None,
        "markPx": "2",
        "midPx": None,
        "openInterest": "3",
        "oraclePx": "2.1",
        "premium": None,
        "prevDayPx": "1.9",
        "dayBaseVlm": "5",
    }
    _, ctxs = parse_meta_and_asset_ctxs([meta, [ctx, {**ctx, "oraclePx": "9"}]])
    assert [c.coin for c in ctxs] == ["xyz:A", "xyz:B"]
    assert ctxs[1].oracle_px == Decimal(9) and ctxs[0].mid_px is None
    with pytest.raises(ParseError, match="1 contexts for 2 assets"):
        parse_meta_and_asset_ctxs([meta, [ctx]])


# ---------------------------------------------------------------------------------------------
# WebSocket frames


def test_greeting_is_ignored_not_counted(stats: ParseStats) -> None:
    assert parse_ws_frame("Websocket connection established.", stats) == []
    assert stats.total == 0


def test_bbo_with_null_sides(stats: ParseStats) -> None:
    level = {"px": "465.13", "sz": "1.5", "n": 3}
    [bbo] = parse_ws_frame(frame("bbo", {"coin": "xyz:TSLA", "time": 17, "bbo": [None, level]}), stats)
    assert bbo == Bbo("xyz:TSLA", 17, None, BookLevel(Decimal("465.13"), Decimal("1.5"), 3))
    [bbo] = parse_ws_frame(frame("bbo", {"coin": "xyz:TSLA", "time": 18, "bbo": [level, None]}), stats)
    assert isinstance(bbo, Bbo)
    assert bbo.bid is not None and bbo.ask is None
    [bbo] = parse_ws_frame(frame("bbo", {"coin": "xyz:TSLA", "time": 19, "bbo": [None, None]}), stats)
    assert isinstance(bbo, Bbo)
    assert bbo.bid is None and bbo.ask is None
    assert stats.total == 0


def test_active_asset_ctx(stats: ParseStats) -> None:
    data: dict[str, Any] = {
        "coin": "xyz:TSLA",
        "ctx": {
            "funding": "0.0000125",
            "openInterest": "1234.5",
            "prevDayPx": "460.0",
            "dayNtlVlm": "98765.4",
            "premium": None,
            "oraclePx": "465.2",
            "markPx": "465.1",
            "midPx": None,
            "impactPxs": ["465.0", "465.3"],
            "dayBaseVlm": "200.0",
        },
    }
    [ctx] = parse_ws_frame(frame("activeAssetCtx", data), stats)
    assert ctx == AssetCtx(
        coin="xyz:TSLA",
        oracle_px=Decimal("465.2"),
        mark_px=Decimal("465.1"),
        mid_px=None,
        open_interest=Decimal("1234.5"),
        funding=Decimal("0.0000125"),
        premium=None,
        impact_pxs=(Decimal("465.0"), Decimal("465.3")),
        prev_day_px=Decimal("460.0"),
        day_ntl_vlm=Decimal("98765.4"),
    )
    data["ctx"]["impactPxs"] = None
    data["ctx"]["midPx"] = "465.15"
    [ctx] = parse_ws_frame(frame("activeAssetCtx", data), stats)
    assert isinstance(ctx, AssetCtx)
    assert ctx.impact_pxs is None and ctx.mid_px == Decimal("465.15")
    assert parse_ws_frame(frame("activeSpotAssetCtx", data), stats) == []  # spot: dropped quietly
    assert stats.total == 0


def test_all_mids_skips_a_bad_mid(stats: ParseStats) -> None:
    [mids] = parse_ws_frame(frame("allMids", {"mids": {"xyz:A": "1.5", "xyz:B": None, "xyz:C": "2"}}), stats)
    assert mids == AllMids({"xyz:A": Decimal("1.5"), "xyz:C": Decimal(2)})
    assert stats.counts["bad_mid"] == 1


# The real streaming HIP-3 userFills frame from hyperliquid.md §7.4 (no isSnapshot key).
REAL_USER_FILLS = (
    '{"channel":"userFills","data":{"user":"0x0116a3d95994bcc7d6a84380ed6256fbb32cd25d","fills":[{"coin":"xyz:SILVER",'
    '"px":"112.89","sz":"2.7","side":"B","time":1769594065851,"startPosition":"-6.66","dir":"Close Short",'
    '"closedPnl":"-0.02673","hash":"0x403b2645eccc82d441b4043434c1a3020115002b87cfa1a6e403d198abc05cbe",'
    '"oid":304587174168,"crossed":true,"fee":"0.023317","tid":694586448408875,'
    '"cloid":"0xd2ed5e997c5a4cb9946d84c35f0b737c","feeToken":"USDC","twapId":null}]}}'
)


def test_real_hip3_user_fills_frame(stats: ParseStats) -> None:
    [msg] = parse_ws_frame(REAL_USER_FILLS, stats)
    assert isinstance(msg, UserFills)
    assert msg.user == "0x0116a3d95994bcc7d6a84380ed6256fbb32cd25d"
    assert msg.is_snapshot is False  # missing key means false
    [fill] = msg.fills
    assert fill.coin == "xyz:SILVER" and fill.side is Side.BUY
    assert (fill.px, fill.sz, fill.start_position) == (Decimal("112.89"), Decimal("2.7"), Decimal("-6.66"))
    assert fill.closed_pnl == Decimal("-0.02673") and fill.fee == Decimal("0.023317")
    assert fill.oid == 304587174168 and fill.tid == 694586448408875 and fill.crossed is True
    assert fill.cloid == Cloid("0xd2ed5e997c5a4cb9946d84c35f0b737c") and fill.fee_token == "USDC"
    assert fill.dir == "Close Short" and fill.time == 1769594065851
    assert stats.total == 0


def test_user_fills_snapshot_and_one_bad_fill(stats: ParseStats) -> None:
    data: dict[str, Any] = json.loads(REAL_USER_FILLS)["data"]
    good = data["fills"][0]
    bad = {k: v for k, v in good.items() if k != "tid"}
    wrong_type = {**good, "px": 112.89}
    data.update(isSnapshot=True, fills=[good, bad, wrong_type, {**good, "tid": 5, "cloid": None}])
    [msg] = parse_ws_frame(frame("userFills", data), stats)
    assert isinstance(msg, UserFills)
    assert msg.is_snapshot is True
    assert [f.tid for f in msg.fills] == [694586448408875, 5]
    assert msg.fills[1].cloid is None
    assert stats.counts["bad_fill"] == 2


def order_update(oid: int, **order_extra: Any) -> dict[str, Any]:
    order = {
        "coin": "xyz:TSLA",
        "side": "A",
        "limitPx": "465.13",
        "sz": "0.1",
        "oid": oid,
        "timestamp": 1000,
        "origSz": "0.25",
        **order_extra,
    }
    return {"order": order, "status": "open", "statusTimestamp": 1001}


def test_order_updates_array(stats: ParseStats) -> None:
    items = [
        order_update(1, cloid="0xd2ed5e997c5a4cb9946d84c35f0b737c", reduceOnly=True),
        {"order": {"coin": "xyz:TSLA"}, "status": "open", "statusTimestamp": 1},  # bad
        "garbage",
        order_update(2),
    ]
    [msg] = parse_ws_frame(frame("orderUpdates", items), stats)
    assert isinstance(msg, OrderUpdates)
    first, second = msg.updates
    assert (first.oid, first.side, first.limit_px, first.sz, first.orig_sz) == (
        1,
        Side.SELL,
        Decimal("465.13"),
        Decimal("0.1"),
        Decimal("0.25"),
    )
    assert first.cloid == Cloid("0xd2ed5e997c5a4cb9946d84c35f0b737c") and first.reduce_only is True
    assert first.status == "open" and first.status_timestamp == 1001 and first.timestamp == 1000
    assert second.oid == 2 and second.cloid is None and second.reduce_only is None
    assert stats.counts["bad_order_update"] == 2


def test_order_updates_not_an_array_is_counted(stats: ParseStats) -> None:
    assert parse_ws_frame(frame("orderUpdates", order_update(1)), stats) == []
    assert stats.counts["bad_orderUpdates"] == 1


def test_control_frames(stats: ParseStats) -> None:
    sub = {"type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None}
    assert parse_ws_frame(
        frame("subscriptionResponse", {"method": "subscribe", "subscription": sub}), stats
    ) == [SubscriptionAck("subscribe", sub)]
    assert parse_ws_frame('{"channel":"pong"}', stats) == [Pong()]
    assert parse_ws_frame(frame("error", "Invalid subscription: {}"), stats) == [
        ErrorMessage("Invalid subscription: {}")
    ]
    payload = {"status": "ok", "response": {"type": "default"}}
    assert parse_ws_frame(
        frame("post", {"id": 256, "response": {"type": "action", "payload": payload}}), stats
    ) == [PostReply(256, "action", payload)]
    assert parse_ws_frame(
        frame("post", {"id": 3, "response": {"type": "error", "payload": "bad"}}), stats
    ) == [PostReply(3, "error", "bad")]
    assert stats.total == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "no_channel"),
        ('{"data": {}}', "no_channel"),
        ('{"channel": "mystery", "data": {}}', "unknown_channel"),
        ('{"channel": "bbo"}', "bad_bbo"),
        ('{"channel": "bbo", "data": {"coin": "X", "time": 1, "bbo": [null]}}', "bad_bbo"),
        ('{"channel": "bbo", "data": {"coin": "X", "time": "1", "bbo": [null, null]}}', "bad_bbo"),
        (
            '{"channel": "l2Book", "data": {"coin": "X", "time": 1, "levels": [[{"px": "1", "sz": "x", "n": 1}], []]}}',
            "bad_l2Book",
        ),
        (
            '{"channel": "activeAssetCtx", "data": {"coin": "X", "ctx": {"markPx": "1"}}}',
            "bad_activeAssetCtx",
        ),
        ('{"channel": "userFills", "data": {"user": "0x1"}}', "bad_userFills"),
        ('{"channel": "subscriptionResponse", "data": {"method": "subscribe"}}', "bad_subscriptionResponse"),
        ('{"channel": "post", "data": {"id": "7", "response": {"type": "action"}}}', "bad_post"),
        ('{"channel": "post", "data": {"id": 7}}', "bad_post"),
    ],
)
def test_malformed_frames_are_counted_never_raised(text: str, reason: str, stats: ParseStats) -> None:
    assert parse_ws_frame(text, stats) == []
    assert stats.counts[reason] == 1 and stats.total == 1


def test_bytes_frames_are_accepted(stats: ParseStats) -> None:
    assert parse_ws_frame(b'{"channel":"pong"}', stats) == [Pong()]


def test_logging_is_rate_limited(stats: ParseStats, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="hip3.hyperliquid.parse")
    for _ in range(50):
        parse_ws_frame("{not json", stats)
    parse_ws_frame('{"channel": "mystery"}', stats)
    assert stats.counts["bad_json"] == 50
    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if "bad_json" in line]) == 1
    assert len([line for line in lines if "unknown_channel" in line]) == 1


async def test_logging_resumes_after_interval_on_trio_clock(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import trio

    stats = ParseStats(log_interval=10.0)
    caplog.set_level("WARNING", logger="hip3.hyperliquid.parse")
    parse_ws_frame("{x", stats)
    parse_ws_frame("{x", stats)
    await trio.sleep(10)
    parse_ws_frame("{x", stats)
    lines = [r.getMessage() for r in caplog.records if "bad_json" in r.getMessage()]
    assert len(lines) == 2 and "1 more since last report" in lines[1]


# ---------------------------------------------------------------------------------------------
# action responses


def test_action_response_statuses_stay_aligned(stats: ParseStats) -> None:
    body = {
        "status": "ok",
        "response": {
            "type": "order",
            "data": {
                "statuses": [
                    {"resting": {"oid": 77738308}},
                    {
                        "filled": {
                            "totalSz": "0.02",
                            "avgPx": "1891.4",
                            "oid": 77747314,
                            "cloid": "0x" + "ab" * 16,
                        }
                    },
                    {"error": "Order must have minimum value of $10. asset=4"},
                    "success",
                    "waitingForFill",
                    {"resting": {"oid": "not-an-int"}},
                    {"somethingNew": {}},
                ]
            },
        },
    }
    result = parse_action_response(body, stats)
    assert isinstance(result, ActionOk) and result.response_type == "order"
    assert result.statuses == (
        Resting(oid=77738308),
        Filled(
            total_sz=Decimal("0.02"), avg_px=Decimal("1891.4"), oid=77747314, cloid=Cloid("0x" + "ab" * 16)
        ),
        OrderError("Order must have minimum value of $10. asset=4"),
        StatusSuccess(),
        StatusOther("waitingForFill"),
        StatusOther({"resting": {"oid": "not-an-int"}}),
        StatusOther({"somethingNew": {}}),
    )
    assert stats.counts["bad_order_status"] == 1


def test_action_response_top_level_shapes() -> None:
    assert parse_action_response({"status": "ok", "response": {"type": "default"}}) == ActionOk("default", ())
    assert parse_action_response(
        {"status": "err", "response": "Invalid nonce: duplicate nonce 1748863660821"}
    ) == (ActionErr("Invalid nonce: duplicate nonce 1748863660821"))
    cancel = {"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}
    assert parse_action_response(cancel) == ActionOk("cancel", (StatusSuccess(),))


@pytest.mark.parametrize(
    "body", [None, [], {"status": "maybe"}, {"status": "ok"}, {"status": "ok", "response": {}}]
)
def test_action_response_unknown_shape_raises(body: Any) -> None:
    # The outcome is unknown: the caller must resolve the order, not guess.
    with pytest.raises(ParseError):
        parse_action_response(body)


# A fill is applied as long as the fields the bot uses are there ------------------------------------

# A recorded mainnet userFills push (hyperliquid.md §7.4).
RECORDED_FILL: dict[str, Any] = {
    "coin": "xyz:SILVER",
    "px": "112.89",
    "sz": "2.7",
    "side": "B",
    "time": 1769594065851,
    "startPosition": "-6.66",
    "dir": "Close Short",
    "closedPnl": "-0.02673",
    "hash": "0x403b2645eccc82d441b4043434c1a3020115002b87cfa1a6e403d198abc05cbe",
    "oid": 304587174168,
    "crossed": True,
    "fee": "0.023317",
    "tid": 694586448408875,
    "cloid": "0xd2ed5e997c5a4cb9946d84c35f0b737c",
    "feeToken": "USDC",
    "twapId": None,
}
RECORDED_USER = "0x0116a3d95994bcc7d6a84380ed6256fbb32cd25d"


def fills_of(data: dict[str, Any]) -> list[tuple[int, Decimal]]:
    events = parse_ws_frame(json.dumps({"channel": "userFills", "data": data}), ParseStats())
    return [(f.tid, f.sz) for e in events if isinstance(e, UserFills) for f in e.fills]


def test_the_recorded_fill_frame_parses() -> None:
    assert fills_of({"user": RECORDED_USER, "fills": [RECORDED_FILL]}) == [(694586448408875, Decimal("2.7"))]


@pytest.mark.parametrize("field", ["hash", "crossed", "dir", "startPosition", "closedPnl"])
def test_a_fill_without_a_field_the_tracker_never_reads_is_still_applied(field: str) -> None:
    # The tracker uses coin, px, sz, side, time, tid, cloid and fee; a fill lacking any other
    # field must not be dropped (only a resync could repair the position then).
    fill = {k: v for k, v in RECORDED_FILL.items() if k != field}
    assert fills_of({"user": RECORDED_USER, "fills": [fill]}) == [(694586448408875, Decimal("2.7"))]


def test_a_userfills_push_without_the_user_field_keeps_its_fills() -> None:
    # There is one user per connection: the feed never reads data.user, so its absence costs nothing.
    assert fills_of({"fills": [RECORDED_FILL]}) == [(694586448408875, Decimal("2.7"))]
