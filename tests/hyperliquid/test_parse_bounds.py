"""Numbers outside sane bounds are refused at the parse edge, counted and logged; the rest of the
frame survives. Without the bound, `1e999999999` passed as "finite" and raised decimal.Overflow
later in the gates, the detector or the tracker, ending the bot."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from hip3.core import Side
from hip3.hyperliquid.events import AllMids, AssetCtx, Bbo, UserFills
from hip3.hyperliquid.parse import (
    ParseError,
    ParseStats,
    parse_clearinghouse_state,
    parse_ws_frame,
)


def frame(channel: str, data: Any) -> str:
    return json.dumps({"channel": channel, "data": data})


def ctx_frame(**overrides: Any) -> str:
    ctx = {
        "funding": "0.0000125",
        "openInterest": "1234.5",
        "prevDayPx": "460.0",
        "dayNtlVlm": "98765.4",
        "premium": None,
        "oraclePx": "465.2",
        "markPx": "465.1",
        "midPx": "465.15",
        "impactPxs": None,
        "dayBaseVlm": "200.0",
    }
    ctx.update(overrides)
    return frame("activeAssetCtx", {"coin": "xyz:TSLA", "ctx": ctx})


def fill(tid: int, **overrides: Any) -> dict[str, Any]:
    out = {
        "coin": "xyz:TSLA",
        "px": "465.1",
        "sz": "0.2",
        "side": "B",
        "time": 1769594065851,
        "startPosition": "0",
        "dir": "Open Long",
        "closedPnl": "0",
        "hash": "0x" + "ab" * 32,
        "oid": 1000 + tid,
        "crossed": True,
        "fee": "0.02",
        "tid": tid,
        "feeToken": "USDC",
    }
    out.update(overrides)
    return out


@pytest.fixture
def stats() -> ParseStats:
    return ParseStats()


@pytest.mark.parametrize(
    ("field", "value"),
    [("markPx", "1e999999999"), ("oraclePx", "9e999999"), ("midPx", "1e-999999999"), ("funding", "1E+40")],
)
def test_asset_ctx_with_an_absurd_number_is_dropped_and_counted(
    stats: ParseStats, field: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert parse_ws_frame(ctx_frame(**{field: value}), stats) == []
    assert stats.counts["bad_activeAssetCtx"] == 1
    assert "out of range" in caplog.text and field in caplog.text


def test_bbo_at_a_vanishing_price_is_dropped(stats: ParseStats) -> None:
    bad = {"coin": "xyz:TSLA", "time": 1, "bbo": [{"px": "1e-999999999", "sz": "1", "n": 1}, None]}
    assert parse_ws_frame(frame("bbo", bad), stats) == []
    assert stats.counts["bad_bbo"] == 1
    good = {"coin": "xyz:TSLA", "time": 1, "bbo": [{"px": "0.000012345", "sz": "1e6", "n": 1}, None]}
    [bbo] = parse_ws_frame(frame("bbo", good), stats)
    assert isinstance(bbo, Bbo) and bbo.bid is not None and bbo.bid.px == Decimal("0.000012345")


def test_one_absurd_fill_never_drops_its_siblings(stats: ParseStats) -> None:
    fills = [
        fill(1),
        fill(2, px="1e999999999"),
        fill(3, fee="-9e999999"),
        fill(4, sz="1e-999999999"),
        fill(5),
    ]
    [msg] = parse_ws_frame(frame("userFills", {"user": "0x" + "11" * 20, "fills": fills}), stats)
    assert isinstance(msg, UserFills)
    assert [f.tid for f in msg.fills] == [1, 5]
    assert all(f.side is Side.BUY for f in msg.fills)
    assert stats.counts["bad_fill"] == 3


def test_one_absurd_mid_keeps_the_others(stats: ParseStats) -> None:
    [mids] = parse_ws_frame(frame("allMids", {"mids": {"xyz:A": "1.5", "xyz:B": "1e999999999"}}), stats)
    assert mids == AllMids({"xyz:A": Decimal("1.5")})


def test_zero_with_a_huge_exponent_is_plain_zero(stats: ParseStats) -> None:
    [ctx] = parse_ws_frame(ctx_frame(premium="0E-999999999", openInterest="0e+999999"), stats)
    assert isinstance(ctx, AssetCtx)
    assert ctx.premium == 0 and ctx.open_interest == 0
    # arithmetic with it stays cheap and exact
    assert ctx.open_interest + Decimal("1.5") == Decimal("1.5")


def test_bounds_leave_every_real_market_number_alone(stats: ParseStats) -> None:
    from hip3.hyperliquid.parse import MAX_ADJUSTED_EXPONENT, MIN_ADJUSTED_EXPONENT

    assert MAX_ADJUSTED_EXPONENT >= 12 and MIN_ADJUSTED_EXPONENT <= -12
    [ctx] = parse_ws_frame(ctx_frame(oraclePx="0.0000012345", markPx="123456789012.5"), stats)
    assert isinstance(ctx, AssetCtx) and ctx.mark_px == Decimal("123456789012.5")
    assert stats.total == 0


def test_info_body_with_an_absurd_number_fails_loudly() -> None:
    body = {
        "marginSummary": {
            "accountValue": "1e999999999",
            "totalNtlPos": "0",
            "totalRawUsd": "0",
            "totalMarginUsed": "0",
        },
        "crossMarginSummary": {
            "accountValue": "0",
            "totalNtlPos": "0",
            "totalRawUsd": "0",
            "totalMarginUsed": "0",
        },
        "crossMaintenanceMarginUsed": "0",
        "withdrawable": "0",
        "assetPositions": [],
        "time": 1,
    }
    with pytest.raises(ParseError, match="out of range"):
        parse_clearinghouse_state(body)
