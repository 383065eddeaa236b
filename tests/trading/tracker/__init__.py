"""Shared builders for the tracker tests: markets, requests, fills and updates with plain values."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hip3.core import Cloid, MarketKey, Price, Side, Size
from hip3.hyperliquid.events import (
    AssetPosition,
    ClearinghouseState,
    Fill,
    OrderUpdate,
    OrderUpdates,
    UserFills,
)
from hip3.trading.messages import ReserveRequest
from hip3.trading.tracker import Tracker

TSLA = MarketKey("xyz", "TSLA", 110000)
NVDA = MarketKey("xyz", "NVDA", 110001)
GOLD = MarketKey("xyz", "GOLD", 110002)
MARKETS = {m.name: m for m in (TSLA, NVDA, GOLD)}

_tids = itertools.count(1_000_000)


def D(x: object) -> Decimal:
    return Decimal(str(x))


def make_tracker(
    *,
    per_market: object = 50,
    total: object = 1000,
    concurrent: int = 3,
    memory: float = 6 * 3600.0,
) -> Tracker:
    return Tracker(
        MARKETS,
        max_notional_per_market=D(per_market),
        max_total_notional=D(total),
        max_concurrent_positions=concurrent,
        fill_memory_secs=memory,
    )


def req(
    market: MarketKey = TSLA,
    side: Side = Side.BUY,
    size: object = 1,
    px: object = 10,
    *,
    reduce_only: bool = False,
    cloid: Cloid | None = None,
) -> ReserveRequest:
    return ReserveRequest(
        cloid=cloid or Cloid.random(),
        market=market,
        side=side,
        size=Size(D(size)),
        limit_px=Price(D(px)),
        reduce_only=reduce_only,
        reason="flatten" if reduce_only else "entry",
    )


def fill(
    market: MarketKey,
    side: Side,
    sz: object,
    px: object,
    *,
    cloid: Cloid | None = None,
    tid: int | None = None,
    fee: object = 0,
    coin: str | None = None,
) -> Fill:
    return Fill(
        coin=coin or market.name,
        px=D(px),
        sz=D(sz),
        side=side,
        time=1_700_000_000_000,
        start_position=D(0),
        dir="Open Long" if side is Side.BUY else "Open Short",
        closed_pnl=D(0),
        hash="0x" + "ab" * 32,
        oid=42,
        crossed=True,
        fee=D(fee),
        tid=next(_tids) if tid is None else tid,
        cloid=cloid,
        fee_token="USDC",
    )


def fills_msg(*fills: Fill, snapshot: bool = False) -> UserFills:
    return UserFills(user="0x" + "11" * 20, is_snapshot=snapshot, fills=tuple(fills))


def update(
    cloid: Cloid,
    status: str,
    orig_sz: object,
    sz: object,
    market: MarketKey = TSLA,
    side: Side = Side.BUY,
) -> OrderUpdates:
    return OrderUpdates(
        updates=(
            OrderUpdate(
                coin=market.name,
                side=side,
                limit_px=D(10),
                sz=D(sz),
                oid=42,
                timestamp=1,
                orig_sz=D(orig_sz),
                status=status,
                status_timestamp=2,
                cloid=cloid,
            ),
        )
    )


def chs(*positions: tuple[MarketKey | str, object, object]) -> ClearinghouseState:
    """A clearinghouseState with (market or coin, signed size, entry px) positions."""
    return ClearinghouseState(
        positions=tuple(
            AssetPosition(
                coin=m.name if isinstance(m, MarketKey) else m,
                szi=D(szi),
                entry_px=D(px),
                position_value=abs(D(szi) * D(px)),
                unrealized_pnl=D(0),
                leverage_type="isolated",
                leverage=3,
            )
            for m, szi, px in positions
        ),
        account_value=D(1000),
        total_margin_used=D(0),
        withdrawable=D(1000),
    )
