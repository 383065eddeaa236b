"""InfoClient over httpx.MockTransport, timed on trio's MockClock (autojump)."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from hip3.core import MarketKey
from hip3.hyperliquid.events import ActionOk, Resting
from hip3.hyperliquid.info import InfoError, open_info_client

INFO = "http://exchange.test/info"
EXCHANGE = "http://exchange.test/exchange"
USER = "0x5e9ee1089755c3435139848e47e6635505d5a13a"

EMPTY_STATE = {
    "assetPositions": [],
    "marginSummary": {
        "accountValue": "100.0",
        "totalNtlPos": "0.0",
        "totalRawUsd": "100.0",
        "totalMarginUsed": "0.0",
    },
    "withdrawable": "100.0",
    "time": 1,
}


class Recorder:
    """A MockTransport handler that answers from a script and records (trio time, url, body)."""

    def __init__(self, script: Callable[[int, dict[str, Any]], Any]) -> None:
        self.script = script
        self.calls: list[tuple[float, str, Any]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.calls.append((trio.current_time(), str(request.url), body))
        answer = self.script(len(self.calls), body)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = await answer()
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    @property
    def times(self) -> list[float]:
        return [t for t, _, _ in self.calls]

    @property
    def bodies(self) -> list[Any]:
        return [b for _, _, b in self.calls]


def client(recorder: Recorder, **kwargs: Any) -> Any:
    kwargs.setdefault("rng", random.Random(3))
    return open_info_client(INFO, exchange_url=EXCHANGE, transport=httpx.MockTransport(recorder), **kwargs)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# ---------------------------------------------------------------------------------------------
# retries, timeout, budget


async def test_retries_429_500_and_transport_errors_with_backoff_on_trio_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    failures = [
        httpx.Response(429, text="rate limited"),
        httpx.Response(502, text="bad gateway"),
        httpx.ConnectError("refused"),
    ]

    def script(n: int, body: Any) -> Any:
        return failures[n - 1] if n <= len(failures) else EMPTY_STATE

    rec = Recorder(script)
    async with client(rec, backoff_initial=0.5) as info:
        state = await info.clearinghouse_state(USER, "xyz")
    assert state.account_value == Decimal("100.0") and state.positions == ()
    assert len(rec.calls) == 4
    # Jittered exponential backoff: nominal 0.5, 1, 2 s, each × [0.5, 1), slept on trio's clock.
    for gap, nominal in zip(gaps(rec.times), [0.5, 1.0, 2.0], strict=True):
        assert nominal * 0.5 <= gap < nominal


async def test_gives_up_after_bounded_attempts(autojump_clock: trio.testing.MockClock) -> None:
    rec = Recorder(lambda n, body: httpx.Response(500, text="internal error"))
    async with client(rec, max_attempts=4) as info:
        with pytest.raises(InfoError, match=r"HTTP 500: internal error \(gave up after 4 attempts\)"):
            await info.open_orders(USER, "xyz")
    assert len(rec.calls) == 4


async def test_client_errors_are_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    rec = Recorder(lambda n, body: httpx.Response(422, text="Failed to deserialize the JSON body"))
    async with client(rec) as info:
        with pytest.raises(InfoError, match="HTTP 422: Failed to deserialize the JSON body"):
            await info.meta("xyz")
    assert len(rec.calls) == 1


async def test_timeout_on_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    async def hang() -> Any:
        await trio.sleep(1000)
        return EMPTY_STATE

    rec = Recorder(lambda n, body: hang if n <= 2 else EMPTY_STATE)
    async with client(rec, timeout=10.0, backoff_initial=0.5) as info:
        t0 = trio.current_time()
        state = await info.clearinghouse_state(USER, "xyz")
        elapsed = trio.current_time() - t0
    assert state.withdrawable == Decimal("100.0")
    # Two attempts timed out after 10 s each, plus backoffs in [0.25, 0.5) and [0.5, 1).
    assert 20.75 <= elapsed < 21.5
    assert gaps(rec.times)[0] >= 10.0


async def test_timeouts_exhaust_into_info_error(autojump_clock: trio.testing.MockClock) -> None:
    async def hang() -> Any:
        await trio.sleep(1000)

    rec = Recorder(lambda n, body: hang)
    async with client(rec, timeout=5.0, max_attempts=2) as info:
        with pytest.raises(
            InfoError, match=r"info perpDexs: no answer within 5 s \(gave up after 2 attempts\)"
        ):
            await info.perp_dexs()


async def test_weight_budget_waits_for_the_window(autojump_clock: trio.testing.MockClock) -> None:
    rec = Recorder(lambda n, body: EMPTY_STATE)
    async with client(rec, weight_per_minute=10) as info:
        t0 = trio.current_time()
        for _ in range(6):  # clearinghouseState weighs 2: five fit in 10
            await info.clearinghouse_state(USER, "xyz")
    offsets = [t - t0 for t in rec.times]
    assert offsets[:5] == [0.0] * 5
    assert offsets[5] == pytest.approx(60.0)


async def test_weight_budget_default_1200_with_heavy_requests(autojump_clock: trio.testing.MockClock) -> None:
    rec = Recorder(lambda n, body: [])
    async with client(rec) as info:
        t0 = trio.current_time()
        for _ in range(61):  # openOrders weighs 20: 60 per minute
            await info.open_orders(USER, "xyz")
    offsets = [t - t0 for t in rec.times]
    assert max(offsets[:60]) == 0.0 and offsets[60] == pytest.approx(60.0)


# ---------------------------------------------------------------------------------------------
# failure raises, never an empty answer


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(200, text="null"), "answer is null"),
        ({"error": "whatever"}, r"malformed answer: clearinghouseState\.assetPositions: missing"),
        (httpx.Response(200, text="<html>"), "answer is not JSON"),
    ],
)
async def test_bad_answers_raise_never_empty(
    answer: Any, message: str, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder(lambda n, body: answer)
    async with client(rec) as info:
        with pytest.raises(InfoError, match=message):
            await info.clearinghouse_state(USER, "xyz")


async def test_open_orders_non_list_raises(autojump_clock: trio.testing.MockClock) -> None:
    rec = Recorder(lambda n, body: {"orders": []})
    async with client(rec) as info:
        with pytest.raises(InfoError, match="openOrders: expected an array"):
            await info.open_orders(USER, "xyz")


# ---------------------------------------------------------------------------------------------
# request shapes


async def test_request_bodies(autojump_clock: trio.testing.MockClock) -> None:
    def script(n: int, body: dict[str, Any]) -> Any:
        kind = body["type"]
        if kind == "clearinghouseState":
            return EMPTY_STATE
        if kind == "orderStatus":
            return {"status": "unknownOid"}
        return []

    rec = Recorder(script)
    async with client(rec) as info:
        await info.clearinghouse_state(USER, "xyz")
        await info.open_orders(USER, "xyz")
        assert (await info.order_status(USER, 77)).known is False
        assert (await info.order_status(USER, "0x" + "ab" * 16)).known is False
        assert await info.user_fills_by_time(USER, 1000) == []
        assert await info.user_fills_by_time(USER, 1000, 2000) == []
    assert rec.bodies == [
        {"type": "clearinghouseState", "user": USER, "dex": "xyz"},
        {"type": "openOrders", "user": USER, "dex": "xyz"},
        {"type": "orderStatus", "user": USER, "oid": 77},
        {"type": "orderStatus", "user": USER, "oid": "0x" + "ab" * 16},
        {"type": "userFillsByTime", "user": USER, "startTime": 1000},
        {"type": "userFillsByTime", "user": USER, "startTime": 1000, "endTime": 2000},
    ]
    assert all(url == INFO for _, url, _ in rec.calls)


async def test_meta_and_asset_ctxs(autojump_clock: trio.testing.MockClock) -> None:
    meta = {"universe": [{"name": "xyz:TSLA", "szDecimals": 3, "maxLeverage": 10}]}
    ctx = {"funding": "0", "openInterest": "1", "oraclePx": "465.2", "markPx": "465.1", "midPx": None}
    rec = Recorder(lambda n, body: [meta, [ctx]])
    async with client(rec) as info:
        parsed, ctxs = await info.meta_and_asset_ctxs("xyz")
    assert rec.bodies == [{"type": "metaAndAssetCtxs", "dex": "xyz"}]
    assert parsed.universe[0].name == "xyz:TSLA" and ctxs[0].coin == "xyz:TSLA"
    assert ctxs[0].oracle_px == Decimal("465.2")


# ---------------------------------------------------------------------------------------------
# market discovery


PERP_DEXS = [
    None,
    {"name": "abc", "fullName": "another dex", "deployer": "0x1"},
    {
        "name": "xyz",
        "fullName": "XYZ",
        "deployer": "0x2",
        # Key-sorted, unlike meta: asset ids taken from positions here would be wrong.
        "assetToStreamingOiCap": [
            ["xyz:GOLD", "1.0"],
            ["xyz:OLD", "1.0"],
            ["xyz:RIVN", "1.0"],
            ["xyz:SILVER", "1.0"],
            ["xyz:TSLA", "1.0"],
            ["xyz:XYZ100", "1.0"],
        ],
    },
]
XYZ_META = {
    "universe": [
        {"name": "xyz:XYZ100", "szDecimals": 4, "maxLeverage": 20, "marginMode": "strictIsolated"},
        {"name": "xyz:TSLA", "szDecimals": 3, "maxLeverage": 10, "onlyIsolated": True},
        {"name": "xyz:OLD", "szDecimals": 2, "maxLeverage": 3, "isDelisted": True},
        {"name": "xyz:GOLD", "szDecimals": 4, "maxLeverage": 20},
        {"name": "xyz:SILVER", "szDecimals": 2, "maxLeverage": 20},
        {"name": "xyz:RIVN", "szDecimals": 2, "maxLeverage": 10},
    ]
}


def discovery_script(n: int, body: dict[str, Any]) -> Any:
    if body["type"] == "perpDexs":
        return PERP_DEXS
    assert body == {"type": "meta", "dex": "xyz"}
    return XYZ_META


async def test_discover_markets_asset_ids_come_from_meta_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rec = Recorder(discovery_script)
    async with client(rec) as info:
        specs = await info.discover_markets("xyz", ["SILVER", "RIVN", "xyz:TSLA"])
    # xyz is at position 2 of perpDexs → 100000 + 2 × 10000 = 120000, plus the meta index.
    assert specs["SILVER"].key == MarketKey("xyz", "SILVER", 120004)
    assert specs["RIVN"].key == MarketKey("xyz", "RIVN", 120005)
    assert specs["TSLA"].key == MarketKey("xyz", "TSLA", 120001)
    assert specs["SILVER"].sz_decimals == 2 and specs["TSLA"].sz_decimals == 3
    assert specs["TSLA"].only_isolated and specs["TSLA"].max_leverage == 10
    assert specs["SILVER"].key.name == "xyz:SILVER"


async def test_discover_all_skips_delisted(autojump_clock: trio.testing.MockClock) -> None:
    async with client(Recorder(discovery_script)) as info:
        specs = await info.discover_markets("xyz", ["*"])
    assert {coin: spec.key.asset for coin, spec in specs.items()} == {
        "XYZ100": 120000,
        "TSLA": 120001,
        "GOLD": 120003,
        "SILVER": 120004,
        "RIVN": 120005,
    }
    assert specs["XYZ100"].only_isolated and specs["XYZ100"].sz_decimals == 4


async def test_discover_returns_the_dex_and_its_oi_caps(autojump_clock: trio.testing.MockClock) -> None:
    async with client(Recorder(discovery_script)) as info:
        discovery = await info.discover("xyz", ["TSLA"])
    assert set(discovery.specs) == {"TSLA"}
    assert discovery.perp_dex is not None
    assert (discovery.perp_dex.index, discovery.perp_dex.name) == (2, "xyz")
    assert discovery.perp_dex.oi_caps["xyz:TSLA"] == Decimal(1)
    assert len(discovery.perp_dex.oi_caps) == 6


async def test_discover_validator_dex_has_no_perp_dex(autojump_clock: trio.testing.MockClock) -> None:
    meta = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40}]}
    rec = Recorder(lambda n, body: meta)
    async with client(rec) as info:
        discovery = await info.discover("", ["BTC"])
    assert discovery.perp_dex is None and discovery.specs["BTC"].key == MarketKey("", "BTC", 0)
    assert [body["type"] for _, _, body in rec.calls] == ["meta"]


async def test_discover_missing_or_delisted_coin_is_named(autojump_clock: trio.testing.MockClock) -> None:
    async with client(Recorder(discovery_script)) as info:
        with pytest.raises(InfoError, match="NVDA not listed in dex 'xyz'"):
            await info.discover_markets("xyz", ["TSLA", "NVDA"])
        with pytest.raises(InfoError, match="OLD delisted"):
            await info.discover_markets("xyz", ["OLD"])
        with pytest.raises(InfoError, match="dex 'nope' not in perpDexs"):
            await info.discover_markets("nope", ["TSLA"])


# ---------------------------------------------------------------------------------------------
# /exchange


async def test_post_exchange_ok(autojump_clock: trio.testing.MockClock) -> None:
    answer = {"status": "ok", "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": 5}}]}}}
    rec = Recorder(lambda n, body: answer)
    body = {"action": {"type": "order", "orders": [{}], "grouping": "na"}, "nonce": 1, "signature": {}}
    async with client(rec) as info:
        result = await info.post_exchange(body)
    assert result == ActionOk("order", (Resting(oid=5),))
    assert rec.calls[0][1] == EXCHANGE and rec.bodies == [body]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(422, text="orders[0].p: invalid type"), "HTTP 422: orders\\[0\\].p: invalid type"),
        (httpx.Response(500, text="oops"), "HTTP 500"),
        (httpx.Response(429, text="slow down"), "HTTP 429"),
        (httpx.ReadError("reset"), "transport error"),
        ({"status": "maybe"}, "malformed answer"),
    ],
)
async def test_post_exchange_failures_raise_and_are_never_retried(
    answer: Any, message: str, autojump_clock: trio.testing.MockClock
) -> None:
    rec = Recorder(lambda n, body: answer)
    async with client(rec) as info:
        with pytest.raises(InfoError, match=message):
            await info.post_exchange({"action": {"type": "order", "orders": []}, "nonce": 1})
    assert len(rec.calls) == 1


async def test_fill_queries_are_charged_per_20_items(autojump_clock: trio.testing.MockClock) -> None:
    fill = {
        "coin": "xyz:TSLA",
        "px": "1",
        "sz": "1",
        "side": "B",
        "time": 1,
        "startPosition": "0",
        "dir": "Open Long",
        "closedPnl": "0",
        "hash": "0x0",
        "oid": 1,
        "crossed": True,
        "fee": "0",
        "tid": 1,
    }
    rec = Recorder(lambda n, body: [fill] * 100)
    async with client(rec, weight_per_minute=50) as info:
        t0 = trio.current_time()
        assert len(await info.user_fills_by_time(USER, 0)) == 100  # 20 + 100 // 20 = 25
        await info.user_fills_by_time(USER, 0)  # 25 more: 50, still fits
        await info.user_fills_by_time(USER, 0)  # must wait for the window
    assert [t - t0 for t in rec.times] == [0.0, 0.0, pytest.approx(60.0)]


async def test_rolling_limiter_cost_above_capacity_waits_for_an_empty_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from hip3.hyperliquid.ratelimit import RollingLimiter

    limiter = RollingLimiter(10, window=60.0)
    t0 = trio.current_time()
    await limiter.acquire(4)
    await trio.sleep(5)
    await limiter.acquire(4)
    assert limiter.used() == 8
    await limiter.acquire(30)  # larger than the budget: waits until the window is empty, then goes
    assert trio.current_time() - t0 == pytest.approx(65.0)
    await limiter.acquire(1)  # the oversized spend blocks the next minute
    assert trio.current_time() - t0 == pytest.approx(125.0)
